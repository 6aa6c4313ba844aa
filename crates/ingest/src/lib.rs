//! Ingest: the platform's front door.

pub mod config;
pub mod decode;
pub mod occurred_at;
pub mod reason;
pub mod stage;
pub mod strict_json;

#[cfg(test)]
mod decode_tests;
