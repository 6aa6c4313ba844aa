//! Which offset may be committed when records of a partition finish out of order.
//!
//! A stage works on many records at once, and they finish in any order. The committed offset
//! of a partition must never pass a record whose effect is not yet durable, so it is the lowest
//! offset still in flight, or one past the highest offset seen when nothing is.

use std::collections::{BTreeSet, HashMap};

#[derive(Default, Debug)]
pub struct OffsetTracker {
    partitions: HashMap<(String, i32), Partition>,
}

#[derive(Default, Debug)]
struct Partition {
    in_flight: BTreeSet<i64>,
    highest_seen: Option<i64>,
    committable: Option<i64>,
}

impl Partition {
    fn next_committable(&self) -> Option<i64> {
        match self.in_flight.first() {
            Some(lowest) => Some(*lowest),
            None => self.highest_seen.map(|h| h + 1),
        }
    }
}

impl OffsetTracker {
    /// Records that work on `offset` has started.
    pub fn begin(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self.partitions.entry((topic.to_owned(), partition)).or_default();
        p.in_flight.insert(offset);
        p.highest_seen = Some(p.highest_seen.map_or(offset, |h| h.max(offset)));
    }

    /// Records that `offset` is done. Returns the offset to commit (the next one to read) when
    /// it moved forward.
    pub fn complete(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let p = self.partitions.get_mut(&(topic.to_owned(), partition))?;
        p.in_flight.remove(&offset);
        let next = p.next_committable()?;
        if p.committable.is_some_and(|c| c >= next) {
            return None;
        }
        p.committable = Some(next);
        Some(next)
    }

    /// Number of records in flight over all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.in_flight.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_contiguous_prefix() {
        let mut t = OffsetTracker::default();
        for o in 10..15 {
            t.begin("t", 0, o);
        }
        assert_eq!(t.complete("t", 0, 12), Some(10));
        assert_eq!(t.complete("t", 0, 11), None);
        assert_eq!(t.complete("t", 0, 10), Some(13));
        assert_eq!(t.complete("t", 0, 14), None);
        assert_eq!(t.complete("t", 0, 13), Some(15));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::default();
        t.begin("t", 0, 5);
        t.begin("t", 1, 7);
        assert_eq!(t.complete("t", 1, 7), Some(8));
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.complete("t", 0, 5), Some(6));
    }

    #[test]
    fn unknown_partition_is_ignored() {
        let mut t = OffsetTracker::default();
        assert_eq!(t.complete("t", 3, 1), None);
    }
}
