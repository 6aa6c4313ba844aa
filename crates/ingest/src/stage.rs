//! The ingest stage: one inbound record in, one event or one dead letter out.

use std::sync::Arc;

use prost::Message as _;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use synap_kafka::{Handled, Outgoing, SendError, SetAside, Topics, Turn, headers, send_in_turn};
use synap_telemetry::metrics;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::decode::{Inbound, Reason, decode};

pub struct Ingest {
    pub producer: FutureProducer,
    pub topics: Topics,
    pub max_body_bytes: usize,
    pub shutdown: CancellationToken,
}

impl Ingest {
    /// Handles one record; returns when its event is acknowledged, or with the reason it is set
    /// aside (the consumer writes it to `synap.inbound.dlq`). The record's span continues the
    /// producer's trace when its headers carry one, and starts the event's trace otherwise.
    pub async fn handle(self: Arc<Self>, message: Arc<OwnedMessage>, turn: Turn) -> Handled {
        let span = tracing::info_span!(
            "ingest",
            otel.kind = "consumer",
            source = %format_args!("{}/{}/{}", message.topic(), message.partition(), message.offset()),
            event_id = tracing::field::Empty,
            event_type = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        synap_telemetry::continue_trace(&span, message.headers());
        self.process(&message, turn).instrument(span).await
    }

    async fn process(&self, message: &OwnedMessage, turn: Turn) -> Handled {
        let inbound = Inbound {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            content_type: content_type(message),
            payload: message.payload(),
        };
        let (ty, event) = match decode(&inbound, self.max_body_bytes) {
            Ok(decoded) => decoded,
            Err(rejection) => {
                return Handled::SetAside(SetAside::new(rejection.reason.code(), rejection.detail));
            }
        };
        tracing::Span::current().record("event_id", event.id.as_str()).record("event_type", ty.code());
        let record = Outgoing {
            topic: self.topics.event(ty),
            key: event.portal_id.clone().into_bytes(),
            headers: synap_telemetry::inject_kafka(headers::copy_with(
                None::<&rdkafka::message::OwnedHeaders>,
                &[("synap-event-id", &event.id), ("synap-event-type", ty.code())],
            )),
            payload: event.encode_to_vec(),
        };
        // In the record's turn: a portal's events reach their topic in the order it published them.
        match send_in_turn(&self.producer, std::slice::from_ref(&record), turn, &self.shutdown).await {
            Ok(()) => {
                metrics().ingested(ty.code()).inc();
                tracing::debug!("event accepted");
                Handled::Done
            }
            Err(SendError::Abandoned) => Handled::Abandoned,
            // Within `ingest.max_body_bytes` but over the event topic's size limit.
            Err(SendError::Rejected(why)) => Handled::SetAside(SetAside::new(
                Reason::EventTooLarge.code(),
                format!("the broker refused the event for {}: {why}", record.topic),
            )),
        }
    }
}

/// The raw `content-type` header: one that is not UTF-8 is refused as an unsupported type,
/// never mistaken for an absent one (which means JSON).
fn content_type(message: &OwnedMessage) -> Option<&[u8]> {
    use rdkafka::message::Headers as _;
    message.headers()?.iter().find(|h| h.key.eq_ignore_ascii_case("content-type")).and_then(|h| h.value)
}
