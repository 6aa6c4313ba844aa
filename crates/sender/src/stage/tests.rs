//! The sender's decisions with an in-memory [`Io`] that answers from a script and records what it
//! was asked to do, with paused time: retries, exhaustion, 410, circuits, deferrals, ordered mode,
//! secrets that cannot be opened, and records the broker refuses.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rdkafka::message::{Header, OwnedHeaders, Timestamp};
use synap_db::DeliveryTarget;
use synap_db::circuits::Transition;
use synap_db::delivery_state::DeliveryOptions;
use synap_db::secret_box::SecretError;
use tokio::time::Instant;

use super::*;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const COOLDOWN: Duration = Duration::from_secs(30);

/// One request the sender made.
#[derive(Clone, Debug)]
struct Posted {
    event_id: String,
    attempt: u32,
    at: Instant,
    traceparent: Option<String>,
}

/// A delivery record the sender wrote back.
#[derive(Clone, Debug)]
struct Sent {
    to: Destination,
    delivery: Delivery,
    traceparent: Option<String>,
}

#[derive(Default)]
struct Recorded {
    targets: Mutex<HashMap<String, Target>>,
    /// Answers to the next lookups of a subscription, before its target.
    lookup_errors: Mutex<HashMap<String, VecDeque<DbError>>>,
    /// Answers to the next requests to a URL; 204 once they run out.
    replies: Mutex<HashMap<String, VecDeque<Attempted>>>,
    posts: Mutex<Vec<Posted>>,
    sent: Mutex<Vec<Sent>>,
    dead: Mutex<Vec<(Delivery, SetAside, Source)>>,
    events: Mutex<Vec<OperatorEvent>>,
    logs: Mutex<Vec<AttemptLog>>,
    logs_set_aside: Mutex<Vec<(AttemptLog, SetAside)>>,
    circuits: Mutex<Vec<Transition>>,
    refuse_sends: AtomicBool,
    refuse_logs: AtomicBool,
}

fn traceparent(headers: Option<&OwnedHeaders>) -> Option<String> {
    synap_kafka::headers::get(headers, "traceparent").map(str::to_owned)
}

impl Io for Recorded {
    async fn target(&self, subscription_id: &str) -> Result<Arc<Option<Target>>, Arc<DbError>> {
        if let Some(error) =
            self.lookup_errors.lock().unwrap().get_mut(subscription_id).and_then(VecDeque::pop_front)
        {
            return Err(Arc::new(error));
        }
        Ok(Arc::new(self.targets.lock().unwrap().get(subscription_id).cloned()))
    }

    async fn post(
        &self,
        delivery: &Delivery,
        target: &Target,
        trace: Option<&OwnedHeaders>,
        _timeout: Duration,
    ) -> Attempted {
        self.posts.lock().unwrap().push(Posted {
            event_id: delivery.event_id.clone(),
            attempt: delivery.attempt,
            at: Instant::now(),
            traceparent: traceparent(trace),
        });
        let scripted = self.replies.lock().unwrap().get_mut(&target.url).and_then(VecDeque::pop_front);
        scripted.unwrap_or_else(|| status(204))
    }

    async fn send(
        &self,
        to: Destination,
        delivery: &Delivery,
        trace: Option<&OwnedHeaders>,
    ) -> Result<(), SendError> {
        if self.refuse_sends.load(Ordering::Relaxed) {
            return Err(SendError::Rejected("Broker: Message size too large".into()));
        }
        self.sent.lock().unwrap().push(Sent {
            to,
            delivery: delivery.clone(),
            traceparent: traceparent(trace),
        });
        Ok(())
    }

    async fn dead_letter(
        &self,
        delivery: &Delivery,
        _trace: Option<&OwnedHeaders>,
        source: &Source,
        why: &SetAside,
    ) -> Handled {
        self.dead.lock().unwrap().push((delivery.clone(), why.clone(), source.clone()));
        Handled::Done
    }

    async fn announce(&self, event: OperatorEvent) -> Handled {
        self.events.lock().unwrap().push(event);
        Handled::Done
    }

    async fn log(&self, record: Arc<AttemptLog>) -> Result<(), SendError> {
        if self.refuse_logs.load(Ordering::Relaxed) {
            return Err(SendError::Rejected("Broker: Message size too large".into()));
        }
        self.logs.lock().unwrap().push((*record).clone());
        Ok(())
    }

