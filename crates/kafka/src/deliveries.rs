//! The one builder of delivery records. The router (events), control's resend and recover (an
//! event again) and test send (an example body) all write deliveries, and the sender moves them
//! through its retry tiers: every one is built here, so that a field added to a delivery is set
//! everywhere or nowhere.

use prost::Message as _;
use rdkafka::message::{Headers, OwnedHeaders};
use synap_proto::pipeline::v1::{Delivery, Event};

use crate::produce::Outgoing;

/// The first attempt of delivering `event` to `subscription_id`.
pub fn of_event(event: &Event, subscription_id: &str) -> Delivery {
    Delivery {
        event_id: event.id.clone(),
        event_type: event.r#type.clone(),
        portal_id: event.portal_id.clone(),
        subscription_id: subscription_id.to_owned(),
        occurred_at_ms: event.occurred_at_ms,
        ingested_at_ms: event.ingested_at_ms,
        attempt: 1,
        // `Bytes`: shared with the event, not copied per subscription.
        data: event.data.clone(),
        test_send: false,
        due_at_ms: 0,
        scheduled_at_ms: 0,
    }
}

/// A delivery sent again from its first attempt (resend, recover): same event, same
/// `webhook-id`, a fresh retry schedule.
pub fn again(delivery: Delivery) -> Delivery {
    Delivery { attempt: 1, due_at_ms: 0, scheduled_at_ms: 0, test_send: false, ..delivery }
}

/// A test send: `data` (a type's example body) to one subscription, once, with its own id.
pub fn test_send(
    event_id: String,
    event_type: &str,
    portal_id: &str,
    subscription_id: &str,
    data: Vec<u8>,
) -> Delivery {
    let now_ms = chrono::Utc::now().timestamp_millis();
    Delivery {
        event_id,
        event_type: event_type.to_owned(),
        portal_id: portal_id.to_owned(),
        subscription_id: subscription_id.to_owned(),
        occurred_at_ms: now_ms,
        ingested_at_ms: now_ms,
        attempt: 1,
        data: data.into(),
        test_send: true,
        due_at_ms: 0,
        scheduled_at_ms: 0,
    }
}

/// The record of `delivery` for `topic` (the deliveries topic or a retry tier): keyed by
/// subscription, so that one subscription's deliveries share a partition and keep their order;
/// `headers` carry the event id and the trace context of the span that writes it.
pub fn record(topic: String, delivery: &Delivery) -> Outgoing {
    let headers = synap_telemetry::inject_kafka(crate::headers::copy_with(
        None::<&OwnedHeaders>,
        &[("synap-event-id", &delivery.event_id)],
    ));
    keyed(topic, delivery, headers)
}

/// W3C trace-context headers: what carries a record's trace.
const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// The record of `delivery` for `topic` in the trace of `read`, the record it was read from
/// (its `traceparent` and `tracestate`), whatever span is current: a retry waits seconds or hours
/// in a tier and is read back by another task, and its attempt must still be a child of the
/// router's span.
pub fn record_in_trace<H: Headers>(topic: String, delivery: &Delivery, read: Option<&H>) -> Outgoing {
    let mut headers = OwnedHeaders::new_with_capacity(3);
    headers =
        headers.insert(rdkafka::message::Header { key: "synap-event-id", value: Some(&delivery.event_id) });
    for h in read.into_iter().flat_map(|r| r.iter()) {
        if TRACE_HEADERS.iter().any(|t| h.key.eq_ignore_ascii_case(t)) {
            headers = headers.insert(rdkafka::message::Header { key: h.key, value: h.value });
        }
    }
    keyed(topic, delivery, headers)
}

/// Keyed by subscription, so that one subscription's deliveries share a partition and keep
/// their order.
fn keyed(topic: String, delivery: &Delivery, headers: OwnedHeaders) -> Outgoing {
    Outgoing {
        topic,
        key: delivery.subscription_id.clone().into_bytes(),
        payload: delivery.encode_to_vec(),
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn again_starts_a_fresh_schedule_for_the_same_event() {
        let event = Event {
            id: "evt_1".into(),
            r#type: "user.updated".into(),
            portal_id: "acme".into(),
            occurred_at_ms: 5,
            ingested_at_ms: 6,
            data: b"{}".to_vec().into(),
        };
        let first = of_event(&event, "sub_1");
        assert_eq!((first.attempt, first.test_send), (1, false));
        let later = Delivery { attempt: 4, due_at_ms: 9, scheduled_at_ms: 8, ..first.clone() };
        assert_eq!(again(later), first);
        let record = record("t".into(), &first);
        assert_eq!(record.key, b"sub_1");
        assert_eq!(Delivery::decode(record.payload.as_slice()).unwrap(), first);
    }

    #[test]
    fn a_record_in_trace_keeps_the_trace_it_was_read_in_and_nothing_else() {
        use rdkafka::message::Header;
        let delivery =
            Delivery { event_id: "evt_1".into(), subscription_id: "sub_1".into(), ..Default::default() };
        let read = OwnedHeaders::new()
            .insert(Header {
                key: "traceparent",
                value: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            })
            .insert(Header { key: "synap-event-id", value: Some("evt_1") })
            .insert(Header { key: "TraceState", value: Some("k=v") })
            .insert(Header { key: "synap-dlq-reason", value: Some("old") });
        let record = record_in_trace("t".into(), &delivery, Some(&read));
        let pairs: Vec<(&str, &[u8])> =
            record.headers.iter().map(|h| (h.key, h.value.unwrap_or_default())).collect();
        assert_eq!(
            pairs,
            [
                ("synap-event-id", &b"evt_1"[..]),
                ("traceparent", &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..]),
                ("TraceState", &b"k=v"[..]),
            ]
        );
        assert_eq!(record.key, b"sub_1");
        let untraced = record_in_trace("t".into(), &delivery, None::<&OwnedHeaders>);
        assert_eq!(untraced.headers.count(), 1, "only the event id");
    }
}
