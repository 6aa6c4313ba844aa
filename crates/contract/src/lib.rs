//! The Synap webhook event contract (`EVENTS.md`): the thirteen event types, the documented
//! JSON shape of each body, a validator for it, a realistic example body per type, and the one
//! rule every identifier follows ([`ids`]).
//!
//! Validation checks presence and JSON types only: extra fields are always allowed, because
//! the platform adds fields over time and they must be delivered unchanged.

mod event_type;
mod examples;
pub mod ids;
pub mod pattern;
pub mod plan;
mod shape;
mod shapes;

#[cfg(test)]
mod contract_tests;

pub use event_type::{EventType, UnknownEventType};
pub use pattern::{PatternError, TypePattern};
pub use plan::{Plan, PlanRefusal};
pub use shape::{BodyError, json_kind};
pub use shapes::{Step, documents_path, validate_body};
