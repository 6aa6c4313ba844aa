//! Which offset may be committed when records of a partition finish out of order.
//!
//! A stage works on many records at once, and they finish in any order. The committed offset
//! of a partition must never pass a record whose effect is not yet durable, so it is the lowest
//! offset still in flight, or one past the highest offset seen when nothing is.
//!
//! Each tenure of the partition ([`crate::tenure`]) counts on its own. A tenure that has ended
//! still stores what its records finish afterwards: everything below that offset is done, so it
//! is safe to commit whoever owns the partition now (the store fails if nobody here does). A
//! record given up ([`crate::Handled::Abandoned`]) holds its tenure's offset back for good.

use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Default, Debug)]
pub struct OffsetTracker {
    partitions: HashMap<(String, i32), BTreeMap<u64, Tenure>>,
}

/// One tenure's count.
#[derive(Default, Debug)]
struct Tenure {
    in_flight: BTreeSet<i64>,
    highest_seen: Option<i64>,
    committable: Option<i64>,
    /// The lowest offset given up: the count never passes it.
    abandoned: Option<i64>,
}

impl Tenure {
    fn next_committable(&self) -> Option<i64> {
        let open = self.in_flight.first().copied().or(self.highest_seen.map(|h| h + 1));
        match (open, self.abandoned) {
            (Some(open), Some(abandoned)) => Some(open.min(abandoned)),
            (open, abandoned) => open.or(abandoned),
        }
    }
}

impl OffsetTracker {
    /// Records that work on `offset`, read in tenure `generation`, has started.
    pub fn begin(&mut self, topic: &str, partition: i32, generation: u64, offset: i64) {
        let p =
            self.partitions.entry((topic.to_owned(), partition)).or_default().entry(generation).or_default();
        p.in_flight.insert(offset);
        p.highest_seen = Some(p.highest_seen.map_or(offset, |h| h.max(offset)));
    }

    /// Records that `offset`, read in tenure `generation`, is done. Returns the offset to commit
    /// (the next one to read) when that tenure's count moved forward.
    pub fn complete(&mut self, topic: &str, partition: i32, generation: u64, offset: i64) -> Option<i64> {
        let key = (topic.to_owned(), partition);
        let tenures = self.partitions.get_mut(&key)?;
        let p = tenures.get_mut(&generation)?;
        p.in_flight.remove(&offset);
        let next = p.next_committable().filter(|next| p.committable.is_none_or(|c| c < *next));
        if next.is_some() {
            p.committable = next;
        }
        Self::forget_finished(tenures, generation);
        next
    }

    /// Records that `offset`, read in tenure `generation`, was given up: that tenure's count
    /// never passes it.
    pub fn abandon(&mut self, topic: &str, partition: i32, generation: u64, offset: i64) {
        let Some(tenures) = self.partitions.get_mut(&(topic.to_owned(), partition)) else { return };
        let Some(p) = tenures.get_mut(&generation) else { return };
        p.in_flight.remove(&offset);
        p.abandoned = Some(p.abandoned.map_or(offset, |a| a.min(offset)));
        Self::forget_finished(tenures, generation);
    }

    /// An ended tenure (one with a newer tenure after it) is forgotten once nothing of it is in
    /// flight: it has nothing more to store.
    fn forget_finished(tenures: &mut BTreeMap<u64, Tenure>, generation: u64) {
        let newest = tenures.keys().next_back().copied();
        if newest != Some(generation) && tenures.get(&generation).is_some_and(|t| t.in_flight.is_empty()) {
            tenures.remove(&generation);
        }
    }

    /// Number of records in flight over all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().flat_map(|t| t.values()).map(|p| p.in_flight.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_contiguous_prefix() {
        let mut t = OffsetTracker::default();
        for o in 10..15 {
            t.begin("t", 0, 0, o);
        }
        assert_eq!(t.complete("t", 0, 0, 12), Some(10));
        assert_eq!(t.complete("t", 0, 0, 11), None);
        assert_eq!(t.complete("t", 0, 0, 10), Some(13));
        assert_eq!(t.complete("t", 0, 0, 14), None);
        assert_eq!(t.complete("t", 0, 0, 13), Some(15));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::default();
        t.begin("t", 0, 0, 5);
        t.begin("t", 1, 0, 7);
        assert_eq!(t.complete("t", 1, 0, 7), Some(8));
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.complete("t", 0, 0, 5), Some(6));
    }

    #[test]
    fn unknown_partition_is_ignored() {
        let mut t = OffsetTracker::default();
        assert_eq!(t.complete("t", 3, 0, 1), None);
    }

    #[test]
    fn an_abandoned_record_holds_its_tenure_back_for_good() {
        let mut t = OffsetTracker::default();
        for o in 5..9 {
            t.begin("t", 0, 1, o);
        }
        assert_eq!(t.complete("t", 0, 1, 5), Some(6));
        t.abandon("t", 0, 1, 6);
        assert_eq!(t.complete("t", 0, 1, 7), None);
        assert_eq!(t.complete("t", 0, 1, 8), None, "never past the abandoned 6");
    }

    /// An ended tenure stores what it finishes, never past what it gave up; the new one counts
    /// on its own from where it started; the ended one is forgotten when nothing is in flight.
    #[test]
    fn tenures_count_on_their_own() {
        let mut t = OffsetTracker::default();
        for o in 5..9 {
            t.begin("t", 0, 1, o);
        }
        // Revoked, then assigned again from the committed offset 5.
        t.begin("t", 0, 2, 5);
        assert_eq!(t.complete("t", 0, 1, 5), Some(6), "done, so safe to commit");
        t.abandon("t", 0, 1, 6);
        assert_eq!(t.complete("t", 0, 1, 7), None);
        assert_eq!(t.complete("t", 0, 2, 5), Some(6), "the new tenure is not held back by the old");
        assert_eq!(t.complete("t", 0, 1, 8), None);
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.partitions[&("t".to_owned(), 0)].len(), 1, "the ended tenure is forgotten");
    }
}
