//! The decoder's refusals, one by one, in both encodings.

use prost::Message as _;
use serde_json::{Value, json};
use synap_contract::EventType;
use synap_proto::envelope::v1::Envelope;

use crate::decode::{Inbound, Reason, Rejection, decode, derived_id};
use crate::occurred_at;

const MAX_BODY: usize = 64 * 1024;

fn inbound<'a>(payload: &'a [u8], content_type: Option<&'a [u8]>) -> Inbound<'a> {
    Inbound {
        topic: "synap.inbound",
        partition: 2,
        offset: 41,
        timestamp_ms: Some(1_795_773_600_000),
        content_type,
        payload: Some(payload),
    }
}

fn json_record(payload: &[u8]) -> Result<(EventType, synap_proto::pipeline::v1::Event), Rejection> {
    decode(&inbound(payload, None), MAX_BODY)
}

fn protobuf_record(envelope: &Envelope) -> Result<(EventType, synap_proto::pipeline::v1::Event), Rejection> {
    let bytes = envelope.encode_to_vec();
    decode(&inbound(&bytes, Some(b"application/protobuf")), MAX_BODY)
}

fn body() -> Value {
    EventType::ExamCompleted.example_body()
}

/// A good envelope with `field` set to `value` (or removed when `value` is `None`).
fn json_with(field: &str, value: Option<Value>) -> Vec<u8> {
    let mut envelope = json!({
        "id": "evt_1", "type": "exam.completed", "portalId": "acme",
        "occurredAt": "2026-11-27T10:00:00Z", "data": body(),
    });
    match value {
        Some(v) => envelope[field] = v,
        None => {
            envelope.as_object_mut().unwrap().remove(field);
        }
    }
    serde_json::to_vec(&envelope).unwrap()
}

fn protobuf_with(change: impl FnOnce(&mut Envelope)) -> Envelope {
    let mut envelope = Envelope {
        id: "evt_1".into(),
        r#type: "exam.completed".into(),
        portal_id: "acme".into(),
        occurred_at: Some(prost_types::Timestamp { seconds: 1_795_773_600, nanos: 0 }),
        data: serde_json::to_vec(&body()).unwrap(),
    };
    change(&mut envelope);
    envelope
}

#[track_caller]
fn refused(
    result: Result<(EventType, synap_proto::pipeline::v1::Event), Rejection>,
    reason: Reason,
) -> String {
    match result {
        Ok((_, event)) => panic!("accepted, expected {}: {event:?}", reason.code()),
        Err(rejection) => {
            assert_eq!(rejection.reason, reason, "{}", rejection.detail);
            let detail = rejection.detail;
            assert!(detail.bytes().all(|b| b.is_ascii_graphic() || b == b' '), "raw input in {detail:?}");
            assert!(detail.len() <= 300, "a short detail: {detail}");
            detail
        }
    }
}

/// Ids no later stage could carry (PostgreSQL text, Kafka and HTTP headers).
fn hostile_ids() -> Vec<String> {
    vec![
        "p_demo\0".into(),
        "evt_\0x".into(),
        "a\rb".into(),
        "a\nb".into(),
        "a b".into(),
        "a\tb".into(),
        "a\x7f".into(),
        "café".into(),
        "a\u{202e}b".into(),
        "x".repeat(129),
    ]
}

#[test]
fn good_envelopes_are_accepted_alike_in_both_encodings() {
    let (ty, from_json) = json_record(&json_with("id", None)).unwrap();
    assert_eq!(ty, EventType::ExamCompleted);
    assert_eq!(from_json.portal_id, "acme");
    assert_eq!(from_json.occurred_at_ms, 1_795_773_600_000);
    assert_eq!(serde_json::from_slice::<Value>(&from_json.data).unwrap(), body());
    assert_eq!(from_json.id, derived_id(&inbound(b"", None)));
    let (_, from_protobuf) = protobuf_record(&protobuf_with(|e| e.id.clear())).unwrap();
    assert_eq!(
        (from_protobuf.id, from_protobuf.portal_id, from_protobuf.occurred_at_ms, from_protobuf.data),
        (from_json.id, from_json.portal_id, from_json.occurred_at_ms, from_json.data)
    );
    // Every visible ASCII character is a legal id, up to 128 of them.
    let widest: String = ('!'..='~').collect();
    for id in [widest.as_str(), &"i".repeat(128), "x"] {
        assert_eq!(json_record(&json_with("id", Some(json!(id)))).unwrap().1.id, id);
        assert_eq!(protobuf_record(&protobuf_with(|e| e.portal_id = id.into())).unwrap().1.portal_id, id);
    }
}

#[test]
fn derived_ids_pass_the_id_rule() {
    assert!(synap_contract::ids::is_valid(&derived_id(&inbound(b"", None))));
    let long_topic = "t".repeat(249);
    let mut at = inbound(b"", None);
    at.topic = &long_topic;
    at.offset = i64::MAX;
    assert!(synap_contract::ids::is_valid(&derived_id(&at)));
}

