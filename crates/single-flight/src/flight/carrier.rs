//! What carries a flight's work between polls: the one part of a flight whose type depends on
//! whether the work is `Send`.
//!
//! Every flight, whatever its work, is polled with the flight's own waker (invariant 2), and a
//! waker must be `Send + Sync`: executors and reactors wake from any thread. So the part of a
//! flight that the waker reaches (its state, its event) must never hold `!Send` work. A
//! [`Carrier`] decides where idle work is parked:
//!
//! * [`Sendable`] parks it in the flight's state (`Phase::Idle`), as it always was: no extra
//!   field, no extra allocation, the `Send` groups pay nothing for the local ones.
//! * [`Local`] parks it beside the state: a handle is an `Rc` of the flight's `Arc` (what the
//!   waker holds) and of a cell for the idle work. The handles are `!Send`, so the compiler
//!   keeps the work on its thread, while the state and the waker stay `Send + Sync`; cloning or
//!   dropping a handle costs no atomic operation. The flight's state records only *that* the
//!   work is idle (`Parked = ()`).
//!
//! The state machine, the registry and the waiters are the same code for both.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::flight::Inner;
use crate::sync::{Arc, Lock, Mutex};

/// Where idle work waits for its next poll. Implemented by [`Sendable`] and [`Local`] only.
pub(crate) trait Carrier<V>: Sized + 'static {
    /// The boxed work: the one heap allocation a flight needs.
    type Work: Future<Output = V> + Unpin;
    /// What the flight's state keeps of idle work; `Send`, because the flight's waker reaches
    /// the state from any thread.
    type Parked: Send;
    /// A handle on a flight, as waiters, the registry and its pool hold it.
    type Handle: Clone;
    /// The registry's lock: a `Mutex`, or for `Local` (whose registry never leaves its
    /// thread) a `RefCell`. Not the flight's own lock, which its waker takes from any thread.
    type RegistryLock<T>: Lock<Target = T>;

    /// The handle of a new flight.
    fn new_handle(inner: Arc<Inner<V, Self>>) -> Self::Handle;

    /// The part of the flight that its waker holds.
    fn arc(handle: &Self::Handle) -> &Arc<Inner<V, Self>>;

    /// The flight's parts, if no other handle and no waker holds it (a pooled flight about to
    /// be reused).
    fn get_mut(handle: &mut Self::Handle) -> Option<&mut Inner<V, Self>>;

    /// Whether another handle, or a waker, holds the flight.
    fn is_shared(handle: &Self::Handle) -> bool;

    /// Parks idle work; the result goes into `Phase::Idle`.
    fn park(handle: &Self::Handle, work: Self::Work) -> Self::Parked;

    /// Takes parked work back (`Phase::Idle` left for `Polling`, `Detached` or `Abandoned`).
    fn unpark(handle: &Self::Handle, parked: Self::Parked) -> Self::Work;
}

/// Boxes a work future for carrier `Self`: only `Send` futures for [`Sendable`].
pub(crate) trait Boxes<Fut: Future>: Carrier<Fut::Output> {
    fn boxed(work: Fut) -> Self::Work;
}

/// Work that is `Send`: the groups that may be shared between threads.
#[derive(Debug)]
pub(crate) struct Sendable;

/// Work that need not be `Send`: the groups of [`crate::local`], kept on one thread.
#[derive(Debug)]
pub(crate) struct Local;

impl<V> Carrier<V> for Sendable {
    type Work = Pin<Box<dyn Future<Output = V> + Send + 'static>>;
    type Parked = Self::Work;
    type Handle = Arc<Inner<V, Self>>;
    type RegistryLock<T> = Mutex<T>;

    #[inline]
    fn new_handle(inner: Arc<Inner<V, Self>>) -> Self::Handle {
        inner
    }

    #[inline]
    fn arc(handle: &Self::Handle) -> &Arc<Inner<V, Self>> {
        handle
    }

    #[inline]
    fn get_mut(handle: &mut Self::Handle) -> Option<&mut Inner<V, Self>> {
        Arc::get_mut(handle)
    }

    #[inline]
    fn is_shared(handle: &Self::Handle) -> bool {
        Arc::strong_count(handle) > 1
    }

    #[inline]
    fn park(_: &Self::Handle, work: Self::Work) -> Self::Work {
        work
    }

