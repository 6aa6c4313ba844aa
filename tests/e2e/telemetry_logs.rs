//! Logs are for operators: structured, tied to the trace and the event, and never holding a
//! customer's password, signing secret or authorization header.

use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use synap_contract::EventType;
use synap_proto::control::v1::{self as api, Plan};
use synap_tests::kafka::{produce, producer};
use synap_tests::stack::{ADMIN_TOKEN, ENCRYPTION_KEY};
use synap_tests::{Receiver, Service, Stack};

use crate::support::{envelope, portal_id, upsert_portal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_a_full_delivery_hold_no_secret() {
    // The most verbose setting an operator might turn on, every crate included, in the
    // production format.
    let mut stack = Stack::start_with(&[("SYNAP_LOG__FORMAT", "json"), ("SYNAP_LOG__FILTER", "debug")]).await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, Plan::Pro, &[]).await;
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let created = control
        .create_subscription(api::CreateSubscriptionRequest {
            portal_id: portal.clone(),
            url: receiver.url("/hook"),
            event_types: vec![EventType::ExamCompleted.code().into()],
            description: "log secrecy".into(),
            basic_auth: Some(api::BasicAuth { username: "synap-user".into(), password: password.clone() }),
            enabled: Some(true),
            ..Default::default()
        })
        .await
        .expect("create subscription")
        .into_inner();
    let signing_secret = created.signing_secret;
    assert!(signing_secret.starts_with("whsec_"), "{signing_secret}");

    let ty = EventType::ExamCompleted;
    let event_id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let payload = envelope(ty, &portal, Some(&event_id), &ty.example_body());
    produce(&producer(&stack.bootstrap), &stack.topic("inbound"), &portal, &payload, None).await;
    let request = receiver.wait_for("/hook", 1, Duration::from_secs(30)).await.remove(0);
    let authorization = request.header("authorization").expect("basic auth sent").to_owned();
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("synap-user:{password}"));
    assert_eq!(authorization, format!("Basic {credentials}"));
    for service in Service::ALL {
        stack.stop(service).await;
    }

    let logs = stack.all_logs();
    assert!(logs.len() > 10_000, "debug logs of four services were captured ({} bytes)", logs.len());
    let secret_body = signing_secret.trim_start_matches("whsec_");
    for (what, secret) in [
        ("basic-auth password", password.as_str()),
        ("authorization header", authorization.as_str()),
        ("basic-auth credentials", credentials.as_str()),
        ("signing secret", secret_body),
        ("admin token", ADMIN_TOKEN),
        ("encryption key", ENCRYPTION_KEY),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs under {}", stack.logs.display());
    }

    // JSON lines, and the event's lines name the event and its trace.
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    let about_event: Vec<&Value> = lines
        .iter()
        .filter(|l| l.pointer("/span/event_id").and_then(Value::as_str) == Some(event_id.as_str()))
        .collect();
    let stages: std::collections::BTreeSet<&str> =
        about_event.iter().filter_map(|l| l.pointer("/span/name").and_then(Value::as_str)).collect();
    assert!(stages.contains("ingest") && stages.contains("route"), "event lines from {stages:?}");
    let trace_ids: std::collections::BTreeSet<&str> =
        about_event.iter().filter_map(|l| l.pointer("/span/trace_id").and_then(Value::as_str)).collect();
    assert_eq!(trace_ids.len(), 1, "every line about the event names its one trace: {trace_ids:?}");
}
