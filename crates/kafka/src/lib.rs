//! Kafka plumbing shared by the Synap stages.

pub mod client;
pub mod consume;
pub mod dead_letter;
pub mod deliveries;
pub mod fetch;
pub mod headers;
pub mod offsets;
mod partition_queues;
pub mod produce;
pub mod provision;
pub mod scan;
mod sequence;
mod tenure;
pub mod topics;

pub use client::{Consumer, KafkaConfig, KafkaError, watch_reachable};
pub use consume::{Handled, Turn, run_consumer};
pub use dead_letter::{DeadLetters, SetAside, Source};
pub use produce::{Outgoing, SendError, flush, send_durably, send_in_turn, stop_if_failed};
pub use topics::Topics;
