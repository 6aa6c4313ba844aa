//! Turns one inbound record into a validated [`Event`], or says exactly why it cannot.
//!
//! Both encodings of EVENTS.md §3 end up in the same checks, so a protobuf envelope is accepted
//! or refused exactly like its JSON twin. The edge admits only what every later stage can carry:
//! ids that PostgreSQL, Kafka headers and HTTP headers all hold ([`synap_contract::ids`]), a
//! time inside years 1 to 9999, and a body without repeated keys whose shape was checked (a
//! record that passes here and fails later would stop its partition there).

use std::borrow::Cow;

use prost::Message;
use serde_json::Value;
use synap_contract::{EventType, ids, validate_body};
use synap_proto::envelope::v1::Envelope;
use synap_proto::pipeline::v1::Event;

use crate::occurred_at;
pub use crate::reason::{Reason, Rejection};
use crate::reason::{excerpt, reject};
use crate::strict_json::{self, JsonError};

/// Namespace of the ids derived from a record's position (UUID v5).
const DERIVED_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a1f_9a52_3c1e_4b8e_9d55_0e0c_5e11_a7b3);

/// What ingest knows about an inbound record.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp (unix ms), the default for `occurredAt`.
    pub timestamp_ms: Option<i64>,
    /// The `content-type` header as sent (it need not be UTF-8).
    pub content_type: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
}

/// The envelope fields, whichever encoding carried them. The named fields stay JSON values
/// until [`check`], which refuses a wrong JSON type with the field's own reason, so that the
/// order of the checks, and hence the reason, is the same for both encodings.
struct Fields<'a> {
    id: Option<Value>,
    ty: Option<Value>,
    portal_id: Option<Value>,
    occurred_at: Option<OccurredAt>,
    data: Option<Cow<'a, [u8]>>,
}

enum OccurredAt {
    Json(Value),
    Protobuf { seconds: i64, nanos: i32 },
}

/// Decodes and validates one record.
pub fn decode(inbound: &Inbound<'_>, max_body_bytes: usize) -> Result<(EventType, Event), Rejection> {
    let payload = match inbound.payload {
        Some(p) if !p.is_empty() => p,
        _ => return Err(reject(Reason::EmptyRecord, "the record has no value")),
    };
    let envelope = match media_type(inbound.content_type) {
        Media::Json => from_json(payload)?,
        Media::Protobuf => from_protobuf(payload)?,
        Media::Other(other) => {
            return Err(reject(
                Reason::UnsupportedContentType,
                format!(
                    "content-type {} is neither application/json nor application/protobuf",
                    excerpt(&String::from_utf8_lossy(other))
                ),
            ));
        }
    };
    check(inbound, envelope, max_body_bytes)
}

enum Media<'a> {
    Json,
    Protobuf,
    Other(&'a [u8]),
}

fn media_type(content_type: Option<&[u8]>) -> Media<'_> {
    let Some(raw) = content_type else { return Media::Json };
    let Ok(text) = std::str::from_utf8(raw) else { return Media::Other(raw) };
    let essence = text.split(';').next().unwrap_or("").trim();
    match essence.to_ascii_lowercase().as_str() {
        "" | "application/json" => Media::Json,
        "application/protobuf" | "application/x-protobuf" | "application/vnd.google.protobuf" => {
            Media::Protobuf
        }
        _ => Media::Other(raw),
    }
}

fn from_json(payload: &[u8]) -> Result<Fields<'_>, Rejection> {
    let parsed = strict_json::envelope(payload).map_err(|e| match e {
        JsonError::DuplicateKey { .. } => {
            reject(Reason::DuplicateKey, format!("the envelope is ambiguous: {e}"))
        }
        JsonError::Syntax(e) => reject(Reason::NotJson, format!("the record is not valid JSON: {e}")),
        JsonError::NotAnObject(_) => reject(Reason::InvalidEnvelope, "the envelope must be a JSON object"),
    })?;
    Ok(Fields {
        id: parsed.id,
        ty: parsed.ty,
        portal_id: parsed.portal_id,
        occurred_at: parsed.occurred_at.map(OccurredAt::Json),
        data: parsed.data.map(|raw| Cow::Borrowed(raw.get().as_bytes())),
    })
}

