//! What call sharing needs from a runtime, and what every runtime gets from it.
//!
//! The core depends on no runtime. Timeouts need a clock and a timer, and detached flights
//! (Go's `DoChan`) need a spawn: that is the whole of [`Runtime`]. Everything built on them,
//! the timeout in which the value wins a tie, the deadline arithmetic and the spawned flights,
//! is written once here, over the trait ([`timeout`], [`timeout_at`], [`On`]). The adapter
//! crates `single-flight-tokio`, `-smol` and `-async-std` are each an implementation of
//! [`Runtime`] plus extension traits that name [`On`]'s methods; any other runtime plugs in the
//! same way, in a few lines.
//!
//! # Examples
//!
//! A runtime the workspace has no crate for: `futures`' single-threaded [`LocalPool`] with
//! `async-io`'s timers, running [`local`](crate::local) groups (work that holds an `Rc`).
//!
//! [`LocalPool`]: https://docs.rs/futures/latest/futures/executor/struct.LocalPool.html
//!
//! ```
//! use std::cell::RefCell;
//! use std::future::Future;
//! use std::rc::Rc;
//! use std::time::{Duration, Instant};
//!
//! use futures::executor::{LocalPool, LocalSpawner};
//! use futures::task::{LocalSpawnExt, SpawnExt};
//! use single_flight::runtime::Runtime;
//! use single_flight::local;
//!
//! thread_local! {
//!     /// The pool this thread runs, for `spawn` (pools are values, the trait is static).
//!     static SPAWNER: RefCell<Option<LocalSpawner>> = const { RefCell::new(None) };
//! }
//!
//! struct Pool;
//!
//! impl Runtime for Pool {
//!     fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
//!         let timer = async_io::Timer::at(deadline);
//!         async move {
//!             timer.await;
//!         }
//!     }
//!
//!     fn spawn<F: Future<Output = ()> + Send + 'static>(task: F) {
//!         SPAWNER.with(|s| s.borrow().as_ref().expect("in the pool").spawn(task).unwrap());
//!     }
//!
//!     fn spawn_local<F: Future<Output = ()> + 'static>(task: F) {
//!         SPAWNER.with(|s| s.borrow().as_ref().expect("in the pool").spawn_local(task).unwrap());
//!     }
//! }
//!
//! let mut pool = LocalPool::new();
//! SPAWNER.with(|s| *s.borrow_mut() = Some(pool.spawner()));
//!
//! let group: local::KeyedGroup<u32, u32> = local::KeyedGroup::new();
//! let base = Rc::new(40); // not `Send`
//! let spawned = Pool::on(&group).do_chan_spawned(1, move |k| async move { *base + k });
//! drop(spawned); // nobody waits for it now: the work runs on the pool all the same
//! let joined = group.do_chan(1, |_| async { 0 }); // joins the spawned flight at once
//! let joined = Pool::on(joined).recv_timeout(Duration::from_secs(60));
//! let late = Pool::on(&group).call_timeout(2, Duration::from_millis(5), |_| std::future::pending());
//!
//! let (late, joined) = pool.run_until(async { (late.await, joined.await) });
//! assert!(late.is_err());
//! assert_eq!(joined, Ok(41)); // the spawned flight's value
//! assert_eq!(group.in_flight(), 0);
//! ```

mod on;
mod timeout;

use std::future::Future;
use std::time::Instant;

pub use self::on::On;
pub use self::timeout::{timeout, timeout_at};

/// The message a runtime without local tasks panics with when asked for one.
pub const NO_LOCAL_TASKS: &str = "single-flight: this runtime spawns no local (`!Send`) tasks; \
hand local detached flights to your executor with `local::KeyedGroup::do_chan_detached`";

/// What call sharing takes from a runtime: its clock and timer, and its spawn.
///
/// Implemented by the adapter crates for tokio, smol and async-std, and by you for any other
/// runtime (see the [module docs](self) for a complete one in twenty lines). The timeouts and
/// spawned flights built on it are [`On`]'s methods, reached through [`Runtime::on`].
pub trait Runtime: Sized + 'static {
    /// The runtime's clock, as a `std` instant: the system clock unless the runtime has its own
    /// (tokio's may be paused).
    fn now() -> Instant {
        Instant::now()
    }

    /// A timer that completes at `deadline`. Made when a timeout is first polled, so it may
    /// need to run inside the runtime. `Send`, so that the timeouts of the `Send` groups are.
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send;

    /// Runs `task` to its end as a task of the runtime's own, detached (its handle is not
    /// needed: a detached flight's receivers are the way to its value).
    ///
    /// The task is any `Send` future without output: a [`Detached`](crate::Detached) flight (a flight whose
    /// task is dropped unfinished goes back to its waiters), or the background work of a crate
    /// built on this trait (`single-flight-redis` releases leases and subscriptions with it).
    /// Called from inside a task or a future of the runtime; a runtime that spawns only from
    /// its own context (tokio) may panic elsewhere.
    fn spawn<F: Future<Output = ()> + Send + 'static>(task: F);

    /// Runs `task`, which need not be `Send` (say a
    /// [`local::Detached`](crate::local::Detached) flight of a [`local`](crate::local) group), to
    /// its end as one of the runtime's local tasks, on the current thread. By default a runtime
    /// has none, and this panics with [`NO_LOCAL_TASKS`].
    fn spawn_local<F: Future<Output = ()> + 'static>(task: F) {
        drop(task);
        panic!("{}", NO_LOCAL_TASKS);
    }

    /// `target` (a group by reference, or a receiver) on this runtime: its timeouts and
    /// spawned flights.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::runtime::Runtime;
    /// use single_flight::Group;
    /// # struct MyRuntime;
    /// # impl Runtime for MyRuntime {
    /// #     fn sleep_until(at: std::time::Instant) -> impl std::future::Future<Output = ()> + Send {
    /// #         async move { async_io::Timer::at(at).await; }
    /// #     }
    /// #     fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(task: F) {
    /// #         std::thread::spawn(move || futures_lite::future::block_on(task));
    /// #     }
    /// # }
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: Group<u8> = Group::new();
    /// let rx = MyRuntime::on(&group).do_chan_spawned(|| async { 3 });
    /// assert_eq!(MyRuntime::on(rx).recv_timeout(Duration::from_secs(5)).await, Ok(3));
    /// # });
    /// ```
    fn on<T>(target: T) -> On<T, Self> {
        On::new(target)
    }
}
