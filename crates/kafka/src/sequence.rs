//! Records the broker skipped, read again.
//!
//! Synap's own topics have no gaps between offsets: their producers are idempotent and not
//! transactional, and nothing compacts them. A consumer handed offset 12 right after 10, or
//! handed 12 as the first record of a partition whose committed offset is 10, was skipped past
//! records by the broker. Some Kafka-compatible brokers do this: tansu 0.6 answers a fetch that
//! starts inside a record batch with the batches after it, and under concurrent producers hands a
//! consumer at the end of a partition the record stored just after one whose write is still under
//! way. Left alone, the committed offset would pass records that were never handled.
//!
//! So a gap is read again: the consumer seeks back to its first missing offset, then further back
//! (doubling) while the broker still answers from beyond it, and ignores what it already has.
//! Once the broker has answered from before the gap and the gap is still there, it is real
//! (transaction markers in a topic written by another system, records deleted by retention) and
//! is accepted.
//!
//! What no consumer can repair: tansu answers a fetch that starts inside the partition's *last*
//! batch with nothing at all, until another record is written there (then with that record, and
//! the gap is read again as above). Apache Kafka answers with the whole batch, and the client
//! skips the records before the offset it asked for.

use std::collections::HashMap;

/// How far back a gap is looked for before it is taken as real.
const FURTHEST_BACK: i64 = 4096;

/// What to do with a record, given the offsets read before it in the same tenure.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// The next record: handle it.
    Next,
    /// Already handled in this tenure, or before the tenure's start: skip it.
    Repeat,
    /// Records before this one were skipped: seek to `to` and skip this record, which will come
    /// again.
    Seek { to: i64 },
}

#[derive(Default)]
pub(crate) struct Sequence {
    partitions: HashMap<(String, i32), Expect>,
}

struct Expect {
    generation: u64,
    /// The offset due next; `None` until known (a tenure with no committed offset starts with
    /// whatever the broker gives).
    next: Option<i64>,
    repair: Option<Repair>,
}

/// A gap being read again.
struct Repair {
    /// How far before the gap the last seek went.
    back: i64,
    /// A record before the gap arrived since that seek: the broker answered from before it.
    answered_from_before: bool,
}

impl Sequence {
    /// Whether the partition's tenure `generation` is new here: its start offset is wanted.
    pub fn is_new(&self, topic: &str, partition: i32, generation: u64) -> bool {
        self.partitions.get(&(topic.to_owned(), partition)).is_none_or(|e| e.generation != generation)
    }

    /// Starts tenure `generation` of the partition at `committed` (its committed offset, when it
    /// has one).
    pub fn start(&mut self, topic: &str, partition: i32, generation: u64, committed: Option<i64>) {
        self.partitions
            .insert((topic.to_owned(), partition), Expect { generation, next: committed, repair: None });
    }

