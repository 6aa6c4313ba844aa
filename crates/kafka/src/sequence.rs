//! Records the broker skipped, read again.
//!
//! Synap's own topics never have gaps between offsets: their producers are idempotent and not
//! transactional, and nothing compacts them. A consumer that is handed offset 12 right after 10
//! has been skipped past 11 by the broker; some Kafka-compatible brokers do this under
//! concurrent producers (tansu 0.6 hands a consumer reading at the end of a partition the record
//! stored just after one whose write is still in progress, then the same record again). Left
//! alone, the offset committed after 12 would pass 11 and the record would never be handled.
//!
//! So a gap is read again once: the consumer seeks back to the first missing offset and ignores
//! the records it already has. A gap that is still there when read again is real (transaction
//! markers in a topic written by another system, records compacted away) and is accepted.

use std::collections::HashMap;

/// What to do with a record, given the offsets read before it in the same tenure.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// The next record: handle it.
    Next,
    /// Already handed to a handler in this tenure (read again after a seek back): skip it.
    Repeat,
    /// Offsets from `from` on were skipped: seek back to `from` and skip this record, which will
    /// come again.
    Gap { from: i64 },
}

#[derive(Default)]
pub(crate) struct Sequence {
    partitions: HashMap<(String, i32), Expect>,
}

struct Expect {
    generation: u64,
    next: i64,
    /// The gap already read again once (its first offset).
    retried: Option<i64>,
}

impl Sequence {
    /// Classifies the record at `offset`, read in tenure `generation` of the partition.
    pub fn arrive(&mut self, topic: &str, partition: i32, generation: u64, offset: i64) -> Arrival {
        let key = (topic.to_owned(), partition);
        let Some(expect) = self.partitions.get_mut(&key).filter(|e| e.generation == generation) else {
            // The first record of a tenure: it starts at the committed offset, which we do not
            // know, so there is nothing to compare with.
            self.partitions.insert(key, Expect { generation, next: offset + 1, retried: None });
            return Arrival::Next;
        };
        if offset < expect.next {
            return Arrival::Repeat;
        }
        if offset > expect.next && expect.retried != Some(expect.next) {
            expect.retried = Some(expect.next);
            return Arrival::Gap { from: expect.next };
        }
        expect.next = offset + 1;
        expect.retried = None;
        Arrival::Next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skipped_record_is_read_again_and_the_repeat_ignored() {
        let mut s = Sequence::default();
        assert_eq!(s.arrive("t", 0, 1, 10), Arrival::Next);
        // The broker hands over 12 where 11 was due: read again from 11.
        assert_eq!(s.arrive("t", 0, 1, 12), Arrival::Gap { from: 11 });
        assert_eq!(s.arrive("t", 0, 1, 11), Arrival::Next, "read again");
        assert_eq!(s.arrive("t", 0, 1, 12), Arrival::Next);
    }

    #[test]
    fn after_the_seek_back_the_records_come_in_order() {
        let mut s = Sequence::default();
        assert_eq!(s.arrive("t", 0, 1, 10), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 1, 12), Arrival::Gap { from: 11 });
        assert_eq!(s.arrive("t", 0, 1, 11), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 1, 12), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 1, 12), Arrival::Repeat, "handed over twice by the broker");
        assert_eq!(s.arrive("t", 0, 1, 13), Arrival::Next);
    }

    #[test]
    fn a_real_gap_is_accepted_the_second_time() {
        let mut s = Sequence::default();
        assert_eq!(s.arrive("t", 0, 1, 10), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 1, 13), Arrival::Gap { from: 11 });
        assert_eq!(s.arrive("t", 0, 1, 13), Arrival::Next, "11 and 12 do not exist");
        assert_eq!(s.arrive("t", 0, 1, 15), Arrival::Gap { from: 14 }, "a later gap is read again too");
    }

    #[test]
    fn each_tenure_and_partition_starts_afresh() {
        let mut s = Sequence::default();
        assert_eq!(s.arrive("t", 0, 1, 10), Arrival::Next);
        assert_eq!(s.arrive("t", 1, 1, 500), Arrival::Next);
        // Revoked and assigned again: the new tenure starts at the committed offset.
        assert_eq!(s.arrive("t", 0, 2, 4), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 2, 5), Arrival::Next);
    }
}
