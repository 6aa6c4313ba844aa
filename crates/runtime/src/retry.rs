//! Retrying a transient failure until it clears or the process shuts down.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs `attempt` until it succeeds, waiting `first`, then twice as long each time (at most
/// 5 s) between tries; `on_error` sees each failure and the wait before the next try. Returns
/// `None` only when `shutdown` is cancelled. For failures the caller knows to be transient (a
/// database or broker that is down): a permanent one would be retried forever.
pub async fn until_shutdown<T, E, Fut>(
    shutdown: &CancellationToken,
    first: Duration,
    mut attempt: impl FnMut() -> Fut,
    mut on_error: impl FnMut(&E, Duration),
) -> Option<T>
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = first;
    loop {
        match attempt().await {
            Ok(value) => return Some(value),
            Err(error) => on_error(&error, backoff),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return None,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_with_doubling_waits_until_success() {
        let shutdown = CancellationToken::new();
        let mut tries = 0;
        let mut waits = Vec::new();
        let got = until_shutdown(
            &shutdown,
            Duration::from_millis(100),
            || {
                tries += 1;
                let n = tries;
                async move { if n < 4 { Err("down") } else { Ok(n) } }
            },
            |_: &&str, wait| waits.push(wait.as_millis()),
        )
        .await;
        assert_eq!(got, Some(4));
        assert_eq!(waits, [100, 200, 400]);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_the_retries() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let got: Option<()> =
            until_shutdown(&shutdown, Duration::from_millis(100), || async { Err("down") }, |_: &&str, _| {})
                .await;
        assert_eq!(got, None);
    }
}
