//! One cancellation tree per process, cancelled by SIGTERM or Ctrl-C.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Returns a token that is cancelled when the process receives SIGTERM or SIGINT. Tasks take
/// child tokens so that a failing critical task can also cancel the whole tree.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received, draining"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received, draining"),
            _ = trigger.cancelled() => return,
        }
        trigger.cancel();
    });
    token
}
