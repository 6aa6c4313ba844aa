//! Sender: the part customers feel.

pub mod attempt;
pub mod config;
pub mod stage;
pub mod targets;
