//! Router: from one event to one delivery per matching subscription.

pub mod config;
pub mod filtering;
pub mod routes;
pub mod stage;
