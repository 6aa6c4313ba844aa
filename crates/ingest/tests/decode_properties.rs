//! Properties of ingest's decoder under whatever a careless or hostile producer sends: arbitrary
//! bytes, arbitrary JSON, and envelopes whose every string may hold any unicode or control
//! character, in both encodings. The decoder never panics; it accepts, or refuses with one of
//! its reasons and a short printable detail; and what it accepts, every later stage can carry.

use chrono::DateTime;
use proptest::prelude::*;
use prost::Message as _;
use serde_json::{Number, Value};
use synap_contract::{EventType, ids, validate_body};
use synap_ingest::decode::{Inbound, Reason, Rejection, decode};
use synap_ingest::{occurred_at, strict_json};
use synap_kafka::dead_letter::MAX_DETAIL_BYTES;
use synap_proto::envelope::v1::Envelope;
use synap_proto::pipeline::v1::Event;

const MAX_BODY: usize = 16 * 1024;
const JSON: Option<&[u8]> = None;
const PROTOBUF: Option<&[u8]> = Some(b"application/protobuf");

type Decoded = Result<(EventType, Event), Rejection>;

fn run(payload: &[u8], content_type: Option<&[u8]>, timestamp_ms: Option<i64>) -> Decoded {
    let inbound = Inbound {
        topic: "synap.inbound",
        partition: 0,
        offset: 7,
        timestamp_ms,
        content_type,
        payload: Some(payload),
    };
    let decoded = decode(&inbound, MAX_BODY);
    holds(&decoded);
    decoded
}

/// What every outcome must satisfy.
fn holds(decoded: &Decoded) {
    match decoded {
        Ok((ty, event)) => {
            // The ids go unchanged into PostgreSQL text, Kafka headers and HTTP headers.
            for id in [&event.id, &event.portal_id] {
                assert_eq!(ids::check(id), Ok(()), "accepted id {id:?}");
                assert!(http::HeaderValue::from_str(id).is_ok(), "{id:?} is no HTTP header value");
            }
            assert_eq!(EventType::from_code(&event.r#type), Some(*ty));
            assert!(occurred_at::in_range(event.occurred_at_ms), "{}", event.occurred_at_ms);
            // The body is an object with no repeated key, of its type's documented shape.
            let body = strict_json::value(&event.data).expect("an accepted body parses strictly");
            assert!(body.is_object());
            assert_eq!(validate_body(*ty, &body), Ok(()));
        }
        Err(rejection) => {
            assert!(Reason::ALL.contains(&rejection.reason));
            let detail = &rejection.detail;
            assert!(!detail.is_empty());
            assert!(detail.bytes().all(|b| b == b' ' || b.is_ascii_graphic()), "raw input in {detail:?}");
            assert!(detail.len() <= MAX_DETAIL_BYTES, "{} bytes: {detail}", detail.len());
        }
    }
}

/// Strings as a careless or hostile producer writes them.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[!-~]{1,12}",
        1 => "[!-~]{120,136}",
        2 => any::<String>(),
        2 => "[a-z_]{0,4}[\\x00-\\x20\\x7f\\u{80}-\\u{9f}\\u{a0}\\u{2028}\\u{202e}\\u{feff}]{1,3}[a-z]{0,4}",
        1 => prop::collection::vec(any::<char>(), 0..200).prop_map(|cs| cs.into_iter().collect()),
        1 => Just(String::new()),
    ]
}

/// An id as producers send it: mostly a good one, often not.
fn id_like() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[!-~]{1,40}", 1 => hostile_string()]
}

