//! Places in line that keep their order even when one leaves early.
//!
//! Each [`Link`] waits for the one before it, and lets the next one go when it is dropped. A link
//! dropped before the one ahead of it has finished (its record set aside, abandoned, its task
//! ended) does not let the next one go at once: it passes the signal on only once the one ahead
//! has finished too, so nobody ever overtakes a place still in progress. Used for the order of a
//! partition's writes ([`synap_kafka::Turn`]) and of an ordered subscription's requests.

use tokio::sync::oneshot;

/// A place in line.
#[derive(Debug)]
pub struct Link {
    before: Option<oneshot::Receiver<()>>,
    done: Option<oneshot::Sender<()>>,
}

/// What the next place in line waits for: the last link handed out.
#[derive(Debug)]
pub struct Tail(oneshot::Receiver<()>);

impl Link {
    /// A link behind `before` (none: first in line), and the tail that the next link waits for.
    pub fn after(before: Option<Tail>) -> (Self, Tail) {
        let (done, tail) = oneshot::channel();
        (Self { before: before.map(|t| t.0), done: Some(done) }, Tail(tail))
    }

    /// A link with nobody before or after it.
    pub fn alone() -> Self {
        Self { before: None, done: None }
    }

    /// Waits until every place ahead has finished. Cancel-safe: dropped half-way, the link still
    /// waits for the one ahead before letting the next one go.
    pub async fn wait(&mut self) {
        if let Some(before) = self.before.as_mut() {
            // An error means the one before is gone: its place is over either way.
            let _ = before.await;
            self.before = None;
        }
    }

    /// Lets the next place go: now if the one ahead has finished (returns true), otherwise as
    /// soon as it does (returns false). Dropping the link does this.
    pub fn pass_on(&mut self) -> bool {
        let Some(done) = self.done.take() else { return true };
        let Some(mut before) = self.before.take() else {
            let _ = done.send(());
            return true;
        };
        match before.try_recv() {
            Ok(()) | Err(oneshot::error::TryRecvError::Closed) => {
                let _ = done.send(());
                true
            }
            Err(oneshot::error::TryRecvError::Empty) => {
                tokio::spawn(async move {
                    let _ = before.await;
                    let _ = done.send(());
                });
                false
            }
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.pass_on();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    /// Places that finish in reverse order still go in line order, and one that leaves early
    /// (dropped unwaited, or dropped half-way through its wait) lets nobody overtake the one
    /// ahead of it.
    #[tokio::test(start_paused = true)]
    async fn nobody_overtakes_a_place_still_in_progress() {
        let went = Arc::new(Mutex::new(Vec::new()));
        let mut tail = None;
        let mut tasks = Vec::new();
        for n in 0..6u64 {
            let (mut link, next) = Link::after(tail.take());
            tail = Some(next);
            let went = went.clone();
            tasks.push(tokio::spawn(async move {
                // Later places are ready sooner.
                tokio::time::sleep(Duration::from_millis(100 - n * 10)).await;
                match n {
                    2 => {
                        // Gives up half-way through its wait.
                        let _ = tokio::time::timeout(Duration::from_millis(1), link.wait()).await;
                        return;
                    }
                    3 => return, // leaves without waiting
                    _ => {}
                }
                link.wait().await;
                went.lock().unwrap().push(n);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*went.lock().unwrap(), [0, 1, 4, 5]);
    }

    #[tokio::test]
    async fn pass_on_says_whether_the_next_may_go_now() {
        let (first, tail) = Link::after(None);
        let (mut second, _) = Link::after(Some(tail));
        assert!(!second.pass_on(), "the first is still in progress");
        drop(first);
        let (mut third, _) = Link::after(None);
        assert!(third.pass_on());
        assert!(Link::alone().pass_on());
    }
}