    #[inline]
    fn unpark(_: &Self::Handle, parked: Self::Work) -> Self::Work {
        parked
    }
}

impl<V, Fut> Boxes<Fut> for Sendable
where
    V: 'static,
    Fut: Future<Output = V> + Send + 'static,
{
    #[inline]
    fn boxed(work: Fut) -> Self::Work {
        Box::pin(work)
    }
}

/// A local flight as its handles hold it: the part its waker reaches, and beside it the work
/// while it is idle. One `Rc` per flight state (pooled with it), so that a handle is one
/// pointer and cloning or dropping one costs no atomic operation.
pub(crate) struct LocalFlight<V> {
    inner: Arc<Inner<V, Local>>,
    idle_work: Cell<Option<Pin<Box<dyn Future<Output = V> + 'static>>>>,
}

impl<V> Carrier<V> for Local {
    type Work = Pin<Box<dyn Future<Output = V> + 'static>>;
    type Parked = ();
    type Handle = Rc<LocalFlight<V>>;
    type RegistryLock<T> = RefCell<T>;

    /// The `Rc` is a second allocation, once per flight state: the state is pooled with it, so a
    /// flight reused from the pool allocates only its work, as a `Send` one does.
    fn new_handle(inner: Arc<Inner<V, Self>>) -> Self::Handle {
        Rc::new(LocalFlight {
            inner,
            idle_work: Cell::new(None),
        })
    }

    #[inline]
    fn arc(handle: &Self::Handle) -> &Arc<Inner<V, Self>> {
        &handle.inner
    }

    #[inline]
    fn get_mut(handle: &mut Self::Handle) -> Option<&mut Inner<V, Self>> {
        Arc::get_mut(&mut Rc::get_mut(handle)?.inner)
    }

    #[inline]
    fn is_shared(handle: &Self::Handle) -> bool {
        Rc::strong_count(handle) > 1 || Arc::strong_count(&handle.inner) > 1
    }

    fn park(handle: &Self::Handle, work: Self::Work) {
        let former = handle.idle_work.replace(Some(work));
        debug_assert!(former.is_none(), "a flight parks one work at a time");
    }

    fn unpark(handle: &Self::Handle, (): ()) -> Self::Work {
        handle
            .idle_work
            .take()
            .expect("an idle local flight's work is in its handle")
    }
}

impl<V, Fut> Boxes<Fut> for Local
where
    V: 'static,
    Fut: Future<Output = V> + 'static,
{
    #[inline]
    fn boxed(work: Fut) -> Self::Work {
        Box::pin(work)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::flight::Inner;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn the_waking_part_of_a_local_flight_is_send_and_sync() {
        // The flight's waker holds an `Arc<Inner>`: it must be `Send + Sync` although a local
        // flight's work is not (what `carrier.rs` exists for).
        send_sync::<Inner<u32, Local>>();
        send_sync::<Inner<u32, Sendable>>();
    }

    #[test]
    fn local_work_is_parked_beside_the_waking_part() {
        let mut handle = crate::flight::Flight::<u32, Local>::new().handle;
        let other_handle = handle.clone();
        assert!(<Local as Carrier<u32>>::is_shared(&handle));
        let work: Pin<Box<dyn Future<Output = u32>>> = Box::pin(async { 7 });
        <Local as Carrier<u32>>::park(&handle, work);
        // Another handle on the same flight takes it back.
        let mut work = <Local as Carrier<u32>>::unpark(&other_handle, ());
        assert_eq!(futures_lite::future::block_on(&mut work), 7);
        assert!(<Local as Carrier<u32>>::get_mut(&mut handle).is_none());
        drop(other_handle);
        assert!(<Local as Carrier<u32>>::get_mut(&mut handle).is_some());
    }

    #[test]
    fn sendable_work_is_parked_in_the_state() {
        let handle = crate::flight::Flight::<u32, Sendable>::new().handle;
        let work: Pin<Box<dyn Future<Output = u32> + Send>> = Box::pin(async { 3 });
        let parked = <Sendable as Carrier<u32>>::park(&handle, work);
        let work = <Sendable as Carrier<u32>>::unpark(&handle, parked);
        assert_eq!(futures_lite::future::block_on(work), 3);
        assert!(!<Sendable as Carrier<u32>>::is_shared(&handle));
    }
}
