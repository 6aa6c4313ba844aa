//! A circuit breaker per portal and endpoint: after consecutive failures that say the endpoint is
//! down, no requests of that portal go there until a single probe, sent after a cool-down,
//! succeeds.
//!
//! The portal is part of the key so that tenants cannot hurt each other: a portal that
//! subscribes to someone else's endpoint (which rightly answers it 401) must not open the circuit
//! of that endpoint's owner. One portal's subscriptions to one endpoint share its health (Synap's
//! portal creates one subscription per event type). The path is part of the key because many
//! customers share a host (an integration platform, one company's gateway).
//!
//! Only failures that say the endpoint is down or overloaded count (no response, 5xx, 429,
//! 408); an endpoint that answers promptly with another status (401, 404, …) is up, whatever it
//! thinks of the request.
//!
//! A sender runs for months while endpoints come and go, so circuits nothing is sent to are
//! swept ([`Breakers::sweep`]): one with a few failures is forgotten, and one left open (its
//! subscriptions deleted, or moved to another replica) stops counting in `synap_circuits_open`,
//! which should say that some endpoint is cut off now, not that one was once. An open one is
//! kept, as dormant, so that the success that closes it, if one ever comes, is still recorded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::attempt::{Attempted, ErrorClass};
use crate::lock::lock;

/// The breaker's key for a portal's endpoint ([`synap_db::circuits::endpoint`]): the portal id's
/// length first, so that no pair of portal id and endpoint can spell another pair.
pub fn key(portal_id: &str, endpoint: &str) -> String {
    format!("{}:{portal_id}{endpoint}", portal_id.len())
}

/// What an attempt says about its endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// It answered.
    Up,
    /// No answer, or one that says it is failing or overloaded.
    Down,
}

impl Health {
    /// `None` when the attempt says nothing about the endpoint: the address policy refused it
    /// before any connection.
    pub fn of(attempted: &Attempted) -> Option<Health> {
        match (attempted.error_class, attempted.status) {
            (None, _) => Some(Health::Up),
            (Some(ErrorClass::Refused), _) => None,
            (Some(ErrorClass::HttpStatus), Some(status)) => {
                Some(if status >= 500 || status == 429 || status == 408 { Health::Down } else { Health::Up })
            }
            (Some(_), _) => Some(Health::Down),
        }
    }
}

/// A circuit opening or closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Opened,
    Closed,
}

/// Whether a request may go to an endpoint now.
#[derive(Debug)]
pub enum Admission<'a> {
    /// Send, then record what came of it on the ticket.
    Send(Ticket<'a>),
    /// Open: do not send; the next probe may go in this long (zero while a probe is out).
    Open { probe_in: Duration },
}

/// Leave to send one request. When it is the probe and is dropped without a result (the request
/// was not made after all, or its handler panicked), the next request may probe instead, so a
/// lost probe cannot keep a circuit open for ever.
#[derive(Debug)]
#[must_use = "record the attempt's health on the ticket"]
pub struct Ticket<'a> {
    breakers: &'a Breakers,
    key: &'a str,
    probe: bool,
}

impl Ticket<'_> {
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Records the attempt's effect on its endpoint; returns the change it made to the circuit.
    pub fn record(mut self, health: Health) -> Option<Change> {
        self.probe = false;
        self.breakers.record(self.key, health)
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe
            && let Some(circuit) = lock(&self.breakers.circuits).get_mut(self.key)
        {
            circuit.probing = false;
        }
    }
}

/// A circuit nothing has been sent to or deferred by for this long (or four cool-downs, if
/// longer) is swept. Deliveries waiting for an open circuit come back every cool-down, so an
/// open circuit idle this long has nothing waiting for it in this replica.
const IDLE: Duration = Duration::from_secs(3600);

#[derive(Debug)]
struct Circuit {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
    /// The last admission or result.
    seen: Instant,
    /// Open but idle: not counted in `synap_circuits_open` until it is used again.
    dormant: bool,
}

impl Circuit {
    fn new(now: Instant) -> Self {
        Self { failures: 0, open_until: None, probing: false, seen: now, dormant: false }
    }

    /// Marks the circuit used now; a dormant one counts as open again.
    fn touch(&mut self, now: Instant, open_gauge: &Gauge) {
        self.seen = now;
        if self.dormant {
            self.dormant = false;
            open_gauge.inc();
        }
    }
}

#[derive(Debug)]
pub struct Breakers {
    threshold: u32,
    cooldown: Duration,
    circuits: Mutex<HashMap<String, Circuit>>,
    /// `synap_circuits_open`: the open circuits that are not dormant.
    open_gauge: Gauge,
}

/// What a [`Breakers::sweep`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Closed circuits with failures, forgotten.
    pub forgotten: usize,
    /// Open circuits no longer counted.
    pub dormant: usize,
}