#[test]
fn portal_ids_that_a_later_stage_cannot_carry_are_refused() {
    for bad in hostile_ids() {
        let detail = refused(json_record(&json_with("portalId", Some(json!(bad)))), Reason::InvalidPortalId);
        assert!(detail.starts_with("`portalId` "), "{detail}");
        refused(protobuf_record(&protobuf_with(|e| e.portal_id = bad.clone())), Reason::InvalidPortalId);
    }
    let detail =
        refused(json_record(&json_with("portalId", Some(json!("p_demo\0")))), Reason::InvalidPortalId);
    assert_eq!(
        detail,
        "`portalId` \"p_demo\\u{0}\" must be visible ASCII (letters, digits, punctuation): found the control character U+0000 at byte 6"
    );
    for not_text in [json!(42), json!(["acme"]), json!({"id": "acme"}), json!(true)] {
        refused(json_record(&json_with("portalId", Some(not_text))), Reason::InvalidPortalId);
    }
    for absent in [None, Some(Value::Null), Some(json!(""))] {
        refused(json_record(&json_with("portalId", absent)), Reason::MissingPortal);
    }
    refused(protobuf_record(&protobuf_with(|e| e.portal_id.clear())), Reason::MissingPortal);
}

#[test]
fn event_ids_that_a_later_stage_cannot_carry_are_refused() {
    for bad in hostile_ids() {
        let detail = refused(json_record(&json_with("id", Some(json!(bad)))), Reason::InvalidId);
        assert!(detail.starts_with("`id` "), "{detail}");
        refused(protobuf_record(&protobuf_with(|e| e.id = bad.clone())), Reason::InvalidId);
    }
    let detail = refused(json_record(&json_with("id", Some(json!("x".repeat(5000))))), Reason::InvalidId);
    assert!(detail.ends_with("must be at most 128 bytes, found 5000"), "{detail}");
    refused(json_record(&json_with("id", Some(json!(7)))), Reason::InvalidId);
}

