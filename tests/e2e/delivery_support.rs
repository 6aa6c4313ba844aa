//! Steps shared by the delivery tests: a portal with one subscription, events on the inbound
//! topic, and the attempt log read straight from the stack's database.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

use synap_contract::EventType;
use synap_proto::control::v1::Plan;
use synap_tests::Stack;
use synap_tests::kafka::{produce, producer};

use crate::support::{NewSub, envelope, portal_id, subscribe, upsert_portal};

/// Standard Webhooks verification as a customer writes it, independent of the sender's code:
/// HMAC-SHA256 over `id.timestamp.body` with the base64-decoded secret after `whsec_`.
pub fn verify(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let key = STANDARD.decode(secret.trim_start_matches("whsec_")).expect("secret is base64");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    header.split(' ').any(|candidate| candidate == expected)
}

/// One row of the attempt log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedAttempt {
    pub event_id: String,
    pub attempt: i32,
    pub outcome: String,
    pub error_class: Option<String>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
}

/// A Pro portal subscribed to `attempt.completed` at `url`; returns (portal, subscription id,
/// signing secret).
pub async fn portal_with_subscription(stack: &Stack, url: String) -> (String, String, String) {
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, Plan::Pro, &[]).await;
    let created = control
        .create_subscription(synap_proto::control::v1::CreateSubscriptionRequest {
            portal_id: portal.clone(),
            url,
            event_types: vec![EventType::AttemptCompleted.code().into()],
            description: "delivery test".into(),
            basic_auth: None,
            enabled: Some(true),
            ..Default::default()
        })
        .await
        .expect("create subscription")
        .into_inner();
    let sub = created.subscription.unwrap();
    (portal, sub.id, created.signing_secret)
}

/// Subscribes another endpoint of `portal` to `attempt.completed`; returns its id.
pub async fn add_subscription(stack: &Stack, portal: &str, url: String) -> String {
    let mut control = stack.control().await;
    subscribe(&mut control, NewSub::new(portal, url, &[EventType::AttemptCompleted])).await.id
}

/// Publishes `attempt.completed` events with the given ids for `portal`.
pub async fn publish(stack: &Stack, portal: &str, ids: &[String]) {
    let kafka = producer(&stack.bootstrap);
    let body = EventType::AttemptCompleted.example_body();
    for id in ids {
        let record = envelope(EventType::AttemptCompleted, portal, Some(id), &body);
        produce(&kafka, &stack.topic("inbound"), portal, &record, None).await;
    }
}

pub fn event_ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:03}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])).collect()
}

/// The attempt log of one subscription, oldest first.
pub async fn attempts(stack: &Stack, subscription_id: &str) -> Vec<LoggedAttempt> {
    let db = stack.database().await;
    db.query(
        "SELECT event_id, attempt, outcome, error_class, status_code, latency_ms FROM delivery_attempts
         WHERE subscription_id = $1 ORDER BY id",
        &[&subscription_id],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| LoggedAttempt {
        event_id: r.get(0),
        attempt: r.get(1),
        outcome: r.get(2),
        error_class: r.get(3),
        status_code: r.get(4),
        latency_ms: r.get(5),
    })
    .collect()
}

/// Waits until the subscription's log satisfies `done`; panics with the log after `timeout`.
pub async fn wait_for_log(
    stack: &Stack,
    subscription_id: &str,
    timeout: Duration,
    done: impl Fn(&[LoggedAttempt]) -> bool,
) -> Vec<LoggedAttempt> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let log = attempts(stack, subscription_id).await;
        if done(&log) {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "attempt log not as expected within {timeout:?}: {log:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
