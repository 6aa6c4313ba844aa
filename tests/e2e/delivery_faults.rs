//! One tenant's faults stay its own: another portal subscribed to your endpoint cannot open your
//! circuit, and a subscription whose secret cannot be opened fails for good at once while the
//! others keep receiving.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use synap_contract::EventType;
use synap_proto::control::v1::Plan;
use synap_tests::kafka::read;
use synap_tests::{Receiver, Service, Stack};

use crate::delivery_support::{add_subscription, attempts, event_ids, publish, wait_for_log};
use crate::support::{NewSub, portal_id, subscribe, upsert_portal};

const WAIT: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_refused_by_another_portals_endpoint_does_not_change_what_that_portal_receives() {
    // A long cool-down: a delivery of B's held back by an open circuit would arrive 20 s late.
    let stack = Stack::start_with(&[
        ("SYNAP_SENDER__RETRY_DELAYS_MS", "[500, 500, 500, 500, 500, 500]"),
        ("SYNAP_SENDER__BREAKER_FAILURES", "3"),
        ("SYNAP_SENDER__BREAKER_COOLDOWN_MS", "20000"),
    ])
    .await;
    let receiver = Receiver::start().await;
    let auth = format!("Basic {}", STANDARD.encode("owner:s3cret"));
    // B's endpoint checks B's credentials: anyone else gets 401, as they should.
    receiver.require_header("/b", "authorization", &auth);
    let mut control = stack.control().await;
    let (a, b) = (portal_id(), portal_id());
    for portal in [&a, &b] {
        upsert_portal(&mut control, portal, Plan::Pro, &[]).await;
    }
    let owner = subscribe(
        &mut control,
        NewSub {
            basic_auth: Some(("owner", "s3cret")),
            ..NewSub::new(&b, receiver.url("/b"), &[EventType::AttemptCompleted])
        },
    )
    .await
    .id;
    let stranger = add_subscription(&stack, &a, receiver.url("/b")).await;

    // A's deliveries are refused, as many times as open a circuit.
    publish(&stack, &a, &event_ids("stranger", 4)).await;
    wait_for_log(&stack, &stranger, WAIT, |log| {
        log.iter().filter(|r| r.status_code == Some(401)).count() >= 3
    })
    .await;

    let n = 10;
    let ids = event_ids("owner", n);
    let started = Instant::now();
    publish(&stack, &b, &ids).await;
    let from_b = |r: &synap_tests::receiver::Received| r.header("synap-portal-id") == Some(b.as_str());
    let deadline = Instant::now() + Duration::from_secs(15);
    let got = loop {
        let got: Vec<_> = receiver.at("/b").into_iter().filter(from_b).collect();
        if got.len() >= n || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut seen: Vec<&str> = got.iter().map(|r| r.header("webhook-id").unwrap()).collect();
    seen.sort();
    assert_eq!(seen, ids.iter().map(String::as_str).collect::<Vec<_>>(), "B received every event once");
    assert!(
        got.iter().all(|r| r.header("synap-delivery-attempt") == Some("1")),
        "every one at the first attempt"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "none waited for a circuit: {:?}",
        started.elapsed()
    );
    let log = wait_for_log(&stack, &owner, WAIT, |log| log.len() >= n).await;
    assert!(log.iter().all(|r| r.attempt == 1 && r.outcome == "delivered"), "B's log: {log:#?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(attempts(&stack, &owner).await.len(), n, "no other row for B");
    let db = stack.database().await;
    let row = db
        .query_one("SELECT failing_since IS NULL, enabled FROM subscriptions WHERE id = $1", &[&owner])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0) && row.get::<_, bool>(1), "B's subscription is not failing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_that_cannot_be_opened_fails_its_delivery_for_good_and_others_keep_receiving() {
    let stack = Stack::start_with(&[("SYNAP_SENDER__RETRY_DELAYS_MS", "[300, 300, 300]")]).await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, Plan::Pro, &[]).await;
    let damaged = subscribe(
        &mut control,
        NewSub::new(&portal, receiver.url("/damaged"), &[EventType::AttemptCompleted]),
    )
    .await
    .id;
    let healthy = add_subscription(&stack, &portal, receiver.url("/healthy")).await;
    // A bit flipped in the sealed signing secret: AES-GCM refuses to open it.
    let db = stack.database().await;
    let changed = db
        .execute(
            "UPDATE subscription_secrets SET secret = set_byte(secret, length(secret) - 1,
                 get_byte(secret, length(secret) - 1) # 1)
             WHERE subscription_id = $1",
            &[&damaged],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);

    let ids = event_ids("sealed", 3);
    publish(&stack, &portal, &ids).await;
    let got = receiver.wait_for("/healthy", ids.len(), WAIT).await;
    assert_eq!(got.len(), ids.len(), "the other subscription received every event");
    wait_for_log(&stack, &healthy, WAIT, |log| {
        log.len() == ids.len() && log.iter().all(|r| r.outcome == "delivered")
    })
    .await;

    let log = wait_for_log(&stack, &damaged, WAIT, |log| log.len() >= ids.len()).await;
    for row in &log {
        assert_eq!(
            (row.attempt, row.outcome.as_str(), row.error_class.as_deref(), row.status_code),
            (1, "failed", Some("secret_unreadable"), None),
            "{log:#?}"
        );
    }
    let dead = read(&stack.bootstrap, &stack.topic("deliveries.dlq"), ids.len(), WAIT).await;
    assert_eq!(dead.len(), ids.len(), "one dead letter per delivery");
    for letter in &dead {
        assert_eq!(letter.header("synap-dlq-reason"), Some("secret_unreadable"));
        assert_eq!(letter.key.as_deref(), Some(damaged.as_str()));
        assert!(ids.iter().any(|id| letter.header("synap-event-id") == Some(id.as_str())));
        let detail = letter.header("synap-dlq-detail").unwrap();
        assert!(!detail.contains("whsec_"), "no secret in the detail: {detail}");
    }
    let events = read(&stack.bootstrap, &stack.topic("operator.events"), ids.len(), WAIT).await;
    let events: Vec<Value> = events.iter().map(|e| serde_json::from_slice(&e.payload).unwrap()).collect();
    assert!(
        events.iter().all(|e| e["type"] == "delivery.failed"
            && e["reason"] == "secret_unreadable"
            && e["subscriptionId"] == damaged.as_str()),
        "{events:#?}"
    );
    assert!(receiver.at("/damaged").is_empty(), "nothing was sent unsigned");
    // Not the endpoint's fault: the subscription is neither failing nor disabled.
    let row = db
        .query_one("SELECT failing_since IS NULL, enabled FROM subscriptions WHERE id = $1", &[&damaged])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0) && row.get::<_, bool>(1));
    let dead_letters = r#"synap_dead_letters_total{stage="sender",reason="secret_unreadable"}"#;
    stack.wait_for_metric(Service::Sender, dead_letters, WAIT, |v| v == Some(3.0)).await;
}
