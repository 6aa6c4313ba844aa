//! The router stage: one event in, one delivery per matching subscription out.

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use synap_contract::EventType;
use synap_kafka::{Handled, SendError, SetAside, Topics, Turn, deliveries, headers, send_in_turn};
use synap_proto::pipeline::v1::Event;
use synap_runtime::retry::{self, Stopped};
use synap_telemetry::metrics;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::filtering::EventView;
use crate::routes::{PortalRoutes, RouteCache};

pub struct Router {
    pub producer: FutureProducer,
    pub topics: Topics,
    pub routes: RouteCache,
    pub shutdown: CancellationToken,
}

impl Router {
    /// Handles one event; returns when every delivery it produced is acknowledged, or with the
    /// reason it is set aside (the consumer writes it to `synap.events.dlq`). Its span is a child
    /// of ingest's, through the record's headers.
    pub async fn handle(self: Arc<Self>, message: Arc<OwnedMessage>, turn: Turn) -> Handled {
        let span = tracing::info_span!(
            "route",
            otel.kind = "consumer",
            event_id = headers::get(message.headers(), "synap-event-id").unwrap_or_default(),
            trace_id = tracing::field::Empty,
        );
        synap_telemetry::continue_trace(&span, message.headers());
        self.process(&message, turn).instrument(span).await
    }

    async fn process(&self, message: &OwnedMessage, turn: Turn) -> Handled {
        let event = match Event::decode(message.payload().unwrap_or_default()) {
            Ok(event) => event,
            Err(e) => {
                return Handled::SetAside(SetAside::new(
                    "undecodable_event",
                    format!("not a synap.pipeline.v1.Event: {e}"),
                ));
            }
        };
        let Some(ty) = EventType::from_code(&event.r#type) else {
            return Handled::SetAside(SetAside::new(
                "unknown_type",
                format!("unknown event type {:?}", event.r#type),
            ));
        };
        let routes = match self.portal_routes(&event.portal_id).await {
            Ok(routes) => routes,
            Err(Stopped::Shutdown) => return Handled::Abandoned,
            Err(Stopped::Permanent(error)) => {
                return Handled::SetAside(SetAside::new(
                    "portal_unreadable",
                    format!("the portal's subscriptions cannot be read: {error}"),
                ));
            }
        };
        // In a block of its own: the filter bindings are not `Send` and must not live across
        // the send below.
        let records: Vec<_> = {
            let view = EventView::new(&event, ty);
            match routes.matches(ty, &view) {
                Ok(subscriptions) => subscriptions
                    .iter()
                    .map(|sub| {
                        deliveries::record(self.topics.deliveries(), &deliveries::of_event(&event, sub))
                    })
                    .collect(),
                Err(skip) => {
                    tracing::debug!(portal_id = %event.portal_id, ?skip, "event not routed");
                    return Handled::Done;
                }
            }
        };
        // In the event's turn: a portal's deliveries reach the deliveries topic in the order its
        // events were read, whatever order the lookups finish in.
        match send_in_turn(&self.producer, &records, turn, &self.shutdown).await {
            Ok(()) => {}
            Err(SendError::Abandoned) => return Handled::Abandoned,
            // The body fits its event topic but not the deliveries topic: no delivery of it can
            // ever be written. Those already written stand; a re-drive repeats them with the same
            // `webhook-id`.
            Err(SendError::Rejected(why)) => {
                return Handled::SetAside(SetAside::new(
                    "delivery_too_large",
                    format!("the broker refused a delivery of this event: {why}"),
                ));
            }
        }
        metrics().routed(ty.code()).inc_by(records.len() as u64);
        tracing::debug!(deliveries = records.len(), "event routed");
        Handled::Done
    }

    /// Reads the portal's routes, retrying while the database is unavailable.
    async fn portal_routes(
        &self,
        portal_id: &str,
    ) -> Result<Arc<PortalRoutes>, Stopped<Arc<synap_db::DbError>>> {
        retry::transient(
            &self.shutdown,
            Duration::from_millis(100),
            || self.routes.get(portal_id),
            |error, retry_in| tracing::warn!(portal_id, %error, ?retry_in, "cannot read routes"),
        )
        .await
    }
}
