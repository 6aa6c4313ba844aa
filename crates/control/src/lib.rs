//! Control: the gRPC API for portals and subscriptions.

pub mod auth;
pub mod config;
pub mod convert;
pub mod deliveries;
pub mod errors;
pub mod server;
pub mod service;
pub mod validate;
