//! `KeyedGroup`: one flight per key at a time.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, OnceLock};

use crate::call::{Call, ValueOnly};
use crate::detached::Detached;
use crate::receiver::Receiver;
use crate::registry::{Entry, Registry, Start};
use crate::wait::Waiter;

/// Shares the execution of work per key: while a flight for a key runs, every other call for
/// that key waits for it and gets a clone of its value.
///
/// There is no caching: once a flight has finished, the next call for its key starts a new one.
/// Errors are shared by making `V` a `Result`; wrap a non-`Clone` error in an [`Arc`].
///
/// The work future belongs to the flight, not to the caller that started it. Whichever waiter is
/// being polled drives it, so any caller may be dropped (timeout, `select!`, task abort) without
/// stranding the others or restarting the work; when the last waiter leaves, the work is dropped
/// and the key is free at once.
///
/// `K: Hash`, `K: Eq`, `K: Clone` and `V: Clone` may run while the group's short internal lock
/// (or the flight's) is held: they must not call into the same group. A panic in them propagates
/// to the caller that ran them and leaves the group usable.
///
/// # Hasher
///
/// Each call hashes its key once. The default, std's randomly seeded [`RandomState`]
/// (SipHash-1-3), resists hash flooding, which matters when keys come from requests. For keys an
/// attacker does not choose, a faster hasher can be given with
/// [`with_hasher`](Self::with_hasher), such as `foldhash`'s seeded fast hasher for integer keys
/// (the repository's `BENCHMARKS.md` measures what it saves).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use single_flight::KeyedGroup;
///
/// # futures_lite::future::block_on(async {
/// let group: KeyedGroup<String, Result<u64, Arc<std::io::Error>>> = KeyedGroup::new();
/// let queries = AtomicUsize::new(0);
///
/// let lookup = |name: &str| {
///     group.call(name.to_owned(), |name| {
///         queries.fetch_add(1, Ordering::SeqCst);
///         async move {
///             futures_lite::future::yield_now().await; // a slow query
///             Ok(name.len() as u64)
///         }
///     })
/// };
/// // Two concurrent calls for the same key: one execution, both get the result.
/// let (a, b) = futures_lite::future::zip(lookup("ada"), lookup("ada")).await;
/// assert_eq!((a.unwrap(), b.unwrap()), (3, 3));
/// assert_eq!(queries.load(Ordering::SeqCst), 1);
/// assert_eq!(group.in_flight(), 0);
/// # });
/// ```
///
/// A group can be a `static`:
///
/// ```
/// use single_flight::KeyedGroup;
///
/// static CUSTOMER_IDS: KeyedGroup<String, i64> = KeyedGroup::new();
///
/// # futures_lite::future::block_on(async {
/// let id = CUSTOMER_IDS.call("ada".to_owned(), |_name| async { 42 }).await;
/// assert_eq!(id, 42);
/// # });
/// ```
pub struct KeyedGroup<K, V, S = RandomState> {
    registry: OnceLock<Arc<Registry<K, V>>>,
    hasher: HasherCell<S>,
    /// Set for `Group` (whose only key is `()`): one slot instead of a hash table.
    one_key: bool,
}

/// The group's hasher; the default one is seeded on first use so that `new` can be `const`.
enum HasherCell<S> {
    Lazy(OnceLock<S>, fn() -> S),
    Given(S),
}

impl<K, V> KeyedGroup<K, V, RandomState> {
    /// Creates an empty group with a randomly seeded hasher (seeded on first use, so that this is
    /// `const` and a group can be a `static`).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// let group: KeyedGroup<u32, String> = KeyedGroup::new();
    /// assert_eq!(group.in_flight(), 0);
    /// ```
    pub const fn new() -> Self {
        Self {
            registry: OnceLock::new(),
            hasher: HasherCell::Lazy(OnceLock::new(), RandomState::new),
            one_key: false,
        }
    }
}

