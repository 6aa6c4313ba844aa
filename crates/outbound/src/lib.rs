//! Where Synap may send requests on a customer's behalf.
//!
//! A webhook URL is chosen by a customer, so without a policy the sender would fetch whatever
//! the customer names: the cloud metadata service, the database, the admin port of a neighbour.
//! [`Policy`] refuses every address that is not public (loopback, private, link-local including
//! 169.254.169.254, shared, multicast, unspecified, documentation, the other special-purpose
//! ranges, and IPv6 forms that carry such an IPv4 address: 6to4, Teredo, NAT64; see
//! [`address`]) unless the deployment allowlists its range, and host names that only the local
//! machine or network answers (`localhost` in every spelling, `.local`, `.internal`, single
//! labels; see [`names`]) before they are looked up. [`Resolver`] applies it inside the HTTP client:
//! the addresses it returns are the ones that were checked and the ones the client connects to,
//! so a name that resolves differently a moment later (DNS rebinding) gains nothing.
//! [`check_url`] applies the same rules when a subscription is created or changed.

pub mod address;
pub mod names;
mod policy;
mod resolver;

pub use address::{AddressClass, Embedding, NonPublic};
pub use names::NameClass;
pub use policy::{OutboundConfig, Policy, Refused, check_url, check_url_resolved};
pub use resolver::Resolver;
