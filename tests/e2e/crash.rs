//! Crash safety, proven: stages killed with SIGKILL mid-stream lose nothing, and a PostgreSQL
//! outage delays only the attempt log.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use synap_tests::postgres::Throwaway;
use synap_tests::{Receiver, Reply, Service, Stack};

use crate::delivery_support::{
    add_subscription, assert_all_delivered, attempts, event_ids, portal_with_subscription, publish,
    wait_until_all,
};

/// A number in `0..n`, different on every call and every run.
fn random_below(n: u64) -> u64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) % n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_each_stage_mid_stream_loses_nothing() {
    let mut stack = Stack::start_with(&[("SYNAP_SENDER__RETRY_DELAYS_MS", "[500, 1000, 2000, 4000]")]).await;
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    let (portal, _, _) = portal_with_subscription(&stack, a.url("/a")).await;
    add_subscription(&stack, &portal, b.url("/b")).await;

    // A steady stream: 20 events every 100 ms for about 6 s, while the stages are killed.
    let ids = event_ids("crash", 1200);
    let stream = {
        let (stack_bootstrap, inbound, portal, ids) =
            (stack.bootstrap.clone(), stack.topic("inbound"), portal.clone(), ids.clone());
        tokio::spawn(async move {
            let kafka = synap_tests::kafka::producer(&stack_bootstrap);
            let body = synap_contract::EventType::AttemptCompleted.example_body();
            for chunk in ids.chunks(20) {
                for id in chunk {
                    let record = crate::support::envelope(
                        synap_contract::EventType::AttemptCompleted,
                        &portal,
                        Some(id),
                        &body,
                    );
                    synap_tests::kafka::produce(&kafka, &inbound, &portal, &record, None).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // Kills start once events flow end to end. (tansu, the test broker, can leave a consumer
    // group without an owner for good when a member dies during its very first join; Apache
    // Kafka evicts it after `session.timeout.ms`. Settled members are what a crash hits in
    // practice.)
    a.wait_for("/a", 1, Duration::from_secs(30)).await;
    let mut killed = Vec::new();
    for service in [Service::Ingest, Service::Router, Service::Sender] {
        let wait = Duration::from_millis(300 + random_below(1200));
        tokio::time::sleep(wait).await;
        stack.kill(service).await;
        killed.push(format!("{service:?} after {wait:?}"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        stack.spawn(service);
    }
    stream.await.unwrap();

    wait_until_all(&a, "/a", &ids, Duration::from_secs(50)).await;
    wait_until_all(&b, "/b", &ids, Duration::from_secs(10)).await;
    let dups_a = assert_all_delivered(&a, "/a", &ids);
    let dups_b = assert_all_delivered(&b, "/b", &ids);
    println!("killed {killed:?}; {} events to 2 receivers; duplicates: {dups_a} and {dups_b}", ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_delays_the_log_and_loses_nothing() {
    let pg = Throwaway::start();
    let stack = Stack::start_on(
        &pg.url(),
        &[
            ("SYNAP_SENDER__MAX_IN_FLIGHT_PER_SUBSCRIPTION", "2"),
            ("SYNAP_SENDER__RETRY_DELAYS_MS", "[200, 400, 800]"),
        ],
    )
    .await;
    let receiver = Receiver::start().await;
    // Slow enough that deliveries are still going on when the database stops.
    receiver.always("/slow", Reply::Slow(Duration::from_millis(150)));
    let (portal, sub, _) = portal_with_subscription(&stack, receiver.url("/slow")).await;
    let ids = event_ids("outage", 60);
    publish(&stack, &portal, &ids).await;
    receiver.wait_for("/slow", 3, Duration::from_secs(30)).await;

    pg.pause();
    let before = receiver.all().len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = receiver.all().len() - before;
    pg.resume();
    assert!(during > 0, "deliveries went on while PostgreSQL was down");

    wait_until_all(&receiver, "/slow", &ids, Duration::from_secs(40)).await;
    assert_all_delivered(&receiver, "/slow", &ids);
    // The log catches up: every event's successful attempt is recorded.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logged: HashSet<String> = attempts(&stack, &sub)
            .await
            .into_iter()
            .filter(|a| a.outcome == "delivered")
            .map(|a| a.event_id)
            .collect();
        if ids.iter().all(|id| logged.contains(id)) {
            break;
        }
        assert!(Instant::now() < deadline, "log has {} of {} deliveries", logged.len(), ids.len());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!("{during} deliveries during a 4 s PostgreSQL outage; log complete");
    drop(stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_retry_survives_a_sender_crash() {
    let mut stack = Stack::start_with(&[("SYNAP_SENDER__RETRY_DELAYS_MS", "[6000]")]).await;
    let receiver = Receiver::start().await;
    receiver.script("/later", vec![Reply::Status(500)]);
    let (portal, sub, _) = portal_with_subscription(&stack, receiver.url("/later")).await;
    let ids = event_ids("survivor", 1);
    publish(&stack, &portal, &ids).await;
    let first = receiver.wait_for("/later", 1, Duration::from_secs(30)).await;

    // The retry waits in its tier topic; the process holding it dies (after the first attempt's
    // offset was committed, 1 s at most, so that what comes back is the retry).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stack.kill(Service::Sender).await;
    stack.spawn(Service::Sender);

    let got = receiver.wait_for("/later", 2, Duration::from_secs(40)).await;
    assert_eq!(got[1].header("webhook-id"), Some(ids[0].as_str()));
    assert_eq!(got[1].header("synap-delivery-attempt"), Some("2"));
    assert!(got[1].at - first[0].at >= Duration::from_secs(4), "still waited for its delay");
    let log = crate::delivery_support::wait_for_log(&stack, &sub, Duration::from_secs(30), |log| {
        log.iter().any(|a| a.outcome == "delivered")
    })
    .await;
    assert_eq!(log.iter().filter(|a| a.outcome == "retrying").count(), 1, "{log:?}");
}