impl<V, S> KeyedGroup<(), V, S> {
    /// The group behind `Group`: its only key is `()`, so its registry keeps one slot instead
    /// of a hash table.
    pub(crate) const fn with_one_key(hasher: S) -> Self {
        Self {
            registry: OnceLock::new(),
            hasher: HasherCell::Given(hasher),
            one_key: true,
        }
    }
}

impl<K, V, S: Default> Default for KeyedGroup<K, V, S> {
    fn default() -> Self {
        Self::with_hasher(S::default())
    }
}

impl<K, V, S> KeyedGroup<K, V, S> {
    /// Creates an empty group that hashes keys with `hasher`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::hash_map::DefaultHasher;
    /// use std::hash::BuildHasher;
    /// use single_flight::KeyedGroup;
    ///
    /// /// Fixed keys: only for keys an attacker does not choose.
    /// #[derive(Clone, Copy)]
    /// struct FixedState;
    ///
    /// impl BuildHasher for FixedState {
    ///     type Hasher = DefaultHasher;
    ///     fn build_hasher(&self) -> DefaultHasher {
    ///         DefaultHasher::new()
    ///     }
    /// }
    ///
    /// static GROUP: KeyedGroup<u64, u64, FixedState> = KeyedGroup::with_hasher(FixedState);
    /// assert_eq!(GROUP.in_flight(), 0);
    /// ```
    pub const fn with_hasher(hasher: S) -> Self {
        Self {
            registry: OnceLock::new(),
            hasher: HasherCell::Given(hasher),
            one_key: false,
        }
    }

    fn registry(&self) -> &Arc<Registry<K, V>> {
        self.registry
            .get_or_init(|| Arc::new(Registry::new(self.one_key)))
    }

    fn hasher(&self) -> &S {
        match &self.hasher {
            HasherCell::Lazy(cell, make) => cell.get_or_init(*make),
            HasherCell::Given(hasher) => hasher,
        }
    }

    /// The number of keys a new call would join: flights that are running and not forgotten.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    /// let rx = group.do_chan("a", |_| async { 1 });
    /// assert_eq!(group.in_flight(), 1);
    /// drop(rx); // the last waiter left: the flight is gone at once
    /// assert_eq!(group.in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> usize {
        self.registry
            .get()
            .map_or(0, |registry| registry.in_flight())
    }
}