/// A type code: mostly `ty`'s, sometimes one with a control character, sometimes anything.
fn event_type_code(ty: EventType) -> impl Strategy<Value = String> {
    prop_oneof![
        8 => Just(ty.code().to_owned()),
        1 => "[\\x00\\r\\n ]".prop_map(move |c| format!("{}{c}", ty.code())),
        1 => hostile_string(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(hostile_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `data` as JSON text: mostly `ty`'s documented body (often with extra members or a repeated
/// key), sometimes another type's, any JSON, or broken text.
fn data_text(ty: EventType) -> impl Strategy<Value = String> {
    let own = Just(ty.example_body());
    let other = prop::sample::select(EventType::ALL.to_vec()).prop_map(|t| t.example_body().to_string());
    prop_oneof![
        8 => own.clone().prop_map(|b| b.to_string()),
        2 => (own.clone(), hostile_string(), json_value()).prop_map(|(mut b, k, v)| {
            b[k] = v;
            b.to_string()
        }),
        2 => (own, hostile_string()).prop_map(|(b, k)| with_repeated_key(&b, &k)),
        1 => other,
        2 => json_value().prop_map(|v| v.to_string()),
        1 => "[{}\\[\\]\":,a-z0-9 ]{0,40}",
    ]
}

/// `body`'s text with `key` written twice at its top level.
fn with_repeated_key(body: &Value, key: &str) -> String {
    let key = Value::String(key.to_owned()).to_string();
    let rest = body.to_string();
    let rest = rest.strip_prefix('{').unwrap();
    let sep = if rest == "}" { "" } else { "," };
    format!("{{{key}:1,{key}:\"x\"{sep}{rest}")
}

#[derive(Debug, Clone)]
enum When {
    Text(String),
    Stamp { seconds: i64, nanos: i32 },
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        2 => (occurred_at::MIN_MS / 1000 - 100..occurred_at::MAX_MS / 1000 + 100, 0..1_000_000_000i32)
            .prop_map(|(seconds, nanos)| When::Stamp { seconds, nanos }),
        1 => (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| When::Stamp { seconds, nanos }),
        1 => hostile_string().prop_map(When::Text),
        1 => "[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,9})?(Z|[+-][01][0-9]:[0-5][0-9])"
            .prop_map(When::Text),
    ]
}

#[derive(Debug, Clone)]
struct Env {
    id: Option<String>,
    ty: Option<String>,
    portal_id: Option<String>,
    occurred_at: Option<When>,
    data: Option<String>,
}

fn envelope() -> impl Strategy<Value = Env> {
    prop::sample::select(EventType::ALL.to_vec()).prop_flat_map(|ty| {
        (
            prop::option::weighted(0.7, id_like()),
            prop::option::weighted(0.97, event_type_code(ty)),
            prop::option::weighted(0.97, id_like()),
            prop::option::weighted(0.4, when()),
            prop::option::weighted(0.97, data_text(ty)),
        )
            .prop_map(|(id, ty, portal_id, occurred_at, data)| Env {
                id,
                ty,
                portal_id,
                occurred_at,
                data,
            })
    })
}

impl When {
    /// As the JSON envelope writes it; a stamp chrono cannot place is written as a number.
    fn json(&self) -> String {
        match self {
            When::Text(t) => Value::String(t.clone()).to_string(),
            When::Stamp { seconds, nanos } => match DateTime::from_timestamp(*seconds, *nanos as u32) {
                Some(t) if (0..1_000_000_000).contains(nanos) => {
                    Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)).to_string()
                }
                _ => seconds.to_string(),
            },
        }
    }

    /// As the protobuf envelope carries it; a text that is no time at all is written as a
    /// stamp before year 1.
    fn protobuf(&self) -> prost_types::Timestamp {
        match self {
            When::Stamp { seconds, nanos } => prost_types::Timestamp { seconds: *seconds, nanos: *nanos },
            When::Text(t) => match DateTime::parse_from_rfc3339(t) {
                Ok(t) => prost_types::Timestamp {
                    seconds: t.timestamp(),
                    nanos: t.timestamp_subsec_nanos() as i32,
                },
                Err(_) => prost_types::Timestamp { seconds: i64::MIN, nanos: 0 },
            },
        }
    }
}

impl Env {
    /// The JSON envelope, members in the order given, `repeat` naming one to write twice.
    fn json(&self, repeat: Option<&str>) -> Vec<u8> {
        let mut members: Vec<(&str, String)> = Vec::new();
        let text = |s: &String| Value::String(s.clone()).to_string();
        if let Some(id) = &self.id {
            members.push(("id", text(id)));
        }
        if let Some(ty) = &self.ty {
            members.push(("type", text(ty)));
        }
        if let Some(p) = &self.portal_id {
            members.push(("portalId", text(p)));
        }
        if let Some(w) = &self.occurred_at {
            members.push(("occurredAt", w.json()));
        }
        if let Some(d) = &self.data {
            members.push(("data", d.clone()));
        }
        if let Some(name) = repeat {
            if !members.iter().any(|(k, _)| *k == name) {
                members.push((name, "null".into()));
            }
            members.push((name, "null".into()));
        }
        let body: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(",")).into_bytes()
    }

    fn protobuf(&self) -> Vec<u8> {
        Envelope {
            id: self.id.clone().unwrap_or_default(),
            r#type: self.ty.clone().unwrap_or_default(),
            portal_id: self.portal_id.clone().unwrap_or_default(),
            occurred_at: self.occurred_at.as_ref().map(When::protobuf),
            data: self.data.clone().unwrap_or_default().into_bytes(),
        }
        .encode_to_vec()
    }

    /// Whether both encodings say the same thing: a JSON text `occurredAt` may hold what no
    /// protobuf stamp can (and a stamp outside chrono's range is written as a number), and a
    /// broken `data` breaks the whole JSON envelope but only `data` of a protobuf one.
    fn same_in_both(&self) -> bool {
        let time_alike = match &self.occurred_at {
            None => true,
            Some(When::Text(_)) => false,
            Some(When::Stamp { seconds, nanos }) => {
                (0..1_000_000_000).contains(nanos)
                    && DateTime::from_timestamp(*seconds, *nanos as u32).is_some()
            }
        };
        // JSON keeps `data` without the white space around it; protobuf keeps every byte. A
        // JSON `null` is no `data` (missing_data), like a null in any member; the protobuf
        // bytes `null` are data that is not an object (data_not_object).
        let data_alike = self.data.as_deref().is_some_and(|d| {
            !d.is_empty()
                && d.trim() == d
                && d != "null"
                && serde_json::from_str::<serde::de::IgnoredAny>(d).is_ok()
        });
        time_alike && data_alike
    }
}

