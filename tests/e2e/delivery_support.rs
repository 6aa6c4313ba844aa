//! Steps shared by the delivery tests: a portal with one subscription, events on the inbound
//! topic, and the attempt log read straight from the stack's database.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use synap_contract::EventType;
use synap_proto::control::v1::Plan;
use synap_tests::kafka::{produce, producer};
use synap_tests::{Receiver, Stack};

use crate::support::{NewSub, envelope, portal_id, subscribe, upsert_portal};

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

/// Every event reached the receiver at `path`; duplicates carry the same webhook-id and body.
pub fn assert_all_delivered(receiver: &Receiver, path: &str, ids: &[String]) -> usize {
    let mut bodies: HashMap<String, Vec<u8>> = HashMap::new();
    for request in receiver.at(path) {
        let id = request.header("webhook-id").expect("webhook-id").to_owned();
        assert!(ids.contains(&id), "{path}: unexpected webhook-id {id}");
        let body = request.body.to_vec();
        if let Some(first) = bodies.get(&id) {
            assert_eq!(first, &body, "{path}: a duplicate of {id} has the same body");
        }
        bodies.insert(id, body);
    }
    let missing: Vec<&String> = ids.iter().filter(|id| !bodies.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{path}: {} of {} events missing, e.g. {:?}",
        missing.len(),
        ids.len(),
        &missing[..missing.len().min(5)]
    );
    receiver.at(path).len() - ids.len()
}

pub async fn wait_until_all(receiver: &Receiver, path: &str, ids: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let seen: HashSet<String> =
            receiver.at(path).iter().filter_map(|r| r.header("webhook-id").map(str::to_owned)).collect();
        if ids.iter().all(|id| seen.contains(id)) || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
