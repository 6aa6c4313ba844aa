//! Several replicas of every stage: 2 ingest, 2 router and 3 sender processes share the topics
//! and consumer groups while events flow; one sender is SIGKILLed and then every replica is
//! restarted one at a time, as a rolling upgrade does. Nothing is lost, duplicates keep their
//! `webhook-id`, an ordered subscription keeps its order, and retries waiting in a tier arrive.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::producer::FutureRecord;
use synap_contract::EventType;
use synap_proto::control::v1::{CreateSubscriptionRequest, Plan};
use synap_tests::{Received, Receiver, Service, Stack};

use crate::delivery_support::{
    add_subscription, assert_all_delivered, event_ids, portal_with_subscription, publish, wait_until_all,
};
use crate::support::{NewSub, envelope, portal_id, subscribe, upsert_portal};

/// Between two publishing rounds; each round publishes one event of portal A's
/// `attempt.completed` stream, the ordered subscription's.
const TICK: Duration = Duration::from_millis(100);

/// The events one publishing run produced, per stream.
#[derive(Default)]
struct Published {
    /// Portal A's `attempt.completed`, in publish order: the ordered subscription's stream.
    a_completed: Vec<String>,
    /// Portal A's `exam.completed`.
    a_exams: Vec<String>,
    /// Portal B's `attempt.completed`: every first attempt fails at `/b-retried`.
    b_completed: Vec<String>,
    /// Portal C (Starter) `attempt.completed`: below Pro, delivered nowhere.
    c_completed: Vec<String>,
}

/// Publishes rounds until `stop` is set: a steady stream over the whole test.
async fn publish_until(
    bootstrap: &str,
    inbound: &str,
    portals: [String; 3],
    stop: Arc<AtomicBool>,
) -> Published {
    let kafka = synap_tests::kafka::producer(bootstrap);
    let run = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let [a, b, c] = portals;
    let mut out = Published::default();
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let mut batch = vec![(EventType::AttemptCompleted, &a, format!("a-{run}-{round:05}"))];
        batch.push((EventType::AttemptCompleted, &b, format!("b-{run}-{round:05}")));
        if round.is_multiple_of(4) {
            batch.push((EventType::ExamCompleted, &a, format!("ax-{run}-{round:05}")));
        }
        if round.is_multiple_of(10) {
            batch.push((EventType::AttemptCompleted, &c, format!("c-{run}-{round:05}")));
        }
        // Enqueued in order, then awaited together: one round trip per round, and the broker
        // keeps the order of one key's records.
        let mut acks = Vec::new();
        for (ty, portal, id) in batch {
            let record = envelope(ty, portal, Some(&id), &ty.example_body());
            let enqueued = kafka.send_result(FutureRecord::to(inbound).key(portal.as_str()).payload(&record));
            acks.push(enqueued.map_err(|(e, _)| e).expect("enqueue an inbound record"));
            match (portal == &a, portal == &b, ty) {
                (true, _, EventType::AttemptCompleted) => out.a_completed.push(id),
                (true, _, _) => out.a_exams.push(id),
                (_, true, _) => out.b_completed.push(id),
                _ => out.c_completed.push(id),
            }
        }
        for ack in acks {
            ack.await.expect("producer alive").map_err(|(e, _)| e).expect("the broker took the record");
        }
        round += 1;
        tokio::time::sleep(TICK).await;
    }
    out
}

/// The order in which `subscription`'s deliveries reached the deliveries topic (the order an
/// ordered subscription promises, docs/DELIVERY.md): each event's first record there, read back
/// from the topic. A later record of the same event (routed again after a restart) is a
/// re-delivery, not a new place in the order.
async fn delivery_stage_order(stack: &Stack, subscription: &str) -> Vec<String> {
    let records = synap_tests::kafka::read(
        &stack.bootstrap,
        &stack.topic("deliveries"),
        usize::MAX,
        Duration::from_secs(10),
    )
    .await;
    let mut order: Vec<String> = Vec::new();
    for record in records.iter().filter(|r| r.key.as_deref() == Some(subscription)) {
        let id = record.header("synap-event-id").expect("synap-event-id header").to_owned();
        if !order.contains(&id) {
            order.push(id);
        }
    }
    order
}