impl<K, V, S> KeyedGroup<K, V, S>
where
    K: Hash + Eq + Clone + Send,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    /// Runs `work` for `key`, or joins the flight already running for it, and returns its value.
    ///
    /// `work` receives the key and is called only if this call starts the flight; a call that
    /// joins never runs its closure. The caller registers with the flight when the returned
    /// future is first polled.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future never cancels the work for others: if other callers wait
    /// for the same flight, one of them goes on polling the same work future (nothing is run
    /// twice). If this was the last caller, the work future is dropped at once and the key is
    /// free; a call arriving meanwhile starts a new flight, whose work is not polled before the
    /// abandoned one has finished dropping.
    ///
    /// # Panics
    ///
    /// If `work` (the closure or its future) panics, the flight ends and every waiter panics: the
    /// one that was polling the work with the original payload, the others with a [`Panicked`]
    /// carrying its message. The key is freed and the group stays usable.
    ///
    /// Panics with a clear message, instead of waiting forever, if it is awaited from inside the
    /// work of the very flight it would join (directly, or through other flights polled on the
    /// same thread). A same-key call that the work hands to another task cannot be detected and
    /// deadlocks, as it would in any call-sharing scheme.
    ///
    /// [`Panicked`]: crate::Panicked
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<String, usize> = KeyedGroup::new();
    /// let len = group.call("ada".to_owned(), |name| async move { name.len() }).await;
    /// assert_eq!(len, 3);
    /// # });
    /// ```
    pub fn call<'a, F, Fut>(
        &'a self,
        key: K,
        work: F,
    ) -> impl Future<Output = V> + use<'a, K, V, S, F, Fut>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        ValueOnly::new(self.call_shared(key, work))
    }

    /// Like [`call`](Self::call), and also says whether the value went to more than one caller
    /// (Go's `shared`; the starter counts).
    ///
    /// # Cancel safety
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Panics
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
    /// let (value, shared) = group.call_shared(1, |k| async move { k + 1 }).await;
    /// assert_eq!((value, shared), (2, false));
    /// # });
    /// ```
    pub fn call_shared<'a, F, Fut>(
        &'a self,
        key: K,
        work: F,
    ) -> impl Future<Output = (V, bool)> + use<'a, K, V, S, F, Fut>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        // Registration happens in the first poll, not here.
        Call::new(move || {
            let registry: &Registry<K, V> = self.registry();
            let hash = self.hasher().hash_one(&key);
            match registry.join_or_start(hash, key, Start::Poll) {
                Entry::Joined(flight, ticket, key, busy) => {
                    let waiter = Waiter::joined(flight, registry, ticket, busy);
                    // A caller that joins never runs its closure: release what it and the key
                    // hold now, with the registration guarded should their `Drop` panic.
                    drop(work);
                    drop(key);
                    waiter.wait(None)
                }
                Entry::Started(flight, key, gated) => {
                    let waiter = Waiter::new(flight, registry, 0);
                    let work = waiter.make_work(move || work(key));
                    if gated {
                        waiter.install(work);
                        waiter.wait(None)
                    } else {
                        waiter.wait(Some(work))
                    }
                }
            }
        })
    }

    /// Forgets the flight running for `key`: the next call for it starts a new flight. Callers
    /// already waiting keep the old flight and get its value. Returns whether a flight was
    /// forgotten (`false` also for one already forgotten).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    /// let old = group.do_chan("k", |_| async { 1 });
    /// assert!(group.forget("k"));
    /// assert!(!group.forget("k"));
    /// let new = group.do_chan("k", |_| async { 2 });
    /// assert_eq!((old.await, new.await), (1, 2));
    /// # });
    /// ```
    pub fn forget<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.registry.get() {
            Some(registry) => registry.forget(self.hasher().hash_one(key), key),
            None => false,
        }
    }
}

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
        let registry = self.registry();
        let hash = self.hasher().hash_one(&key);
        match registry.join_or_start(hash, key, Start::Install) {
            Entry::Joined(flight, ticket, key, busy) => {
                let waiter = Waiter::joined(flight, registry.clone(), ticket, busy);
                drop(key);
                Receiver::new(waiter)
            }
            Entry::Started(flight, key, _) => {
                let waiter = Waiter::new(flight, registry.clone(), 0);
                let work = waiter.make_work(move || work(key));
                waiter.install(work);
                Receiver::new(waiter)
            }
        }
    }

    /// Like [`do_chan`](Self::do_chan), but a flight this call starts is handed to `spawn` as a
    /// [`Detached`] future that the caller gives to its runtime: the work then runs to completion
    /// even if every waiter leaves, and new callers join it while it runs (Go's `DoChan`). When
    /// this call joins a running flight, `spawn` is not called.
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
        let registry = self.registry();
        let hash = self.hasher().hash_one(&key);
        match registry.join_or_start(hash, key, Start::Detach) {
            Entry::Joined(flight, ticket, key, busy) => {
                let waiter = Waiter::joined(flight, registry.clone(), ticket, busy);
                drop(key);
                Receiver::new(waiter)
            }
            Entry::Started(flight, key, _) => {
                let task_flight = flight.clone();
                let waiter = Waiter::new(flight, registry.clone(), 0);
                let work = waiter.make_work(move || work(key));
                spawn(Detached::new(task_flight, registry.clone(), work));
                Receiver::new(waiter)
            }
        }
    }
}

impl<K, V, S> fmt::Debug for KeyedGroup<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedGroup")
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}
