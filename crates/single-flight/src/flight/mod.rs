//! The flight: one execution of a piece of work, shared by every waiter that joined it.
//!
//! Both groups, `Send` and `local`, are thin fronts over this state machine; the registry
//! (`registry/`) maps keys to flights and decides, through [`Lifecycle`], what the end of a
//! flight changes there, and this module decides everything that happens inside one flight. One
//! file per type: the state and its pure transitions (`state.rs`, `FlightState`), the handle
//! and every operation on it (`handle.rs`, `Flight`: what a waiter does when it is polled or
//! leaves, how the work passes between waiters, detached tasks and the registry), the parts its
//! waker reaches and the wakeups (`inner.rs`, `Inner`, reached through `Flight::inner`), the
//! waiter's loop (`wait.rs`), the work handed to a runtime (`detached.rs`), the re-entrancy
//! guard (`reentrancy.rs`), and what carries the `Send`-ness (`carrier.rs`).
//! A call reads top-down: group → engine → registry (`enter`) → `wait.rs` → `handle.rs`, and at
//! the end `Flight::finish` asks the registry, through the `dyn Lifecycle` seam that keeps the
//! flight code compiled once per `V`, for its decision and acts on it; no callback runs back into
//! the flight from the registry. The semantics cited are the numbered ones of the crate docs.
//!
//! # Invariants
//!
//! 1. **One work, one poller.** The work future is owned by the flight, never by a waiter. It
//!    sits in `Phase::Idle` between polls (for a `Local` flight, in the handle that
//!    `Phase::Idle` stands for: `carrier.rs`) and is moved out (`Phase::Polling`) only by the
//!    one waiter that polls it, with no lock held, or belongs to a detached task
//!    (`Phase::Detached`); so it is polled by at most one thread at a time and exactly one
//!    execution exists (semantic 1). Parking and unparking happen under the flight's lock,
//!    together with the change of phase.
//! 2. **The flight's own waker.** Waiters poll the work with the flight's waker (`ArcWake for
//!    Inner`), never their own: an inner wakeup reaches the flight whoever polled last and marks
//!    the work `woken`. A detached task polls with its own waker; a promoted one keeps it in
//!    `task_waker` for wakeups registered before it claimed the work.
//! 3. **One driver.** The waiter that polled the work last is the *driver*: it waits on
//!    `driver_waker`, not on the event. `driver` is `None` exactly when `driver_waker` is.
//! 4. **Due work is never stranded** (semantic 3). Every change that can leave the work due
//!    (installed, given back, a gate opened, a waiter gone, an inner wakeup) asks
//!    `FlightState::nudge` whom to wake: due work nobody drives wakes every listener once; an
//!    inner wakeup of driven work wakes the driver plus one standby. Every waiter that is polled
//!    looks at the flight (`needs_poll`) and takes up due work, notified or not.
//! 5. **Registration under the registry lock.** `waiters` counts registered waiters (and a
//!    registered detached task, `task`) while the work runs; once the registry has unlinked a
//!    flight, nobody can join it.
//! 6. **Abandoned work drops before its successor polls** (semantic 2). When `waiters` drops
//!    to zero while the work is idle, the flight is unlinked and its work dropped with no lock
//!    held; flights of the same hash started meanwhile count it in `dropping_predecessors` and
//!    do not poll their work before that count is back to zero.
//! 7. **One publication.** The end of a flight (`Done`, `Panicked`) is published under the
//!    registry lock, together with the unlink, and then every listener is notified once.
//! 8. **Nothing kept** (semantic 8). A flight goes back to the registry's pool holding no work
//!    and no waker, and no value once its last taker is gone; a pooled flight is reset only when
//!    no handle on it is left.
//! 9. **Lock order: registry, then flight.** User code (the closure, the work's poll and drop,
//!    `V`'s and the key's drops) runs under neither; under them run only `K::eq`, `K::clone`,
//!    `V::clone` and the executor's `Waker::clone` / `Waker::will_wake`. Wakers are woken and
//!    dropped with no lock held.
//!
//! # Phases
//!
//! | from | event | to |
//! |---|---|---|
//! | (new) | `call` starts, nothing to wait for | `Polling` (the starter polls at once) |
//! | (new) | `do_chan` starts, or a `call` behind a dropping predecessor | `Starting` |
//! | (new) | `do_chan_detached` starts | `Detached` |
//! | `Starting` | the closure returned its work (`install`) | `Idle { woken: true }` |
//! | `Idle` | a waiter polls due work | `Polling` |
//! | `Polling` | the poll is pending | `Idle { woken }` (woken meanwhile or not) |
//! | `Polling`, `Detached` | the poll is ready | `Done` |
//! | `Polling`, `Detached`, `Starting` | the work or the closure panicked | `Panicked` |
//! | `Idle` | the last waiter left | `Abandoned` |
//! | `Idle` | a promoted flight's task claims the work | `Detached` |
//! | `Detached` | the task was dropped unfinished (`give_back`) | `Idle { woken: true }` |
//! | `Done`, `Panicked`, `Abandoned` | the next start reuses the flight | any first phase |
//! | `Polling` (left by a solo run: ready at the first poll, nobody joined) | the next start reuses the flight | any first phase (a `call` start clears `woken` only) |

