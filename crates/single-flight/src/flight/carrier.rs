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
//! * [`Local`] parks it beside the state, in a cell that every handle on the flight shares
//!   (`Rc`): the handles are `!Send`, so the compiler keeps the work on its thread, while the
//!   state and the waker stay `Send + Sync`. The flight's state records only *that* the work is
//!   idle (`Parked = ()`).
//!
//! The state machine, the registry and the waiters are the same code for both.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::sync::{Lock, Mutex};

/// Where idle work waits for its next poll. Implemented by [`Sendable`] and [`Local`] only.
pub(crate) trait Carrier<V>: Sized + 'static {
    /// The boxed work: the one heap allocation a flight needs.
    type Work: Future<Output = V> + Unpin;
    /// What the flight's state keeps of idle work; `Send`, because the flight's waker reaches
    /// the state from any thread.
    type Parked: Send;
    /// What every handle on the flight keeps (shared by the handles of one flight).
    type Slot: Clone;
    /// The registry's lock: a `Mutex`, or for `Local` (whose registry never leaves its
    /// thread) a `RefCell`. Not the flight's own lock, which its waker takes from any thread.
    type RegistryLock<T>: Lock<Target = T>;

    /// A new flight's slot.
    fn new_slot() -> Self::Slot;

    /// Parks idle work; the result goes into `Phase::Idle`.
    fn park(slot: &Self::Slot, work: Self::Work) -> Self::Parked;

    /// Takes parked work back (`Phase::Idle` left for `Polling`, `Detached` or `Abandoned`).
    fn unpark(slot: &Self::Slot, parked: Self::Parked) -> Self::Work;

    /// Whether no other handle shares this slot (a pooled flight about to be reused).
    fn slot_unshared(slot: &Self::Slot) -> bool;
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
    type Slot = ();
    type RegistryLock<T> = Mutex<T>;

    #[inline]
    fn new_slot() {}

    #[inline]
    fn park((): &(), work: Self::Work) -> Self::Work {
        work
    }

    #[inline]
    fn unpark((): &(), parked: Self::Work) -> Self::Work {
        parked
    }

    #[inline]
    fn slot_unshared((): &()) -> bool {
        true
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

/// The cell of a local flight: the work while it is idle, else empty.
type LocalSlot<V> = Rc<Cell<Option<Pin<Box<dyn Future<Output = V> + 'static>>>>>;

impl<V> Carrier<V> for Local {
    type Work = Pin<Box<dyn Future<Output = V> + 'static>>;
    type Parked = ();
    type Slot = LocalSlot<V>;
    type RegistryLock<T> = RefCell<T>;

    /// A second allocation, once per flight state: the state is pooled and keeps its slot, so
    /// a flight reused from the pool allocates only its work, as a `Send` one does.
    fn new_slot() -> LocalSlot<V> {
        Rc::new(Cell::new(None))
    }

    fn park(slot: &LocalSlot<V>, work: Self::Work) {
        let former = slot.replace(Some(work));
        debug_assert!(former.is_none(), "a flight parks one work at a time");
    }

    fn unpark(slot: &LocalSlot<V>, (): ()) -> Self::Work {
        slot.take()
            .expect("an idle local flight's work is in its slot")
    }

    fn slot_unshared(slot: &LocalSlot<V>) -> bool {
        Rc::strong_count(slot) == 1
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
    fn local_work_is_parked_in_the_shared_slot() {
        let slot = <Local as Carrier<u32>>::new_slot();
        let other_handle = slot.clone();
        assert!(!<Local as Carrier<u32>>::slot_unshared(&slot));
        let work: Pin<Box<dyn Future<Output = u32>>> = Box::pin(async { 7 });
        <Local as Carrier<u32>>::park(&slot, work);
        // Another handle on the same flight takes it back.
        let mut work = <Local as Carrier<u32>>::unpark(&other_handle, ());
        let ready = futures_lite::future::block_on(&mut work);
        assert_eq!(ready, 7);
        drop(other_handle);
        assert!(<Local as Carrier<u32>>::slot_unshared(&slot));
    }

    #[test]
    fn sendable_work_is_parked_in_the_state() {
        let work: Pin<Box<dyn Future<Output = u32> + Send>> = Box::pin(async { 3 });
        let parked = <Sendable as Carrier<u32>>::park(&(), work);
        let work = <Sendable as Carrier<u32>>::unpark(&(), parked);
        assert_eq!(futures_lite::future::block_on(work), 3);
        assert!(<Sendable as Carrier<u32>>::slot_unshared(&()));
    }
}