    /// Classifies the record at `offset`, read in the partition's current tenure.
    pub fn arrive(&mut self, topic: &str, partition: i32, offset: i64) -> Arrival {
        let Some(expect) = self.partitions.get_mut(&(topic.to_owned(), partition)) else {
            return Arrival::Next;
        };
        let Some(next) = expect.next else {
            expect.next = Some(offset + 1);
            return Arrival::Next;
        };
        if offset < next {
            if let Some(repair) = &mut expect.repair {
                repair.answered_from_before = true;
            }
            return Arrival::Repeat;
        }
        if offset == next {
            expect.next = Some(offset + 1);
            expect.repair = None;
            return Arrival::Next;
        }
        let back = match &expect.repair {
            None => Some(0),
            // The broker answered from before the gap, and still no record in it: it is real.
            Some(repair) if repair.answered_from_before => None,
            // Already asked from the start of the partition.
            Some(repair) if next - repair.back <= 0 => None,
            Some(repair) => Some((repair.back * 2).max(1)).filter(|back| *back <= FURTHEST_BACK),
        };
        let Some(back) = back else {
            expect.next = Some(offset + 1);
            expect.repair = None;
            return Arrival::Next;
        };
        expect.repair = Some(Repair { back, answered_from_before: false });
        Arrival::Seek { to: (next - back).max(0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(committed: Option<i64>) -> Sequence {
        let mut s = Sequence::default();
        s.start("t", 0, 1, committed);
        s
    }

    #[test]
    fn records_in_order_pass() {
        let mut s = started(Some(10));
        assert_eq!(s.arrive("t", 0, 10), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 11), Arrival::Next);
        assert!(!s.is_new("t", 0, 1) && s.is_new("t", 0, 2) && s.is_new("t", 1, 1));
    }

    /// The end-of-partition race: 12 handed over where 11 was due, then 12 again.
    #[test]
    fn a_record_skipped_at_the_end_is_read_again_and_the_repeat_ignored() {
        let mut s = started(Some(10));
        assert_eq!(s.arrive("t", 0, 10), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 12), Arrival::Seek { to: 11 });
        assert_eq!(s.arrive("t", 0, 11), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 12), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 12), Arrival::Repeat, "handed over twice by the broker");
        assert_eq!(s.arrive("t", 0, 13), Arrival::Next);
    }

    /// A fetch from the committed offset 11, inside the batch 8..=12, answered from 13: seek back
    /// further until the broker answers from before 11, and skip what comes before it.
    #[test]
    fn a_start_inside_a_batch_is_read_again_from_before_the_batch() {
        let mut s = started(Some(11));
        assert_eq!(s.arrive("t", 0, 13), Arrival::Seek { to: 11 });
        assert_eq!(s.arrive("t", 0, 13), Arrival::Seek { to: 10 }, "still answered from after the batch");
        assert_eq!(s.arrive("t", 0, 13), Arrival::Seek { to: 9 });
        assert_eq!(s.arrive("t", 0, 13), Arrival::Seek { to: 7 });
        assert_eq!(s.arrive("t", 0, 8), Arrival::Repeat, "before the tenure's start");
        assert_eq!(s.arrive("t", 0, 9), Arrival::Repeat);
        assert_eq!(s.arrive("t", 0, 10), Arrival::Repeat);
        assert_eq!(s.arrive("t", 0, 11), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 12), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 13), Arrival::Next);
    }

    #[test]
    fn a_real_gap_is_accepted_once_the_broker_answered_from_before_it() {
        let mut s = started(Some(10));
        assert_eq!(s.arrive("t", 0, 10), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 13), Arrival::Seek { to: 11 });
        assert_eq!(s.arrive("t", 0, 13), Arrival::Seek { to: 10 });
        assert_eq!(s.arrive("t", 0, 10), Arrival::Repeat);
        assert_eq!(s.arrive("t", 0, 13), Arrival::Next, "11 and 12 do not exist");
        assert_eq!(s.arrive("t", 0, 15), Arrival::Seek { to: 14 }, "a later gap is read again too");
    }

    /// Records deleted by retention below the committed offset: the broker answers from the log
    /// start whatever is asked, and the search gives up at the start of the partition.
    #[test]
    fn a_gap_at_the_start_of_the_log_is_accepted() {
        let mut s = started(Some(2));
        assert_eq!(s.arrive("t", 0, 50), Arrival::Seek { to: 2 });
        assert_eq!(s.arrive("t", 0, 50), Arrival::Seek { to: 1 });
        assert_eq!(s.arrive("t", 0, 50), Arrival::Seek { to: 0 });
        assert_eq!(s.arrive("t", 0, 50), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 51), Arrival::Next);
    }

    #[test]
    fn without_a_committed_offset_the_first_record_starts_the_count() {
        let mut s = started(None);
        assert_eq!(s.arrive("t", 0, 40), Arrival::Next);
        assert_eq!(s.arrive("t", 0, 42), Arrival::Seek { to: 41 });
    }
}
