//! W3C trace context (`traceparent`, `tracestate`) across Kafka record headers and outbound HTTP
//! requests, so that one event is one trace from the producer to the customer's endpoint.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct KafkaHeaders<'a, H>(&'a H);

impl<H: Headers> Extractor for KafkaHeaders<'_, H> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| h.key.eq_ignore_ascii_case(key))
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|h| h.key).collect()
    }
}

#[derive(Default)]
struct Pairs(Vec<(String, String)>);

impl Injector for Pairs {
    fn set(&mut self, key: &str, value: String) {
        // An empty `tracestate` is allowed but says nothing.
        if value.is_empty() {
            return;
        }
        self.0.push((key.to_owned(), value));
    }
}

struct HttpHeaders<'a>(&'a mut http::HeaderMap);

impl Injector for HttpHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` continue the trace carried by a record's headers, when they carry one, and
/// records its trace id in the span's `trace_id` field (declare it `tracing::field::Empty`) so
/// that every log line inside the span names the trace.
pub fn continue_trace<H: Headers>(span: &tracing::Span, headers: Option<&H>) {
    let mut trace_id = opentelemetry::trace::TraceId::INVALID;
    if let Some(headers) = headers {
        let parent = TraceContextPropagator::new().extract(&KafkaHeaders(headers));
        let parent_span = parent.span();
        if parent_span.span_context().is_valid() {
            // A child keeps its parent's trace id, so it is known without building the span's
            // context (a lookup and an allocation per record). Linking fails only when no
            // OpenTelemetry layer is installed (unit tests): the id still names the trace.
            trace_id = parent_span.span_context().trace_id();
            let _ = span.set_parent(parent);
        }
    }
    if trace_id == opentelemetry::trace::TraceId::INVALID {
        trace_id = span.context().span().span_context().trace_id();
    }
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// The span of one HTTP delivery attempt, a child of the router's span through the delivery
/// record's headers (so retries read back from a topic later stay in the event's trace).
/// Instrument the attempt with it, and call [`inject_http`] inside it.
pub fn attempt_span<H: Headers>(
    headers: Option<&H>,
    event_id: &str,
    subscription_id: &str,
    attempt: u32,
) -> tracing::Span {
    let span = tracing::info_span!(
        "delivery attempt",
        otel.kind = "client",
        event_id,
        subscription_id,
        attempt,
        trace_id = tracing::field::Empty,
    );
    continue_trace(&span, headers);
    span
}

/// The trace context of the current span, as `(name, value)` record headers.
pub fn trace_headers() -> Vec<(String, String)> {
    let mut pairs = Pairs::default();
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut pairs);
    pairs.0
}

/// `headers` with the current span's trace context appended.
pub fn inject_kafka(headers: OwnedHeaders) -> OwnedHeaders {
    trace_headers()
        .iter()
        .fold(headers, |out, (key, value)| out.insert(Header { key, value: Some(value.as_str()) }))
}

/// `telemetry.outbound_traceparent`; on until [`crate::init`] reads the configuration.
static OUTBOUND_TRACEPARENT: AtomicBool = AtomicBool::new(true);

pub(crate) fn set_outbound_traceparent(on: bool) {
    OUTBOUND_TRACEPARENT.store(on, Ordering::Relaxed);
}

/// Sets `traceparent` (and `tracestate` when there is one) on an outbound request, from the
/// current span, unless the deployment turned it off (`telemetry.outbound_traceparent`).
pub fn inject_http(headers: &mut http::HeaderMap) {
    if !OUTBOUND_TRACEPARENT.load(Ordering::Relaxed) {
        return;
    }
    TraceContextPropagator::new()
        .inject_context(&tracing::Span::current().context(), &mut HttpHeaders(headers));
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn with_otel(test: impl FnOnce()) {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, test);
    }

    #[test]
    fn a_record_trace_continues_into_outgoing_records_and_requests() {
        with_otel(|| {
            let inbound = OwnedHeaders::new().insert(Header { key: "traceparent", value: Some(PARENT) });
            let span = tracing::info_span!("handle", trace_id = tracing::field::Empty);
            continue_trace(&span, Some(&inbound));
            let _entered = span.enter();

            let out = inject_kafka(OwnedHeaders::new());
            let header = out.iter().find(|h| h.key == "traceparent").expect("traceparent header");
            let value = std::str::from_utf8(header.value.unwrap()).unwrap();
            assert!(value.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{value}");
            assert!(!value.contains("00f067aa0ba902b7"), "a child span, not the parent: {value}");

            let mut http = http::HeaderMap::new();
            inject_http(&mut http);
            assert_eq!(http["traceparent"], value);
        });
    }

    /// A record from a careless or hostile producer: a `traceparent` that is not one, or names
    /// no trace, starts a trace of its own; it is never continued or echoed.
    #[test]
    fn a_record_whose_traceparent_is_unusable_starts_its_own_trace() {
        let long = format!("00-{}-00f067aa0ba902b7-01", "4".repeat(10_000));
        let unusable: [&[u8]; 6] = [
            b"garbage",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
            b"00-\xff\xfe-00f067aa0ba902b7-01",
            long.as_bytes(),
        ];
        for value in unusable {
            with_otel(|| {
                let inbound = OwnedHeaders::new().insert(Header { key: "traceparent", value: Some(value) });
                let span = tracing::info_span!("handle", trace_id = tracing::field::Empty);
                continue_trace(&span, Some(&inbound));
                let _entered = span.enter();
                let headers = trace_headers();
                let (_, out) = headers.iter().find(|(key, _)| *key == "traceparent").expect("traceparent");
                let trace_id = out.split('-').nth(1).unwrap();
                assert_eq!(trace_id.len(), 32, "{out}");
                assert_ne!(trace_id, "0".repeat(32), "a valid trace of its own: {out}");
                assert!(!value.windows(32).any(|w| w == trace_id.as_bytes()), "not continued: {out}");
            });
        }
    }

    #[test]
    fn a_record_without_context_starts_a_trace() {
        with_otel(|| {
            let span = tracing::info_span!("handle", trace_id = tracing::field::Empty);
            continue_trace(&span, None::<&OwnedHeaders>);
            let _entered = span.enter();
            let headers = trace_headers();
            assert_eq!(headers.len(), 1, "{headers:?}");
            assert_eq!(headers[0].0, "traceparent");
        });
    }
}
