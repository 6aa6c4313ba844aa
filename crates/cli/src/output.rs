//! Tables for people, JSON for scripts (`--json`: one JSON object per command, field names as
//! in the proto).

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

fn state_name(state: i32) -> &'static str {
    match api::SubscriptionState::try_from(state) {
        Ok(api::SubscriptionState::Active) => "active",
        Ok(api::SubscriptionState::Paused) => "paused",
        Ok(api::SubscriptionState::Disabled) => "disabled",
        _ => "unspecified",
    }
}

/// RFC 3339, or empty when absent.
fn time(t: &Option<synap_proto::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn time_json(t: &Option<synap_proto::Timestamp>) -> Value {
    match time(t) {
        s if s.is_empty() => Value::Null,
        s => Value::String(s),
    }
}

fn portal_json(p: &api::Portal) -> Value {
    json!({
        "id": p.id, "plan": plan_name(p.plan), "features": p.features,
        "created_at": time_json(&p.created_at), "updated_at": time_json(&p.updated_at),
    })
}

fn key_json(k: &api::ApiKey) -> Value {
    json!({
        "id": k.id, "portal_id": k.portal_id, "name": k.name, "token_prefix": k.token_prefix,
        "created_at": time_json(&k.created_at), "revoked_at": time_json(&k.revoked_at),
        "last_used_at": time_json(&k.last_used_at),
    })
}

/// An optional delivery option for people: its value, or that the deployment's default applies.
fn or_default(value: Option<u32>) -> String {
    value.map(|v| v.to_string()).unwrap_or_else(|| "default".into())
}

fn subscription_json(s: &api::Subscription) -> Value {
    json!({
        "id": s.id, "portal_id": s.portal_id, "url": s.url, "event_types": s.event_types,
        "description": s.description, "state": state_name(s.state), "enabled": s.enabled,
        "disabled_reason": s.disabled_reason, "basic_auth_username": s.basic_auth_username,
        "created_at": time_json(&s.created_at), "updated_at": time_json(&s.updated_at),
        "ordered": s.ordered, "max_in_flight": s.max_in_flight,
        "rate_limit_per_sec": s.rate_limit_per_sec, "timeout_ms": s.timeout_ms,
        "omit_traceparent": s.omit_traceparent,
        "signature_scheme": scheme_name(s.signature_scheme),
        "signing_public_keys": s.signing_public_keys.iter().map(|k| json!({
            "public_key": k.public_key, "expires_at": time_json(&k.expires_at),
        })).collect::<Vec<_>>(),
        "headers": s.headers.iter().map(|h| if h.secret {
            json!({ "name": h.name, "secret": true })
        } else {
            json!({ "name": h.name, "value": h.value })
        }).collect::<Vec<_>>(),
        "filter": s.filter,
    })
}

fn scheme_name(scheme: i32) -> &'static str {
    match api::SignatureScheme::try_from(scheme) {
        Ok(api::SignatureScheme::V1a) => "v1a",
        _ => "v1",
    }
}

