//! The router stage: one event in, one delivery per matching subscription out.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use prost::Message as _;
use rdkafka::message::{Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureProducer;
use synap_contract::EventType;
use synap_kafka::{Handled, Outgoing, SendError, Topics, headers, send_durably};
use synap_proto::pipeline::v1::{Delivery, Event};
use synap_telemetry::metrics;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::routes::{PortalRoutes, RouteCache};

pub struct Router {
    pub producer: FutureProducer,
    pub topics: Topics,
    pub routes: RouteCache,
    pub shutdown: CancellationToken,
}

impl Router {
    /// Handles one event; returns when every delivery it produced is acknowledged. Its span is a
    /// child of ingest's, through the record's headers.
    pub async fn handle(self: Arc<Self>, message: OwnedMessage) -> Handled {
        let span = tracing::info_span!(
            "route",
            otel.kind = "consumer",
            event_id = headers::get(message.headers(), "synap-event-id").unwrap_or_default(),
            trace_id = tracing::field::Empty,
        );
        synap_telemetry::continue_trace(&span, message.headers());
        self.process(message).instrument(span).await
    }

    async fn process(&self, message: OwnedMessage) -> Handled {
        let decoded = Event::decode(message.payload().unwrap_or_default())
            .ok()
            .and_then(|event| EventType::from_code(&event.r#type).map(|ty| (ty, event)));
        let Some((ty, event)) = decoded else {
            return self.dead_letter(&message).await;
        };
        let Some(routes) = self.portal_routes(&event.portal_id).await else {
            return Handled::Abandoned;
        };
        let subscriptions = match routes.matches(ty) {
            Ok(subscriptions) => subscriptions,
            Err(skip) => {
                tracing::debug!(portal_id = %event.portal_id, ?skip, "event not routed");
                return Handled::Done;
            }
        };
        let records: Vec<Outgoing> = subscriptions.iter().map(|sub| self.delivery(&event, sub)).collect();
        let results = join_all(records.iter().map(|r| send_durably(&self.producer, r, &self.shutdown))).await;
        if results.iter().any(|r| r.is_err()) {
            // Abandoned at shutdown (a delivery record is tiny, so never refused as too
            // large): the event is routed again after restart; duplicates keep their id.
            return Handled::Abandoned;
        }
        metrics().routed(ty.code()).inc_by(records.len() as u64);
        tracing::debug!(deliveries = records.len(), "event routed");
        Handled::Done
    }

    fn delivery(&self, event: &Event, subscription_id: &str) -> Outgoing {
        let delivery = Delivery {
            event_id: event.id.clone(),
            event_type: event.r#type.clone(),
            portal_id: event.portal_id.clone(),
            subscription_id: subscription_id.to_owned(),
            occurred_at_ms: event.occurred_at_ms,
            ingested_at_ms: event.ingested_at_ms,
            attempt: 1,
            data: event.data.clone(),
            test_send: false,
            ..Default::default()
        };
        Outgoing {
            topic: self.topics.deliveries(),
            // Keyed by subscription: one subscription's deliveries share a partition.
            key: subscription_id.to_owned(),
            payload: delivery.encode_to_vec(),
            headers: synap_telemetry::inject_kafka(headers::copy_with(
                None::<&OwnedHeaders>,
                &[("synap-event-id", &event.id)],
            )),
        }
    }

    /// Reads the portal's routes, retrying while the database is unavailable. `None` only at
    /// shutdown.
    async fn portal_routes(&self, portal_id: &str) -> Option<Arc<PortalRoutes>> {
        synap_runtime::retry::until_shutdown(
            &self.shutdown,
            Duration::from_millis(100),
            || self.routes.get(portal_id),
            |error, retry_in| tracing::warn!(portal_id, %error, ?retry_in, "cannot read routes"),
        )
        .await
    }

    async fn dead_letter(&self, message: &OwnedMessage) -> Handled {
        let source = format!("{}/{}/{}", message.topic(), message.partition(), message.offset());
        tracing::error!(source = %source, "undecodable event dead-lettered");
        let record = Outgoing {
            topic: self.topics.deliveries_dead_letter(),
            key: String::new(),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers: headers::copy_with(
                message.headers(),
                &[
                    ("synap-dlq-reason", "undecodable_event"),
                    ("synap-dlq-source", &source),
                    ("synap-dlq-stage", "router"),
                ],
            ),
        };
        match send_durably(&self.producer, &record, &self.shutdown).await {
            Ok(()) => {
                metrics().dead_letters("router", "undecodable_event").inc();
                Handled::Done
            }
            Err(SendError::Abandoned | SendError::Rejected(_)) => Handled::Abandoned,
        }
    }
}
