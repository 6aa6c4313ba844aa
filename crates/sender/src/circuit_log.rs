//! Circuit transitions stored in PostgreSQL (`endpoint_circuits`), so that the control API can
//! show "circuit open since …" for a subscription. Off the delivery path and best effort: the
//! delivery that opened or closed a circuit only queues the transition; a background task writes
//! it, and a full queue or a failed write is logged and forgotten (the circuit itself lives in
//! memory and works all the same; the next transition brings the row up to date).

use std::time::Duration;

use synap_db::Pool;
use synap_db::circuits::{self, Transition};
use synap_runtime::Classify as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Transitions waiting to be written. Circuits open and close rarely; a backlog this long means
/// PostgreSQL is down, and older states are not worth more memory.
const QUEUE: usize = 1024;

/// How many times a write is tried while PostgreSQL is unavailable.
const TRIES: u32 = 3;

#[derive(Clone)]
pub struct CircuitLog {
    tx: mpsc::Sender<Transition>,
}

impl CircuitLog {
    /// Starts the writer; it stops at shutdown.
    pub fn start(pool: Pool, shutdown: CancellationToken) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self { tx }, tokio::spawn(run(pool, rx, shutdown)))
    }

    /// Queues a transition; never waits.
    pub fn record(&self, transition: Transition) {
        if let Err(error) = self.tx.try_send(transition) {
            tracing::warn!(%error, "circuit transition not recorded: the queue is full or closed");
        }
    }
}

async fn run(pool: Pool, mut rx: mpsc::Receiver<Transition>, shutdown: CancellationToken) {
    loop {
        let transition = tokio::select! {
            received = rx.recv() => match received { Some(t) => t, None => return },
            _ = shutdown.cancelled() => return,
        };
        let mut tries = 0;
        loop {
            tries += 1;
            match circuits::record(&pool, &transition).await {
                Ok(()) => break,
                Err(error) if error.is_permanent() || tries >= TRIES => {
                    tracing::warn!(portal_id = %transition.portal_id, endpoint = %transition.endpoint,
                        state = transition.state.code(), %error, "circuit transition not recorded");
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200) * tries).await,
            }
        }
    }
}
