//! Whether a service should get work: every dependency it names is reachable, and it is not
//! draining. Services flip the checks; `/readyz` reports them.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often services re-check their dependencies.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// The longest a dependency check may take; one that has not answered by then failed. Each
/// check bounds its own calls (Kafka's metadata request 3 s, the database pool's wait and
/// connect 5 s each), so that its own error comes through: this catches the check that hangs,
/// as a query on a connection whose database stopped answering does. Without it, the last
/// outcome ("reachable") stood for as long as the check hung.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(12);

/// A cheap, clonable handle on the process's readiness.
#[derive(Clone, Default)]
pub struct Readiness {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Dependency name → the last check failed (`Some(why)`) or passed (`None`).
    checks: BTreeMap<&'static str, Option<String>>,
    draining: bool,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a dependency, not yet reachable: the service is not ready until it passes.
    pub fn require(&self, name: &'static str) {
        self.lock().checks.entry(name).or_insert_with(|| Some("not checked yet".into()));
    }

    /// Records the outcome of a check of `name`.
    pub fn set(&self, name: &'static str, result: Result<(), String>) {
        let mut state = self.lock();
        let previous = state.checks.insert(name, result.clone().err());
        match (previous.flatten(), result) {
            (Some(_), Ok(())) => tracing::info!(dependency = name, "reachable"),
            (None, Err(why)) => tracing::warn!(dependency = name, %why, "unreachable"),
            _ => {}
        }
    }

    /// From now on the service reports not ready, so that a load balancer stops sending it work
    /// while it finishes what it has.
    pub fn drain(&self) {
        self.lock().draining = true;
    }

    /// `Ok` when ready; otherwise every reason it is not.
    pub fn status(&self) -> Result<(), Vec<String>> {
        let state = self.lock();
        let mut reasons: Vec<String> = state
            .checks
            .iter()
            .filter_map(|(name, err)| err.as_ref().map(|e| format!("{name}: {e}")))
            .collect();
        if state.draining {
            reasons.push("draining".into());
        }
        if reasons.is_empty() { Ok(()) } else { Err(reasons) }
    }

    /// Runs `check` now and then every `every` until `shutdown`, recording each outcome under
    /// `name`, and marks the service draining when `shutdown` fires.
    pub fn watch<F, Fut>(&self, name: &'static str, every: Duration, shutdown: CancellationToken, check: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        self.require(name);
        let readiness = self.clone();
        tokio::spawn(async move {
            loop {
                let result = tokio::select! {
                    result = tokio::time::timeout(CHECK_TIMEOUT, check()) => result.unwrap_or_else(|_| {
                        Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs()))
                    }),
                    _ = shutdown.cancelled() => break,
                };
                readiness.set(name, result);
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
            readiness.drain();
        });
    }

    /// Marks the service draining as soon as `shutdown` fires.
    pub fn drain_on(&self, shutdown: CancellationToken) {
        let readiness = self.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            readiness.drain();
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent data (plain assignments).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_dependency_passed_and_not_draining() {
        let r = Readiness::new();
        assert!(r.status().is_ok());
        r.require("kafka");
        r.require("postgres");
        assert_eq!(r.status().unwrap_err().len(), 2);
        r.set("kafka", Ok(()));
        r.set("postgres", Err("connection refused".into()));
        assert_eq!(r.status().unwrap_err(), vec!["postgres: connection refused".to_string()]);
        r.set("postgres", Ok(()));
        assert!(r.status().is_ok());
        r.drain();
        assert_eq!(r.status().unwrap_err(), vec!["draining".to_string()]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_stops_answering_fails_after_the_check_timeout() {
        let r = Readiness::new();
        let shutdown = CancellationToken::new();
        let checks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = checks.clone();
        // The first check answers; every later one hangs, as a query to a frozen database does.
        r.watch("postgres", CHECK_INTERVAL, shutdown.clone(), move || {
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                if n > 0 {
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(r.status().is_ok());
        tokio::time::sleep(CHECK_INTERVAL + CHECK_TIMEOUT - Duration::from_millis(2)).await;
        assert!(r.status().is_ok(), "not failed before the timeout");
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(r.status().unwrap_err(), vec!["postgres: no answer within 12 s".to_string()]);
        assert_eq!(checks.load(std::sync::atomic::Ordering::Relaxed), 2, "one check at a time");
        shutdown.cancel();
    }
}
