//! Every failure a stage meets is one of two kinds, decided where it is handled:
//!
//! - **transient**: the world is briefly unwell (a broker or database unreachable, a timeout, a
//!   pool exhausted). Retrying the same work later succeeds, so the stage waits and tries again,
//!   and the record's offset waits with it.
//! - **permanent**: this one piece of work can never succeed (data the database refuses, a record
//!   too large for its topic, bytes that do not decode, a secret the key cannot open). Retrying
//!   would stop its partition for ever, so the record is set aside with its reason (a dead
//!   letter) and the partition moves on.

use std::sync::Arc;

/// Which kind of failure an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Retry with backoff: the same work succeeds once the cause clears.
    Transient,
    /// Set the work aside with a reason: retrying can never succeed.
    Permanent,
}

/// An error that knows which kind of failure it is.
pub trait Classify {
    fn fault(&self) -> Fault;

    fn is_permanent(&self) -> bool {
        self.fault() == Fault::Permanent
    }
}

impl<E: Classify + ?Sized> Classify for Arc<E> {
    fn fault(&self) -> Fault {
        (**self).fault()
    }
}

impl<E: Classify + ?Sized> Classify for &E {
    fn fault(&self) -> Fault {
        (**self).fault()
    }
}
