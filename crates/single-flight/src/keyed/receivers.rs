//! `KeyedGroup::do_chan` and its forms: register at once, return an owned `Receiver`.

use std::borrow::Borrow;
use std::future::Future;
use std::hash::{BuildHasher, Hash};

use super::KeyedGroup;
use std::sync::Arc;

use crate::flight::detached::Detached;
use crate::flight::Lifecycle;
use crate::receiver::Receiver;
use crate::registry::Owned;

impl<K, V, S> KeyedGroup<K, V, S>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    /// Starts or joins the flight for `key` now and returns an owned [`Receiver`] for its value.
    ///
    /// The caller is registered before this returns, and if it starts the flight, `work` has been
    /// called. The work is then polled by whoever polls: this receiver, another receiver, or a
    /// joining `call`. The receiver is `'static`, `Send` and `Unpin`, so it can sit in `select!`
    /// next to a timer or be moved to another task.
    ///
    /// # Panics
    ///
    /// If `work` (the closure) panics, this call panics with its payload and the flight's other
    /// waiters with [`Panicked`](crate::Panicked). Panics of the work future surface when the
    /// receivers are polled (see [`Receiver`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<u32, u32> = KeyedGroup::new();
    /// let first = group.do_chan(1, |k| async move { k * 10 });
    /// let second = group.do_chan(1, |_| async { unreachable!("joins the running flight") });
    /// assert_eq!(group.in_flight(), 1);
    /// assert_eq!((first.await, second.await), (10, 10));
    /// # });
    /// ```
    pub fn do_chan<F, Fut>(&self, key: K, work: F) -> Receiver<V>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let hash = self.engine.hash_one(&key);
        Receiver::new(self.engine.do_chan(hash, Owned(key), work))
    }

    /// Like [`do_chan`](Self::do_chan), with a borrowed key as in [`call_ref`](Self::call_ref).
    ///
    /// # Panics
    ///
    /// As for [`do_chan`](Self::do_chan).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<String, usize> = KeyedGroup::new();
    /// let rx = group.do_chan_ref("ada", |name: String| async move { name.len() });
    /// assert_eq!(rx.await, 3);
    /// # });
    /// ```
    pub fn do_chan_ref<'q, Q, F, Fut>(&self, key: &'q Q, work: F) -> Receiver<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        &'q Q: Into<K>,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let hash = self.engine.hash_one(key);
        Receiver::new(self.engine.do_chan(hash, key, work))
    }

    /// Like [`do_chan`](Self::do_chan), but a flight this call starts is handed to `spawn` as a
    /// [`Detached`] future that the caller gives to its runtime: the work then runs to completion
    /// even if every waiter leaves, and new callers join it while it runs (Go's `DoChan`).
    ///
    /// When this call joins a running flight that no task owns yet (one started by `call` or
    /// `do_chan`), it promotes the flight: `spawn` gets a [`Detached`] that takes the work over
    /// as soon as the waiter polling it lets go (at once if nobody is), and from then on the
    /// work runs to its end even if every waiter leaves, as if the flight had started detached.
    /// When the flight is detached already, `spawn` is not called.
    ///
    /// This is the hook the runtime adapters (`single-flight-tokio`, `-smol`, `-async-std`)
    /// build on; it needs no runtime itself.
    ///
    /// # Panics
    ///
    /// A panic of the work is caught in the spawned task and reaches every waiter of the flight
    /// as a [`Panicked`](crate::Panicked) carrying its message (no waiter was polling the work,
    /// so none gets the original payload); the task itself completes normally. If `work` (the closure) or
    /// `spawn` panics, this call panics; a [`Detached`] dropped without completing hands the work
    /// back to the waiters, which then drive it themselves.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// let group: KeyedGroup<u32, u32> = KeyedGroup::new();
    /// let rx = group.do_chan_detached(1, |k| async move { k + 1 }, |task| {
    ///     std::thread::spawn(move || futures_lite::future::block_on(task));
    /// });
    /// assert_eq!(futures_lite::future::block_on(rx), 2);
    /// ```
    pub fn do_chan_detached<F, Fut, Sp>(&self, key: K, work: F, spawn: Sp) -> Receiver<V>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
        Sp: FnOnce(Detached<V>),
    {
        let crate::engine::Detaching { waiter, task } =
            self.engine.do_chan_detached(key, work, |registry| {
                registry as Arc<dyn Lifecycle<V> + Send + Sync>
            });
        if let Some(task) = task {
            spawn(Detached(task));
        }
        Receiver::new(waiter)
    }
}
