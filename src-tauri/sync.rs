//! The one lock-poisoning policy: a `std::sync::Mutex` poisoned by a panicking holder is used
//! as it was left. Every critical section in the broker is short and leaves its data whole
//! (one insert, remove, replace or read), so what a panic interrupted is still consistent;
//! refusing the lock instead would turn one failed request into a panic in every later one
//! that touches the same map, which is how a local broker stops serving everyone.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, recovering it if a panicking holder poisoned it (see the module comment).
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mutex_poisoned_by_a_panicking_holder_is_still_usable() {
        let m = std::sync::Arc::new(Mutex::new(vec![1]));
        let held = m.clone();
        let panicked = std::thread::spawn(move || {
            let mut v = held.lock().unwrap();
            v.push(2);
            panic!("a holder fails");
        })
        .join();
        assert!(panicked.is_err() && m.is_poisoned());
        lock(&m).push(3);
        assert_eq!(*lock(&m), vec![1, 2, 3]);
    }
}