impl Breakers {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self::counted_in(threshold, cooldown, synap_telemetry::metrics().circuits_open().clone())
    }

    fn counted_in(threshold: u32, cooldown: Duration, open_gauge: Gauge) -> Self {
        Self { threshold: threshold.max(1), cooldown, circuits: Mutex::new(HashMap::new()), open_gauge }
    }

    /// How long a circuit may go unused before [`sweep`](Self::sweep) sets it aside.
    pub fn idle_after(&self) -> Duration {
        IDLE.max(self.cooldown.saturating_mul(4))
    }

    pub fn cooldown(&self) -> Duration {
        self.cooldown
    }

    pub fn admit<'a>(&'a self, key: &'a str) -> Admission<'a> {
        let send = |probe| Admission::Send(Ticket { breakers: self, key, probe });
        let mut circuits = lock(&self.circuits);
        let Some(circuit) = circuits.get_mut(key) else { return send(false) };
        let now = Instant::now();
        circuit.touch(now, &self.open_gauge);
        match circuit.open_until {
            None => send(false),
            Some(_) if circuit.probing => Admission::Open { probe_in: Duration::ZERO },
            Some(until) if now >= until => {
                circuit.probing = true;
                send(true)
            }
            Some(until) => Admission::Open { probe_in: until - now },
        }
    }

    fn record(&self, key: &str, health: Health) -> Option<Change> {
        let mut circuits = lock(&self.circuits);
        if health == Health::Up {
            let circuit = circuits.remove(key)?;
            let was_open = circuit.open_until.is_some();
            if was_open && !circuit.dormant {
                self.open_gauge.dec();
            }
            return was_open.then_some(Change::Closed);
        }
        let now = Instant::now();
        let circuit = circuits.entry(key.to_owned()).or_insert_with(|| Circuit::new(now));
        circuit.touch(now, &self.open_gauge);
        circuit.failures = circuit.failures.saturating_add(1);
        let was_open = circuit.open_until.is_some();
        if circuit.probing || circuit.failures >= self.threshold {
            circuit.open_until = Some(now + self.cooldown);
            circuit.probing = false;
        }
        let opened = !was_open && circuit.open_until.is_some();
        if opened {
            self.open_gauge.inc();
        }
        opened.then_some(Change::Opened)
    }

    /// Sets aside the circuits unused for [`idle_after`](Self::idle_after): a closed one is
    /// forgotten (its next failure counts from one), an open one turns dormant.
    pub fn sweep(&self) -> Swept {
        let Some(cutoff) = Instant::now().checked_sub(self.idle_after()) else { return Swept::default() };
        let mut swept = Swept::default();
        lock(&self.circuits).retain(|_, circuit| {
            if circuit.seen > cutoff || circuit.probing || circuit.dormant {
                return true;
            }
            if circuit.open_until.is_none() {
                swept.forgotten += 1;
                return false;
            }
            circuit.dormant = true;
            self.open_gauge.dec();
            swept.dormant += 1;
            true
        });
        swept
    }

    /// Circuits open or probing now, dormant ones included.
    pub fn open_count(&self) -> usize {
        lock(&self.circuits).values().filter(|c| c.open_until.is_some()).count()
    }

    /// Circuits held, whatever their state.
    pub fn held(&self) -> usize {
        lock(&self.circuits).len()
    }
}

