//! Nothing wedges: a corpus of records that a careless or hostile producer sends (control
//! characters in every string field, oversize fields and records, values the database refuses,
//! broken protobuf, wrong content types, duplicate keys, extreme numbers), interleaved with good
//! events of several portals, plus garbage written straight to every stage's input topic. Every
//! good event reaches every matching endpoint with a verifiable signature and an attempt-log row;
//! every bad record is in its stage's dead-letter topic with the expected reason; every stage's
//! consumer lag returns to zero.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use prost::Message as _;
use serde_json::{Value, json};
use synap_contract::EventType;
use synap_proto::control::v1 as api;
use synap_proto::envelope::v1::Envelope;
use synap_tests::kafka::{lag, produce, producer, read};
use synap_tests::{Receiver, Service, Stack};

use crate::support::{portal_id, upsert_portal, verify};

const MAX_BODY: usize = 16_384;

/// A good record: its event id, portal index, type, payload and content type.
type Good = (String, usize, EventType, Vec<u8>, Option<&'static str>);

struct Endpoint {
    path: &'static str,
    portal: usize,
    types: &'static [EventType],
    secret: String,
    subscription_id: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_are_set_aside_and_every_good_event_arrives() {
    // A tier of an hour too: tiers of a minute or more read each partition from a queue of their
    // own, and garbage reaches them as it reaches the others.
    let stack = Stack::start_with(&[
        ("SYNAP_INGEST__MAX_BODY_BYTES", &MAX_BODY.to_string()),
        ("SYNAP_SENDER__RETRY_DELAYS_MS", "[0, 200, 3600000]"),
    ])
    .await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;

    // Three portals; two endpoints share a type on the second portal.
    let portals = [portal_id(), portal_id(), portal_id()];
    upsert_portal(&mut control, &portals[0], api::Plan::Pro, &["store"]).await;
    upsert_portal(&mut control, &portals[1], api::Plan::Pro, &[]).await;
    upsert_portal(&mut control, &portals[2], api::Plan::Enterprise, &[]).await;
    let mut endpoints = vec![
        endpoint("/a", 0, &[EventType::AttemptCompleted, EventType::StorePurchase, EventType::UserUpdated]),
        endpoint("/b", 1, &[EventType::UserUpdated, EventType::ExamCompleted]),
        endpoint("/c", 1, &[EventType::UserUpdated]),
        endpoint("/d", 2, &[EventType::InviteSent, EventType::FlagPlanted]),
    ];
    for e in &mut endpoints {
        let created = control
            .create_subscription(api::CreateSubscriptionRequest {
                portal_id: portals[e.portal].clone(),
                url: receiver.url(e.path),
                event_types: e.types.iter().map(|t| t.code().to_owned()).collect(),
                ..Default::default()
            })
            .await
            .expect("create subscription")
            .into_inner();
        e.secret = created.signing_secret;
        e.subscription_id = created.subscription.unwrap().id;
    }

    // Good events: each portal's types, as JSON and as protobuf, some with extreme but valid
    // values that must arrive byte for byte.
    let mut good: Vec<Good> = Vec::new();
    for (p, ty) in [
        (0, EventType::AttemptCompleted),
        (0, EventType::StorePurchase),
        (0, EventType::UserUpdated),
        (1, EventType::UserUpdated),
        (1, EventType::ExamCompleted),
        (2, EventType::InviteSent),
        (2, EventType::FlagPlanted),
    ] {
        for (n, protobuf) in [(0, false), (1, true)] {
            let id = format!("evt_good_{p}_{}_{n}", ty.code());
            let mut body = ty.example_body();
            body["extreme"] = json!({
                "max": f64::MAX, "min": f64::MIN_POSITIVE, "big": u64::MAX, "neg": i64::MIN,
                "text": "üñí\u{0}code \u{1F600} \"quoted\" \\ ", "empty": {}, "deep": [[[[[]]]]]
            });
            let data = serde_json::to_vec(&body).unwrap();
            let (payload, ct) = if protobuf {
                (protobuf_envelope(&id, ty.code(), &portals[p], data), Some("application/protobuf"))
            } else {
                (
                    json_envelope(json!({"id": id, "type": ty.code(), "portalId": portals[p], "data": body})),
                    None,
                )
            };
            good.push((id, p, ty, payload, ct));
        }
    }

    // The hostile corpus: (expected reason, payload, content type).
    let p0 = portals[0].as_str();
    let body = EventType::UserUpdated.example_body();
    let ty = "user.updated";
    let env = |v: Value| json_envelope(v);
    let with_body = |mutate: &dyn Fn(&mut Value)| {
        let mut b = body.clone();
        mutate(&mut b);
        env(json!({"type": ty, "portalId": p0, "data": b}))
    };
    let long = "x".repeat(129);
    let bad: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("empty_record", Vec::new(), None),
        ("not_json", b"{\"type\": \"user.updated\", oops".to_vec(), None),
        ("not_json", vec![0xff, 0xfe, 0x00, 0x01, 0x80], None),
        ("not_json", br#"{"type":"user.updated","portalId":"p","data":{"a":"\ud800"}}"#.to_vec(), None),
        (
            "not_json",
            format!(r#"{{"type":"{ty}","portalId":"{p0}","data":{{"n":1e400}}}}"#).into_bytes(),
            None,
        ),
        (
            "not_json",
            format!(r#"{{"type":"{ty}","portalId":"{p0}","data":{}1{}}}"#, "[".repeat(300), "]".repeat(300))
                .into_bytes(),
            None,
        ),
        (
            "unsupported_content_type",
            env(json!({"type": ty, "portalId": p0, "data": body})),
            Some("text/plain"),
        ),
        (
            "unsupported_content_type",
            env(json!({"type": ty, "portalId": p0, "data": body})),
            Some("application/json\r\nx-evil: 1"),
        ),
        ("bad_protobuf", vec![0xff, 0xff, 0xff, 0xff, 0x01], Some("application/protobuf")),
        ("bad_protobuf", vec![0x0a, 0x02, 0xc3, 0x28], Some("application/protobuf")),
        ("missing_type", env(json!({"portalId": p0, "data": body})), None),
        ("unknown_type", env(json!({"type": 5, "portalId": p0, "data": body})), None),
        ("invalid_envelope", b"[1, 2, 3]".to_vec(), None),
        ("unknown_type", env(json!({"type": "attempt.deleted", "portalId": p0, "data": body})), None),
        ("unknown_type", env(json!({"type": "user.updated\u{0}", "portalId": p0, "data": body})), None),
        (
            "unknown_type",
            env(json!({"type": "user.updated\r\nx-evil: 1", "portalId": p0, "data": body})),
            None,
        ),
        ("unknown_type", env(json!({"type": "x".repeat(10_000), "portalId": p0, "data": body})), None),
        ("missing_portal", env(json!({"type": ty, "data": body})), None),
        ("invalid_portal_id", env(json!({"type": ty, "portalId": "p_demo\u{0}", "data": body})), None),
        ("invalid_portal_id", env(json!({"type": ty, "portalId": "p\r\nx-evil: 1", "data": body})), None),
        ("invalid_portal_id", env(json!({"type": ty, "portalId": long, "data": body})), None),
        ("invalid_portal_id", env(json!({"type": ty, "portalId": "pörtal", "data": body})), None),
        ("invalid_portal_id", env(json!({"type": ty, "portalId": "p 1", "data": body})), None),
        (
            "invalid_portal_id",
            protobuf_envelope("evt_pb", ty, "p\u{0}", serde_json::to_vec(&body).unwrap()),
            Some("application/protobuf"),
        ),
        ("invalid_id", env(json!({"id": "evt_\u{0}x", "type": ty, "portalId": p0, "data": body})), None),
        ("invalid_id", env(json!({"id": "evt\nx", "type": ty, "portalId": p0, "data": body})), None),
        ("invalid_id", env(json!({"id": "evt\u{7f}", "type": ty, "portalId": p0, "data": body})), None),
        ("invalid_id", env(json!({"id": long, "type": ty, "portalId": p0, "data": body})), None),
        (
            "invalid_id",
            protobuf_envelope("evt\r\n", ty, p0, serde_json::to_vec(&body).unwrap()),
            Some("application/protobuf"),
        ),
        (
            "invalid_occurred_at",
            env(json!({"type": ty, "portalId": p0, "occurredAt": "yesterday", "data": body})),
            None,
        ),
        (
            "invalid_occurred_at",
            env(json!({"type": ty, "portalId": p0, "occurredAt": "+10000-01-01T00:00:00Z", "data": body})),
            None,
        ),
        ("missing_data", env(json!({"type": ty, "portalId": p0})), None),
        ("data_not_object", env(json!({"type": ty, "portalId": p0, "data": [1, 2]})), None),
        ("data_not_object", env(json!({"type": ty, "portalId": p0, "data": "text"})), None),
        (
            "not_json",
            protobuf_envelope("evt_pb2", ty, p0, b"not json".to_vec()),
            Some("application/protobuf"),
        ),
        ("invalid_body", with_body(&|b| b["email"] = json!(42)), None),
        (
            "invalid_body",
            with_body(&|b| {
                b.as_object_mut().unwrap().remove("objectId");
            }),
            None,
        ),
        ("body_too_large", with_body(&|b| b["padding"] = json!("x".repeat(MAX_BODY))), None),
        (
            "duplicate_key",
            format!(r#"{{"type":"{ty}","type":"invite.sent","portalId":"{p0}","data":{}}}"#, body)
                .into_bytes(),
            None,
        ),
        (
            "duplicate_key",
            {
                let text = body.to_string();
                format!(
                    r#"{{"type":"{ty}","portalId":"{p0}","data":{{"email":"x@evil.example",{}}}"#,
                    &text[1..]
                )
                .into_bytes()
            },
            None,
        ),
    ];
    assert!(bad.len() >= 30, "at least 30 kinds of bad record");

    // Interleaved on the inbound topic: good, bad, good, bad, …
    let kafka = producer(&stack.bootstrap);
    let inbound = stack.topic("inbound");
    let mut goods = good.iter();
    for (_, payload, ct) in &bad {
        if let Some((_, p, _, payload, ct)) = goods.next() {
            produce(&kafka, &inbound, &portals[*p], payload, *ct).await;
        }
        produce(&kafka, &inbound, p0, payload, *ct).await;
    }
    for (_, p, _, payload, ct) in goods {
        produce(&kafka, &inbound, &portals[*p], payload, *ct).await;
    }
    // Garbage written past ingest, straight to each later stage's inputs.
    let garbage = b"\x08\x96\x01garbage that is no protobuf message \xff".to_vec();
    let stage_inputs = [
        (stack.topic("events.user.updated"), "events.dlq", "undecodable_event"),
        (stack.topic("deliveries"), "deliveries.dlq", "undecodable_delivery"),
        (stack.topic("retry.200ms"), "deliveries.dlq", "undecodable_delivery"),
        (stack.topic("retry.1h"), "deliveries.dlq", "undecodable_delivery"),
        (stack.topic("attempts"), "deliveries.dlq", "undecodable_attempt_log"),
    ];
    for (topic, _, _) in &stage_inputs {
        produce(&kafka, topic, "k", &garbage, None).await;
    }

    // Every good event reaches every matching endpoint, once, signed over the exact body.
    let mut expected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (id, p, ty, _, _) in &good {
        for e in endpoints.iter().filter(|e| e.portal == *p && e.types.contains(ty)) {
            expected.entry(e.path).or_default().insert(id.clone());
        }
    }
    for e in &endpoints {
        let want = &expected[e.path];
        let got = receiver.wait_for(e.path, want.len(), Duration::from_secs(90)).await;
        let ids: BTreeSet<String> = got.iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
        assert_eq!(&ids, want, "{} receives exactly its portal's good events", e.path);
        for r in &got {
            let (id, ts) = (r.header("webhook-id").unwrap(), r.header("webhook-timestamp").unwrap());
            let signature = r.header("webhook-signature").expect("signed");
            assert!(verify(&e.secret, id, ts, &r.body, signature), "{} {id}: the signature verifies", e.path);
            let (_, _, _, payload, _) = good.iter().find(|g| g.0 == id).unwrap();
            assert_eq!(r.json()["extreme"], data_of(payload)["extreme"], "{id}: extreme values unchanged");
        }
    }

    // Every bad record is in the inbound dead-letter topic, with its reason and untouched.
    let dead = read(&stack.bootstrap, &stack.topic("inbound.dlq"), bad.len(), Duration::from_secs(60)).await;
    assert_eq!(dead.len(), bad.len(), "every bad record is dead-lettered once");
    let mut unmatched: Vec<_> = dead.iter().collect();
    for (reason, payload, _) in &bad {
        let at = unmatched.iter().position(|r| &r.payload == payload).unwrap_or_else(|| {
            panic!(
                "no dead letter for a {reason} record {:?}",
                String::from_utf8_lossy(&payload[..payload.len().min(120)])
            )
        });
        let letter = unmatched.remove(at);
        assert_eq!(
            letter.header("synap-dlq-reason"),
            Some(*reason),
            "{:?}",
            letter.header("synap-dlq-detail")
        );
        let detail = letter.header("synap-dlq-detail").unwrap();
        assert!(!detail.is_empty() && detail.len() <= 1000, "{reason}: a short readable detail: {detail:?}");
        assert!(
            !detail.contains(['\0', '\r', '\n']),
            "{reason}: no raw control characters in the detail: {detail:?}"
        );
        assert!(letter.header("synap-dlq-source").unwrap().starts_with(&inbound));
        assert_eq!(letter.header("synap-dlq-stage"), Some("ingest"));
    }
    // And each later stage set its garbage aside in its own dead-letter topic.
    for (topic, dlq, reason) in &stage_inputs {
        let letters = read(&stack.bootstrap, &stack.topic(dlq), 10, Duration::from_secs(10)).await;
        assert!(
            letters.iter().any(|l| l.header("synap-dlq-reason") == Some(*reason)
                && l.header("synap-dlq-source").is_some_and(|s| s.starts_with(topic.as_str()))),
            "{topic}: set aside in {dlq} as {reason}: {letters:#?}"
        );
    }

    // The attempt log holds a delivered row for every good delivery.
    let db = stack.database().await;
    let want: usize = expected.values().map(BTreeSet::len).sum();
    let mut logged = 0;
    for _ in 0..100 {
        logged = db
            .query_one("SELECT count(*) FROM delivery_attempts WHERE outcome = 'delivered' AND event_id LIKE 'evt_good_%'", &[])
            .await
            .unwrap()
            .get::<_, i64>(0) as usize;
        if logged >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(logged, want, "an attempt-log row for every good delivery");

    // Every stage's consumer lag returns to zero: nothing is stuck behind a bad record.
    let events: Vec<String> =
        EventType::ALL.iter().map(|t| stack.topic(&format!("events.{}", t.code()))).collect();
    let groups = [
        (stack.group(Service::Ingest), vec![inbound.clone()]),
        (stack.group(Service::Router), events),
        (stack.group(Service::Sender), vec![stack.topic("deliveries")]),
        (format!("{}.attempt-log", stack.id), vec![stack.topic("attempts")]),
        (format!("{}.sender-retry.200ms", stack.id), vec![stack.topic("retry.200ms")]),
        (format!("{}.sender-retry.1h", stack.id), vec![stack.topic("retry.1h")]),
    ];
    for (group, topics) in &groups {
        let mut remaining = -1;
        for _ in 0..60 {
            remaining = lag(&stack.bootstrap, group, topics);
            if remaining == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(remaining, 0, "group {group} has committed everything on {topics:?}");
    }
}

fn endpoint(path: &'static str, portal: usize, types: &'static [EventType]) -> Endpoint {
    Endpoint { path, portal, types, secret: String::new(), subscription_id: String::new() }
}

fn json_envelope(value: Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap()
}

fn protobuf_envelope(id: &str, ty: &str, portal: &str, data: Vec<u8>) -> Vec<u8> {
    Envelope { id: id.into(), r#type: ty.into(), portal_id: portal.into(), occurred_at: None, data }
        .encode_to_vec()
}

/// The `data` of a good record, whichever its encoding.
fn data_of(payload: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(payload) {
        Ok(envelope) => envelope["data"].clone(),
        Err(_) => serde_json::from_slice(&Envelope::decode(payload).unwrap().data).unwrap(),
    }
}
