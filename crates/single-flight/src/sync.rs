//! The synchronization primitives the crate uses, swapped for loom's under `cfg(loom)`.
//!
//! The flight's `Arc`, the locks and the thread-local re-entrancy stack are modelled;
//! `event-listener` swaps its own internals when its `loom` feature is on. The registry stays in
//! a std `Arc` (loom's cannot coerce to `Arc<dyn Unlink>`), which only owns loom locks.

#[cfg(not(loom))]
pub(crate) use std::sync::{atomic::AtomicBool, Arc, Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::{atomic::AtomicBool, Arc, Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning.
///
/// Every critical section in this crate leaves its state consistent before it runs code that
/// could panic (`K: Eq`, `K: Clone`, `V: Clone`), so a panic under the lock must not wedge the
/// group for everyone else: the next locker simply carries on.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