#[test]
fn unknown_types_are_quoted_escaped_and_short() {
    let detail =
        refused(json_record(&json_with("type", Some(json!("exam.completed\0")))), Reason::UnknownType);
    assert_eq!(detail, "unknown event type \"exam.completed\\u{0}\"");
    let detail =
        refused(json_record(&json_with("type", Some(json!("\r\n".repeat(10_000))))), Reason::UnknownType);
    assert!(detail.ends_with("\"..."), "{detail}");
    let detail =
        refused(protobuf_record(&protobuf_with(|e| e.r#type = "Exam.Completed".into())), Reason::UnknownType);
    assert_eq!(detail, "unknown event type \"Exam.Completed\"");
    refused(json_record(&json_with("type", Some(json!(3)))), Reason::UnknownType);
    refused(json_record(&json_with("type", None)), Reason::MissingType);
    refused(protobuf_record(&protobuf_with(|e| e.r#type.clear())), Reason::MissingType);
}

#[test]
fn times_outside_years_1_to_9999_or_not_rfc3339_are_refused() {
    for bad in [
        json!("0000-01-01T00:00:00Z"),
        json!("9999-12-31T23:30:00-01:00"),
        json!("yesterday"),
        json!("2026-11-27 10:00"),
        json!("2026-11-27T10:00:00\u{0}Z"),
        json!(1_795_773_600),
        json!({"seconds": 1}),
    ] {
        refused(json_record(&json_with("occurredAt", Some(bad))), Reason::InvalidOccurredAt);
    }
    for (seconds, nanos) in
        [(i64::MAX, 0), (i64::MIN, 0), (253_402_300_800, 0), (-62_135_596_801, 0), (0, -1)]
    {
        let t = Some(prost_types::Timestamp { seconds, nanos });
        refused(protobuf_record(&protobuf_with(|e| e.occurred_at = t)), Reason::InvalidOccurredAt);
    }
    let first = json_record(&json_with("occurredAt", Some(json!("0001-01-01T00:00:00Z")))).unwrap().1;
    assert_eq!(first.occurred_at_ms, occurred_at::MIN_MS);
    // Absent or null: the record's timestamp.
    assert_eq!(json_record(&json_with("occurredAt", None)).unwrap().1.occurred_at_ms, 1_795_773_600_000);
    let unset = protobuf_record(&protobuf_with(|e| e.occurred_at = None)).unwrap().1;
    assert_eq!(unset.occurred_at_ms, 1_795_773_600_000);
}

#[test]
fn a_record_timestamp_no_stage_can_hold_gives_way_to_the_ingest_time() {
    let payload = json_with("occurredAt", None);
    for ts in [i64::MIN, i64::MAX, occurred_at::MAX_MS + 1] {
        let mut record = inbound(&payload, None);
        record.timestamp_ms = Some(ts);
        let event = decode(&record, MAX_BODY).unwrap().1;
        assert_eq!(event.occurred_at_ms, event.ingested_at_ms);
    }
}

#[test]
fn repeated_keys_anywhere_are_refused() {
    let data = r#"{"user": {"id": "u"}, "user": {"id": "v"}}"#;
    let envelopes = [
        // The envelope's own members, known or not.
        r#"{"type": "exam.completed", "portalId": "acme", "portalId": "other", "data": {}}"#.to_owned(),
        r#"{"type": "exam.completed", "type": "user.updated", "portalId": "acme", "data": {}}"#.to_owned(),
        r#"{"type": "exam.completed", "portalId": "acme", "data": {}, "data": {}}"#.to_owned(),
        r#"{"type": "exam.completed", "portalId": "acme", "x": 1, "x": 2, "data": {}}"#.to_owned(),
        // `data`, at its top and deep down, spelled alike or escaped.
        format!(r#"{{"type": "exam.completed", "portalId": "acme", "data": {data}}}"#),
        r#"{"type": "exam.completed", "portalId": "acme", "data": {"a": [{"b": 1, "b": 2}]}}"#.to_owned(),
        r#"{"type": "exam.completed", "portalId": "acme", "data": {"score": 1, "\u0073core": "high"}}"#
            .to_owned(),
    ];
    for envelope in &envelopes {
        let detail = refused(json_record(envelope.as_bytes()), Reason::DuplicateKey);
        assert!(detail.contains("appears twice"), "{detail}");
    }
    let detail = refused(protobuf_record(&protobuf_with(|e| e.data = data.into())), Reason::DuplicateKey);
    assert!(detail.starts_with("`data` is ambiguous: the key \"user\" appears twice"), "{detail}");
    // A valid body with one key repeated is still refused: the repeat, not the shape, is at fault.
    let mut good = serde_json::to_string(&body()).unwrap();
    good.insert_str(1, r#""portal": {"id": "evil"},"#);
    refused(protobuf_record(&protobuf_with(|e| e.data = good.into_bytes())), Reason::DuplicateKey);
}

#[test]
fn content_types_and_encodings() {
    let payload = json_with("id", None);
    for accepted in [&b"application/json"[..], b"Application/JSON; charset=utf-8", b""] {
        assert!(decode(&inbound(&payload, Some(accepted)), MAX_BODY).is_ok());
    }
    let not_utf8 = refused(
        decode(&inbound(&payload, Some(b"application/json\xff")), MAX_BODY),
        Reason::UnsupportedContentType,
    );
    assert!(not_utf8.contains("\\u{fffd}"), "{not_utf8}");
    let long = format!("text/{}", "\u{0}".repeat(10_000));
    refused(decode(&inbound(&payload, Some(long.as_bytes())), MAX_BODY), Reason::UnsupportedContentType);
    refused(decode(&inbound(&payload, Some(b"application/protobuf")), MAX_BODY), Reason::BadProtobuf);
    refused(json_record(b"[1, 2]"), Reason::InvalidEnvelope);
    refused(json_record(b"\"text\""), Reason::InvalidEnvelope);
    refused(json_record(b"{\"type\": oops"), Reason::NotJson);
    refused(json_record(b"\xef\xbb\xbf{}"), Reason::NotJson);
    let mut empty = inbound(b"", None);
    refused(decode(&empty, MAX_BODY), Reason::EmptyRecord);
    empty.payload = None;
    refused(decode(&empty, MAX_BODY), Reason::EmptyRecord);
}

#[test]
fn bodies() {
    refused(json_record(&json_with("data", None)), Reason::MissingData);
    refused(json_record(&json_with("data", Some(Value::Null))), Reason::MissingData);
    refused(json_record(&json_with("data", Some(json!([1])))), Reason::DataNotObject);
    refused(protobuf_record(&protobuf_with(|e| e.data.clear())), Reason::MissingData);
    refused(protobuf_record(&protobuf_with(|e| e.data = b"{\"a\": ".to_vec())), Reason::NotJson);
    refused(protobuf_record(&protobuf_with(|e| e.data = b"{\"a\": \"\xff\"}".to_vec())), Reason::NotJson);
    refused(protobuf_record(&protobuf_with(|e| e.data = b"\"text\"".to_vec())), Reason::DataNotObject);
    let mut wrong = body();
    wrong["attempt"]["score"] = json!("high");
    let detail = refused(json_record(&json_with("data", Some(wrong))), Reason::InvalidBody);
    assert!(detail.contains("attempt.score"), "{detail}");
    let mut large = body();
    large["padding"] = json!("x".repeat(MAX_BODY));
    refused(json_record(&json_with("data", Some(large))), Reason::BodyTooLarge);
    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    refused(protobuf_record(&protobuf_with(|e| e.data = deep.into_bytes())), Reason::NotJson);
}
