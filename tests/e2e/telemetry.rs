//! What an SRE sees: Prometheus metrics, health and readiness on every service, and one trace
//! per event from the producer through ingest and the router to the delivery attempt.

use std::collections::HashMap;
use std::time::Duration;

use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use synap_contract::EventType;
use synap_proto::control::v1 as api;
use synap_tests::kafka::{produce, produce_with_headers, producer};
use synap_tests::postgres::Throwaway;
use synap_tests::{Receiver, Service, Stack};

use crate::support::{envelope, pro_portal_subscribed};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_serves_metrics_health_and_readiness() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = pro_portal_subscribed(&mut control, receiver.url("/hook"), EventType::ExamCompleted).await;

    let kafka = producer(&stack.bootstrap);
    let ty = EventType::ExamCompleted;
    produce(&kafka, &stack.topic("inbound"), &portal, &envelope(ty, &portal, None, &ty.example_body()), None)
        .await;
    produce(&kafka, &stack.topic("inbound"), &portal, b"not json", None).await;
    receiver.wait_for("/hook", 1, WAIT).await;

    for service in Service::ALL {
        assert_eq!(stack.telemetry_get(service, "/healthz").await.0, 200, "{service:?} /healthz");
        let (status, body) = stack.telemetry_get(service, "/readyz").await;
        assert_eq!(status, 200, "{service:?} /readyz: {body}");
        let (status, metrics) = stack.telemetry_get(service, "/metrics").await;
        assert_eq!(status, 200);
        let build = format!(r#"synap_build_info{{service="{}""#, service_binary(service));
        assert!(metrics.contains(&build), "{service:?} names itself:\n{metrics}");
    }

    let ingest = scrape_until(&stack, Service::Ingest, "synap_consumer_lag{").await;
    for expected in [
        r#"synap_ingested_records_total{event_type="exam.completed"} 1"#,
        r#"synap_dead_letters_total{stage="ingest",reason="not_json"} 1"#,
        "# HELP synap_consumer_lag ",
    ] {
        assert!(ingest.contains(expected), "ingest exports {expected}:\n{ingest}");
    }
    let router = stack.telemetry_get(Service::Router, "/metrics").await.1;
    assert!(router.contains(r#"synap_routed_deliveries_total{event_type="exam.completed"} 1"#), "{router}");
    let sender = stack.telemetry_get(Service::Sender, "/metrics").await.1;
    for expected in [
        r#"synap_delivery_attempts_total{outcome="delivered",status_class="2xx"} 1"#,
        r#"synap_deliveries_total{outcome="delivered",status_class="2xx"} 1"#,
        r#"synap_delivery_attempt_duration_seconds_count{status_class="2xx"} 1"#,
        "synap_event_to_delivery_seconds_count 1",
        "# HELP synap_retries_pending ",
        "# HELP synap_circuits_open ",
        "# HELP synap_subscriptions_disabled ",
        "# HELP synap_attempt_log_backlog ",
    ] {
        assert!(sender.contains(expected), "sender exports {expected}:\n{sender}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_service_is_alive_but_not_ready() {
    let mut stack = Stack::start().await;
    stack.wait_ready().await;
    // An endpoint that accepts the connection and never answers keeps an attempt in flight.
    let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", black_hole.local_addr().unwrap());
    let mut control = stack.control().await;
    let portal = pro_portal_subscribed(&mut control, url, EventType::ExamCompleted).await;
    let ty = EventType::ExamCompleted;
    let payload = envelope(ty, &portal, None, &ty.example_body());
    produce(&producer(&stack.bootstrap), &stack.topic("inbound"), &portal, &payload, None).await;
    let (_held, _) =
        tokio::time::timeout(WAIT, black_hole.accept()).await.expect("the attempt connects").unwrap();

    stack.terminate(Service::Sender);
    // Not ready while draining.
    let body = stack.wait_for_readyz(Service::Sender, 503, Duration::from_secs(2)).await;
    assert!(body.contains("draining"), "{body}");
    assert_eq!(stack.telemetry_get(Service::Sender, "/healthz").await.0, 200, "still alive");
    stack.stop(Service::Sender).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_stops_answering_ends_calls_and_readiness_until_it_answers_again() {
    // Frozen, not stopped: connections stay open and a query on one waits for ever, so a check
    // without a bound of its own would leave "reachable" standing.
    let pg = Throwaway::start();
    let stack = Stack::start_on(
        &pg.url(),
        &[("SYNAP_CONTROL__CALL_TIMEOUT_MS", "3000"), ("SYNAP_CONTROL__TEST_SEND_TIMEOUT_MS", "2000")],
    )
    .await;
    stack.wait_ready().await;
    let mut control = stack.control().await;
    let frozen = pg.freeze();
    // An API call ends at control.call_timeout_ms, telling the caller to try again, rather than
    // waiting as long as the database does.
    let started = tokio::time::Instant::now();
    let ended = control.get_portal(api::GetPortalRequest { id: "any".into() }).await.unwrap_err();
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended:?}");
    assert!(ended.message().contains("control.call_timeout_ms"), "{ended:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    for service in [Service::Control, Service::Router, Service::Sender] {
        let body = stack.wait_for_readyz(service, 503, Duration::from_secs(40)).await;
        assert!(body.contains("postgres: "), "{service:?}: {body}");
    }
    drop(frozen);
    for service in [Service::Control, Service::Router, Service::Sender] {
        stack.wait_for_readyz(service, 200, Duration::from_secs(40)).await;
    }
    let answered = control.get_portal(api::GetPortalRequest { id: "any".into() }).await.unwrap_err();
    assert_eq!(answered.code(), tonic::Code::NotFound, "answered again: {answered:?}");
}

fn service_binary(service: Service) -> &'static str {
    match service {
        Service::Ingest => "synap-ingest",
        Service::Router => "synap-router",
        Service::Sender => "synap-sender",
        Service::Control => "synap-control",
    }
}

/// The consumer lag comes from librdkafka statistics every few seconds: scrape until it shows.
async fn scrape_until(stack: &Stack, service: Service, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let body = stack.telemetry_get(service, "/metrics").await.1;
        if body.contains(needle) || tokio::time::Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The producer's trace, as a platform service would send it in the record's headers.
const PRODUCER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PRODUCER_SPAN: &str = "b7ad6b7169203331";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_is_one_trace_from_producer_to_delivery_attempt() {
    let mut collector = FakeCollectorServer::start().await.expect("OTLP receiver");
    let endpoint = collector.endpoint();
    let mut stack = Stack::start_with(&[("SYNAP_TELEMETRY__OTLP_ENDPOINT", &endpoint)]).await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = pro_portal_subscribed(&mut control, receiver.url("/hook"), EventType::ExamCompleted).await;

    let ty = EventType::ExamCompleted;
    let traceparent = format!("00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01");
    let payload = envelope(ty, &portal, Some("evt_traced"), &ty.example_body());
    produce_with_headers(
        &producer(&stack.bootstrap),
        &stack.topic("inbound"),
        &portal,
        &payload,
        &[("traceparent", &traceparent)],
    )
    .await;
    let request = receiver.wait_for("/hook", 1, WAIT).await.remove(0);

    // A clean stop exports what the batch exporters still hold.
    for service in [Service::Ingest, Service::Router, Service::Sender] {
        stack.stop(service).await;
    }
    let spans: Vec<ExportedSpan> = collector
        .exported_spans(3, WAIT)
        .await
        .into_iter()
        .filter(|s| s.trace_id == PRODUCER_TRACE)
        .collect();
    let by_name: HashMap<&str, &ExportedSpan> = spans.iter().map(|s| (s.name.as_str(), s)).collect();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let (Some(ingest), Some(route), Some(attempt)) =
        (by_name.get("ingest"), by_name.get("route"), by_name.get("delivery attempt"))
    else {
        panic!(
            "expected the spans ingest, route and delivery attempt in the producer's trace, got {names:?}"
        );
    };
    assert_eq!(spans.len(), 3, "one span per stage: {names:?}");
    assert_eq!(ingest.parent_span_id, PRODUCER_SPAN, "ingest continues the producer's span");
    assert_eq!(route.parent_span_id, ingest.span_id, "the router's span is ingest's child");
    assert_eq!(attempt.parent_span_id, route.span_id, "the attempt is the router's child");
    let attribute = |span: &ExportedSpan, key: &str| span.attributes.get(key).cloned().unwrap_or_default();
    assert!(attribute(ingest, "event_id").contains("\"evt_traced\""), "{:?}", ingest.attributes);
    assert!(attribute(attempt, "event_id").contains("\"evt_traced\""), "{:?}", attempt.attributes);

    // The customer gets the attempt's context, to join our trace to theirs.
    let sent = request.header("traceparent").expect("outbound traceparent");
    assert_eq!(sent, format!("00-{PRODUCER_TRACE}-{}-01", attempt.span_id));
}

/// A retry is read back from a tier topic seconds later, by whatever task is current then: its
/// attempt must still be a child of the router's span, in the producer's trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_attempt_stays_in_the_events_trace() {
    let mut collector = FakeCollectorServer::start().await.expect("OTLP receiver");
    let endpoint = collector.endpoint();
    let mut stack = Stack::start_with(&[
        ("SYNAP_TELEMETRY__OTLP_ENDPOINT", &endpoint),
        ("SYNAP_SENDER__RETRY_DELAYS_MS", "[300]"),
    ])
    .await;
    let receiver = Receiver::start().await;
    receiver.script("/hook", vec![synap_tests::Reply::Status(503)]);
    let mut control = stack.control().await;
    let ty = EventType::ExamCompleted;
    let portal = pro_portal_subscribed(&mut control, receiver.url("/hook"), ty).await;
    let traceparent = format!("00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01");
    let payload = envelope(ty, &portal, Some("evt_retried"), &ty.example_body());
    produce_with_headers(
        &producer(&stack.bootstrap),
        &stack.topic("inbound"),
        &portal,
        &payload,
        &[("traceparent", &traceparent)],
    )
    .await;
    let requests = receiver.wait_for("/hook", 2, WAIT).await;

    for service in [Service::Ingest, Service::Router, Service::Sender] {
        stack.stop(service).await;
    }
    let spans: Vec<ExportedSpan> = collector.exported_spans(4, WAIT).await;
    let route = spans
        .iter()
        .find(|s| s.name == "route" && s.trace_id == PRODUCER_TRACE)
        .expect("the router's span in the producer's trace");
    let attempts: Vec<&ExportedSpan> = spans.iter().filter(|s| s.name == "delivery attempt").collect();
    assert_eq!(attempts.len(), 2, "the first attempt and its retry: {spans:#?}");
    for attempt in &attempts {
        assert_eq!(attempt.trace_id, PRODUCER_TRACE, "every attempt in the event's trace");
        assert_eq!(attempt.parent_span_id, route.span_id, "every attempt a child of the router's span");
    }
    for (request, attempt) in requests.iter().zip(["1", "2"]) {
        assert_eq!(request.header("synap-delivery-attempt"), Some(attempt));
        let sent = request.header("traceparent").expect("outbound traceparent");
        assert!(sent.starts_with(&format!("00-{PRODUCER_TRACE}-")), "attempt {attempt}: {sent}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_can_turn_the_outbound_traceparent_off() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let ty = EventType::InviteSent;
    let portal = pro_portal_subscribed(&mut control, receiver.url("/with"), ty).await;
    let quiet = control
        .create_subscription(synap_proto::control::v1::CreateSubscriptionRequest {
            portal_id: portal.clone(),
            url: receiver.url("/without"),
            event_types: vec![ty.code().into()],
            omit_traceparent: true,
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner()
        .subscription
        .unwrap();
    assert!(quiet.omit_traceparent, "the option is stored and returned");

    let kafka = producer(&stack.bootstrap);
    produce(&kafka, &stack.topic("inbound"), &portal, &envelope(ty, &portal, None, &ty.example_body()), None)
        .await;
    let with = receiver.wait_for("/with", 1, WAIT).await.remove(0);
    let without = receiver.wait_for("/without", 1, WAIT).await.remove(0);
    assert!(with.header("traceparent").is_some_and(|t| t.starts_with("00-")), "sent by default");
    assert_eq!(without.header("traceparent"), None, "omitted for the subscription that asked");
    assert_eq!(with.header("webhook-id"), without.header("webhook-id"), "the same event");
}
