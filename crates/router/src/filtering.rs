//! Subscription filters in the router: the event as filters see it, built at most once per
//! event and only when one of its subscriptions has a filter, and the decision per
//! subscription. A filter that fails on an event (a missing field, a wrong type) is "no match":
//! it is counted and logged, and routing goes on.

use std::cell::OnceCell;

use chrono::DateTime;
use synap_contract::EventType;
use synap_db::Route;
use synap_filter::{Bindings, EvalError, Event};
use synap_proto::pipeline::v1::Event as PipelineEvent;
use synap_telemetry::metrics;

/// One event, with its filter bindings made on first use.
pub struct EventView<'a> {
    event: &'a PipelineEvent,
    ty: EventType,
    /// `None` inside when the body is not JSON (ingest admits only JSON objects, so only a
    /// record written around ingest can be).
    bindings: OnceCell<Option<Bindings>>,
}

impl<'a> EventView<'a> {
    pub fn new(event: &'a PipelineEvent, ty: EventType) -> Self {
        EventView { event, ty, bindings: OnceCell::new() }
    }

    fn bindings(&self) -> Option<&Bindings> {
        self.bindings
            .get_or_init(|| {
                let data: serde_json::Value = serde_json::from_slice(&self.event.data).ok()?;
                let occurred_at =
                    DateTime::from_timestamp_millis(self.event.occurred_at_ms).unwrap_or_default();
                Some(Bindings::new(&Event {
                    ty: self.ty,
                    portal_id: &self.event.portal_id,
                    occurred_at,
                    data: &data,
                }))
            })
            .as_ref()
    }
}

/// Whether the route's filter lets the event through (true when it has none).
pub fn admits(route: &Route, event: &EventView<'_>) -> bool {
    let Some(filter) = &route.filter else { return true };
    let ty = event.ty.code();
    let outcome = match (filter, event.bindings()) {
        (Ok(filter), Some(bindings)) => filter.matches(bindings),
        (Ok(_), None) => Err(EvalError::Failed("the event body is not JSON".into())),
        (Err(invalid), _) => Err(EvalError::Failed(format!("the stored filter does not compile: {invalid}"))),
    };
    match outcome {
        Ok(true) => true,
        Ok(false) => {
            metrics().filtered_out(ty).inc();
            false
        }
        Err(error) => {
            metrics().filter_errors(ty, error.kind()).inc();
            metrics().filtered_out(ty).inc();
            tracing::debug!(subscription_id = %route.subscription_id, %error, "filter failed on the event: no match");
            false
        }
    }
}