fn reason(decoded: &Decoded) -> Option<Reason> {
    decoded.as_ref().err().map(|r| r.reason)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        payload in prop::collection::vec(any::<u8>(), 0..512),
        content_type in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        timestamp in any::<Option<i64>>(),
    ) {
        let _ = run(&payload, JSON, timestamp);
        let _ = run(&payload, PROTOBUF, timestamp);
        let _ = run(&payload, content_type.as_deref(), timestamp);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value(), timestamp in any::<Option<i64>>()) {
        let text = value.to_string();
        let _ = run(text.as_bytes(), JSON, timestamp);
        let _ = run(text.as_bytes(), PROTOBUF, timestamp);
        // The same value as the body of an otherwise good envelope, in both encodings.
        let env = Env {
            id: None,
            ty: Some("user.updated".into()),
            portal_id: Some("acme".into()),
            occurred_at: None,
            data: Some(text),
        };
        let (json, protobuf) = (run(&env.json(None), JSON, timestamp), run(&env.protobuf(), PROTOBUF, timestamp));
        if env.same_in_both() {
            prop_assert_eq!(reason(&json), reason(&protobuf));
        }
    }

    #[test]
    fn arbitrary_envelopes_end_as_accept_or_a_reason(env in envelope(), timestamp in any::<Option<i64>>()) {
        let json = run(&env.json(None), JSON, timestamp);
        let protobuf = run(&env.protobuf(), PROTOBUF, timestamp);
        if env.same_in_both() {
            prop_assert_eq!(reason(&json), reason(&protobuf), "{:?}", env);
            if let (Ok((_, a)), Ok((_, b))) = (&json, &protobuf) {
                prop_assert_eq!((&a.id, &a.portal_id, &a.data), (&b.id, &b.portal_id, &b.data));
                // Without a time of its own or a usable record timestamp, each took the clock.
                if env.occurred_at.is_some() || timestamp.is_some_and(occurred_at::in_range) {
                    prop_assert_eq!(a.occurred_at_ms, b.occurred_at_ms);
                }
                prop_assert_eq!(a.data.as_ref(), env.data.as_deref().unwrap().as_bytes(), "delivered byte for byte");
            }
        }
        // An id, portal id or type that breaks the id rule is never accepted.
        if json.is_ok() {
            let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
            if let Some(id) = given(&env.id) {
                prop_assert!(ids::is_valid(&id));
            }
            prop_assert!(ids::is_valid(&env.portal_id.clone().unwrap()));
        }
    }

    #[test]
    fn a_repeated_envelope_member_is_refused(
        env in envelope(),
        member in prop::sample::select(vec!["id", "type", "portalId", "occurredAt", "data", "extra"]),
    ) {
        let decoded = run(&env.json(Some(member)), JSON, None);
        // Broken `data` text may stop the parse first; otherwise the repeat is what is reported.
        let parses = env.data.as_deref().is_none_or(|d| serde_json::from_str::<serde::de::IgnoredAny>(d).is_ok());
        if parses {
            prop_assert_eq!(reason(&decoded), Some(Reason::DuplicateKey));
        } else {
            prop_assert!(decoded.is_err());
        }
    }

    #[test]
    fn a_good_envelope_with_a_repeated_body_key_is_refused_for_it(
        ty in prop::sample::select(EventType::ALL.to_vec()),
        key in hostile_string(),
        protobuf in any::<bool>(),
    ) {
        let env = Env {
            id: Some("evt_1".into()),
            ty: Some(ty.code().into()),
            portal_id: Some("acme".into()),
            occurred_at: None,
            data: Some(with_repeated_key(&ty.example_body(), &key)),
        };
        let decoded = if protobuf { run(&env.protobuf(), PROTOBUF, None) } else { run(&env.json(None), JSON, None) };
        prop_assert_eq!(reason(&decoded), Some(Reason::DuplicateKey));
    }
}

