//! The test harness: a private stack per test (unique topic prefix, unique database, its own
//! service processes) on the shared broker and PostgreSQL that `scripts/test.sh` starts, and
//! real HTTP receivers on loopback.

pub mod browser;
pub mod certs;
pub mod kafka;
pub mod postgres;
pub mod receiver;
pub mod stack;

pub use receiver::{Received, Receiver, Reply};
pub use stack::{Replica, Service, Stack};