    async fn set_aside_log(&self, record: &AttemptLog, why: &SetAside) -> Handled {
        self.logs_set_aside.lock().unwrap().push((record.clone(), why.clone()));
        Handled::Done
    }

    fn circuit_changed(&self, transition: Transition) {
        self.circuits.lock().unwrap().push(transition);
    }
}

impl Recorded {
    fn reply(&self, url: &str, replies: impl IntoIterator<Item = Attempted>) {
        self.replies.lock().unwrap().entry(url.to_owned()).or_default().extend(replies);
    }

    fn fail_lookups(&self, subscription_id: &str, errors: impl IntoIterator<Item = DbError>) {
        self.lookup_errors.lock().unwrap().entry(subscription_id.to_owned()).or_default().extend(errors);
    }

    fn posts(&self) -> Vec<Posted> {
        self.posts.lock().unwrap().clone()
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    /// (attempt, outcome, error class, status) of each log row.
    fn logs(&self) -> Vec<(u32, String, String, u32)> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .map(|l| (l.attempt, l.outcome.clone(), l.error_class.clone(), l.status_code))
            .collect()
    }

    /// (reason, attempts) of each dead letter.
    fn dead(&self) -> Vec<(String, u32)> {
        self.dead.lock().unwrap().iter().map(|(d, why, _)| (why.reason.to_string(), d.attempt)).collect()
    }

    fn circuit_states(&self) -> Vec<CircuitState> {
        self.circuits.lock().unwrap().iter().map(|t| t.state).collect()
    }
}

/// An answer with this status (204: delivered).
fn status(code: u16) -> Attempted {
    let failed = !(200..300).contains(&code);
    Attempted {
        error_class: failed.then_some(ErrorClass::HttpStatus),
        error: failed.then(|| format!("HTTP {code}")),
        status: Some(code),
        sent_at: chrono::Utc::now(),
        latency: Duration::from_millis(20),
        ..Default::default()
    }
}

fn sender(retry_delays_ms: &[u64], breaker_failures: u32) -> Arc<Sender<Recorded>> {
    let schedule = RetrySchedule::new(retry_delays_ms, 0.0, Duration::from_secs(3600)).with_tier(COOLDOWN);
    Arc::new(Sender {
        io: Recorded::default(),
        schedule,
        limits: Limits::new(Duration::from_secs(2), Duration::from_secs(5), 100),
        breakers: Breakers::new(breaker_failures, COOLDOWN),
        lanes: Lanes::default(),
        config: SenderConfig::default(),
        shutdown: CancellationToken::new(),
    })
}

/// Subscribes `subscription_id` of `portal_id` to `url`.
fn subscribe(sender: &Sender<Recorded>, subscription_id: &str, portal_id: &str, url: &str, ordered: bool) {
    let target = DeliveryTarget {
        subscription_id: subscription_id.into(),
        portal_id: portal_id.into(),
        url: url.into(),
        enabled: true,
        basic_auth: None,
        signing_keys: vec![synap_db::secrets::SigningKey::V1(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        )],
        headers: Vec::new(),
    };
    let options = DeliveryOptions { ordered, ..Default::default() };
    sender.io.targets.lock().unwrap().insert(subscription_id.into(), Target::new(target, options));
}

fn delivery(event_id: &str, subscription_id: &str, portal_id: &str, attempt: u32) -> Delivery {
    Delivery {
        event_id: event_id.into(),
        event_type: "attempt.completed".into(),
        portal_id: portal_id.into(),
        subscription_id: subscription_id.into(),
        attempt,
        data: b"{}".to_vec().into(),
        ..Default::default()
    }
}

/// The delivery record as the consumer reads it, at offset 7 of partition 2, in a trace.
fn read(delivery: &Delivery) -> Arc<OwnedMessage> {
    let headers = OwnedHeaders::new().insert(Header { key: "traceparent", value: Some(TRACEPARENT) });
    Arc::new(OwnedMessage::new(
        Some(delivery.encode_to_vec()),
        Some(delivery.subscription_id.clone().into_bytes()),
        "t.synap.deliveries".into(),
        Timestamp::CreateTime(1_700_000_000_000),
        2,
        7,
        Some(headers),
    ))
}

async fn handle(sender: &Arc<Sender<Recorded>>, delivery: Delivery) -> Handled {
    sender.clone().handle(read(&delivery), sender.shutdown.child_token()).await
}

