//! The ingest stage: one inbound record in, one event or one dead letter out.

use std::sync::Arc;

use prost::Message as _;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use synap_kafka::{Handled, Outgoing, SendError, Topics, headers, send_durably};
use synap_telemetry::metrics;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::decode::{Inbound, Rejection, decode};

pub struct Ingest {
    pub producer: FutureProducer,
    pub topics: Topics,
    pub max_body_bytes: usize,
    pub shutdown: CancellationToken,
}

impl Ingest {
    /// Handles one record; returns when its event or dead letter is acknowledged. The record's
    /// span continues the producer's trace when its headers carry one, and starts the event's
    /// trace otherwise.
    pub async fn handle(self: Arc<Self>, message: OwnedMessage) -> Handled {
        let span = tracing::info_span!(
            "ingest",
            otel.kind = "consumer",
            source = %format_args!("{}/{}/{}", message.topic(), message.partition(), message.offset()),
            event_id = tracing::field::Empty,
            event_type = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        synap_telemetry::continue_trace(&span, message.headers());
        self.process(message).instrument(span).await
    }

    async fn process(&self, message: OwnedMessage) -> Handled {
        let inbound = Inbound {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            content_type: headers::get(message.headers(), "content-type"),
            payload: message.payload(),
        };
        let rejection = match decode(&inbound, self.max_body_bytes) {
            Ok((ty, event)) => {
                tracing::Span::current()
                    .record("event_id", event.id.as_str())
                    .record("event_type", ty.code());
                let record = Outgoing {
                    topic: self.topics.event(ty),
                    key: event.portal_id.clone(),
                    headers: synap_telemetry::inject_kafka(headers::copy_with(
                        None::<&rdkafka::message::OwnedHeaders>,
                        &[("synap-event-id", &event.id), ("synap-event-type", ty.code())],
                    )),
                    payload: event.encode_to_vec(),
                };
                match send_durably(&self.producer, &record, &self.shutdown).await {
                    Ok(()) => {
                        metrics().ingested(ty.code()).inc();
                        tracing::debug!("event accepted");
                        return Handled::Done;
                    }
                    Err(SendError::Abandoned) => return Handled::Abandoned,
                    Err(SendError::Rejected(why)) => Rejection {
                        reason: crate::decode::Reason::BodyTooLarge,
                        detail: format!("the broker refused the event: {why}"),
                    },
                }
            }
            Err(rejection) => rejection,
        };
        self.dead_letter(&message, &rejection).await
    }

    async fn dead_letter(&self, message: &OwnedMessage, rejection: &Rejection) -> Handled {
        let source = format!("{}/{}/{}", message.topic(), message.partition(), message.offset());
        tracing::warn!(reason = rejection.reason.code(), detail = %rejection.detail, "inbound record dead-lettered");
        let key = message.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
        let extra = [
            ("synap-dlq-reason", rejection.reason.code()),
            ("synap-dlq-detail", rejection.detail.as_str()),
            ("synap-dlq-source", source.as_str()),
            ("synap-dlq-stage", "ingest"),
        ];
        let mut record = Outgoing {
            topic: self.topics.inbound_dead_letter(),
            key,
            payload: message.payload().unwrap_or_default().to_vec(),
            headers: headers::copy_with(message.headers(), &extra),
        };
        loop {
            match send_durably(&self.producer, &record, &self.shutdown).await {
                Ok(()) => {
                    metrics().dead_letters("ingest", rejection.reason.code()).inc();
                    return Handled::Done;
                }
                Err(SendError::Abandoned) => return Handled::Abandoned,
                // Too large even for the dead-letter topic: keep the reason and the position;
                // the original stays readable in the inbound topic for its retention.
                Err(SendError::Rejected(why)) if !record.payload.is_empty() => {
                    tracing::error!(source = %source, %why, "dead letter stored without its payload");
                    record.payload.clear();
                    record.headers = headers::copy_with(
                        message.headers(),
                        &[extra.as_slice(), &[("synap-dlq-payload-omitted", why.as_str())]].concat(),
                    );
                }
                Err(SendError::Rejected(why)) => {
                    tracing::error!(source = %source, %why, "dead letter refused by the broker");
                    return Handled::Abandoned;
                }
            }
        }
    }
}
