//! `synapctl delivery …`: the attempt log, resend and recover (`synap.control.v1.DeliveryService`).

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};
use synap_proto::control::v1 as api;
use synap_proto::control::v1::delivery_service_client::DeliveryServiceClient;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::output::{Output, table};

#[derive(Subcommand)]
pub enum DeliveryCommand {
    /// Lists attempts, newest first.
    Attempts {
        /// Required with a portal API key; the admin may leave it out.
        #[arg(long)]
        portal: Option<String>,
        #[arg(long)]
        subscription: Option<String>,
        #[arg(long)]
        event: Option<String>,
        /// Event type code.
        #[arg(long = "type")]
        event_type: Option<String>,
        /// delivered, retrying or failed.
        #[arg(long)]
        outcome: Option<String>,
        /// RFC 3339 time, e.g. 2026-11-27T10:00:00Z.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// The `next page` token printed by the previous call.
        #[arg(long)]
        page_token: Option<String>,
    },
    /// Shows one attempt with the response it got.
    Attempt { id: String },
    /// Sends one event to one subscription again.
    Resend {
        #[arg(long)]
        subscription: String,
        #[arg(long)]
        event: String,
    },
    /// Sends again every delivery of a subscription that failed for good since a time.
    Recover {
        #[arg(long)]
        subscription: String,
        /// RFC 3339 time.
        #[arg(long)]
        since: String,
    },
    /// A subscription's last 24 hours: success rate, latency per hour, last error, circuit.
    Health {
        #[arg(long)]
        subscription: String,
    },
}

