//! The synchronization primitives the crate uses, swapped for loom's under `cfg(loom)`.
//!
//! The flight's `Arc`, the locks and the thread-local re-entrancy stack are modelled;
//! `event-listener` swaps its own internals when its `loom` feature is on. The registry stays in
//! a std `Arc` (loom's cannot coerce to `Arc<dyn Lifecycle>`), which only owns loom locks.

#[cfg(not(loom))]
pub(crate) use std::sync::{atomic::AtomicBool, Arc, Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::{atomic::AtomicBool, Arc, Mutex, MutexGuard};

/// A lock the crate takes with [`lock`]: a `Mutex`, or (for the registry of a local group,
/// which never leaves its thread) a `RefCell`.
pub(crate) trait Lock {
    type Target;
    type Guard<'a>: std::ops::DerefMut<Target = Self::Target>
    where
        Self: 'a;

    fn new(value: Self::Target) -> Self;
    fn acquire(&self) -> Self::Guard<'_>;
}

impl<T> Lock for Mutex<T> {
    type Target = T;
    type Guard<'a>
        = MutexGuard<'a, T>
    where
        T: 'a;

    fn new(value: T) -> Self {
        Mutex::new(value)
    }

    #[inline]
    fn acquire(&self) -> MutexGuard<'_, T> {
        match self.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A local group's registry: one thread, so no atomics. A borrow never outlives the short
/// critical sections the `Mutex` would guard, and user code under it (`K::eq`, `K::clone`)
/// must not call into the same group either way: here it panics instead of deadlocking.
impl<T> Lock for std::cell::RefCell<T> {
    type Target = T;
    type Guard<'a>
        = std::cell::RefMut<'a, T>
    where
        T: 'a;

    fn new(value: T) -> Self {
        std::cell::RefCell::new(value)
    }

    #[inline]
    fn acquire(&self) -> std::cell::RefMut<'_, T> {
        self.borrow_mut()
    }
}

/// Locks `mutex`, ignoring poisoning.
///
/// Every critical section in this crate leaves its state consistent before it runs code that
/// could panic (`K: Eq`, `K: Clone`, `V: Clone`), so a panic under the lock must not wedge the
/// group for everyone else: the next locker simply carries on.
#[inline]
pub(crate) fn lock<L: Lock>(mutex: &L) -> L::Guard<'_> {
    mutex.acquire()
}
