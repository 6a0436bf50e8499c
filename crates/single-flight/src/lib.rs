//! Call sharing ("singleflight") for async Rust: while a piece of work runs, every caller that
//! needs the same result waits for that one execution and gets a clone of its value.
//!
//! When many tasks need the same expensive result at once (a database row, a remote fetch, a
//! certificate for a server name, a token refresh), running it once per caller multiplies the
//! load exactly when the system is busiest. A [`KeyedGroup`] runs one flight per key and hands
//! its value to every caller that arrived while it ran; a [`Group`] does the same for a single
//! implied key. There is no caching: the next call after a flight ends starts a new one.
//!
//! The work belongs to the flight, not to the caller that started it. Whichever waiter is being
//! polled drives it, so callers may time out, be dropped by `select!` or be aborted without
//! stranding the others or running the work twice; a panic in the work reaches every waiter and
//! never wedges a key; and the crate depends on no runtime. What needs one, timeouts and
//! detached (spawned) flights, is written once over the small [`runtime::Runtime`] trait, which
//! the adapters `single-flight-tokio`, `single-flight-smol` and `single-flight-async-std`
//! implement, and which any other runtime implements in a few lines. Work that is not `Send`
//! (thread-local executors, thread-per-core runtimes, wasm) runs in the groups of [`local`],
//! on the same flight machinery.
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use single_flight::KeyedGroup;
//!
//! #[derive(Debug)]
//! struct DbError;
//!
//! static QUERIES: AtomicUsize = AtomicUsize::new(0);
//!
//! async fn customer_id(name: String) -> Result<i64, Arc<DbError>> {
//!     QUERIES.fetch_add(1, Ordering::SeqCst);
//!     futures_lite::future::yield_now().await; // the database takes its time
//!     if name.is_empty() { Err(Arc::new(DbError)) } else { Ok(name.len() as i64) }
//! }
//!
//! # futures_lite::future::block_on(async {
//! let group: KeyedGroup<String, Result<i64, Arc<DbError>>> = KeyedGroup::new();
//! let (a, b) = futures_lite::future::zip(
//!     group.call("ada".to_owned(), customer_id),
//!     group.call("ada".to_owned(), customer_id), // joins the first call's flight
//! )
//! .await;
//! assert_eq!((a.unwrap(), b.unwrap()), (3, 3));
//! assert_eq!(QUERIES.load(Ordering::SeqCst), 1);
//! assert_eq!(group.in_flight(), 0);
//! # });
//! ```
//!
//! # Semantics
//!
//! The contract every crate of the workspace keeps. Tests and documents cite these by number
//! ("semantic 3").
//!
//! 1. **One execution per flight.** While a flight for a key runs, no second execution for that
//!    key starts, whatever callers do (join, leave, time out; [`KeyedGroup::forget`] aside).
//! 2. **Cancellation never strands anyone and never restarts work.** The work belongs to the
//!    flight, not to the caller that started it. Dropping a caller (a timeout, `select!`, an
//!    aborted task) hands the same work to another waiter: nothing runs twice and no waiter
//!    hangs. When the last waiter leaves, the work is dropped (with no lock held) and the key is
//!    free at once. A flight started meanwhile does not poll its work before that drop is over.
//! 3. **Progress does not hinge on one caller.** The work is polled with the flight's own waker;
//!    an inner wakeup wakes the waiter that polled last plus one standby, so a caller that is kept
//!    alive but no longer polled (the driver or a follower) cannot stall the others, and
//!    wakeups stay cheap. The bound has a price: should the driver *and* the standby a wakeup
//!    reaches both be stalled, the others wait until one of the two is polled or dropped, or
//!    the work is woken again (each further wakeup of work nobody has polled since reaches one
//!    more waiter).
//! 4. **Panics propagate and never poison.** A panic in the work is caught where it is polled;
//!    the waiter polling it unwinds with the original payload, the others with a [`Panicked`]
//!    carrying its message; the key is freed and the group stays usable.
//! 5. **Re-entrant calls are detected.** Work that awaits its own flight (directly, or through
//!    other flights polled on the same thread) panics instead of waiting for itself forever. A
//!    same-key call that the work spawns elsewhere cannot be detected.
//! 6. **Detached flights run to their end.** A flight handed to a runtime
//!    ([`KeyedGroup::do_chan_detached`], the adapters' `do_chan_spawned`) runs to completion
//!    even if every caller leaves; new callers join it while it runs, and its panic still
//!    reaches its waiters (Go's `DoChan`).
//! 7. **Timeouts bound one caller's wait, never the work of others.** A caller that times out
//!    (the adapters' `call_timeout`, `recv_timeout`) gets an [`Elapsed`]; the flight goes on for
//!    its other waiters or, detached, to its end.
//! 8. **No leaks.** Once every flight has ended (value, panic, cancellation, forget),
//!    [`KeyedGroup::in_flight`] is `0` and the group holds no flight memory beyond a small pool
//!    of recycled flight states, which keep nothing of their last use (no value, no work, no
//!    waker).
//! 9. **Details every crate agrees on.** `do_chan` calls the closure before it returns when it
//!    starts the flight. `in_flight()` counts the keys a new call would join: a forgotten flight,
//!    or one past the group's maximum flight age, no longer counts, and `forget` returns `false`
//!    for it; a finished or forgotten flight never
//!    removes a newer flight's entry for its key. Followers of a panicked flight
//!    unwind with [`Panicked`], which carries the message and is printable. `K: Hash + Eq +
//!    Clone` and `V::clone` may run under the group's or the flight's short lock: they must not
//!    call into the same group, and a panic in them leaves the group usable.
//!
//! # Costs
//!
//! A flight allocates once (its boxed work), also when calls run on many threads at once: the
//! state of a finished flight and its event are reused once the last waiter has let go of it.
//! That count is amortised: the group's pool of states grows to the most flights that were ever
//! alive at once (running, or ended and still held by a waiter taking its share; up to 16 are
//! kept), so a flight that overlaps more flights than any before it allocates its state as
//! well. A thread that runs one call at a time holds at most one state, so calls on *T* such
//! threads allocate at most *T* states in all.
//! The group keeps a clone of the key while the flight runs, which allocates only if cloning
//! the key does (an integer does not, a `String` does; an `Arc<str>` key avoids it). A caller
//! that joins with `call` or [`KeyedGroup::call_ref`] allocates nothing (`call_ref` makes an
//! owned key only when it starts the flight); a [`Receiver`] keeps one allocation (two for the
//! receiver that starts the flight: its wait and the work). The key is hashed once per call.
//!
//! The group's lock is taken once to join or start a flight and once more by the caller that
//! publishes its end; a last caller that leaves unfinished work takes it twice more (to
//! abandon the flight, then to let a successor of the same key poll). No lock is held across
//! the closure, the work's poll or drop, or an `.await`. Under a short lock run only `K::eq`,
//! `K::clone` (or the conversion of a borrowed key), `V::clone`, and the executor's
//! `Waker::clone` / `Waker::will_wake` when a waiter stores its waker; wakers are woken and
//! dropped with no lock held.
//!
//! # Features
//!
//! * `tracing` (off by default): one [`tracing`](https://docs.rs/tracing) span per flight
//!   (target `single_flight`, name `flight`, a child of the starter's current span) with its
//!   outcome, the number of callers and its duration, and the key for groups built with
//!   `KeyedGroup::trace_keys`; events for callers joining, a driver handing off, abandoned
//!   flights and panics. Without the feature none of this is compiled.
//!
//! Under `--cfg loom` the crate swaps its locks for loom's, for the model tests in
//! `tests/loom.rs`.
//!
//! # When to use this instead of `OnceCell`, `Shared` or a cache
//!
//! * [`async_lock::OnceCell`] / `tokio::sync::OnceCell` initialize a value *once, forever*;
//!   call sharing runs the work again for the next caller once a flight is over, and keeps one
//!   flight per key without a map of cells that you have to clean up.
//! * `futures::future::Shared` shares one future's output, but the future is driven by whoever
//!   polls the `Shared` handle, has no key map, and leaves removal, cancellation and panics to
//!   you.
//! * A cache (moka, quick_cache) keeps values after they are computed; call sharing keeps
//!   nothing. The two compose: coalesce the misses of a cache with a [`KeyedGroup`].
//!
//! [`async_lock::OnceCell`]: https://docs.rs/async-lock/latest/async_lock/struct.OnceCell.html

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod call;
mod elapsed;
mod engine;
mod flight;
mod group;
mod keyed;
pub mod local;
mod outcome;
mod panicked;
mod receiver;
mod registry;
pub mod runtime;
mod stats;
mod sync;
#[cfg(feature = "tracing")]
mod trace;

pub use crate::call::Call;
pub use crate::elapsed::Elapsed;
pub use crate::flight::Detached;
pub use crate::group::Group;
pub use crate::keyed::KeyedGroup;
pub use crate::outcome::{Outcome, Role};
pub use crate::panicked::Panicked;
pub use crate::receiver::{Receiver, WithRole};
pub use crate::stats::GroupStats;

// The README's examples are compiled and run as doctests, so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