/// Events of `order` that come before an event published earlier than them: how far the stages
/// before the sender moved events of one portal out of their publish order.
fn overtakes(order: &[String], published: &[String]) -> usize {
    let index = |id: &String| published.iter().position(|p| p == id).unwrap_or(usize::MAX);
    let mut highest = 0;
    let mut count = 0;
    for id in order {
        let i = index(id);
        if i < highest {
            count += 1;
        }
        highest = highest.max(i);
    }
    count
}

/// Ordered delivery under at-least-once: each event's first request should come after the first
/// request of every event ahead of it in `ids`. A request repeating an event already delivered (a
/// re-delivery after a crash or a rebalance) may come at any time. Returns the re-deliveries and
/// the first requests that overtook an earlier event not delivered yet.
fn order_of(path: &str, received: &[Received], ids: &[String]) -> (usize, usize) {
    let mut delivered = vec![false; ids.len()];
    let (mut again, mut overtaking) = (0, 0);
    for request in received {
        let id = request.header("webhook-id").expect("webhook-id");
        let index = ids.iter().position(|e| e == id).unwrap_or_else(|| panic!("{path}: unexpected {id}"));
        if delivered[index] {
            again += 1;
            continue;
        }
        if delivered[..index].iter().any(|d| !d) {
            overtaking += 1;
        }
        delivered[index] = true;
    }
    (again, overtaking)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_replica_loses_nothing_and_keeps_order() {
    let mut stack = Stack::start_with(&[
        // Every sender replica owns deliveries partitions (3 replicas, 6 partitions).
        ("SYNAP_TOPICS__DELIVERY_PARTITIONS", "6"),
        // Failed first attempts wait 3 s in their tier: long enough to be held by a replica that
        // is restarted; the later tiers catch what a crash sent round again.
        ("SYNAP_SENDER__RETRY_DELAYS_MS", "[3000, 1000, 1000, 1000, 1000, 1000]"),
        // Every first attempt at /b-retried fails: the endpoint's breaker would open and park
        // deliveries in its cool-down tier, which is tested elsewhere; here it stays closed.
        ("SYNAP_SENDER__BREAKER_FAILURES", "1000000"),
    ])
    .await;
    let ingest = stack.scale(Service::Ingest, 2).await;
    let routers = stack.scale(Service::Router, 2).await;
    let senders = stack.scale(Service::Sender, 3).await;

    let receiver = Receiver::start().await;
    receiver.fail_first_attempt("/b-retried", 503);
    let mut control = stack.control().await;
    let (a, b, c) = (portal_id(), portal_id(), portal_id());
    upsert_portal(&mut control, &a, Plan::Pro, &[]).await;
    upsert_portal(&mut control, &b, Plan::Enterprise, &[]).await;
    upsert_portal(&mut control, &c, Plan::Pro, &[]).await;
    let both = [EventType::AttemptCompleted, EventType::ExamCompleted];
    subscribe(&mut control, NewSub::new(&a, receiver.url("/a-all"), &both)).await;
    let ordered = control
        .create_subscription(CreateSubscriptionRequest {
            portal_id: a.clone(),
            url: receiver.url("/a-ordered"),
            event_types: vec![EventType::AttemptCompleted.code().into()],
            description: "ordered".into(),
            enabled: Some(true),
            ordered: true,
            ..Default::default()
        })
        .await
        .expect("create the ordered subscription")
        .into_inner()
        .subscription
        .unwrap()
        .id;
    subscribe(&mut control, NewSub::new(&b, receiver.url("/b"), &[EventType::AttemptCompleted])).await;
    subscribe(&mut control, NewSub::new(&b, receiver.url("/b-retried"), &[EventType::AttemptCompleted]))
        .await;
    subscribe(&mut control, NewSub::new(&c, receiver.url("/c"), &[EventType::AttemptCompleted])).await;
    // Portal C drops below Pro after subscribing: its events are routed nowhere.
    upsert_portal(&mut control, &c, Plan::Starter, &[]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let stream = {
        let (bootstrap, inbound) = (stack.bootstrap.clone(), stack.topic("inbound"));
        let (portals, stop) = ([a.clone(), b.clone(), c.clone()], stop.clone());
        tokio::spawn(async move { publish_until(&bootstrap, &inbound, portals, stop).await })
    };
    // Disruption starts once events flow end to end (see crash.rs on tansu and first joins).
    receiver.wait_for("/a-ordered", 5, Duration::from_secs(40)).await;
    receiver.wait_for("/b-retried", 2, Duration::from_secs(40)).await;

    let mut done = Vec::new();
    stack.kill(senders[1]).await;
    done.push(format!("SIGKILL {:?}", senders[1]));
    // The group evicts the dead member after its session timeout (6 s): deliveries it held
    // move to the others; then the replica comes back.
    tokio::time::sleep(Duration::from_secs(7)).await;
    stack.spawn(senders[1]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    for replica in ingest.iter().chain(&routers).chain(&senders) {
        let started = std::time::Instant::now();
        stack.restart(*replica).await;
        done.push(format!("restart {replica:?} in {:?}", started.elapsed()));
        // Let the group settle before the next replica goes, as a rollout waits for readiness.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // Keep publishing a little after the last restart, then stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let published = stream.await.unwrap();

    let wait = Duration::from_secs(40);
    let a_all: Vec<String> = published.a_completed.iter().chain(&published.a_exams).cloned().collect();
    wait_until_all(&receiver, "/a-ordered", &published.a_completed, wait).await;
    wait_until_all(&receiver, "/a-all", &a_all, Duration::from_secs(10)).await;
    wait_until_all(&receiver, "/b", &published.b_completed, Duration::from_secs(10)).await;
    wait_until_all(&receiver, "/b-retried", &published.b_completed, Duration::from_secs(20)).await;

    // Every event at every matching endpoint; duplicates only as the same webhook-id and body.
    let dups = [
        assert_all_delivered(&receiver, "/a-ordered", &published.a_completed),
        assert_all_delivered(&receiver, "/a-all", &a_all),
        assert_all_delivered(&receiver, "/b", &published.b_completed),
    ];
    // Nothing for a portal below Pro, nor another portal's or type's event anywhere (above).
    assert!(receiver.at("/c").is_empty(), "portal C is below Pro: {} requests", receiver.at("/c").len());
    assert!(!published.c_completed.is_empty());

    // The ordered subscription's order is the order its deliveries reached the deliveries topic;
    // the sender keeps it through the kill and every rebalance.
    let stage_order = delivery_stage_order(&stack, &ordered).await;
    let mut sorted = stage_order.clone();
    sorted.sort();
    let mut expected = published.a_completed.clone();
    expected.sort();
    assert_eq!(sorted, expected, "every ordered event reached the deliveries topic");
    // Ingest and router handle a partition's records concurrently but write each in its turn, so
    // the deliveries reach the deliveries topic in publish order, restarts and rebalances
    // included (docs/DELIVERY.md: "events of one portal published in sequence keep that
    // sequence").
    let reordered = overtakes(&stage_order, &published.a_completed);
    assert_eq!(reordered, 0, "no event overtook one published before it on the way to the sender");
    // And at the endpoint: a sender stops sending for a partition the moment a rebalance takes
    // it away (before the group can give it to another replica), so the new owner, which starts
    // from the first delivery not yet done, is never overtaken by the old one. Re-deliveries of
    // events already delivered (same webhook-id) are allowed; a first delivery ahead of an
    // earlier event is not.
    let (redelivered, overtaking) =
        order_of("/a-ordered", &receiver.at("/a-ordered"), &published.a_completed);
    assert_eq!(overtaking, 0, "an ordered event was first delivered ahead of an earlier one");

    // Every event at /b-retried failed its first request and was tried again: none of the
    // retries waiting in a tier through the kill and the restarts was lost.
    let retried = receiver.at("/b-retried");
    assert_all_delivered(&receiver, "/b-retried", &published.b_completed);
    let mut later_attempts = 0;
    for id in &published.b_completed {
        let requests: Vec<&Received> =
            retried.iter().filter(|r| r.header("webhook-id") == Some(id)).collect();
        assert!(requests.len() >= 2, "/b-retried: {id} failed its first attempt and was never retried");
        later_attempts +=
            requests.iter().filter(|r| r.header("synap-delivery-attempt").is_some_and(|n| n != "1")).count();
    }
    assert!(
        later_attempts >= published.b_completed.len() / 2,
        "retries came from the tiers: {later_attempts}"
    );

    println!(
        "{done:?}; published {} + {} + {} events; duplicates {dups:?}; ordered re-deliveries {redelivered}; ordered first deliveries overtaking an earlier one: {overtaking}; \
         ordered events ahead of an earlier-published one before the sender: {reordered}; \
         /b-retried: {} requests, {later_attempts} of them attempt 2 or later",
        published.a_completed.len(),
        published.a_exams.len(),
        published.b_completed.len(),
        retried.len()
    );
}

/// `synap_subscriptions_disabled` of one sender replica, once it reports `want`; panics with the
/// last value after 20 s.
async fn wait_for_disabled_gauge(stack: &Stack, replica: synap_tests::Replica, want: u64) {
    let want = Some(want as f64);
    stack
        .wait_for_metric(replica, "synap_subscriptions_disabled", Duration::from_secs(20), |v| v == want)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sender_replica_reports_the_deployments_disabled_subscriptions() {
    let mut stack = Stack::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, Plan::Pro, &[]).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let url = format!("https://hooks.example.com/{n}");
        ids.push(subscribe(&mut control, NewSub::new(&portal, url, &[EventType::UserUpdated])).await.id);
    }
    // As another replica (or one that has since restarted) left them: two disabled by the
    // system, one paused by a caller (not counted).
    let db = stack.database().await;
    for (id, reason) in [(&ids[0], Some("gone")), (&ids[1], Some("failing")), (&ids[2], None)] {
        db.execute(
            "UPDATE subscriptions SET enabled = FALSE, disabled_reason = $2 WHERE id = $1",
            &[id, &reason],
        )
        .await
        .unwrap();
    }
    // A replica started now disabled nothing itself, yet reports the deployment's number.
    let senders = stack.scale(Service::Sender, 2).await;
    wait_for_disabled_gauge(&stack, senders[1], 2).await;
    stack.restart(senders[0]).await;
    wait_for_disabled_gauge(&stack, senders[0], 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_tier_holding_its_limit_still_hands_partitions_to_a_new_replica() {
    // A 10-minute tier whose consumer holds 2 retries: after 16 failures it is full, and stays
    // so for minutes, as every tier is during a long outage. A replica started then (a scale-up,
    // a rolling deployment) must get its share of the tier's partitions at once, not when the
    // full consumer next takes a record (the rebalance waits on it, up to librdkafka's
    // `max.poll.interval.ms`, 5 minutes).
    let mut stack = Stack::start_with(&[
        ("SYNAP_SENDER__RETRY_DELAYS_MS", "[600000]"),
        // Every retry in the 10 minute tier. (Jittered, they used to split between it and the
        // breaker's 30 s tier, and with only a few in the tier one partition could hold a
        // single retry: what failed this test now and then.)
        ("SYNAP_SENDER__RETRY_JITTER", "0"),
        ("SYNAP_SENDER__RETRY_TIER_MAX_IN_FLIGHT", "2"),
        // 16 failures in a row would open the endpoint's circuit instead.
        ("SYNAP_SENDER__BREAKER_FAILURES", "1000"),
    ])
    .await;
    let receiver = Receiver::start().await;
    receiver.always("/down", synap_tests::Reply::Status(500));
    // 16 subscriptions: their retries (keyed by subscription) land on both of the tier's
    // partitions (all on one: odds of 1 in 32,768).
    let (portal, _, _) = portal_with_subscription(&stack, receiver.url("/down")).await;
    for _ in 1..16 {
        add_subscription(&stack, &portal, receiver.url("/down")).await;
    }
    publish(&stack, &portal, &event_ids("held", 1)).await;
    receiver.wait_for("/down", 16, Duration::from_secs(40)).await;
    let pending = r#"synap_retries_pending{tier="10m"}"#;
    let wait = Duration::from_secs(40);
    stack.wait_for_metric(Service::Sender, pending, wait, |v| v == Some(2.0)).await;

    let senders = stack.scale(Service::Sender, 2).await;
    // Each replica holds 2 of its own partition's retries: the full one gave a partition up.
    stack.wait_for_metric(senders[1], pending, wait, |v| v == Some(2.0)).await;
    stack.wait_for_metric(senders[0], pending, wait, |v| v == Some(2.0)).await;
}
