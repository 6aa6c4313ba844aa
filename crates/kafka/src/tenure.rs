//! Which partitions this consumer owns, and for how long.
//!
//! A record read from a partition belongs to the consumer's *tenure* of that partition: the time
//! from its assignment to its revocation (or to shutdown). When the partition is revoked, its new
//! owner starts again from the committed offset, which never passes a record still being worked
//! on. If the old owner went on working through the records it had read, two consumers would
//! work on the same records at once: an ordered subscription's next delivery could be sent by
//! the old owner while its new owner is still sending an earlier one, and every record read
//! before the revocation would be delivered twice.
//!
//! So each tenure has a cancellation token, cancelled in the rebalance callback, which librdkafka
//! calls before this consumer rejoins the group, and so before any other member can be given the
//! partition. Handlers start no new work once their record's tenure has ended
//! ([`crate::Turn::tenure`]); what was already under way finishes, and counts only towards its
//! own tenure's offset ([`crate::offsets`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::TopicPartitionList;
use tokio_util::sync::CancellationToken;

/// One tenure of one partition.
#[derive(Clone, Debug)]
pub(crate) struct Tenure {
    /// Tells tenures of the same partition apart (a partition can come back to this consumer).
    pub generation: u64,
    /// Cancelled when the tenure ends: the partition is revoked or the process shuts down.
    pub token: CancellationToken,
}

#[derive(Default)]
pub(crate) struct Tenures {
    current: Mutex<HashMap<(String, i32), Tenure>>,
    generations: AtomicU64,
}

impl Tenures {
    /// The current tenure of `topic`/`partition`, started now, by a record read at `offset`, if
    /// there is none. Its token is a child of `shutdown`.
    pub fn current(&self, topic: &str, partition: i32, offset: i64, shutdown: &CancellationToken) -> Tenure {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current
            .entry((topic.to_owned(), partition))
            .or_insert_with(|| {
                tracing::info!(topic, partition, offset, "partition assigned: reading from this offset");
                Tenure {
                    generation: self.generations.fetch_add(1, Ordering::Relaxed),
                    token: shutdown.child_token(),
                }
            })
            .clone()
    }

    /// Ends the tenures of the listed partitions. Called by librdkafka's rebalance callback.
    pub fn end(&self, partitions: &TopicPartitionList) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        for p in partitions.elements() {
            if let Some(tenure) = current.remove(&(p.topic().to_owned(), p.partition())) {
                tracing::info!(
                    topic = p.topic(),
                    partition = p.partition(),
                    "partition revoked: its work in progress stops"
                );
                tenure.token.cancel();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::Offset;

    use super::*;

    #[test]
    fn a_revoked_partition_comes_back_as_a_new_tenure() {
        let tenures = Tenures::default();
        let shutdown = CancellationToken::new();
        let first = tenures.current("t", 0, 0, &shutdown);
        let other = tenures.current("t", 1, 0, &shutdown);
        assert_eq!(tenures.current("t", 0, 0, &shutdown).generation, first.generation);

        let mut revoked = TopicPartitionList::new();
        revoked.add_partition_offset("t", 0, Offset::Invalid).unwrap();
        tenures.end(&revoked);
        assert!(first.token.is_cancelled());
        assert!(!other.token.is_cancelled(), "only the listed partitions end");

        let second = tenures.current("t", 0, 0, &shutdown);
        assert_ne!(second.generation, first.generation);
        assert!(!second.token.is_cancelled());
        shutdown.cancel();
        assert!(second.token.is_cancelled() && other.token.is_cancelled(), "shutdown ends every tenure");
    }
}