fn from_protobuf(payload: &[u8]) -> Result<Fields<'static>, Rejection> {
    let envelope = Envelope::decode(payload).map_err(|e| {
        reject(Reason::BadProtobuf, format!("the record is not a synap.envelope.v1.Envelope: {e}"))
    })?;
    Ok(Fields {
        id: Some(Value::String(envelope.id)),
        ty: Some(Value::String(envelope.r#type)),
        portal_id: Some(Value::String(envelope.portal_id)),
        occurred_at: envelope
            .occurred_at
            .map(|t| OccurredAt::Protobuf { seconds: t.seconds, nanos: t.nanos }),
        data: (!envelope.data.is_empty()).then_some(Cow::Owned(envelope.data)),
    })
}

/// A text member: `None` when absent, `null` or empty (proto3 cannot tell empty from unset, so
/// JSON does not either); a value of another JSON type is refused with `reason`.
fn text(value: Option<Value>, field: &str, reason: Reason) -> Result<Option<String>, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(reject(
            reason,
            format!("`{field}` must be a string, found {}", synap_contract::json_kind(&other)),
        )),
    }
}

/// An id member under the one id rule; the detail quotes an escaped excerpt, never the id.
fn id_rule(value: String, field: &str, reason: Reason) -> Result<String, Rejection> {
    match ids::check(&value) {
        Ok(()) => Ok(value),
        Err(e) => Err(reject(reason, format!("`{field}` {} {e}", excerpt(&value)))),
    }
}

fn check(
    inbound: &Inbound<'_>,
    env: Fields<'_>,
    max_body_bytes: usize,
) -> Result<(EventType, Event), Rejection> {
    let code = text(env.ty, "type", Reason::UnknownType)?
        .ok_or_else(|| reject(Reason::MissingType, "`type` is missing"))?;
    // An unknown code is never stored or forwarded, so control characters or length need no
    // reason of their own; the excerpt keeps them out of the detail.
    let ty = EventType::from_code(&code)
        .ok_or_else(|| reject(Reason::UnknownType, format!("unknown event type {}", excerpt(&code))))?;
    let portal_id = text(env.portal_id, "portalId", Reason::InvalidPortalId)?
        .ok_or_else(|| reject(Reason::MissingPortal, "`portalId` is missing"))?;
    let portal_id = id_rule(portal_id, "portalId", Reason::InvalidPortalId)?;
    let id = match text(env.id, "id", Reason::InvalidId)? {
        Some(id) => id_rule(id, "id", Reason::InvalidId)?,
        None => derived_id(inbound),
    };
    let occurred_at_ms = match env.occurred_at {
        None => None,
        Some(OccurredAt::Json(value)) => match text(Some(value), "occurredAt", Reason::InvalidOccurredAt)? {
            None => None,
            Some(s) => Some(occurred_at::from_rfc3339(&s).map_err(|d| reject(Reason::InvalidOccurredAt, d))?),
        },
        Some(OccurredAt::Protobuf { seconds, nanos }) => Some(
            occurred_at::from_timestamp(seconds, nanos).map_err(|d| reject(Reason::InvalidOccurredAt, d))?,
        ),
    };

    let data = env.data.ok_or_else(|| reject(Reason::MissingData, "`data` is missing"))?;
    let data = &*data;
    if data.len() > max_body_bytes {
        return Err(reject(
            Reason::BodyTooLarge,
            format!("`data` is {} bytes, over the limit of {max_body_bytes}", data.len()),
        ));
    }
    let body = strict_json::value(data).map_err(|e| match e {
        JsonError::DuplicateKey { .. } => reject(Reason::DuplicateKey, format!("`data` is ambiguous: {e}")),
        JsonError::Syntax(_) | JsonError::NotAnObject(_) => {
            reject(Reason::NotJson, format!("`data` is not valid JSON: {e}"))
        }
    })?;
    if !body.is_object() {
        return Err(reject(Reason::DataNotObject, "`data` must be a JSON object"));
    }
    validate_body(ty, &body).map_err(|e| reject(Reason::InvalidBody, format!("{code}: {e}")))?;

    let now_ms = chrono::Utc::now().timestamp_millis();
    // A producer may set any record timestamp; one outside years 1 to 9999 is no time at all,
    // and since the envelope claimed none, the ingest time stands in rather than refusing.
    let record_ms = inbound.timestamp_ms.filter(|ms| occurred_at::in_range(*ms));
    Ok((
        ty,
        Event {
            id,
            r#type: code,
            portal_id,
            occurred_at_ms: occurred_at_ms.or(record_ms).unwrap_or(now_ms),
            ingested_at_ms: now_ms,
            data: data.to_vec().into(),
        },
    ))
}

/// The id of an event whose producer gave none: a function of the record's position only, so
/// reading the same record again yields the same id.
pub fn derived_id(inbound: &Inbound<'_>) -> String {
    let name = format!("{}/{}/{}", inbound.topic, inbound.partition, inbound.offset);
    format!("evt_{}", uuid::Uuid::new_v5(&DERIVED_ID_NAMESPACE, name.as_bytes()).simple())
}
