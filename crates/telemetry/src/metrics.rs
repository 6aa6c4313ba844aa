//! Every metric the services export, named and described once. The README lists them.
//!
//! The registry is process-wide (like Prometheus' default registry), so any code records with
//! one call, e.g. `metrics().deliveries("delivered", status_class(Some(204))).inc()`, and the
//! telemetry server encodes it on each scrape. A service exports only what it records: label
//! sets appear on first use.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Label sets. Values are stable codes (event types, reason codes, outcome codes), never ids,
/// so that the number of series stays bounded.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventTypeLabel {
    pub event_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLetterLabels {
    pub stage: &'static str,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FilterErrorLabels {
    pub event_type: String,
    /// `missing_field`, `not_bool` or `failed` (`synap_filter::EvalError::kind`).
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
    pub status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusClassLabel {
    pub status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabel {
    pub tier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub service: String,
    pub version: &'static str,
}

/// Builds latency histograms with buckets from 5 ms to about 20 min (×2 each).
#[derive(Clone)]
pub struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.005, 2.0, 18))
    }
}

type Latency<L> = Family<L, Histogram, LatencyBuckets>;

/// The metric families. Use [`metrics()`] to reach them.
pub struct Metrics {
    registry: Registry,
    ingested: Family<EventTypeLabel, Counter>,
    dead_letters: Family<DeadLetterLabels, Counter>,
    routed: Family<EventTypeLabel, Counter>,
    filtered_out: Family<EventTypeLabel, Counter>,
    filter_errors: Family<FilterErrorLabels, Counter>,
    attempts: Family<OutcomeLabels, Counter>,
    deliveries: Family<OutcomeLabels, Counter>,
    attempt_duration: Latency<StatusClassLabel>,
    event_to_delivery: Histogram,
    consumer_lag: Family<PartitionLabels, Gauge>,
    consumer_gaps: Family<TopicLabel, Counter>,
    retries_pending: Family<TierLabel, Gauge>,
    deferred: Family<ReasonLabel, Counter>,
    circuits_open: Gauge,
    subscriptions_disabled: Gauge,
    attempt_log_backlog: Gauge,
    change_listener_restarts: Counter,
    build_info: Family<BuildLabels, Gauge>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("synap");
        let m = Metrics {
            registry: Registry::default(),
            ingested: Family::default(),
            dead_letters: Family::default(),
            routed: Family::default(),
            filtered_out: Family::default(),
            filter_errors: Family::default(),
            attempts: Family::default(),
            deliveries: Family::default(),
            attempt_duration: Family::new_with_constructor(LatencyBuckets),
            event_to_delivery: LatencyBuckets.new_metric(),
            consumer_lag: Family::default(),
            consumer_gaps: Family::default(),
            retries_pending: Family::default(),
            deferred: Family::default(),
            circuits_open: Gauge::default(),
            subscriptions_disabled: Gauge::default(),
            attempt_log_backlog: Gauge::default(),
            change_listener_restarts: Counter::default(),
            build_info: Family::default(),
        };
        registry.register(
            "ingested_records",
            "Inbound records accepted by ingest and written to their event topic, by event type",
            m.ingested.clone(),
        );
        registry.register(
            "dead_letters",
            "Records written to a dead-letter topic, by stage (ingest, router, sender) and reason code",
            m.dead_letters.clone(),
        );
        registry.register(
            "routed_deliveries",
            "Deliveries the router emitted (one per matching subscription), by event type",
            m.routed.clone(),
        );
        registry.register(
            "filtered_out",
            "Deliveries the router did not emit because the subscription's filter did not match \
             the event (false, or failed on it), by event type",
            m.filtered_out.clone(),
        );
        registry.register(
            "filter_errors",
            "Filter evaluations that failed on an event (counted as no match), by event type and \
             reason (missing_field, not_bool, failed)",
            m.filter_errors.clone(),
        );
        registry.register(
            "delivery_attempts",
            "HTTP delivery attempts, by outcome (delivered, http_<code>, timeout, connect, error) and status class (2xx to 5xx, none)",
            m.attempts.clone(),
        );
        registry.register(
            "deliveries",
            "Deliveries that reached a final outcome (delivered; dead_lettered: failed for good; dropped: subscription deleted or disabled meanwhile), by outcome and the status class of the last attempt",
            m.deliveries.clone(),
        );
        registry.register_with_unit(
            "delivery_attempt_duration",
            "Time from sending a webhook request to its response or failure, by status class",
            Unit::Seconds,
            m.attempt_duration.clone(),
        );
        registry.register_with_unit(
            "event_to_delivery",
            "Time from ingest accepting an event to its successful delivery",
            Unit::Seconds,
            m.event_to_delivery.clone(),
        );
        registry.register(
            "consumer_lag",
            "Records not yet done by this consumer, per topic and partition: high watermark minus the next offset to commit",
            m.consumer_lag.clone(),
        );
        registry.register(
            "consumer_gaps",
            "Times the broker skipped records of a topic and the consumer read them again (never on Apache Kafka; see synap_kafka::sequence)",
            m.consumer_gaps.clone(),
        );
        registry.register(
            "retries_pending",
            "Deliveries waiting for a retry, per delay tier",
            m.retries_pending.clone(),
        );
        registry.register(
            "deliveries_deferred",
            "Deliveries sent back to a retry tier without using up an attempt, by reason: their \
             subscription was busy (stalled, queue_full, rate_limited; the first tier) or their \
             circuit open (circuit_open; the cool-down's tier, or waiting in place when ordered)",
            m.deferred.clone(),
        );
        registry.register(
            "circuits_open",
            "Circuits (one per portal and endpoint) open in this sender: requests paused until a probe succeeds",
            m.circuits_open.clone(),
        );
        registry.register(
            "subscriptions_disabled",
            "Subscriptions disabled automatically (410 Gone, or failing for too long) and not resumed, \
             across the deployment (counted in PostgreSQL; every sender exports the same value: use max, not sum)",
            m.subscriptions_disabled.clone(),
        );
        registry.register(
            "attempt_log_backlog",
            "Delivery attempts waiting to be written to the attempt log in PostgreSQL",
            m.attempt_log_backlog.clone(),
        );
        registry.register(
            "change_listener_restarts",
            "Times the listener for portal and subscription changes (PostgreSQL LISTEN) lost its \
             connection or failed to listen; each time the caches of this process were cleared",
            m.change_listener_restarts.clone(),
        );
        registry.register(
            "build_info",
            "Always 1; labels name the service and its version",
            m.build_info.clone(),
        );
        Metrics { registry, ..m }
    }

    /// An event accepted by ingest.
    pub fn ingested(&self, event_type: &str) -> Counter {
        self.ingested.get_or_create(&EventTypeLabel { event_type: event_type.to_owned() }).clone()
    }

    /// A record dead-lettered by `stage` for `reason`.
    pub fn dead_letters(&self, stage: &'static str, reason: &str) -> Counter {
        self.dead_letters.get_or_create(&DeadLetterLabels { stage, reason: reason.to_owned() }).clone()
    }

    /// Deliveries emitted by the router for an event of `event_type`.
    pub fn routed(&self, event_type: &str) -> Counter {
        self.routed.get_or_create(&EventTypeLabel { event_type: event_type.to_owned() }).clone()
    }

    /// A delivery not emitted because its subscription's filter did not match.
    pub fn filtered_out(&self, event_type: &str) -> Counter {
        self.filtered_out.get_or_create(&EventTypeLabel { event_type: event_type.to_owned() }).clone()
    }

    /// A filter that failed on an event of `event_type`, for `reason`.
    pub fn filter_errors(&self, event_type: &str, reason: &'static str) -> Counter {
        self.filter_errors
            .get_or_create(&FilterErrorLabels { event_type: event_type.to_owned(), reason })
            .clone()
    }

    /// One HTTP attempt that ended in `outcome`; see [`status_class`].
    pub fn attempts(&self, outcome: &str, status_class: &'static str) -> Counter {
        self.attempts.get_or_create(&OutcomeLabels { outcome: outcome.to_owned(), status_class }).clone()
    }

    /// One delivery's final outcome, with the status class of its last attempt.
    pub fn deliveries(&self, outcome: &str, status_class: &'static str) -> Counter {
        self.deliveries.get_or_create(&OutcomeLabels { outcome: outcome.to_owned(), status_class }).clone()
    }

    /// Observe seconds from request to response (or failure).
    pub fn attempt_duration(&self, status_class: &'static str) -> Histogram {
        self.attempt_duration.get_or_create(&StatusClassLabel { status_class }).clone()
    }

    /// Observe seconds from ingest to successful delivery.
    pub fn event_to_delivery(&self) -> &Histogram {
        &self.event_to_delivery
    }

    /// Set the lag of one assigned partition.
    pub fn consumer_lag(&self, topic: &str, partition: i32) -> Gauge {
        self.consumer_lag.get_or_create(&PartitionLabels { topic: topic.to_owned(), partition }).clone()
    }

    /// Forget a partition this process no longer owns, so its last value does not linger.
    pub fn forget_consumer_lag(&self, topic: &str, partition: i32) {
        self.consumer_lag.remove(&PartitionLabels { topic: topic.to_owned(), partition });
    }

    /// The broker skipped records of `topic` and the consumer read them again.
    pub fn consumer_gaps(&self, topic: &str) -> Counter {
        self.consumer_gaps.get_or_create(&TopicLabel { topic: topic.to_owned() }).clone()
    }

    /// Set (or inc/dec) the deliveries waiting in a retry tier, e.g. `"5s"` or `"1h"`.
    pub fn retries_pending(&self, tier: &str) -> Gauge {
        self.retries_pending.get_or_create(&TierLabel { tier: tier.to_owned() }).clone()
    }

    /// A delivery deferred (no attempt used up): its subscription busy, or its circuit open.
    pub fn deferred(&self, reason: &'static str) -> Counter {
        self.deferred.get_or_create(&ReasonLabel { reason }).clone()
    }

    pub fn circuits_open(&self) -> &Gauge {
        &self.circuits_open
    }

    pub fn subscriptions_disabled(&self) -> &Gauge {
        &self.subscriptions_disabled
    }

    pub fn attempt_log_backlog(&self) -> &Gauge {
        &self.attempt_log_backlog
    }

    /// The change listener lost its connection (or could not listen): caches were cleared.
    pub fn change_listener_restarts(&self) -> &Counter {
        &self.change_listener_restarts
    }

    /// Records one HTTP attempt: its outcome code (`delivered`, `http_503`, `timeout`, …), the
    /// status code if a response came back, and how long it took.
    pub fn attempt_finished(&self, outcome: &str, status: Option<u16>, took: Duration) {
        let class = status_class(status);
        self.attempts(outcome, class).inc();
        self.attempt_duration(class).observe(took.as_secs_f64());
    }

    /// Records a delivery's final outcome (`delivered`, `dead_lettered`, `dropped`), the status
    /// of its last attempt, and for a delivered one the time since ingest (`ingested_at_ms`,
    /// Unix milliseconds; 0 when unknown).
    pub fn delivery_finished(&self, outcome: &str, status: Option<u16>, ingested_at_ms: i64) {
        self.deliveries(outcome, status_class(status)).inc();
        if outcome == "delivered" && ingested_at_ms > 0 {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            self.event_to_delivery.observe((now_ms - ingested_at_ms).max(0) as f64 / 1000.0);
        }
    }

    pub(crate) fn announce(&self, service: &str) {
        let labels = BuildLabels { service: service.to_owned(), version: env!("CARGO_PKG_VERSION") };
        self.build_info.get_or_create(&labels).set(1);
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// `2xx` … `5xx` for an HTTP status, `none` when no response came back.
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
        None => "none",
    }
}

