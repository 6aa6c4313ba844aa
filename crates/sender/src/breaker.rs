//! A circuit breaker per endpoint URL (scheme, host, port and path): after consecutive failures no
//! requests go there until a single probe, sent after a cool-down, succeeds.
//!
//! The path is part of the key because many customers share a host (an integration platform,
//! one company's gateway): a path answering 500 must not open the circuit of its healthy
//! neighbours, which may belong to other portals.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whether a request may go to an endpoint now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Closed circuit: send.
    Send,
    /// The cool-down is over: this request is the one probe.
    Probe,
    /// Open: do not send; the next probe may go in this long (zero while a probe is out).
    Open { probe_in: Duration },
}

#[derive(Debug, Default)]
struct Circuit {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

pub struct Breakers {
    threshold: u32,
    cooldown: Duration,
    circuits: Mutex<HashMap<String, Circuit>>,
}

impl Breakers {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self { threshold: threshold.max(1), cooldown, circuits: Mutex::new(HashMap::new()) }
    }

    pub fn admit(&self, endpoint: &str) -> Admission {
        let mut circuits = self.circuits.lock().expect("breaker lock");
        let Some(circuit) = circuits.get_mut(endpoint) else { return Admission::Send };
        let now = Instant::now();
        match circuit.open_until {
            None => Admission::Send,
            Some(_) if circuit.probing => Admission::Open { probe_in: Duration::ZERO },
            Some(until) if now >= until => {
                circuit.probing = true;
                Admission::Probe
            }
            Some(until) => Admission::Open { probe_in: until - now },
        }
    }

    /// Records an attempt's result; returns true when this result opened the circuit.
    pub fn record(&self, endpoint: &str, success: bool) -> bool {
        let mut circuits = self.circuits.lock().expect("breaker lock");
        if success {
            circuits.remove(endpoint);
            return false;
        }
        let circuit = circuits.entry(endpoint.to_owned()).or_default();
        circuit.failures += 1;
        let was_open = circuit.open_until.is_some();
        if circuit.probing || circuit.failures >= self.threshold {
            circuit.open_until = Some(Instant::now() + self.cooldown);
            circuit.probing = false;
        }
        !was_open && circuit.open_until.is_some()
    }

    /// Endpoints whose circuit is open or probing now (the `synap_circuits_open` gauge).
    pub fn open_count(&self) -> usize {
        self.circuits.lock().expect("breaker lock").values().filter(|c| c.open_until.is_some()).count()
    }
}

/// The endpoint a URL belongs to, for the breaker: scheme, host, port and path (the query and
/// fragment do not name another endpoint).
pub fn endpoint(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port_or_known_default().unwrap_or(0),
            u.path()
        ),
        Err(_) => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_probes_once() {
        let b = Breakers::new(3, Duration::from_millis(50));
        assert!(!b.record("e", false));
        assert!(!b.record("e", false));
        assert_eq!(b.admit("e"), Admission::Send);
        assert_eq!(b.open_count(), 0);
        assert!(b.record("e", false), "third failure opens");
        assert_eq!(b.open_count(), 1);
        assert!(
            matches!(b.admit("e"), Admission::Open { probe_in } if probe_in <= Duration::from_millis(50))
        );
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.admit("e"), Admission::Probe);
        assert_eq!(b.admit("e"), Admission::Open { probe_in: Duration::ZERO }, "one probe at a time");
        b.record("e", false);
        assert!(
            matches!(b.admit("e"), Admission::Open { probe_in } if probe_in > Duration::ZERO),
            "a failed probe reopens"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.admit("e"), Admission::Probe);
        b.record("e", true);
        assert_eq!(b.admit("e"), Admission::Send, "a good probe closes");
        assert_eq!(b.open_count(), 0);
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = Breakers::new(2, Duration::from_secs(60));
        b.record("e", false);
        b.record("e", true);
        b.record("e", false);
        assert_eq!(b.admit("e"), Admission::Send);
        assert_eq!(b.admit("other"), Admission::Send);
    }

    #[test]
    fn endpoints_are_urls_without_query() {
        assert_eq!(endpoint("https://a.example/x?y"), endpoint("https://a.example:443/x#f"));
        assert_ne!(
            endpoint("https://a.example/x"),
            endpoint("https://a.example/z"),
            "neighbours on one host"
        );
        assert_ne!(endpoint("http://a.example/x"), endpoint("https://a.example/x"));
    }
}
