//! Ingest: the platform's front door.

pub mod config;
pub mod decode;
pub mod stage;