#[tokio::test(start_paused = true)]
async fn a_failed_attempt_waits_in_its_tier_and_keeps_the_events_trace() {
    let s = sender(&[5_000, 300_000], 5);
    subscribe(&s, "sub", "p", "https://a.example/hook", false);
    s.io.reply("https://a.example/hook", [status(500)]);
    assert_eq!(handle(&s, delivery("evt", "sub", "p", 1)).await, Handled::Done);

    assert_eq!(s.io.logs(), [(1, "retrying".into(), "http_status".into(), 500)]);
    let sent = s.io.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, Destination::Tier(Duration::from_secs(5)));
    assert_eq!(sent[0].delivery.attempt, 2, "the next attempt");
    let wait = sent[0].delivery.due_at_ms - chrono::Utc::now().timestamp_millis();
    assert!((4_000..=5_000).contains(&wait), "due in 5 s: {wait}");
    assert_eq!(sent[0].traceparent.as_deref(), Some(TRACEPARENT), "in the trace of the record read");
    assert_eq!(s.io.posts()[0].traceparent.as_deref(), Some(TRACEPARENT), "and so is the request");
    assert!(s.io.dead().is_empty() && s.io.events.lock().unwrap().is_empty());

    let log = s.io.logs.lock().unwrap()[0].clone();
    assert_eq!(
        (log.source_topic.as_str(), log.source_partition, log.source_offset),
        ("t.synap.deliveries", 2, 7)
    );
    assert_eq!(log.scheduled_at_ms, 1_700_000_000_000, "a first attempt was scheduled when it was written");
}

