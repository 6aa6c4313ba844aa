//! Records that break the contract are dead-lettered with the reason; the records around them
//! keep flowing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use synap_contract::EventType;
use synap_proto::control::v1::Plan;
use synap_tests::kafka::{produce, producer, read};
use synap_tests::{Receiver, Stack};

use crate::support::{NewSub, envelope, portal_id, subscribe, upsert_portal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_dead_lettered_with_their_reason_while_good_ones_flow() {
    let stack = Stack::start_with(&[("SYNAP_INGEST__MAX_BODY_BYTES", "16384")]).await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, Plan::Pro, &[]).await;
    subscribe(&mut control, NewSub::new(&portal, receiver.url("/hook"), &[EventType::AttemptCompleted]))
        .await;

    let good = |n: u32| {
        envelope(
            EventType::AttemptCompleted,
            &portal,
            Some(&format!("good-{n}")),
            &EventType::AttemptCompleted.example_body(),
        )
    };
    let mut wrong_type = EventType::AttemptCompleted.example_body();
    wrong_type["attempt"]["score"] = json!("high");
    let mut too_large = EventType::AttemptCompleted.example_body();
    too_large["padding"] = json!("x".repeat(20_000));

    // (expected reason, payload, content-type), interleaved with good records.
    let bad: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("not_json", b"{\"type\": \"attempt.completed\", oops".to_vec(), None),
        (
            "unknown_type",
            envelope_raw(json!({"type": "attempt.deleted", "portalId": portal, "data": {}})),
            None,
        ),
        (
            "missing_portal",
            envelope_raw(json!({"type": "user.updated", "data": EventType::UserUpdated.example_body()})),
            None,
        ),
        (
            "data_not_object",
            envelope_raw(json!({"type": "user.updated", "portalId": portal, "data": [1, 2]})),
            None,
        ),
        ("invalid_body", envelope(EventType::AttemptCompleted, &portal, Some("bad-type"), &wrong_type), None),
        (
            "body_too_large",
            envelope(EventType::AttemptCompleted, &portal, Some("bad-size"), &too_large),
            None,
        ),
        ("bad_protobuf", vec![0xff, 0xff, 0xff, 0xff, 0x01], Some("application/protobuf")),
        // What passed ingest before and then stopped a router or sender partition for ever: a
        // NUL PostgreSQL refuses, in the portal id and in the event id.
        (
            "invalid_portal_id",
            envelope_raw(json!({"type": "attempt.completed", "portalId": format!("{portal}\u{0}"),
                "data": EventType::AttemptCompleted.example_body()})),
            None,
        ),
        (
            "invalid_id",
            envelope(EventType::AttemptCompleted, &portal, Some("evt_\u{0}x"), &EventType::AttemptCompleted.example_body()),
            None,
        ),
        (
            "duplicate_key",
            format!(
                r#"{{"type": "attempt.completed", "portalId": "{portal}", "data": {{"user": {{}}, "user": {}}}}}"#,
                EventType::AttemptCompleted.example_body()["user"]
            )
            .into_bytes(),
            None,
        ),
        (
            "invalid_occurred_at",
            envelope_raw(json!({"type": "attempt.completed", "portalId": portal, "occurredAt": "10000-01-01T00:00:00Z",
                "data": EventType::AttemptCompleted.example_body()})),
            None,
        ),
    ];

    let kafka = producer(&stack.bootstrap);
    let inbound = stack.topic("inbound");
    let mut n = 0;
    for (_, payload, content_type) in &bad {
        produce(&kafka, &inbound, &portal, &good(n), None).await;
        produce(&kafka, &inbound, &portal, payload, *content_type).await;
        n += 1;
    }
    produce(&kafka, &inbound, &portal, &good(n), None).await;

    let delivered = receiver.wait_for("/hook", bad.len() + 1, Duration::from_secs(60)).await;
    assert_eq!(delivered.len(), bad.len() + 1, "every good record delivered once");

    let dead = read(&stack.bootstrap, &stack.topic("inbound.dlq"), bad.len(), Duration::from_secs(30)).await;
    let by_reason: BTreeMap<&str, _> =
        dead.iter().map(|r| (r.header("synap-dlq-reason").unwrap(), r)).collect();
    for (reason, payload, _) in &bad {
        let record =
            by_reason.get(reason).unwrap_or_else(|| panic!("no dead letter with reason {reason}: {dead:#?}"));
        assert_eq!(&record.payload, payload, "{reason}: the original record is kept for re-driving");
        assert_eq!(record.key.as_deref(), Some(portal.as_str()));
        assert!(!record.header("synap-dlq-detail").unwrap().is_empty(), "{reason}: a readable detail");
        assert!(record.header("synap-dlq-source").unwrap().starts_with(&inbound));
    }
    assert_eq!(dead.len(), bad.len(), "nothing else dead-lettered");
    assert!(
        by_reason["invalid_body"].header("synap-dlq-detail").unwrap().contains("attempt.score"),
        "the detail names the field at fault"
    );
}

fn envelope_raw(value: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap()
}
