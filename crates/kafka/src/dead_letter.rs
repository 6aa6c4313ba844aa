//! Setting a record aside: the one dead-letter policy of every stage.
//!
//! A record that can never be handled (it breaks the contract, the database refuses its data, a
//! secret it needs cannot be opened, its handler panicked) is written to the stage's dead-letter
//! topic, and only then does its offset move on. The dead letter keeps the record as it was read
//! (key, payload, headers) so that it can be re-driven once the cause is fixed
//! (`synap-admin redrive`), and adds why and where from:
//!
//! | header | value |
//! |---|---|
//! | `synap-dlq-reason` | a stable code (`not_json`, `invalid_portal_id`, `handler_panic`, …) |
//! | `synap-dlq-detail` | a sentence naming the field or the cause (at most 1,000 bytes) |
//! | `synap-dlq-source` | `topic/partition/offset` of the record set aside |
//! | `synap-dlq-stage` | `ingest`, `router` or `sender` |
//! | `synap-dlq-at` | when, RFC 3339 |
//!
//! A dead letter the broker refuses as too large is written again without its payload (header
//! `synap-dlq-payload-omitted`; the original stays readable at its source for the topic's
//! retention), and then without the original headers. Writing a dead letter never blocks the
//! partition: only shutdown stops it before it is stored.

use std::borrow::Cow;

use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureProducer;
use synap_telemetry::metrics::metrics;
use tokio_util::sync::CancellationToken;

use crate::consume::Handled;
use crate::produce::{Outgoing, SendError, send_durably};

/// Prefix of the headers a dead letter adds; a re-driven record dead-lettered again carries
/// only its latest reason.
pub const HEADER_PREFIX: &str = "synap-dlq-";
pub const REASON: &str = "synap-dlq-reason";
pub const DETAIL: &str = "synap-dlq-detail";
pub const SOURCE: &str = "synap-dlq-source";
pub const STAGE: &str = "synap-dlq-stage";
pub const AT: &str = "synap-dlq-at";
pub const PAYLOAD_OMITTED: &str = "synap-dlq-payload-omitted";

/// The longest `synap-dlq-detail` kept, in bytes.
pub const MAX_DETAIL_BYTES: usize = 1000;

/// Why a record is set aside: a stable code (metric label and `synap-dlq-reason`) and a
/// sentence for whoever fixes the cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetAside {
    pub reason: Cow<'static, str>,
    pub detail: String,
}

impl SetAside {
    pub fn new(reason: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self { reason: reason.into(), detail: detail.into() }
    }

    /// A handler that panicked on the record: a bug that this record triggers, set aside so
    /// that it cannot crash the consumer again and again.
    pub fn panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        Self::new("handler_panic", format!("the handler panicked: {message}"))
    }
}

/// Where a record was read: `topic/partition/offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Source {
    pub fn of(message: &OwnedMessage) -> Self {
        Self { topic: message.topic().to_owned(), partition: message.partition(), offset: message.offset() }
    }

    /// Parses `synap-dlq-source`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.rsplitn(3, '/');
        let offset = parts.next()?.parse().ok()?;
        let partition = parts.next()?.parse().ok()?;
        let topic = parts.next().filter(|t| !t.is_empty())?.to_owned();
        Some(Self { topic, partition, offset })
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

/// A stage's dead-letter topic.
#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    stage: &'static str,
}