#[tokio::test(start_paused = true)]
async fn the_last_attempt_failing_dead_letters_the_delivery_and_tells_the_operator() {
    let s = sender(&[5_000, 300_000], 5);
    subscribe(&s, "sub", "p", "https://a.example/hook", false);
    s.io.reply("https://a.example/hook", [status(503)]);
    assert_eq!(handle(&s, delivery("evt", "sub", "p", 3)).await, Handled::Done);

    assert_eq!(s.io.logs(), [(3, "failed".into(), "http_status".into(), 503)]);
    assert!(s.io.sent().is_empty(), "no fourth attempt");
    assert_eq!(s.io.dead(), [("http_503".into(), 3)]);
    let source = s.io.dead.lock().unwrap()[0].2.clone();
    assert_eq!(source.to_string(), "t.synap.deliveries/2/7");
    let events = s.io.events.lock().unwrap().clone();
    assert_eq!(
        events,
        [OperatorEvent::DeliveryFailed {
            portal_id: "p".into(),
            subscription_id: "sub".into(),
            event_id: "evt".into(),
            event_type: "attempt.completed".into(),
            attempts: 3,
            reason: "http_503".into(),
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn gone_ends_the_schedule_at_once() {
    let s = sender(&[5_000, 300_000], 5);
    subscribe(&s, "sub", "p", "https://a.example/hook", false);
    s.io.reply("https://a.example/hook", [status(410)]);
    assert_eq!(handle(&s, delivery("evt", "sub", "p", 1)).await, Handled::Done);
    assert_eq!(s.io.logs(), [(1, "failed".into(), "http_status".into(), 410)]);
    assert!(s.io.sent().is_empty());
    assert_eq!(s.io.dead(), [("gone".into(), 1)]);
}

/// Fails `n` deliveries of `sub` at `url` with 500, one after another.
async fn fail(s: &Arc<Sender<Recorded>>, sub: &str, portal: &str, url: &str, n: usize) {
    for i in 0..n {
        s.io.reply(url, [status(500)]);
        assert_eq!(handle(s, delivery(&format!("fail-{sub}-{i}"), sub, portal, 1)).await, Handled::Done);
    }
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_defers_a_delivery_without_using_an_attempt_or_a_log_row() {
    let s = sender(&[5_000, 300_000], 2);
    let url = "https://a.example/hook";
    subscribe(&s, "sub", "p", url, false);
    fail(&s, "sub", "p", url, 2).await;
    assert_eq!(s.io.circuit_states(), [CircuitState::Open]);
    let opened = s.io.circuits.lock().unwrap()[0].clone();
    assert_eq!((opened.portal_id.as_str(), opened.endpoint.as_str()), ("p", "https://a.example:443/hook"));
    assert_eq!(opened.reason.as_deref(), Some("http_500"));

    let deferred = metrics().deferred("circuit_open").get();
    let (posts, logs) = (s.io.posts().len(), s.io.logs().len());
    assert_eq!(handle(&s, delivery("held", "sub", "p", 1)).await, Handled::Done);
    assert_eq!(s.io.posts().len(), posts, "no request");
    assert_eq!(s.io.logs().len(), logs, "no attempt-log row");
    let held = s.io.sent().pop().unwrap();
    assert_eq!(held.delivery.event_id, "held");
    assert_eq!(held.delivery.attempt, 1, "no attempt used up");
    assert_eq!(held.to, Destination::Tier(COOLDOWN), "waits for the probe in the cool-down's tier");
    assert_eq!(held.traceparent.as_deref(), Some(TRACEPARENT));
    assert!(metrics().deferred("circuit_open").get() > deferred, "counted as deferred");
    assert!(s.io.dead().is_empty());
}

#[tokio::test(start_paused = true)]
async fn another_portals_failures_at_the_same_endpoint_leave_its_circuit_closed() {
    let s = sender(&[5_000], 2);
    let url = "https://owner.example/hook";
    subscribe(&s, "stranger", "a", url, false);
    subscribe(&s, "owner", "b", url, false);
    subscribe(&s, "owner-2", "b", url, false);
    fail(&s, "stranger", "a", url, 2).await;
    assert_eq!(s.io.circuit_states(), [CircuitState::Open], "the stranger's own circuit opened");

    assert_eq!(handle(&s, delivery("mine", "owner", "b", 1)).await, Handled::Done);
    assert_eq!(s.io.posts().last().unwrap().event_id, "mine", "the owner's delivery went out");
    assert_eq!(s.io.logs().last().unwrap(), &(1, "delivered".into(), String::new(), 204));

    // One portal's subscriptions to one endpoint share its circuit.
    fail(&s, "owner", "b", url, 2).await;
    let posts = s.io.posts().len();
    assert_eq!(handle(&s, delivery("held", "owner-2", "b", 1)).await, Handled::Done);
    assert_eq!(s.io.posts().len(), posts, "held back by the circuit its sibling opened");
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_answering_a_stranger_401_is_up() {
    let s = sender(&[5_000], 2);
    subscribe(&s, "stranger", "a", "https://b.example/hook", false);
    for i in 0..5 {
        s.io.reply("https://b.example/hook", [status(401)]);
        handle(&s, delivery(&format!("e{i}"), "stranger", "a", 1)).await;
    }
    assert_eq!(s.io.posts().len(), 5, "every delivery was sent");
    assert!(s.io.circuit_states().is_empty(), "no circuit opened");
}

#[tokio::test(start_paused = true)]
async fn a_good_probe_closes_the_circuit() {
    let s = sender(&[5_000, 300_000], 2);
    let url = "https://a.example/hook";
    subscribe(&s, "sub", "p", url, false);
    fail(&s, "sub", "p", url, 2).await;
    tokio::time::advance(COOLDOWN).await;

    assert_eq!(handle(&s, delivery("probe", "sub", "p", 1)).await, Handled::Done);
    assert_eq!(s.io.posts().last().unwrap().event_id, "probe", "the cool-down is over: one probe");
    assert_eq!(s.io.circuit_states(), [CircuitState::Open, CircuitState::Closed]);
    assert_eq!(handle(&s, delivery("after", "sub", "p", 1)).await, Handled::Done);
    assert_eq!(s.io.posts().last().unwrap().event_id, "after", "requests flow again");
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_keeps_the_circuit_open_for_another_cooldown() {
    let s = sender(&[5_000, 300_000], 2);
    let url = "https://a.example/hook";
    subscribe(&s, "sub", "p", url, false);
    fail(&s, "sub", "p", url, 2).await;
    tokio::time::advance(COOLDOWN).await;

    s.io.reply(url, [status(502)]);
    assert_eq!(handle(&s, delivery("probe", "sub", "p", 1)).await, Handled::Done);
    assert_eq!(s.io.posts().last().unwrap().event_id, "probe");
    assert_eq!(s.io.logs().last().unwrap(), &(1, "retrying".into(), "http_status".into(), 502), "an attempt");
    assert_eq!(s.io.circuit_states(), [CircuitState::Open], "still open: no new transition");
    let posts = s.io.posts().len();
    assert_eq!(handle(&s, delivery("held", "sub", "p", 1)).await, Handled::Done);
    assert_eq!(s.io.posts().len(), posts, "held back again");
    tokio::time::advance(COOLDOWN).await;
    assert_eq!(handle(&s, delivery("probe-2", "sub", "p", 1)).await, Handled::Done);
    assert_eq!(s.io.posts().last().unwrap().event_id, "probe-2", "the next probe after another cool-down");
}

#[tokio::test(start_paused = true)]
async fn an_ordered_subscription_retries_in_place() {
    let s = sender(&[5_000, 300_000, 1_800_000], 10);
    let url = "https://a.example/ordered";
    subscribe(&s, "sub", "p", url, true);
    s.io.reply(url, [status(500), status(503)]);
    let started = Instant::now();
    assert_eq!(handle(&s, delivery("evt", "sub", "p", 1)).await, Handled::Done);

    let posts = s.io.posts();
    assert_eq!(posts.iter().map(|p| p.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(posts[1].at - started, Duration::from_secs(5), "on the schedule");
    assert_eq!(posts[2].at - posts[1].at, Duration::from_secs(300));
    assert_eq!(
        s.io.logs(),
        [
            (1, "retrying".into(), "http_status".into(), 500),
            (2, "retrying".into(), "http_status".into(), 503),
            (3, "delivered".into(), String::new(), 204),
        ]
    );
    assert!(s.io.sent().is_empty(), "never through a tier");
}

#[tokio::test(start_paused = true)]
async fn an_ordered_subscription_gives_up_when_its_schedule_is_used_up() {
    let s = sender(&[1_000, 1_000], 10);
    let url = "https://a.example/ordered";
    subscribe(&s, "sub", "p", url, true);
    s.io.reply(url, [status(500), status(500), status(500)]);
    assert_eq!(handle(&s, delivery("evt", "sub", "p", 1)).await, Handled::Done);
    assert_eq!(s.io.posts().len(), 3);
    let outcomes: Vec<String> = s.io.logs().into_iter().map(|l| l.1).collect();
    assert_eq!(outcomes, ["retrying", "retrying", "failed"]);
    assert_eq!(s.io.dead(), [("http_500".into(), 3)]);
    assert_eq!(s.io.events.lock().unwrap().len(), 1);
    assert!(s.io.sent().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_ordered_delivery_waits_in_place_for_the_probe_without_using_an_attempt() {
    let s = sender(&[1_000, 1_000, 1_000], 2);
    let url = "https://a.example/ordered";
    subscribe(&s, "sub", "p", url, true);
    s.io.reply(url, [status(500), status(500)]);
    let deferred = metrics().deferred("circuit_open").get();
    assert_eq!(handle(&s, delivery("evt", "sub", "p", 1)).await, Handled::Done);

    let posts = s.io.posts();
    assert_eq!(posts.iter().map(|p| p.attempt).collect::<Vec<_>>(), [1, 2, 3], "the wait used no attempt");
    assert!(
        posts[2].at - posts[1].at >= COOLDOWN,
        "the third attempt was the probe: {:?}",
        posts[2].at - posts[1].at
    );
    assert_eq!(s.io.logs().len(), 3, "no row for the wait");
    assert_eq!(s.io.circuit_states(), [CircuitState::Open, CircuitState::Closed]);
    assert!(metrics().deferred("circuit_open").get() > deferred);
}

#[tokio::test(start_paused = true)]
async fn shutdown_abandons_an_ordered_delivery_waiting_for_its_retry() {
    let s = sender(&[60_000], 10);
    subscribe(&s, "sub", "p", "https://a.example/ordered", true);
    s.io.reply("https://a.example/ordered", [status(500)]);
    let waiting = tokio::spawn(handle_owned(s.clone(), delivery("evt", "sub", "p", 1)));
    tokio::time::sleep(Duration::from_secs(10)).await;
    s.shutdown.cancel();
    assert_eq!(waiting.await.unwrap(), Handled::Abandoned, "read again after the restart");
    assert_eq!(s.io.logs().len(), 1, "its first attempt is logged");
}

async fn handle_owned(s: Arc<Sender<Recorded>>, d: Delivery) -> Handled {
    handle(&s, d).await
}

/// The partition of an ordered subscription is revoked while its head waits for a retry: the
/// head and every delivery behind it give up without another request, and the sender's other
/// partitions carry on. The partition's new owner starts from the head, so nothing sent here
/// can overtake it.
#[tokio::test(start_paused = true)]
async fn a_revoked_partition_sends_nothing_more_for_an_ordered_subscription() {
    let s = sender(&[60_000], 10);
    subscribe(&s, "sub", "p", "https://a.example/ordered", true);
    subscribe(&s, "other", "p", "https://b.example/ordered", true);
    s.io.reply("https://a.example/ordered", [status(500)]);
    let tenure = s.shutdown.child_token();
    let head = tokio::spawn(s.clone().handle(read(&delivery("evt-1", "sub", "p", 1)), tenure.clone()));
    let behind = tokio::spawn(s.clone().handle(read(&delivery("evt-2", "sub", "p", 1)), tenure.clone()));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(s.io.posts().len(), 1, "the head's first attempt; the one behind waits");

    tenure.cancel();
    assert_eq!(head.await.unwrap(), Handled::Abandoned);
    assert_eq!(behind.await.unwrap(), Handled::Abandoned, "the one behind sends nothing either");
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(s.io.posts().len(), 1, "no request after the revocation");

    // Another partition's tenure is untouched.
    assert_eq!(handle(&s, delivery("evt-3", "other", "p", 1)).await, Handled::Done);
    assert_eq!(s.io.posts().last().unwrap().event_id, "evt-3");
}

/// The same at shutdown: a head abandoned while waiting for its retry must not let the delivery
/// behind it go first (the next owner would then deliver the head after it).
#[tokio::test(start_paused = true)]
async fn shutdown_lets_no_ordered_delivery_overtake_an_abandoned_head() {
    let s = sender(&[60_000], 10);
    subscribe(&s, "sub", "p", "https://a.example/ordered", true);
    s.io.reply("https://a.example/ordered", [status(500)]);
    let head = tokio::spawn(handle_owned(s.clone(), delivery("evt-1", "sub", "p", 1)));
    let behind = tokio::spawn(handle_owned(s.clone(), delivery("evt-2", "sub", "p", 1)));
    tokio::time::sleep(Duration::from_secs(10)).await;
    s.shutdown.cancel();
    assert_eq!(head.await.unwrap(), Handled::Abandoned);
    assert_eq!(behind.await.unwrap(), Handled::Abandoned);
    assert_eq!(s.io.posts().iter().map(|p| p.event_id.as_str()).collect::<Vec<_>>(), ["evt-1"]);
}

#[tokio::test(start_paused = true)]
async fn a_secret_that_cannot_be_opened_fails_the_delivery_for_good_at_once() {
    let s = sender(&[5_000], 2);
    subscribe(&s, "sub", "p", "https://a.example/hook", false);
    let slot = synap_db::secret_box::Slot::new("subscriptions", "basic_auth_password", "sub");
    s.io.fail_lookups("sub", [DbError::Secret(SecretError::OpenLegacy { slot })]);
    assert_eq!(handle(&s, delivery("evt", "sub", "p", 1)).await, Handled::Done);

    assert!(s.io.posts().is_empty(), "nothing sent unsigned");
    assert!(s.io.sent().is_empty(), "no retry");
    assert_eq!(s.io.logs(), [(1, "failed".into(), "secret_unreadable".into(), 0)]);
    assert_eq!(s.io.dead(), [("secret_unreadable".into(), 1)]);
    let detail = s.io.dead.lock().unwrap()[0].1.detail.clone();
    assert!(detail.contains("opens with no key"), "{detail}");
    assert!(matches!(&s.io.events.lock().unwrap()[..],
        [OperatorEvent::DeliveryFailed { reason, attempts: 1, .. }] if reason == "secret_unreadable"));
    assert!(s.io.circuit_states().is_empty(), "the endpoint's circuit is untouched");

    s.io.fail_lookups("sub", [DbError::Corrupt("signing secret is not UTF-8".into())]);
    assert_eq!(handle(&s, delivery("evt-2", "sub", "p", 1)).await, Handled::Done);
    assert_eq!(s.io.dead().last().unwrap(), &("subscription_unreadable".into(), 1));
    assert_eq!(s.io.logs().last().unwrap(), &(1, "failed".into(), "other".into(), 0));
}

#[tokio::test(start_paused = true)]
async fn an_unavailable_database_is_waited_out() {
    let s = sender(&[5_000], 2);
    subscribe(&s, "sub", "p", "https://a.example/hook", false);
    s.io.fail_lookups("sub", (0..4).map(|_| DbError::Unavailable("connection refused".into())));
    let started = Instant::now();
    assert_eq!(handle(&s, delivery("evt", "sub", "p", 1)).await, Handled::Done);
    assert!(started.elapsed() >= Duration::from_millis(100 + 200 + 400 + 800), "with backoff");
    assert_eq!(s.io.posts().len(), 1, "then delivered");
    assert!(s.io.dead().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_retry_the_broker_refuses_dead_letters_the_delivery() {
    let s = sender(&[5_000], 5);
    subscribe(&s, "sub", "p", "https://a.example/hook", false);
    s.io.refuse_sends.store(true, Ordering::Relaxed);
    s.io.reply("https://a.example/hook", [status(500)]);
    assert_eq!(handle(&s, delivery("evt", "sub", "p", 1)).await, Handled::Done, "not held back");
    assert_eq!(s.io.dead(), [("retry_refused".into(), 1)]);
    let detail = s.io.dead.lock().unwrap()[0].1.detail.clone();
    assert!(detail.contains("http_500") && detail.contains("too large"), "{detail}");
    assert_eq!(s.io.logs(), [(1, "failed".into(), "http_status".into(), 500)], "final, for recover");
    assert_eq!(s.io.events.lock().unwrap().len(), 1);

    // A deferral refused the same way.
    fail(&s, "sub", "p", "https://a.example/hook", 4).await;
    let dead = s.io.dead().len();
    assert_eq!(handle(&s, delivery("held", "sub", "p", 1)).await, Handled::Done);
    assert_eq!(s.io.dead().len(), dead + 1);
    assert_eq!(s.io.dead().last().unwrap(), &("retry_refused".into(), 1));
}

#[tokio::test(start_paused = true)]
async fn an_attempt_log_record_the_broker_refuses_is_set_aside() {
    let s = sender(&[5_000], 5);
    subscribe(&s, "sub", "p", "https://a.example/hook", false);
    s.io.refuse_logs.store(true, Ordering::Relaxed);
    assert_eq!(handle(&s, delivery("evt", "sub", "p", 1)).await, Handled::Done, "not held back");
    let set_aside = s.io.logs_set_aside.lock().unwrap().clone();
    assert_eq!(set_aside.len(), 1);
    assert_eq!(set_aside[0].0.event_id, "evt");
    assert_eq!(set_aside[0].0.outcome, "delivered");
    assert_eq!(set_aside[0].1.reason, "attempt_log_refused");
}

#[tokio::test(start_paused = true)]
async fn deleted_disabled_and_undecodable() {
    let s = sender(&[5_000], 5);
    assert_eq!(handle(&s, delivery("evt", "gone", "p", 1)).await, Handled::Done, "deleted: dropped");
    subscribe(&s, "off", "p", "https://a.example/hook", false);
    s.io.targets.lock().unwrap().get_mut("off").unwrap().target.enabled = false;
    assert_eq!(handle(&s, delivery("evt", "off", "p", 1)).await, Handled::Done);
    assert_eq!(s.io.logs(), [(1, "failed".into(), "disabled".into(), 0)], "logged for recover");
    assert!(s.io.posts().is_empty() && s.io.dead().is_empty());

    let garbage = Arc::new(OwnedMessage::new(
        Some(vec![0xff, 0xff, 0xff]),
        None,
        "t.synap.deliveries".into(),
        Timestamp::NotAvailable,
        0,
        1,
        None,
    ));
    assert!(matches!(s.clone().handle(garbage, s.shutdown.child_token()).await,
        Handled::SetAside(why) if why.reason == "undecodable_delivery"));
}

#[tokio::test(start_paused = true)]
async fn a_test_send_leaves_the_circuit_alone() {
    let s = sender(&[5_000], 1);
    subscribe(&s, "sub", "p", "https://a.example/hook", false);
    s.io.reply("https://a.example/hook", [status(500)]);
    let test = Delivery { test_send: true, ..delivery("test_1", "sub", "p", 1) };
    assert_eq!(handle(&s, test).await, Handled::Done);
    assert_eq!(s.io.logs(), [(1, "failed".into(), "http_status".into(), 500)]);
    assert!(s.io.circuit_states().is_empty() && s.io.dead().is_empty() && s.io.sent().is_empty());
}