mod carrier;
pub(crate) mod detached;
mod handle;
mod inner;
pub(crate) mod reentrancy;
mod state;
pub(crate) mod wait;

pub use self::detached::Detached;

pub(crate) use self::carrier::{Boxes, Carrier, Local, Sendable};
pub(crate) use self::handle::{Claim, Flight, Step};
pub(crate) use self::inner::Inner;
pub(crate) use self::state::{Joined, PanicPublished, Published};

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::panicked::Panicked;

/// How a starter sets its new flight up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Start {
    /// `call`: the starter makes the work and polls it at once.
    Poll,
    /// `do_chan`: the starter makes the work and installs it for whoever polls.
    Install,
    /// A detached flight: a spawned task (ticket 1) owns the work.
    Detach,
}

/// The boxed work of a flight: the one heap allocation a flight needs.
pub(crate) type Work<V, C> = <C as Carrier<V>>::Work;

/// A waiter's identity within one run of a flight.
pub(crate) type Ticket = u32;

/// The registry's part in the end of a flight, implemented by `Registry` and called through
/// `dyn` so that the flight code is compiled once per `V`, not once per key and hasher type.
///
/// Each method takes the registry's lock once, makes there the change that this end of a flight
/// needs (unlink the flight if its entry is still the current one for its key, by identity, not
/// key; keep its allocation for reuse; list or release abandoned flights), runs the flight's own
/// pure transition under that lock where the end is published (invariant 7), and returns the
/// decision for the flight to act on once every lock is released. None takes a callback.
pub(crate) trait Lifecycle<V, C: Carrier<V> = Sendable> {
    /// Publishes the value of a run whose work returned: `taker` (`None` for a detached task)
    /// gets its share now.
    fn publish(&self, flight: &Flight<V, C>, taker: Option<Ticket>, value: V) -> Published<V>;

    /// Publishes a panic of the work (or of the closure that made it).
    fn publish_panic(&self, flight: &Flight<V, C>, panicked: Panicked) -> PanicPublished;

    /// The end of a run whose work was ready at its starter's first poll: if nobody joined it,
    /// unlinks and recycles the flight and says [`Solo::Ended`], the starter's value being the
    /// whole publication (nobody else waits, and the registry lock keeps anyone from joining).
    /// If someone joined during that poll, changes nothing: [`Solo::Joined`], and the caller
    /// publishes.
    fn end_solo(&self, flight: &Flight<V, C>) -> Solo;

    /// If `flight` has no waiter left and its work is idle, unlinks it, lists it among the
    /// flights whose work is being dropped and returns the work to drop.
    fn begin_abandon(&self, flight: &Flight<V, C>) -> Option<Work<V, C>>;

    /// The work returned by `begin_abandon` has been dropped: unlists the flight and returns
    /// the flights started meanwhile for its hash, whose gate is to be opened one notch.
    fn end_abandon(&self, flight: &Flight<V, C>) -> Vec<Flight<V, C>>;
}

/// What [`Lifecycle::end_solo`] found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Solo {
    /// Nobody joined: the flight is unlinked and the starter's value needs no publication.
    Ended,
    /// Someone joined during the first poll: publish as usual.
    Joined,
}

/// Drops user code (a work future) without letting a panic in its `Drop` escape into the
/// flight's bookkeeping; the panic hook has already reported it.
pub(crate) fn drop_quietly<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}
