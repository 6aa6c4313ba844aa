//! Per-subscription lanes for ordered delivery.
//!
//! Deliveries are read in partition order, and one subscription's deliveries share a partition.
//! When a delivery is read (synchronously, in that order) it joins its subscription's lane; an
//! ordered subscription's delivery then starts only after the one before it in the lane has
//! finished, retries included. Unordered deliveries leave the lane at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use synap_runtime::chain::{Link, Tail};

use crate::lock::lock;

/// The last place of each subscription's lane: its ticket and what the next place waits for.
type Tails = HashMap<String, (u64, Tail)>;

#[derive(Default, Clone)]
pub struct Lanes {
    tails: Arc<Mutex<Tails>>,
    next_ticket: Arc<std::sync::atomic::AtomicU64>,
}

/// A place in a lane: wait for the one before, then hold the place until dropped. A place given
/// up early (its partition revoked, say) lets the next one go only once the one before it has
/// finished, so an ordered subscription never has two requests in flight.
pub struct Place {
    lanes: Lanes,
    subscription_id: String,
    ticket: u64,
    link: Link,
}

impl Lanes {
    /// Joins the end of the subscription's lane. Call in read order.
    pub fn join(&self, subscription_id: &str) -> Place {
        let ticket = self.next_ticket.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tails = lock(&self.tails);
        let before = tails.remove(subscription_id).map(|(_, tail)| tail);
        let (link, tail) = Link::after(before);
        tails.insert(subscription_id.to_owned(), (ticket, tail));
        Place { lanes: self.clone(), subscription_id: subscription_id.to_owned(), ticket, link }
    }
}

impl Place {
    /// Waits until every delivery ahead in the lane has finished. Cancel-safe.
    pub async fn wait_turn(&mut self) {
        self.link.wait().await;
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        // The last place of a lane removes it, so lanes do not pile up one per subscription ever
        // seen; one that must still wait for the place before it leaves the lane's tail in place
        // (the next place to join takes it over).
        if !self.link.pass_on() {
            return;
        }
        let mut tails = lock(&self.lanes.tails);
        if tails.get(&self.subscription_id).is_some_and(|(t, _)| *t == self.ticket) {
            tails.remove(&self.subscription_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn each_waits_for_the_one_before() {
        let lanes = Lanes::default();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5u64 {
            let mut place = lanes.join("s");
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                // Later ones would finish first if they did not wait.
                tokio::time::sleep(Duration::from_millis(50 - i * 10)).await;
                place.wait_turn().await;
                order.lock().unwrap().push(i);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
        assert!(lanes.tails.lock().unwrap().is_empty(), "finished lanes are removed");
    }

    /// A place given up while the one before it is still in flight does not let the one after
    /// it start: one request at a time, whatever gives up.
    #[tokio::test]
    async fn a_place_given_up_early_lets_nobody_overtake_the_one_before() {
        let lanes = Lanes::default();
        let head = lanes.join("s");
        let given_up = lanes.join("s");
        let mut next = lanes.join("s");
        drop(given_up);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), next.wait_turn()).await.is_err(),
            "the head is still in flight"
        );
        drop(head);
        tokio::time::timeout(Duration::from_secs(5), next.wait_turn()).await.expect("the head finished");
    }

    #[tokio::test]
    async fn other_subscriptions_do_not_wait() {
        let lanes = Lanes::default();
        let _held = lanes.join("a");
        let mut other = lanes.join("b");
        tokio::time::timeout(Duration::from_millis(100), other.wait_turn()).await.expect("b is not behind a");
    }
}
