//! Locks that stay usable after a panic.
//!
//! A handler that panics on one record is caught and the record set aside
//! ([`synap_kafka::Handled::SetAside`]); the sender's shared state (lanes, limits, circuits) must
//! go on serving every later record. A std `Mutex` poisoned by that panic would instead make each
//! later `lock().expect(..)` panic too, turning one bad record into a dead stage. Every critical
//! section here is a few field updates that leave the state valid at every step, so the value
//! behind a poisoned lock is taken as it is.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_locked_does_not_spread() {
        let shared = std::sync::Arc::new(Mutex::new(1));
        let poisoner = shared.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.lock().unwrap();
            panic!("a bug on one record");
        })
        .join();
        assert!(shared.is_poisoned());
        *lock(&shared) += 1;
        assert_eq!(*lock(&shared), 2);
    }
}
