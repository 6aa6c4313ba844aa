//! Control: the gRPC API for portals, subscriptions and portal API keys.

pub mod api_keys;
pub mod auth;
pub mod call_limit;
pub mod config;
pub mod convert;
pub mod deliveries;
pub mod errors;
pub mod event_types;
pub mod health;
pub mod kafka_writer;
pub mod page;
pub mod portal_links;
pub mod portal_web;
pub mod portals;
pub mod server;
pub mod service;
pub mod subscriptions;
pub mod test_filter;
pub mod test_send;
pub mod tls;
pub mod validate;

#[cfg(test)]
mod id_fields_tests;
