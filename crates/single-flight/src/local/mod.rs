//! Call sharing for work that is not `Send`: groups for thread-local executors.
//!
//! The groups at the crate root ask `Send` work of every caller, because any thread may end up
//! driving it. On a single-threaded executor (tokio's `LocalSet` and `spawn_local`, smol's
//! `LocalExecutor`, `futures`' `LocalPool`, thread-per-core runtimes, wasm in the browser) the
//! work often holds an `Rc` or a `RefCell` and cannot be `Send`. The types of this module take
//! such work. In exchange they are `!Send` and `!Sync` themselves, so the compiler keeps a group,
//! its receivers and its detached tasks on the thread that made it: a local group is a
//! `thread_local!` (with `const { KeyedGroup::new() }`) or a value owned by a local task, never
//! a `static`.
//!
//! They run on the very same flight machinery as the `Send` groups: the numbered semantics of
//! the [crate docs](crate#semantics) hold unchanged, and so do the costs (one allocation per
//! flight, none per joining `call`). Only the place where idle work waits for its next poll
//! differs: the flight's waker, which executors may move to any thread, reaches only the part of
//! a flight that holds no work.
//!
//! Why separate types rather than a type parameter of [`crate::KeyedGroup`]: every existing
//! `KeyedGroup::new()` keeps inferring, the `Send` groups' signatures and compiler errors stay
//! the plain `Fut: Send` they always were, and a local group's `!Sync`-ness shows in its name.
//!
//! The value `V` must still be `Send`: it is published into the part of the flight that its
//! waker reaches. Share an `Rc` by wrapping what it points to in the work, not in the value.
//!
//! # Examples
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use single_flight::local::KeyedGroup;
//!
//! # futures_lite::future::block_on(async {
//! let group: KeyedGroup<&str, u32> = KeyedGroup::new();
//! let queries = Rc::new(Cell::new(0)); // not `Send`: fine for a local group's work
//!
//! let lookup = |key| {
//!     let queries = queries.clone();
//!     group.call(key, move |_| async move {
//!         queries.set(queries.get() + 1);
//!         futures_lite::future::yield_now().await;
//!         7
//!     })
//! };
//! let (a, b) = futures_lite::future::zip(lookup("k"), lookup("k")).await;
//! assert_eq!((a, b, queries.get()), (7, 7, 1));
//! # });
//! ```
//!
//! A local group is neither `Send` nor `Sync`:
//!
//! ```compile_fail
//! fn shared<T: Sync>(_: &T) {}
//! let group: single_flight::local::KeyedGroup<u8, u8> = single_flight::local::KeyedGroup::new();
//! shared(&group);
//! ```

mod detached;
mod group;
mod keyed;
mod receiver;

pub use self::detached::Detached;
pub use self::group::Group;
pub use self::keyed::KeyedGroup;
pub use self::receiver::Receiver;
