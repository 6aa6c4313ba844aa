//! Whether a cached entry still holds what the database holds, given the changes announced
//! since it was read ([`crate::changes`]).
//!
//! Dropping an entry when its change arrives is not enough: a read that started before the
//! change committed can finish after the notification and store the old rows. So every entry
//! carries a [`Stamp`] taken before its read, and a change marks its key with a number newer
//! than any stamp taken before it: an entry is current only if no change to its key (and no
//! "anything may have changed") came after its stamp.
//!
//! Changed keys are remembered in a fixed table of slots, by hash: two keys that share a slot
//! only cost the other one a reload, and memory stays the same however many changes arrive.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::changes::{ChangeFeed, UNLISTENED_TTL};

/// Slots of the changed-key table: 64 KiB, so that even a burst of thousands of changes reloads
/// few other entries.
const SLOTS: usize = 8192;

/// When an entry's read began.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    number: u64,
    at: Instant,
}

/// One cache's view of the changes.
pub struct Freshness {
    feed: ChangeFeed,
    /// Counts changes; a stamp holds its value when taken.
    counter: AtomicU64,
    /// The counter at the last "anything may have changed".
    cleared: AtomicU64,
    /// Per slot, the counter at the last change to a key of that slot.
    slots: Box<[AtomicU64]>,
    hasher: std::hash::RandomState,
}

impl Freshness {
    pub fn new(feed: ChangeFeed) -> Self {
        Self {
            feed,
            counter: AtomicU64::new(0),
            cleared: AtomicU64::new(0),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Taken before reading an entry from the database.
    pub fn stamp(&self) -> Stamp {
        Stamp { number: self.counter.load(Ordering::SeqCst), at: Instant::now() }
    }

    /// Whether an entry of `key` read under `stamp` is still current.
    pub fn is_current(&self, key: &str, stamp: &Stamp) -> bool {
        // Without a listener nothing announces changes: the short TTL of old stands in.
        if !self.feed.is_listening() && stamp.at.elapsed() > UNLISTENED_TTL {
            return false;
        }
        // Nothing changed anywhere since the read: the common case, no lookup.
        if self.counter.load(Ordering::SeqCst) == stamp.number {
            return true;
        }
        stamp.number >= self.cleared.load(Ordering::SeqCst)
            && self.slots[self.slot(key)].load(Ordering::SeqCst) <= stamp.number
    }

    /// `key` changed: entries read before now are stale.
    pub fn changed(&self, key: &str) {
        let number = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.slots[self.slot(key)].fetch_max(number, Ordering::SeqCst);
    }

    /// Anything may have changed: every entry read before now is stale.
    pub fn changed_all(&self) {
        let number = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.cleared.fetch_max(number, Ordering::SeqCst);
    }

    fn slot(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) % SLOTS as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening() -> Freshness {
        let feed = ChangeFeed::idle();
        feed.set_listening_for_tests(true);
        Freshness::new(feed)
    }

    #[test]
    fn a_change_makes_only_entries_read_before_it_stale() {
        let f = listening();
        let (a, b) = (f.stamp(), f.stamp());
        f.changed("portal-a");
        assert!(!f.is_current("portal-a", &a));
        // Another key keeps its entry (unless it shares the slot: not these two, by luck of the
        // hash, so check a key whose slot differs).
        let other =
            (0..100).map(|i| format!("portal-{i}")).find(|k| f.slot(k) != f.slot("portal-a")).unwrap();
        assert!(f.is_current(&other, &b));
        let reread = f.stamp();
        assert!(f.is_current("portal-a", &reread), "a read after the change is current");
    }

    #[test]
    fn a_read_that_began_before_the_change_stays_stale_when_it_lands_after() {
        let f = listening();
        let began = f.stamp();
        f.changed("sub_1");
        // The read finishes now and is stored with the stamp it began with.
        assert!(!f.is_current("sub_1", &began));
    }

    #[test]
    fn anything_may_have_changed_makes_every_earlier_entry_stale() {
        let f = listening();
        let before = f.stamp();
        f.changed_all();
        assert!(!f.is_current("a", &before));
        assert!(!f.is_current("b", &before));
        assert!(f.is_current("a", &f.stamp()));
    }

    #[test]
    fn without_a_listener_entries_live_one_second() {
        let f = Freshness::new(ChangeFeed::idle());
        let fresh = f.stamp();
        assert!(f.is_current("a", &fresh));
        let old =
            Stamp { at: Instant::now() - UNLISTENED_TTL - std::time::Duration::from_millis(1), ..fresh };
        assert!(!f.is_current("a", &old));
        let f = listening();
        let old = Stamp { at: Instant::now() - UNLISTENED_TTL * 100, ..f.stamp() };
        assert!(f.is_current("a", &old), "while listening, age alone does not make an entry stale");
    }
}