/// The public keys for people: the current one, then any in its overlap with its end.
fn public_keys(keys: &[api::SigningPublicKey]) -> String {
    keys.iter()
        .map(|k| match &k.expires_at {
            None => k.public_key.clone(),
            Some(_) => format!("{} (until {})", k.public_key, time(&k.expires_at)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A gRPC error as one line: code, message (which names the field at fault) and any other
/// field violations.
pub fn status(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    let mut line = format!("{:?}: {}", status.code(), status.message());
    if let Some(bad) = status.get_details_bad_request() {
        for v in bad.field_violations.iter().skip(1) {
            line.push_str(&format!("; {}: {}", v.field, v.description));
        }
    }
    line
}

impl Output {
    fn print(&self, value: Value) {
        println!("{}", serde_json::to_string_pretty(&value).expect("JSON values serialize"));
    }

    pub fn portal(&self, portal: &api::Portal) {
        if self.json {
            return self.print(portal_json(portal));
        }
        self.portals(std::slice::from_ref(portal), "");
    }

    pub fn portals(&self, portals: &[api::Portal], next_page_token: &str) {
        if self.json {
            let portals: Vec<Value> = portals.iter().map(portal_json).collect();
            return self.print(json!({ "portals": portals, "next_page_token": next_page_token }));
        }
        table(
            &["ID", "PLAN", "FEATURES", "UPDATED"],
            portals
                .iter()
                .map(|p| {
                    vec![p.id.clone(), plan_name(p.plan).into(), p.features.join(","), time(&p.updated_at)]
                })
                .collect(),
        );
        next_page(next_page_token);
    }

    pub fn created_key(&self, created: &api::CreateApiKeyResponse) {
        if self.json {
            let key = created.api_key.as_ref().map(key_json);
            return self.print(json!({ "api_key": key, "token": created.token }));
        }
        self.keys(created.api_key.as_slice());
        println!("\ntoken (shown once, store it now): {}", created.token);
    }

    pub fn keys(&self, keys: &[api::ApiKey]) {
        if self.json {
            let keys: Vec<Value> = keys.iter().map(key_json).collect();
            return self.print(json!({ "api_keys": keys }));
        }
        table(
            &["ID", "PORTAL", "NAME", "TOKEN", "CREATED", "LAST USED", "REVOKED"],
            keys.iter()
                .map(|k| {
                    vec![
                        k.id.clone(),
                        k.portal_id.clone(),
                        k.name.clone(),
                        format!("{}…", k.token_prefix),
                        time(&k.created_at),
                        time(&k.last_used_at),
                        time(&k.revoked_at),
                    ]
                })
                .collect(),
        );
    }

    pub fn created_subscription(&self, created: &api::CreateSubscriptionResponse) {
        if self.json {
            let sub = created.subscription.as_ref().map(subscription_json);
            return self.print(json!({ "subscription": sub, "signing_secret": created.signing_secret }));
        }
        if let Some(sub) = &created.subscription {
            self.subscription(sub);
        }
        if !created.signing_secret.is_empty() {
            println!("\nsigning secret (shown once, store it now): {}", created.signing_secret);
        }
    }

    pub fn subscription(&self, s: &api::Subscription) {
        if self.json {
            return self.print(subscription_json(s));
        }
        let mut rows = vec![
            ("id", s.id.clone()),
            ("portal", s.portal_id.clone()),
            ("state", state_name(s.state).to_owned()),
            ("url", s.url.clone()),
            ("event types", s.event_types.join(", ")),
            ("filter", s.filter.clone()),
            ("description", s.description.clone()),
            ("basic auth", s.basic_auth_username.clone().map(|u| format!("{u}:••••")).unwrap_or_default()),
            ("ordered", if s.ordered { "yes" } else { "no" }.to_owned()),
            ("max in flight", or_default(s.max_in_flight)),
            (
                "rate limit",
                s.rate_limit_per_sec.map(|r| format!("{r}/s")).unwrap_or_else(|| "default".into()),
            ),
            ("timeout", s.timeout_ms.map(|t| format!("{t} ms")).unwrap_or_else(|| "default".into())),
            ("traceparent", if s.omit_traceparent { "omitted" } else { "sent" }.to_owned()),
            ("signature scheme", scheme_name(s.signature_scheme).to_owned()),
            ("public keys", public_keys(&s.signing_public_keys)),
            (
                "headers",
                s.headers
                    .iter()
                    .map(|h| {
                        if h.secret {
                            format!("{}: ••••", h.name)
                        } else {
                            format!("{}: {}", h.name, h.value)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("created", time(&s.created_at)),
            ("updated", time(&s.updated_at)),
        ];
        if !s.disabled_reason.is_empty() {
            rows.insert(3, ("disabled because", s.disabled_reason.clone()));
        }
        fields(&rows);
    }

    pub fn subscriptions(&self, subs: &[api::Subscription], next_page_token: &str) {
        if self.json {
            let subs: Vec<Value> = subs.iter().map(subscription_json).collect();
            return self.print(json!({ "subscriptions": subs, "next_page_token": next_page_token }));
        }
        table(
            &["ID", "PORTAL", "STATE", "URL", "EVENT TYPES"],
            subs.iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.portal_id.clone(),
                        state_name(s.state).into(),
                        s.url.clone(),
                        s.event_types.join(","),
                    ]
                })
                .collect(),
        );
        next_page(next_page_token);
    }

    pub fn deleted(&self, id: &str) {
        if self.json {
            return self.print(json!({ "deleted": id }));
        }
        println!("deleted {id}");
    }

    pub fn rotated(&self, rotated: &api::RotateSigningSecretResponse) {
        if self.json {
            return self.print(json!({
                "signing_secret": rotated.signing_secret,
                "previous_expires_at": time_json(&rotated.previous_expires_at),
                "signature_scheme": scheme_name(rotated.signature_scheme),
                "public_key": rotated.public_key,
            }));
        }
        let new = if rotated.public_key.is_empty() {
            ("new signing secret (shown once)", rotated.signing_secret.clone())
        } else {
            ("new public key (v1a)", rotated.public_key.clone())
        };
        fields(&[new, ("previous secret valid until", time(&rotated.previous_expires_at))]);
    }

    /// The link alone on stdout (for `$(synapctl portal-link …)`), its expiry on stderr.
    pub fn portal_link(&self, link: &api::CreatePortalLinkResponse) {
        if self.json {
            return self.print(json!({
                "url": link.url, "portal_id": link.portal_id, "expires_at": time_json(&link.expires_at),
            }));
        }
        println!("{}", link.url);
        eprintln!("single use, for portal {}, until {}", link.portal_id, time(&link.expires_at));
    }

    pub fn test_send(&self, r: &api::TestSendResponse) {
        if self.json {
            return self.print(json!({
                "event_id": r.event_id, "outcome": r.outcome, "status_code": r.status_code,
                "latency_ms": r.latency_ms, "error": r.error, "error_class": r.error_class,
            }));
        }
        fields(&[
            ("event id", r.event_id.clone()),
            ("outcome", r.outcome.clone()),
            ("status", r.status_code.map(|c| c.to_string()).unwrap_or_else(|| "no response".into())),
            ("latency", format!("{} ms", r.latency_ms)),
            ("error", [r.error_class.as_str(), r.error.as_str()].join(" ").trim().to_owned()),
        ]);
    }

    pub fn test_filter(&self, r: &api::TestFilterResponse) {
        if self.json {
            return self.print(json!({ "matched": r.matched, "error": r.error, "event_type": r.event_type }));
        }
        let verdict = match (r.matched, r.error.is_empty()) {
            (true, _) => "matched: the event would be delivered",
            (false, true) => "not matched: the event would not be delivered",
            (false, false) => "failed (counts as not matched): the event would not be delivered",
        };
        let mut rows = vec![("event type", r.event_type.clone()), ("result", verdict.to_owned())];
        if !r.error.is_empty() {
            rows.push(("error", r.error.clone()));
        }
        fields(&rows);
    }

    pub fn event_types(&self, types: &[api::EventType], examples: bool) {
        if self.json {
            let types: Vec<Value> = types
                .iter()
                .map(|t| {
                    json!({
                        "code": t.code, "description": t.description, "plan_rule": t.plan_rule,
                        "minimum_plan": plan_name(t.minimum_plan), "required_features": t.required_features,
                        "example_body": serde_json::from_str::<Value>(&t.example_body).unwrap_or(Value::Null),
                    })
                })
                .collect();
            return self.print(json!({ "event_types": types }));
        }
        table(
            &["CODE", "PLAN RULE", "SENT WHEN"],
            types.iter().map(|t| vec![t.code.clone(), t.plan_rule.clone(), t.description.clone()]).collect(),
        );
        if examples {
            for t in types {
                let body: Value = serde_json::from_str(&t.example_body).unwrap_or(Value::Null);
                println!("\n{}:\n{}", t.code, serde_json::to_string_pretty(&body).unwrap_or_default());
            }
        }
    }
}

fn next_page(token: &str) {
    if !token.is_empty() {
        println!("\nmore: --page-token {token}");
    }
}

/// `name: value` lines, names aligned.
fn fields(rows: &[(&str, String)]) {
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    for (key, value) in rows {
        println!("{:<width$}  {value}", format!("{key}:"), width = width + 1);
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