fn timestamp(text: &str, flag: &str) -> anyhow::Result<synap_proto::Timestamp> {
    let t = chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("--{flag} must be an RFC 3339 time"))?;
    Ok(synap_proto::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

fn time(t: &Option<synap_proto::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn attempt_json(a: &api::Attempt) -> Value {
    json!({
        "id": a.id, "event_id": a.event_id, "event_type": a.event_type, "portal_id": a.portal_id,
        "subscription_id": a.subscription_id, "attempt": a.attempt, "scheduled_at": time(&a.scheduled_at),
        "sent_at": time(&a.sent_at), "finished_at": time(&a.finished_at), "outcome": a.outcome,
        "error_class": a.error_class, "error": a.error, "status_code": a.status_code,
        "latency_ms": a.latency_ms, "response_headers": a.response_headers,
        "response_body": a.response_body, "test_send": a.test_send,
    })
}

pub async fn run<F: Interceptor>(
    mut client: DeliveryServiceClient<InterceptedService<Channel, F>>,
    out: &Output,
    command: DeliveryCommand,
) -> anyhow::Result<()> {
    match command {
        DeliveryCommand::Attempts {
            portal,
            subscription,
            event,
            event_type,
            outcome,
            since,
            until,
            limit,
            page_token,
        } => {
            let request = api::ListAttemptsRequest {
                portal_id: portal.unwrap_or_default(),
                subscription_id: subscription.unwrap_or_default(),
                event_id: event.unwrap_or_default(),
                event_type: event_type.unwrap_or_default(),
                outcome: outcome.unwrap_or_default(),
                since: since.as_deref().map(|s| timestamp(s, "since")).transpose()?,
                until: until.as_deref().map(|s| timestamp(s, "until")).transpose()?,
                page_size: limit,
                page_token: page_token.unwrap_or_default(),
            };
            let page = client.list_attempts(request).await?.into_inner();
            if out.json {
                let rows: Vec<Value> = page.attempts.iter().map(attempt_json).collect();
                println!("{}", json!({ "attempts": rows, "next_page_token": page.next_page_token }));
                return Ok(());
            }
            table(
                &["ID", "FINISHED", "EVENT", "SUBSCRIPTION", "#", "OUTCOME", "STATUS", "ERROR", "MS"],
                page.attempts
                    .iter()
                    .map(|a| {
                        vec![
                            a.id.clone(),
                            time(&a.finished_at),
                            a.event_id.clone(),
                            a.subscription_id.clone(),
                            a.attempt.to_string(),
                            a.outcome.clone(),
                            if a.status_code == 0 { String::new() } else { a.status_code.to_string() },
                            a.error_class.clone(),
                            a.latency_ms.to_string(),
                        ]
                    })
                    .collect(),
            );
            if !page.next_page_token.is_empty() {
                println!("next page: --page-token {}", page.next_page_token);
            }
        }
        DeliveryCommand::Attempt { id } => {
            let a = client.get_attempt(api::GetAttemptRequest { id }).await?.into_inner();
            let value = attempt_json(&a);
            println!("{}", if out.json { value.to_string() } else { serde_json::to_string_pretty(&value)? });
        }
        DeliveryCommand::Resend { subscription, event } => {
            client
                .resend_event(api::ResendEventRequest {
                    subscription_id: subscription,
                    event_id: event.clone(),
                })
                .await?;
            if out.json {
                println!("{}", json!({ "resent": 1 }));
            } else {
                println!("event {event} sent again");
            }
        }
        DeliveryCommand::Recover { subscription, since } => {
            let since = Some(timestamp(&since, "since")?);
            let r = client
                .recover_failed(api::RecoverFailedRequest { subscription_id: subscription, since })
                .await?
                .into_inner();
            if out.json {
                println!("{}", json!({ "resent": r.resent, "expired": r.expired }));
            } else {
                println!("{} deliveries sent again; {} no longer retained", r.resent, r.expired);
            }
        }
        DeliveryCommand::Health { subscription } => {
            let request = api::GetSubscriptionHealthRequest { subscription_id: subscription };
            let h = client.get_subscription_health(request).await?.into_inner();
            health(out, &h);
        }
    }
    Ok(())
}

fn health(out: &Output, h: &api::SubscriptionHealth) {
    let state = api::SubscriptionState::try_from(h.state)
        .map(|s| s.as_str_name().trim_start_matches("SUBSCRIPTION_STATE_").to_lowercase())
        .unwrap_or_default();
    if out.json {
        let buckets: Vec<Value> = h
            .buckets
            .iter()
            .map(|b| {
                json!({
                    "start": time(&b.start), "delivered": b.delivered, "failed": b.failed,
                    "mean_latency_ms": b.mean_latency_ms, "p95_latency_ms": b.p95_latency_ms,
                })
            })
            .collect();
        println!(
            "{}",
            json!({
                "subscription_id": h.subscription_id, "since": time(&h.since), "buckets": buckets,
                "success_rate": h.success_rate, "last_error_at": time(&h.last_error_at),
                "last_error_class": h.last_error_class, "last_error": h.last_error,
                "circuit_open": h.circuit_open, "circuit_opened_at": time(&h.circuit_opened_at),
                "circuit_reason": h.circuit_reason, "state": state, "disabled_reason": h.disabled_reason,
                "inactive_since": time(&h.inactive_since),
            })
        );
        return;
    }
    let rate = h.success_rate.map_or_else(|| "no attempts".into(), |r| format!("{:.1} %", r * 100.0));
    println!("success rate (24 h): {rate}");
    if !h.last_error_class.is_empty() {
        println!("last error: {} at {} {}", h.last_error_class, time(&h.last_error_at), h.last_error);
    }
    if h.circuit_open {
        println!("circuit: open since {} ({})", time(&h.circuit_opened_at), h.circuit_reason);
    }
    println!("state: {state} {} {}", time(&h.inactive_since), h.disabled_reason);
    table(
        &["HOUR", "DELIVERED", "FAILED", "MEAN MS", "P95 MS"],
        h.buckets
            .iter()
            .map(|b| {
                vec![
                    time(&b.start),
                    b.delivered.to_string(),
                    b.failed.to_string(),
                    b.mean_latency_ms.to_string(),
                    b.p95_latency_ms.to_string(),
                ]
            })
            .collect(),
    );
}
