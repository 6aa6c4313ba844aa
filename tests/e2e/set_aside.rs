//! Data a stage cannot carry is set aside with its reason, and every partition keeps flowing:
//! a record PostgreSQL refuses stops neither the router's partition nor the attempt log, and an
//! operator re-drives the dead letters once the cause is fixed.

use std::time::Duration;

use prost::Message as _;
use synap_contract::EventType;
use synap_proto::control::v1::Plan;
use synap_proto::pipeline::v1::Event;
use synap_tests::kafka::{produce, producer, read};
use synap_tests::{Receiver, Stack};

use crate::support::{NewSub, envelope, portal_id, subscribe, upsert_portal};

/// An event whose portal id PostgreSQL cannot hold (NUL in text, SQLSTATE 22021), written past
/// ingest straight to its event topic, used to stop that partition: the router retried the lookup
/// for ever, and every later event on it was never delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_database_refuses_is_set_aside_and_its_partition_flows() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, Plan::Pro, &[]).await;
    subscribe(&mut control, NewSub::new(&portal, receiver.url("/hook"), &[EventType::UserUpdated])).await;

    let kafka = producer(&stack.bootstrap);
    let topic = stack.topic("events.user.updated");
    let event = |id: &str, portal: &str| Event {
        id: id.into(),
        r#type: EventType::UserUpdated.code().into(),
        portal_id: portal.into(),
        occurred_at_ms: 1,
        ingested_at_ms: chrono_now_ms(),
        data: serde_json::to_vec(&EventType::UserUpdated.example_body()).unwrap().into(),
    };
    // The test stacks have one partition per event topic: all three share it.
    produce(&kafka, &topic, &portal, &event("evt_before", &portal).encode_to_vec(), None).await;
    let poisoned = event("evt_poisoned", "p_demo\u{0}");
    produce(&kafka, &topic, "p_demo", &poisoned.encode_to_vec(), None).await;
    produce(&kafka, &topic, &portal, &event("evt_after", &portal).encode_to_vec(), None).await;

    let delivered = receiver.wait_for("/hook", 2, Duration::from_secs(60)).await;
    let mut ids: Vec<_> = delivered.iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
    ids.sort();
    assert_eq!(ids, ["evt_after", "evt_before"], "the event after the refused one is delivered too");

    let dead = read(&stack.bootstrap, &stack.topic("events.dlq"), 1, Duration::from_secs(30)).await;
    assert_eq!(dead.len(), 1, "the refused event is in the router's dead-letter topic");
    assert_eq!(dead[0].header("synap-dlq-reason"), Some("portal_unreadable"));
    assert_eq!(dead[0].header("synap-dlq-stage"), Some("router"));
    assert!(dead[0].header("synap-dlq-detail").unwrap().contains("22021"), "{:?}", dead[0].headers);
    assert_eq!(dead[0].header("synap-dlq-source"), Some(format!("{topic}/0/1").as_str()));
    assert_eq!(dead[0].payload, poisoned.encode_to_vec(), "kept as it was read, for re-driving");
}

/// A row PostgreSQL refuses (here a constraint the operator added) is set aside with its reason;
/// the batch it was in is stored all the same and the log keeps being written. Once the cause is
/// fixed, `synap-admin redrive` brings the row back through the attempts topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_row_the_database_refuses_is_set_aside_and_the_log_goes_on() {
    // Big batches, so the refused row shares its batch with others.
    let stack = Stack::start_with(&[("SYNAP_SENDER__LOG_BATCH_WAIT_MS", "300")]).await;
    let db = stack.database().await;
    db.batch_execute(
        "ALTER TABLE delivery_attempts ADD CONSTRAINT no_refused_events CHECK (event_id <> 'evt_refused')",
    )
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, Plan::Pro, &[]).await;
    subscribe(&mut control, NewSub::new(&portal, receiver.url("/hook"), &[EventType::UserUpdated])).await;

    let kafka = producer(&stack.bootstrap);
    let inbound = stack.topic("inbound");
    let body = EventType::UserUpdated.example_body();
    let ids: Vec<String> = (0..5)
        .map(|n| format!("evt_{n}"))
        .chain(["evt_refused".into()])
        .chain((5..10).map(|n| format!("evt_{n}")))
        .collect();
    for id in &ids {
        produce(&kafka, &inbound, &portal, &envelope(EventType::UserUpdated, &portal, Some(id), &body), None)
            .await;
    }
    let delivered = receiver.wait_for("/hook", ids.len(), Duration::from_secs(60)).await;
    assert_eq!(delivered.len(), ids.len(), "every event is delivered: the log row is not the delivery");

    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = logged(&db, &portal).await;
        if stored.len() >= ids.len() - 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut expected: Vec<String> = ids.iter().filter(|id| *id != "evt_refused").cloned().collect();
    expected.sort();
    assert_eq!(stored, expected, "every other row is stored");

    let dead = read(&stack.bootstrap, &stack.topic("deliveries.dlq"), 1, Duration::from_secs(30)).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].header("synap-dlq-reason"), Some("attempt_log_refused"));
    assert!(
        dead[0].header("synap-dlq-detail").unwrap().contains("no_refused_events"),
        "{:?}",
        dead[0].headers
    );
    // Named by the attempts topic, so that a re-drive sends the row back there.
    assert!(
        dead[0].header("synap-dlq-source").unwrap().starts_with(&stack.topic("attempts")),
        "{:?}",
        dead[0].headers
    );

    // Later rows are stored as ever: the log did not stop at the refused one.
    produce(
        &kafka,
        &inbound,
        &portal,
        &envelope(EventType::UserUpdated, &portal, Some("evt_later"), &body),
        None,
    )
    .await;
    receiver.wait_for("/hook", ids.len() + 1, Duration::from_secs(60)).await;

    // The operator fixes the cause and re-drives: the row is stored.
    db.batch_execute("ALTER TABLE delivery_attempts DROP CONSTRAINT no_refused_events").await.unwrap();
    let dry = stack
        .admin(&["redrive", "--dlq", "deliveries", "--reason", "attempt_log_refused", "--dry-run"])
        .await;
    assert!(dry.contains("would send 1 (attempt_log_refused)"), "{dry}");
    let out = stack.admin(&["redrive", "--dlq", "deliveries", "--reason", "attempt_log_refused"]).await;
    assert!(out.contains("sent 1 (attempt_log_refused)"), "{out}");
    let mut refused_stored = false;
    for _ in 0..150 {
        refused_stored = logged(&db, &portal).await.iter().any(|id| id == "evt_refused");
        if refused_stored {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused_stored, "the re-driven row is stored");
}

/// The event ids in the attempt log of `portal`, in order.
async fn logged(db: &tokio_postgres::Client, portal: &str) -> Vec<String> {
    db.query("SELECT event_id FROM delivery_attempts WHERE portal_id = $1 ORDER BY event_id", &[&portal])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
