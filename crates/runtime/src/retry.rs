//! Retrying transient failures until they clear or the process shuts down; a permanent failure
//! ends the retries at once (see [`crate::fault`]).

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::fault::Classify;

/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why [`transient`] stopped without a value.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped<E> {
    /// The process is shutting down: the work will be done again after the restart.
    Shutdown,
    /// The work can never succeed: the caller sets it aside with this error as the reason.
    Permanent(E),
}

/// Runs `attempt` until it succeeds, waiting `first`, then twice as long each time (at most
/// 5 s) between tries; `on_error` sees each transient failure and the wait before the next try.
/// A permanent failure is returned at once, never retried; shutdown stops the waiting.
pub async fn transient<T, E, Fut>(
    shutdown: &CancellationToken,
    first: Duration,
    mut attempt: impl FnMut() -> Fut,
    mut on_error: impl FnMut(&E, Duration),
) -> Result<T, Stopped<E>>
where
    E: Classify,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = first;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_permanent() => return Err(Stopped::Permanent(error)),
            Err(error) => on_error(&error, backoff),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return Err(Stopped::Shutdown),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Fault;

    #[derive(Debug, PartialEq, Eq)]
    struct E(Fault);

    impl Classify for E {
        fn fault(&self) -> Fault {
            self.0
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_with_doubling_waits() {
        let shutdown = CancellationToken::new();
        let mut tries = 0;
        let mut waits = Vec::new();
        let got = transient(
            &shutdown,
            Duration::from_millis(100),
            || {
                tries += 1;
                let n = tries;
                async move { if n < 4 { Err(E(Fault::Transient)) } else { Ok(n) } }
            },
            |_, wait| waits.push(wait.as_millis()),
        )
        .await;
        assert_eq!(got, Ok(4));
        assert_eq!(waits, [100, 200, 400]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_never_retried() {
        let shutdown = CancellationToken::new();
        let mut tries = 0;
        let got: Result<(), _> = transient(
            &shutdown,
            Duration::from_millis(100),
            || {
                tries += 1;
                async { Err(E(Fault::Permanent)) }
            },
            |_, _| panic!("a permanent failure is not reported as a retry"),
        )
        .await;
        assert_eq!(got, Err(Stopped::Permanent(E(Fault::Permanent))));
        assert_eq!(tries, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_the_retries() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let got: Result<(), _> = transient(
            &shutdown,
            Duration::from_millis(100),
            || async { Err(E(Fault::Transient)) },
            |_, _| {},
        )
        .await;
        assert_eq!(got, Err(Stopped::Shutdown));
    }
}
