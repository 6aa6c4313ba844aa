//! Where Synap may send requests on a customer's behalf.
//!
//! A webhook URL is chosen by a customer, so without a policy the sender would fetch whatever
//! the customer names: the cloud metadata service, the database, the admin port of a neighbour.
//! [`Policy`] refuses every address that is not public (loopback, private, link-local including
//! 169.254.169.254, shared, multicast, unspecified, documentation, and their IPv6 equivalents)
//! unless the deployment allowlists its range. [`Resolver`] applies it inside the HTTP client:
//! the addresses it returns are the ones that were checked and the ones the client connects to,
//! so a name that resolves differently a moment later (DNS rebinding) gains nothing.
//! [`check_url`] applies the same rules when a subscription is created or changed.

mod policy;
mod resolver;

pub use policy::{OutboundConfig, Policy, Refused, check_url, check_url_resolved};
pub use resolver::Resolver;
