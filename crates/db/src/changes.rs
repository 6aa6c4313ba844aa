//! Changes to portals and subscriptions as PostgreSQL announces them (migration 80's triggers
//! `NOTIFY` on every write), so that the router's and the sender's caches drop an entry the
//! moment it changes instead of reloading everything on a short TTL.
//!
//! One listener per process holds a dedicated connection (`LISTEN` needs a session of its own:
//! a pooled connection would be handed to queries and lose it). When that connection breaks, or
//! before it first listens, changes go unannounced: [`ChangeFeed::is_listening`] says so, the
//! caches then keep entries only [`UNLISTENED_TTL`] (the 1 s of the time before notifications),
//! and every cache is cleared when listening starts again, since anything may have changed
//! meanwhile.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use crate::pool::ConnectOptions;
use crate::{DatabaseConfig, DbError};

/// Carries a portal id: its plan, features or subscriptions changed.
pub const PORTAL_CHANNEL: &str = "synap_portal_changed";
/// Carries a subscription id: its row, or a row of its own (signing secrets), changed.
pub const SUBSCRIPTION_CHANNEL: &str = "synap_subscription_changed";

/// How long a cached entry stays usable while no listener is connected: the propagation the
/// product promises (a change applies within a second) when nothing announces changes.
pub const UNLISTENED_TTL: Duration = Duration::from_secs(1);

/// How long the listener waits before reconnecting: doubling from the first to the last.
const RECONNECT_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(10));

/// Notifications buffered per follower; a follower that falls this far behind clears its cache.
const FOLLOWER_BUFFER: usize = 4096;

/// What changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Portal(String),
    Subscription(String),
    /// Changes may have been missed (the listener (re)connected, or a follower fell behind):
    /// treat every cached entry as changed.
    Unknown,
}

/// The process's listener; cheap to clone.
#[derive(Clone)]
pub struct ChangeFeed {
    sender: broadcast::Sender<Change>,
    listening: Arc<AtomicBool>,
}

impl ChangeFeed {
    /// Starts listening in the background, reconnecting until `shutdown`. `service` names the
    /// connection (`application_name = <service> changes`) so an operator can tell it apart.
    pub fn start(
        config: &DatabaseConfig,
        service: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, DbError> {
        let options = ConnectOptions::parse(&config.url)?;
        let tls = options.tls_connector()?;
        let mut pg = options.pg;
        pg.application_name(format!("{service} changes"));
        let feed = Self::idle();
        let listener = feed.clone();
        tokio::spawn(async move { listener.run(pg, tls, shutdown).await });
        Ok(feed)
    }

    /// A feed that never announces anything (no listener): caches following it behave as
    /// before notifications, keeping entries [`UNLISTENED_TTL`].
    pub fn idle() -> Self {
        Self { sender: broadcast::channel(FOLLOWER_BUFFER).0, listening: Arc::new(AtomicBool::new(false)) }
    }

    /// Whether changes are being announced now.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    #[cfg(test)]
    pub(crate) fn set_listening_for_tests(&self, listening: bool) {
        self.listening.store(listening, Ordering::SeqCst);
    }

    /// Calls `apply` with every change from now on, in order, until `shutdown`; a follower that
    /// falls behind gets [`Change::Unknown`] for what it missed.
    pub fn follow(&self, shutdown: CancellationToken, mut apply: impl FnMut(Change) + Send + 'static) {
        let mut changes = self.sender.subscribe();
        tokio::spawn(async move {
            loop {
                let change = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    change = changes.recv() => change,
                };
                match change {
                    Ok(change) => apply(change),
                    Err(broadcast::error::RecvError::Lagged(_)) => apply(Change::Unknown),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    async fn run(
        self,
        pg: tokio_postgres::Config,
        tls: postgres_openssl::MakeTlsConnector,
        shutdown: CancellationToken,
    ) {
        let mut backoff = RECONNECT_BACKOFF.0;
        loop {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                outcome = self.listen(&pg, tls.clone()) => outcome,
            };
            self.listening.store(false, Ordering::SeqCst);
            // Entries read while listening may be stale by now and no notification will say so.
            let _ = self.sender.send(Change::Unknown);
            synap_telemetry::metrics().change_listener_restarts().inc();
            match outcome {
                // It listened for a while: the database is back, reconnect soon.
                Ok(()) => {
                    backoff = RECONNECT_BACKOFF.0;
                    tracing::warn!(retry_in = ?backoff, "change listener disconnected; caches cleared");
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "change listener cannot listen; caches keep entries 1 s")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(RECONNECT_BACKOFF.1);
        }
    }

    /// One connection's life: connect, listen, forward notifications until it ends. `Ok` when
    /// it listened (and then ended), `Err` when it never got that far.
    async fn listen(
        &self,
        pg: &tokio_postgres::Config,
        tls: postgres_openssl::MakeTlsConnector,
    ) -> Result<(), DbError> {
        let (client, mut connection) = pg.connect(tls).await?;
        // The connection delivers notifications only while polled; poll it beside the LISTEN.
        let (ended_tx, mut ended) = tokio::sync::oneshot::channel();
        let sender = self.sender.clone();
        let pump = tokio::spawn(async move {
            let end = loop {
                match poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        let id = n.payload().to_owned();
                        let change = match n.channel() {
                            PORTAL_CHANNEL => Change::Portal(id),
                            SUBSCRIPTION_CHANNEL => Change::Subscription(id),
                            _ => continue,
                        };
                        let _ = sender.send(change);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Some(e),
                    None => break None,
                }
            };
            let _ = ended_tx.send(end);
        });
        let listened =
            client.batch_execute(&format!("LISTEN {PORTAL_CHANNEL}; LISTEN {SUBSCRIPTION_CHANNEL}")).await;
        if let Err(e) = listened {
            pump.abort();
            return Err(e.into());
        }
        self.listening.store(true, Ordering::SeqCst);
        // Whatever changed before this point went unannounced.
        let _ = self.sender.send(Change::Unknown);
        tracing::info!("change listener listening");
        if let Ok(Some(error)) = (&mut ended).await {
            tracing::debug!(%error, "change listener connection ended");
        }
        drop(client);
        Ok(())
    }
}