impl DeadLetters {
    pub fn new(producer: FutureProducer, topic: String, stage: &'static str) -> Self {
        Self { producer, topic, stage }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sets `message` aside as it was read. `Done` once the dead letter is stored; `Abandoned`
    /// only at shutdown.
    pub async fn message(
        &self,
        message: &OwnedMessage,
        why: &SetAside,
        shutdown: &CancellationToken,
    ) -> Handled {
        self.write(
            message.key().unwrap_or_default(),
            message.payload().unwrap_or_default(),
            message.headers(),
            &Source::of(message),
            why,
            shutdown,
        )
        .await
    }

    /// Sets aside a record built from the one read at `source` (e.g. a delivery with its final
    /// attempt count), with `headers` as its own.
    pub async fn record(
        &self,
        key: &[u8],
        payload: &[u8],
        headers: Option<&OwnedHeaders>,
        source: &Source,
        why: &SetAside,
        shutdown: &CancellationToken,
    ) -> Handled {
        self.write(key, payload, headers, source, why, shutdown).await
    }

    async fn write<H: Headers>(
        &self,
        key: &[u8],
        payload: &[u8],
        headers: Option<&H>,
        source: &Source,
        why: &SetAside,
        shutdown: &CancellationToken,
    ) -> Handled {
        tracing::warn!(stage = self.stage, reason = %why.reason, detail = %why.detail, source = %source, "record set aside in {}", self.topic);
        let source_text = source.to_string();
        let detail = truncate(&why.detail, MAX_DETAIL_BYTES);
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let ours = [
            (REASON, why.reason.as_ref()),
            (DETAIL, detail),
            (SOURCE, source_text.as_str()),
            (STAGE, self.stage),
            (AT, at.as_str()),
        ];
        let mut record = Outgoing {
            topic: self.topic.clone(),
            key: key.to_vec(),
            payload: payload.to_vec(),
            headers: letter_headers(headers, &ours, None),
        };
        // Each refusal drops what can be dropped: first the payload, then the original headers.
        let mut omitted = None;
        loop {
            match send_durably(&self.producer, &record, shutdown).await {
                Ok(()) => {
                    metrics().dead_letters(self.stage, &why.reason).inc();
                    return Handled::Done;
                }
                Err(SendError::Abandoned) => return Handled::Abandoned,
                Err(SendError::Rejected(refusal)) if omitted.is_none() => {
                    tracing::error!(source = %source, %refusal, "dead letter refused; storing it without its payload");
                    omitted = Some(refusal);
                    record.payload.clear();
                    record.headers = letter_headers(headers, &ours, omitted.as_deref());
                }
                Err(SendError::Rejected(refusal)) if record.headers.count() > ours.len() + 1 => {
                    tracing::error!(source = %source, %refusal, "dead letter refused; storing it without its headers");
                    record.headers = letter_headers(None::<&OwnedHeaders>, &ours, omitted.as_deref());
                }
                Err(SendError::Rejected(refusal)) => {
                    // Reason, source and position alone refused: the topic itself is wrong (its
                    // size limit below a kilobyte). The record is still at its source.
                    tracing::error!(source = %source, %refusal, "dead letter refused by the broker; the record stays only at its source");
                    metrics().dead_letters(self.stage, "dead_letter_refused").inc();
                    return Handled::Done;
                }
            }
        }
    }
}

/// The original headers without earlier dead-letter headers, then ours.
fn letter_headers<H: Headers>(
    original: Option<&H>,
    ours: &[(&str, &str)],
    omitted: Option<&str>,
) -> OwnedHeaders {
    let mut out = OwnedHeaders::new();
    if let Some(original) = original {
        for h in original.iter().filter(|h| !h.key.to_ascii_lowercase().starts_with(HEADER_PREFIX)) {
            out = out.insert(Header { key: h.key, value: h.value });
        }
    }
    for (key, value) in ours {
        out = out.insert(Header { key, value: Some(*value) });
    }
    if let Some(why) = omitted {
        out = out.insert(Header { key: PAYLOAD_OMITTED, value: Some(truncate(why, MAX_DETAIL_BYTES)) });
    }
    out
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip_even_with_slashes_in_the_topic() {
        let source = Source { topic: "a/b.inbound".into(), partition: 3, offset: 42 };
        assert_eq!(Source::parse(&source.to_string()), Some(source));
        assert_eq!(Source::parse("inbound/x/1"), None);
        assert_eq!(Source::parse("/0/1"), None);
    }

    #[test]
    fn earlier_dead_letter_headers_are_replaced() {
        let original = OwnedHeaders::new()
            .insert(Header { key: "traceparent", value: Some("00-abc") })
            .insert(Header { key: "Synap-DLQ-Reason", value: Some("old") });
        let headers = letter_headers(Some(&original), &[(REASON, "new")], Some("too large"));
        let pairs: Vec<(String, String)> = headers
            .iter()
            .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("traceparent".to_owned(), "00-abc".to_owned()),
                (REASON.to_owned(), "new".to_owned()),
                (PAYLOAD_OMITTED.to_owned(), "too large".to_owned())
            ]
        );
    }

    #[test]
    fn details_are_cut_at_a_character_boundary() {
        let text = "é".repeat(600);
        let cut = truncate(&text, MAX_DETAIL_BYTES);
        assert_eq!(cut.len(), MAX_DETAIL_BYTES);
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("aé", 2), "a");
    }

    #[test]
    fn panics_carry_their_message() {
        let caught = std::panic::catch_unwind(|| panic!("index {} out of range", 7)).unwrap_err();
        assert_eq!(SetAside::panic(caught.as_ref()).detail, "the handler panicked: index 7 out of range");
        let caught = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(SetAside::panic(caught.as_ref()).reason, "handler_panic");
    }
}
