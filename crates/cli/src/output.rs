//! Tables for people, JSON for scripts.

use serde_json::{Value, json};
use synap_proto::control::v1 as api;

pub struct Output {
    pub json: bool,
}

fn plan_name(plan: i32) -> &'static str {
    match api::Plan::try_from(plan) {
        Ok(api::Plan::Free) => "free",
        Ok(api::Plan::Starter) => "starter",
        Ok(api::Plan::Pro) => "pro",
        Ok(api::Plan::Enterprise) => "enterprise",
        _ => "unspecified",
    }
}

fn time(t: &Option<synap_proto::Timestamp>) -> String {
    t.as_ref().map(|t| t.seconds.to_string()).unwrap_or_default()
}

impl Output {
    pub fn portals(&self, portals: &[api::Portal]) {
        if self.json {
            let rows: Vec<Value> = portals
                .iter()
                .map(|p| json!({ "id": p.id, "plan": plan_name(p.plan), "features": p.features, "updated_at": time(&p.updated_at) }))
                .collect();
            println!("{}", Value::Array(rows));
            return;
        }
        table(
            &["ID", "PLAN", "FEATURES"],
            portals
                .iter()
                .map(|p| vec![p.id.clone(), plan_name(p.plan).into(), p.features.join(",")])
                .collect(),
        );
    }

    pub fn subscriptions(&self, subs: &[api::Subscription]) {
        if self.json {
            let rows: Vec<Value> = subs
                .iter()
                .map(|s| {
                    json!({
                        "id": s.id, "portal_id": s.portal_id, "url": s.url, "event_types": s.event_types,
                        "description": s.description, "enabled": s.enabled,
                        "basic_auth_username": s.basic_auth_username, "created_at": time(&s.created_at),
                    })
                })
                .collect();
            println!("{}", Value::Array(rows));
            return;
        }
        table(
            &["ID", "PORTAL", "ENABLED", "URL", "EVENT TYPES"],
            subs.iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.portal_id.clone(),
                        s.enabled.to_string(),
                        s.url.clone(),
                        s.event_types.join(","),
                    ]
                })
                .collect(),
        );
    }
}

pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}