/// The envelopes above reach acceptance and every reason a field can cause, so the properties
/// are not kept vacuously.
#[test]
fn the_envelope_strategy_reaches_accepts_and_every_field_reason() {
    use proptest::strategy::ValueTree as _;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut accepted, mut reasons) = (0, std::collections::HashSet::new());
    for _ in 0..3000 {
        let (env, protobuf) = (envelope(), any::<bool>()).new_tree(&mut runner).unwrap().current();
        let decoded =
            if protobuf { run(&env.protobuf(), PROTOBUF, None) } else { run(&env.json(None), JSON, None) };
        match decoded {
            Ok(_) => accepted += 1,
            Err(rejection) => {
                reasons.insert(rejection.reason);
            }
        }
    }
    assert!(accepted >= 100, "only {accepted} of 3000 accepted");
    for reason in [
        Reason::InvalidId,
        Reason::InvalidPortalId,
        Reason::MissingPortal,
        Reason::UnknownType,
        Reason::MissingType,
        Reason::InvalidOccurredAt,
        Reason::DuplicateKey,
        Reason::NotJson,
        Reason::DataNotObject,
        Reason::InvalidBody,
        Reason::MissingData,
    ] {
        assert!(reasons.contains(&reason), "{} never reached: {reasons:?}", reason.code());
    }
}