/// The `tier` label of a retry delay: `500ms`, `5s`, `10m`, `1h`, … (the largest unit that
/// divides it).
pub fn delay_tier(delay: Duration) -> String {
    let ms = delay.as_millis();
    match ms {
        0 => "0s".into(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

/// The registry in the OpenMetrics text format.
pub fn encode() -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &metrics().registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A family shows once it has a series; touch every one.
    fn touch_all() {
        let m = metrics();
        m.ingested("exam.completed").inc();
        m.dead_letters("ingest", "not_json").inc();
        m.routed("exam.completed").inc();
        m.filtered_out("exam.completed").inc();
        m.filter_errors("exam.completed", "missing_field").inc();
        m.attempts("http_503", status_class(Some(503))).inc();
        m.deliveries("delivered", status_class(Some(204))).inc();
        m.attempt_duration(status_class(None)).observe(0.25);
        m.event_to_delivery().observe(1.5);
        m.consumer_lag("synap.deliveries", 3).set(7);
        m.retries_pending("5s").set(2);
        m.change_listener_restarts().inc();
        m.announce("test");
    }

    // The registry is process-wide and tests run in parallel: assert presence, not counts.
    #[test]
    fn every_family_is_described_and_recorded_values_show() {
        touch_all();
        let text = encode();
        for name in [
            "synap_ingested_records",
            "synap_dead_letters",
            "synap_routed_deliveries",
            "synap_filtered_out",
            "synap_filter_errors",
            "synap_delivery_attempts",
            "synap_deliveries",
            "synap_delivery_attempt_duration_seconds",
            "synap_event_to_delivery_seconds",
            "synap_consumer_lag",
            "synap_retries_pending",
            "synap_circuits_open",
            "synap_subscriptions_disabled",
            "synap_attempt_log_backlog",
            "synap_change_listener_restarts",
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "{name} missing:\n{text}");
        }
        assert!(
            text.contains(r#"synap_deliveries_total{outcome="delivered",status_class="2xx"} "#),
            "{text}"
        );
        assert!(text.contains(r#"synap_consumer_lag{topic="synap.deliveries",partition="3"} 7"#), "{text}");
        assert!(
            text.contains(r#"synap_delivery_attempt_duration_seconds_count{status_class="none"} "#),
            "{text}"
        );
    }

    #[test]
    fn the_dashboard_queries_only_metrics_that_exist() {
        touch_all();
        let text = encode();
        let dashboard = include_str!("../../../deploy/grafana/synap-webhooks.json");
        let mut checked = 0;
        for (at, _) in dashboard.match_indices("synap_") {
            let name: String =
                dashboard[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let family = ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            assert!(text.contains(&format!("# HELP {family} ")), "the dashboard queries unknown {name}");
            checked += 1;
        }
        assert!(checked > 10, "{checked} metric references");
    }

    #[test]
    fn delay_tiers() {
        assert_eq!(delay_tier(Duration::ZERO), "0s");
        assert_eq!(delay_tier(Duration::from_millis(200)), "200ms");
        assert_eq!(delay_tier(Duration::from_secs(5)), "5s");
        assert_eq!(delay_tier(Duration::from_secs(600)), "10m");
        assert_eq!(delay_tier(Duration::from_secs(7200)), "2h");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(Some(200)), "2xx");
        assert_eq!(status_class(Some(302)), "3xx");
        assert_eq!(status_class(Some(429)), "4xx");
        assert_eq!(status_class(Some(503)), "5xx");
        assert_eq!(status_class(None), "none");
    }
}