/// Sweeps `breakers` every quarter of their idle time until shutdown.
pub async fn keep_swept(breakers: &Breakers, shutdown: CancellationToken) {
    let every = breakers.idle_after() / 4;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let swept = breakers.sweep();
        if swept != Swept::default() {
            tracing::debug!(
                forgotten = swept.forgotten,
                dormant = swept.dormant,
                held = breakers.held(),
                "idle circuits swept"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(b: &Breakers, key: &str, health: Health) -> Option<Change> {
        match b.admit(key) {
            Admission::Send(ticket) => ticket.record(health),
            Admission::Open { .. } => panic!("{key} is open"),
        }
    }

    fn is_open(b: &Breakers, key: &str) -> Option<Duration> {
        match b.admit(key) {
            Admission::Open { probe_in } => Some(probe_in),
            Admission::Send(_) => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_probes_once() {
        let b = Breakers::new(3, Duration::from_millis(50));
        assert_eq!(record(&b, "e", Health::Down), None);
        assert_eq!(record(&b, "e", Health::Down), None);
        assert_eq!(b.open_count(), 0);
        assert_eq!(record(&b, "e", Health::Down), Some(Change::Opened), "the third failure opens");
        assert_eq!(b.open_count(), 1);
        assert!(is_open(&b, "e").is_some_and(|p| p > Duration::ZERO && p <= Duration::from_millis(50)));
        tokio::time::advance(Duration::from_millis(60)).await;
        let Admission::Send(probe) = b.admit("e") else { panic!("the cool-down is over: a probe") };
        assert!(probe.is_probe());
        assert_eq!(is_open(&b, "e"), Some(Duration::ZERO), "one probe at a time");
        assert_eq!(probe.record(Health::Down), None, "a failed probe keeps it open");
        assert!(is_open(&b, "e").is_some_and(|p| p > Duration::ZERO), "for another cool-down");
        tokio::time::advance(Duration::from_millis(60)).await;
        let Admission::Send(probe) = b.admit("e") else { panic!("probe") };
        assert_eq!(probe.record(Health::Up), Some(Change::Closed), "a good probe closes");
        assert!(matches!(b.admit("e"), Admission::Send(t) if !t.is_probe()));
        assert_eq!(b.open_count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_dropped_without_a_result_lets_the_next_request_probe() {
        let b = Breakers::new(1, Duration::from_millis(50));
        record(&b, "e", Health::Down);
        tokio::time::advance(Duration::from_millis(60)).await;
        let Admission::Send(probe) = b.admit("e") else { panic!("probe") };
        assert!(probe.is_probe());
        drop(probe);
        assert!(matches!(b.admit("e"), Admission::Send(t) if t.is_probe()), "not stuck waiting for it");
    }

    #[tokio::test(start_paused = true)]
    async fn circuits_nothing_is_sent_to_are_swept_and_an_open_one_still_closes_on_its_success() {
        let gauge = Gauge::default();
        let b = Breakers::counted_in(2, Duration::from_secs(30), gauge.clone());
        assert_eq!(b.idle_after(), Duration::from_secs(3600), "an hour, unless four cool-downs are longer");
        record(&b, "flaky", Health::Down);
        record(&b, "dead", Health::Down);
        assert_eq!(record(&b, "dead", Health::Down), Some(Change::Opened));
        assert_eq!(gauge.get(), 1);
        assert_eq!(b.sweep(), Swept::default(), "nothing is idle yet");

        // "busy" is used all along (deferred deliveries come back every cool-down).
        record(&b, "busy", Health::Down);
        assert_eq!(record(&b, "busy", Health::Down), Some(Change::Opened));
        for _ in 0..130 {
            tokio::time::advance(Duration::from_secs(30)).await;
            let _ = is_open(&b, "busy");
        }
        assert_eq!(b.sweep(), Swept { forgotten: 1, dormant: 1 });
        assert_eq!(b.held(), 2, "the open circuits are kept");
        assert_eq!(b.open_count(), 2);
        assert_eq!(gauge.get(), 1, "only the circuit in use counts as open");
        assert_eq!(b.sweep(), Swept::default(), "a dormant circuit is swept once");
        let Admission::Send(_) = b.admit("flaky") else { panic!("forgotten: closed") };
        assert_eq!(record(&b, "flaky", Health::Down), None, "its failures count from one again");

        // Used again, the dormant circuit counts, probes, and its closing is reported.
        let Admission::Send(probe) = b.admit("dead") else { panic!("its cool-down is long over: a probe") };
        assert!(probe.is_probe());
        assert_eq!(gauge.get(), 2);
        assert_eq!(probe.record(Health::Up), Some(Change::Closed));
        assert_eq!(gauge.get(), 1);

        // A dormant circuit that closes without being admitted first still keeps the count right.
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(b.sweep(), Swept { forgotten: 1, dormant: 1 });
        assert_eq!(gauge.get(), 0);
        assert_eq!(b.record("busy", Health::Up), Some(Change::Closed));
        assert_eq!(gauge.get(), 0);
        assert_eq!(b.held(), 0);
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = Breakers::new(2, Duration::from_secs(60));
        record(&b, "e", Health::Down);
        record(&b, "e", Health::Up);
        record(&b, "e", Health::Down);
        assert_eq!(is_open(&b, "e"), None);
        assert_eq!(is_open(&b, "other"), None);
    }

    #[test]
    fn portals_have_their_own_circuits_for_one_endpoint() {
        let b = Breakers::new(1, Duration::from_secs(60));
        let (stranger, owner) =
            (key("a", "https://b.example:443/hook"), key("b", "https://b.example:443/hook"));
        assert_eq!(record(&b, &stranger, Health::Down), Some(Change::Opened));
        assert!(is_open(&b, &stranger).is_some());
        assert_eq!(is_open(&b, &owner), None, "the owner's circuit is its own");
        assert_ne!(key("a1", "2:x"), key("a", "12:x"), "keys cannot collide");
    }

    #[test]
    fn only_failures_that_say_the_endpoint_is_down_count() {
        let answered = |status| Attempted {
            error_class: Some(ErrorClass::HttpStatus),
            status: Some(status),
            ..Default::default()
        };
        for status in [500, 503, 429, 408] {
            assert_eq!(Health::of(&answered(status)), Some(Health::Down), "{status}");
        }
        for status in [401, 403, 404, 410, 301] {
            assert_eq!(Health::of(&answered(status)), Some(Health::Up), "{status}");
        }
        assert_eq!(Health::of(&Attempted::default()), Some(Health::Up), "delivered");
        for class in
            [ErrorClass::Timeout, ErrorClass::Connect, ErrorClass::Dns, ErrorClass::Tls, ErrorClass::Other]
        {
            assert_eq!(
                Health::of(&Attempted::not_made(class, String::new())),
                Some(Health::Down),
                "{class:?}"
            );
        }
        assert_eq!(Health::of(&Attempted::not_made(ErrorClass::Refused, String::new())), None);
    }
}
