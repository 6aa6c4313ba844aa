//! Turns one inbound record into a validated [`Event`], or says exactly why it cannot.
//!
//! Both encodings of EVENTS.md §3 end up in the same checks, so a protobuf envelope is accepted
//! or refused exactly like its JSON twin.

use std::borrow::Cow;

use prost::Message;
use serde::Deserialize;
use serde_json::value::RawValue;
use synap_contract::{EventType, validate_body};
use synap_proto::envelope::v1::Envelope;
use synap_proto::pipeline::v1::Event;

/// Longest accepted producer id and portal id.
pub const MAX_ID_LEN: usize = 128;

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
    pub content_type: Option<&'a str>,
    pub payload: Option<&'a [u8]>,
}

/// Why a record was dead-lettered. The code is stable: it goes into the `synap-dlq-reason`
/// header and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    EmptyRecord,
    UnsupportedContentType,
    NotJson,
    BadProtobuf,
    InvalidEnvelope,
    MissingType,
    UnknownType,
    MissingPortal,
    InvalidId,
    MissingData,
    DataNotObject,
    BodyTooLarge,
    InvalidBody,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::EmptyRecord => "empty_record",
            Reason::UnsupportedContentType => "unsupported_content_type",
            Reason::NotJson => "not_json",
            Reason::BadProtobuf => "bad_protobuf",
            Reason::InvalidEnvelope => "invalid_envelope",
            Reason::MissingType => "missing_type",
            Reason::UnknownType => "unknown_type",
            Reason::MissingPortal => "missing_portal",
            Reason::InvalidId => "invalid_id",
            Reason::MissingData => "missing_data",
            Reason::DataNotObject => "data_not_object",
            Reason::BodyTooLarge => "body_too_large",
            Reason::InvalidBody => "invalid_body",
        }
    }
}

/// A refused record: a stable reason and a sentence for the producer's engineers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
}

fn reject(reason: Reason, detail: impl Into<String>) -> Rejection {
    Rejection { reason, detail: detail.into() }
}

/// The envelope fields, whichever encoding carried them.
struct Fields<'a> {
    id: Option<String>,
    ty: Option<String>,
    portal_id: Option<String>,
    occurred_at_ms: Option<i64>,
    data: Option<Cow<'a, [u8]>>,
}

#[derive(Deserialize)]
struct JsonEnvelope<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type", default)]
    ty: Option<String>,
    #[serde(rename = "portalId", default)]
    portal_id: Option<String>,
    #[serde(rename = "occurredAt", default)]
    occurred_at: Option<String>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
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
                format!("content-type {other:?} is neither application/json nor application/protobuf"),
            ));
        }
    };
    check(inbound, envelope, max_body_bytes)
}

enum Media<'a> {
    Json,
    Protobuf,
    Other(&'a str),
}

fn media_type(content_type: Option<&str>) -> Media<'_> {
    let Some(raw) = content_type else { return Media::Json };
    let essence = raw.split(';').next().unwrap_or("").trim();
    match essence.to_ascii_lowercase().as_str() {
        "" | "application/json" => Media::Json,
        "application/protobuf" | "application/x-protobuf" | "application/vnd.google.protobuf" => {
            Media::Protobuf
        }
        _ => Media::Other(raw),
    }
}

fn from_json(payload: &[u8]) -> Result<Fields<'_>, Rejection> {
    let parsed: JsonEnvelope<'_> = serde_json::from_slice(payload).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            reject(Reason::NotJson, format!("the record is not valid JSON: {e}"))
        } else {
            reject(Reason::InvalidEnvelope, format!("the envelope is invalid: {e}"))
        }
    })?;
    let occurred_at_ms = parsed
        .occurred_at
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(&s).map(|t| t.timestamp_millis()).map_err(|_| {
                reject(Reason::InvalidEnvelope, format!("occurredAt {s:?} is not an RFC 3339 timestamp"))
            })
        })
        .transpose()?;
    Ok(Fields {
        id: parsed.id,
        ty: parsed.ty,
        portal_id: parsed.portal_id,
        occurred_at_ms,
        data: parsed.data.map(|raw| Cow::Borrowed(raw.get().as_bytes())),
    })
}

fn from_protobuf(payload: &[u8]) -> Result<Fields<'static>, Rejection> {
    let envelope = Envelope::decode(payload).map_err(|e| {
        reject(Reason::BadProtobuf, format!("the record is not a synap.envelope.v1.Envelope: {e}"))
    })?;
    let occurred_at_ms = envelope
        .occurred_at
        .map(|t| t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos / 1_000_000)));
    Ok(Fields {
        id: Some(envelope.id),
        ty: Some(envelope.r#type),
        portal_id: Some(envelope.portal_id),
        occurred_at_ms,
        data: (!envelope.data.is_empty()).then_some(Cow::Owned(envelope.data)),
    })
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn check(
    inbound: &Inbound<'_>,
    env: Fields<'_>,
    max_body_bytes: usize,
) -> Result<(EventType, Event), Rejection> {
    let code = non_empty(env.ty).ok_or_else(|| reject(Reason::MissingType, "`type` is missing"))?;
    let ty = EventType::from_code(&code)
        .ok_or_else(|| reject(Reason::UnknownType, format!("unknown event type {code:?}")))?;
    let portal_id =
        non_empty(env.portal_id).ok_or_else(|| reject(Reason::MissingPortal, "`portalId` is missing"))?;
    if portal_id.len() > MAX_ID_LEN {
        return Err(reject(
            Reason::InvalidEnvelope,
            format!("`portalId` is longer than {MAX_ID_LEN} characters"),
        ));
    }
    let id = match non_empty(env.id) {
        Some(id) if id.len() > MAX_ID_LEN => {
            return Err(reject(Reason::InvalidId, format!("`id` is longer than {MAX_ID_LEN} characters")));
        }
        Some(id) => id,
        None => derived_id(inbound),
    };
    let data = env.data.ok_or_else(|| reject(Reason::MissingData, "`data` is missing"))?;
    let data = &*data;
    if data.len() > max_body_bytes {
        return Err(reject(
            Reason::BodyTooLarge,
            format!("`data` is {} bytes, over the limit of {max_body_bytes}", data.len()),
        ));
    }
    let body: serde_json::Value = serde_json::from_slice(data)
        .map_err(|e| reject(Reason::NotJson, format!("`data` is not valid JSON: {e}")))?;
    if !body.is_object() {
        return Err(reject(Reason::DataNotObject, "`data` must be a JSON object"));
    }
    validate_body(ty, &body).map_err(|e| reject(Reason::InvalidBody, format!("{code}: {e}")))?;

    let now_ms = chrono::Utc::now().timestamp_millis();
    Ok((
        ty,
        Event {
            id,
            r#type: code,
            portal_id,
            occurred_at_ms: env.occurred_at_ms.or(inbound.timestamp_ms).unwrap_or(now_ms),
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
