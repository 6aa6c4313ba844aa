//! Sender: the part customers feel. Signs and POSTs each delivery, logs every attempt, retries
//! through delay-tier topics, isolates endpoints from each other, and dead-letters what fails for
//! good with an operator event.

pub mod attempt;
pub mod breaker;
pub mod circuit_log;
pub mod config;
pub mod disabled_gauge;
pub mod io;
pub mod lanes;
pub mod limits;
mod lock;
pub mod log;
pub mod operator;
pub mod schedule;
pub mod sign;
pub mod stage;
pub mod targets;
pub mod tiers;
