//! One bad endpoint hurts nobody else; ordered subscriptions keep their order; the outbound
//! policy refuses private addresses at send time.

use std::time::{Duration, Instant};

use synap_tests::{Receiver, Reply, Service, Stack};

use crate::delivery_support::{
    add_subscription, assert_all_delivered, event_ids, portal_with_subscription, publish, wait_for_log,
    wait_until_all,
};

const WAIT: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_failing_and_unreachable_endpoints_do_not_slow_a_healthy_one() {
    // Few slots in all, so that without per-subscription limits the bad endpoints would take
    // every one of them.
    let stack = Stack::start_with(&[
        ("SYNAP_SENDER__MAX_IN_FLIGHT", "16"),
        ("SYNAP_SENDER__MAX_IN_FLIGHT_PER_SUBSCRIPTION", "4"),
        ("SYNAP_SENDER__SLOT_WAIT_MS", "200"),
        ("SYNAP_SENDER__RETRY_DELAYS_MS", "[1000, 1000, 1000]"),
        ("SYNAP_SENDER__BREAKER_FAILURES", "3"),
        ("SYNAP_SENDER__BREAKER_COOLDOWN_MS", "5000"),
        ("SYNAP_SENDER__REQUEST_TIMEOUT_MS", "30000"),
    ])
    .await;
    let (healthy, hanging, failing) =
        (Receiver::start().await, Receiver::start().await, Receiver::start().await);
    hanging.always("/hook", Reply::Hang);
    failing.always("/hook", Reply::Status(500));
    let (portal, healthy_sub, _) = portal_with_subscription(&stack, healthy.url("/hook")).await;
    add_subscription(&stack, &portal, hanging.url("/hook")).await;
    let failing_sub = add_subscription(&stack, &portal, failing.url("/hook")).await;
    add_subscription(&stack, &portal, "http://127.0.0.1:9/unreachable".into()).await;

    let n = 40;
    let ids = event_ids("iso", n);
    let started = Instant::now();
    publish(&stack, &portal, &ids).await;
    let got = healthy.wait_for("/hook", n, Duration::from_secs(60)).await;
    let took = started.elapsed();
    let mut seen: Vec<&str> = got.iter().map(|r| r.header("webhook-id").unwrap()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n, "every event reached the healthy endpoint");
    // Generous: about 2 s on an idle machine, 4 to 8 s on a loaded CI runner. Without isolation
    // the hanging endpoint's 30 s requests hold the shared slots first.
    assert!(took < Duration::from_secs(28), "healthy endpoint got its {n} deliveries in {took:?}");
    let log = wait_for_log(&stack, &healthy_sub, WAIT, |log| log.len() >= n).await;
    assert!(log.iter().all(|a| a.outcome == "delivered"));

    // The bad endpoints' deliveries reach their states on their own time: on a fast run the
    // healthy endpoint has all of its deliveries before the hanging one has seen a request.
    // The hanging endpoint's queue is sent to a retry tier once it stops moving, rather than
    // holding the sender's buffer; the failing endpoint's circuit opens, and its deliveries
    // wait for the probe without a request, an attempt or a log row.
    let deferred = |reason: &str| format!("synap_deliveries_deferred_total{{reason=\"{reason}\"}}");
    for reason in ["stalled", "circuit_open"] {
        stack.wait_for_metric(Service::Sender, &deferred(reason), WAIT, |v| v > Some(0.0)).await;
    }

    // The hanging endpoint never had more than its 4 requests open: none of them can finish
    // (time out) within 29 s of the first. (16, all shared slots, without the limit.)
    let hung = hanging.wait_for("/hook", 1, WAIT).await;
    let window = hung[0].at + Duration::from_secs(29);
    let open = hung.iter().filter(|r| r.at < window).count();
    assert!(open <= 4, "{open} requests open at once to the hanging endpoint");

    // The control API can see since when the failing endpoint's circuit is open.
    let requests = failing.at("/hook").len();
    assert!(requests < n, "{requests} requests for {n} deliveries to the failing endpoint");
    let log = crate::delivery_support::attempts(&stack, &failing_sub).await;
    assert!(
        log.iter().all(|a| a.status_code == Some(500)),
        "a row per request, none for a deferral: {log:#?}"
    );
    assert!(log.len() <= requests, "{} rows for {requests} requests", log.len());
    let pool =
        synap_db::connect(&synap_db::DatabaseConfig { url: stack.database_url(), pool_size: 1 }).unwrap();
    // The sender records transitions in the background, after it acts on them.
    let deadline = Instant::now() + WAIT;
    let circuit = loop {
        match synap_db::circuits::of_subscription(&pool, &failing_sub).await.unwrap() {
            Some(circuit) => break circuit,
            None if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            None => panic!("the open circuit is not recorded after {WAIT:?}"),
        }
    };
    assert_eq!(circuit.state, synap_db::circuits::CircuitState::Open);
    assert_eq!(
        (circuit.endpoint.as_str(), circuit.reason.as_deref()),
        (failing.url("/hook").as_str(), Some("http_500"))
    );
    assert!(circuit.opened_at.is_some_and(|at| at <= circuit.changed_at), "{circuit:?}");
    let healthy_circuit = synap_db::circuits::of_subscription(&pool, &healthy_sub).await.unwrap();
    assert_eq!(healthy_circuit, None, "the healthy endpoint's circuit never opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_to_a_slow_but_answering_endpoint_waits_its_turn_in_memory() {
    // 2 requests at a time, 150 ms each: 30 events take about 2.3 s, far past the 300 ms a
    // delivery may wait without the subscription moving. They wait in memory all the same,
    // because a request finishes every 75 ms and the last gets its turn before the first tier
    // (5 s) would hand it back; none takes a detour through a retry tier. (One event first:
    // until an endpoint has answered once, only 4 deliveries per slot may wait.)
    let stack = Stack::start_with(&[
        ("SYNAP_SENDER__MAX_IN_FLIGHT_PER_SUBSCRIPTION", "2"),
        ("SYNAP_SENDER__SLOT_WAIT_MS", "300"),
        ("SYNAP_SENDER__RETRY_DELAYS_MS", "[5000]"),
    ])
    .await;
    let receiver = Receiver::start().await;
    receiver.always("/slow", Reply::Slow(Duration::from_millis(150)));
    let (portal, sub, _) = portal_with_subscription(&stack, receiver.url("/slow")).await;

    publish(&stack, &portal, &event_ids("first", 1)).await;
    // Logged means answered: the request has finished, not only arrived.
    wait_for_log(&stack, &sub, WAIT, |log| !log.is_empty()).await;
    let n = 30;
    publish(&stack, &portal, &event_ids("burst", n)).await;
    let got = receiver.wait_for("/slow", n + 1, WAIT).await;
    assert_eq!(got.len(), n + 1);
    let log = wait_for_log(&stack, &sub, WAIT, |log| log.len() > n).await;
    assert!(log.iter().all(|a| a.outcome == "delivered" && a.attempt == 1), "{log:?}");
    let (_, metrics) = stack.telemetry_get(Service::Sender, "/metrics").await;
    assert!(!metrics.contains("synap_deliveries_deferred_total{"), "nothing deferred: {metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_queues_only_what_it_sends_before_the_first_tier_is_back() {
    // The first tier and the stall time are 1 s. The slow endpoint takes 500 ms a request, 2 at
    // a time: 4 a second, so only about 4 of its deliveries wait in memory and the rest go round
    // the tier, keeping the sender's buffer for the fast endpoint of the same portal. Nothing is
    // lost, and a deferral uses up no attempt.
    let stack = Stack::start_with(&[
        ("SYNAP_SENDER__MAX_IN_FLIGHT_PER_SUBSCRIPTION", "2"),
        ("SYNAP_SENDER__SLOT_WAIT_MS", "1000"),
        ("SYNAP_SENDER__RETRY_DELAYS_MS", "[1000, 1000, 1000]"),
    ])
    .await;
    let (slow, fast) = (Receiver::start().await, Receiver::start().await);
    slow.always("/slow", Reply::Slow(Duration::from_millis(500)));
    fast.always("/fast", Reply::Slow(Duration::from_millis(5)));
    let (portal, slow_sub, _) = portal_with_subscription(&stack, slow.url("/slow")).await;
    let fast_sub = add_subscription(&stack, &portal, fast.url("/fast")).await;

    // Both answer once first: until then only 4 per slot may wait, whatever the pace.
    let first = event_ids("first", 1);
    publish(&stack, &portal, &first).await;
    wait_for_log(&stack, &slow_sub, WAIT, |log| !log.is_empty()).await;
    wait_for_log(&stack, &fast_sub, WAIT, |log| !log.is_empty()).await;

    let n = 24;
    let ids = event_ids("burst", n);
    publish(&stack, &portal, &ids).await;
    fast.wait_for("/fast", n + 1, WAIT).await;
    let when_fast_done = stack
        .metric(Service::Sender, "synap_deliveries_deferred_total{reason=\"queue_full\"}")
        .await
        .unwrap_or(0.0);
    // 2 slots and 4 waiting take 6 of the 24 at once; the rest were turned away, some more
    // than once (each comes back to a queue still full).
    assert!(when_fast_done >= (n - 6) as f64, "{when_fast_done} deferrals");

    let all: Vec<String> = first.into_iter().chain(ids).collect();
    wait_until_all(&slow, "/slow", &all, Duration::from_secs(60)).await;
    assert_all_delivered(&slow, "/slow", &all);
    let log = wait_for_log(&stack, &slow_sub, WAIT, |log| log.len() > n).await;
    assert!(log.iter().all(|a| a.outcome == "delivered" && a.attempt == 1), "{log:#?}");
    let log = wait_for_log(&stack, &fast_sub, WAIT, |log| log.len() > n).await;
    assert!(log.iter().all(|a| a.outcome == "delivered" && a.attempt == 1), "{log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_subscription_keeps_its_order_through_failures() {
    let stack = Stack::start_with(&[("SYNAP_SENDER__RETRY_DELAYS_MS", "[300, 300, 300]")]).await;
    let receiver = Receiver::start().await;
    let (portal, sub, _) = portal_with_subscription(&stack, receiver.url("/ordered")).await;
    let db = stack.database().await;
    db.execute("UPDATE subscriptions SET ordered = TRUE WHERE id = $1", &[&sub]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await; // the sender's 1 s cache
    receiver.script(
        "/ordered",
        vec![
            Reply::Status(500),
            Reply::Status(503),
            Reply::Status(200),
            Reply::Status(500),
            Reply::Status(200),
        ],
    );

    let ids = event_ids("ord", 8);
    for id in &ids {
        // One at a time, so that the pipeline before the sender sees them in this order too.
        publish(&stack, &portal, std::slice::from_ref(id)).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let got = receiver.wait_for("/ordered", ids.len() + 3, WAIT).await;
    let order: Vec<usize> = got
        .iter()
        .map(|r| ids.iter().position(|id| Some(id.as_str()) == r.header("webhook-id")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "requests in event order, retries in place: {order:?}");
    assert_eq!(order.iter().filter(|i| **i == 0).count(), 3, "the head was tried three times");
    wait_for_log(&stack, &sub, WAIT, |log| {
        log.iter().filter(|a| a.outcome == "delivered").count() == ids.len()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_at_send_time() {
    // Control allows every address and name (so that these subscriptions can be created at
    // all); the sender has no allowlist: only public addresses. It lets `localhost` (only that
    // name) past the name rule, so that one name is resolved and refused for its addresses.
    let stack = Stack::start_with_per_service(
        &[("SYNAP_SENDER__RETRY_DELAYS_MS", "[]")],
        &[
            (Service::Sender, "SYNAP_OUTBOUND__ALLOW_CIDRS", "[]"),
            (Service::Sender, "SYNAP_OUTBOUND__ALLOW_HOSTS", "[\"localhost\"]"),
            (Service::Control, "SYNAP_OUTBOUND__ALLOW_CIDRS", "[\"0.0.0.0/0\", \"::/0\"]"),
            (Service::Control, "SYNAP_OUTBOUND__ALLOW_HOSTS", "[\".localhost\", \"localhost\"]"),
        ],
    )
    .await;
    let receiver = Receiver::start().await;
    let port = receiver.base.rsplit(':').next().unwrap().to_owned();
    // A name that resolves to loopback, a loopback name, and addresses of each kind written out.
    let (portal, by_name, _) =
        portal_with_subscription(&stack, format!("http://localhost:{port}/by-name")).await;
    let mut literal = Vec::new();
    for url in [
        format!("http://api.localhost:{port}/loopback-name"),
        format!("http://127.0.0.1:{port}/loopback"),
        format!("http://2130706433:{port}/loopback-decimal"),
        format!("http://[2002:7f00:1::]:{port}/6to4-loopback"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/private".to_owned(),
        "http://[::1]:9/v6-loopback".to_owned(),
        "http://0.0.0.0:9/unspecified".to_owned(),
    ] {
        literal.push((add_subscription(&stack, &portal, url.clone()).await, url));
    }
    publish(&stack, &portal, &event_ids("ssrf", 1)).await;

    for (sub, url) in std::iter::once((by_name.clone(), "localhost".to_owned())).chain(literal) {
        let log = wait_for_log(&stack, &sub, WAIT, |log| !log.is_empty()).await;
        assert_eq!(log[0].error_class.as_deref(), Some("refused"), "{url}: {log:?}");
    }
    assert!(receiver.all().is_empty(), "no request reached the loopback receiver");

    // The attempt log, which a portal key reads, says what a name resolved to by class only.
    let db = stack.database().await;
    let error: String = db
        .query_one("SELECT error FROM delivery_attempts WHERE subscription_id = $1", &[&by_name])
        .await
        .unwrap()
        .get(0);
    assert!(error.contains("host localhost resolves to a loopback address"), "{error}");
    assert!(!error.contains("127.0.0.1") && !error.contains("::1"), "{error}");
}
