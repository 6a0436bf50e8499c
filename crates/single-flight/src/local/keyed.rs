//! `local::KeyedGroup`: one flight per key, for work that is not `Send`.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::OnceLock;
use std::time::Duration;

use super::detached::{Detached, LocalLifecycle};
use super::receiver::Receiver;
use crate::call::Call;
use crate::engine::{Engine, HasherCell};
use crate::flight::Local;
use crate::outcome::Outcome;
use crate::registry::Owned;
use crate::stats::GroupStats;

/// [`crate::KeyedGroup`] for work that need not be `Send`; the group is then `!Send` and
/// `!Sync` itself (see the [module docs](crate::local)).
///
/// Everything [`crate::KeyedGroup`] documents holds here: one execution per flight, hand-off on
/// cancellation, panics that reach every waiter, re-entrancy detection, the hasher, the costs.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use single_flight::local::KeyedGroup;
///
/// thread_local! {
///     static NAMES: KeyedGroup<u32, String> = const { KeyedGroup::new() };
/// }
///
/// # futures_lite::future::block_on(async {
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let name = NAMES.with(|group| {
///     let log = log.clone();
///     group.do_chan(7, move |id| async move {
///         log.borrow_mut().push(id);
///         format!("user {id}")
///     })
/// });
/// assert_eq!(name.await, "user 7");
/// assert_eq!(*log.borrow(), [7]);
/// # });
/// ```
pub struct KeyedGroup<K, V, S = RandomState> {
    pub(crate) engine: Engine<K, V, S, Local>,
}

impl<K, V> KeyedGroup<K, V, RandomState> {
    /// Creates an empty group with a randomly seeded hasher (seeded on first use, so that this
    /// is `const`, for a `thread_local!`).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::local::KeyedGroup;
    ///
    /// let group: KeyedGroup<u32, String> = KeyedGroup::new();
    /// assert_eq!(group.in_flight(), 0);
    /// ```
    pub const fn new() -> Self {
        Self {
            engine: Engine::new(HasherCell::Lazy(OnceLock::new(), RandomState::new), false),
        }
    }
}

impl<V, S> KeyedGroup<(), V, S> {
    /// The group behind `local::Group`: one slot instead of a hash table.
    pub(crate) const fn with_one_key(hasher: S) -> Self {
        Self {
            engine: Engine::new(HasherCell::Given(hasher), true),
        }
    }
}

impl<K, V, S: Default> Default for KeyedGroup<K, V, S> {
    fn default() -> Self {
        Self::with_hasher(S::default())
    }
}

impl<K, V, S> KeyedGroup<K, V, S> {
    /// Creates an empty group that hashes keys with `hasher`; see
    /// [`crate::KeyedGroup::with_hasher`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::hash_map::RandomState;
    /// use single_flight::local::KeyedGroup;
    ///
    /// let group: KeyedGroup<u64, u64> = KeyedGroup::with_hasher(RandomState::new());
    /// assert_eq!(group.in_flight(), 0);
    /// ```
    pub const fn with_hasher(hasher: S) -> Self {
        Self {
            engine: Engine::new(HasherCell::Given(hasher), false),
        }
    }

    /// Limits how long one flight captures new callers; see
    /// [`crate::KeyedGroup::max_flight_age`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::local::KeyedGroup;
    ///
    /// let group: KeyedGroup<u8, u8> = KeyedGroup::new().max_flight_age(Duration::from_secs(30));
    /// assert_eq!(group.in_flight(), 0);
    /// ```
    pub const fn max_flight_age(mut self, age: Duration) -> Self {
        self.engine.max_flight_age = Some(age);
        self
    }

    /// A snapshot of the group's counters; see [`crate::KeyedGroup::stats`].
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::local::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
    /// group.call(1, |k| async move { k }).await;
    /// assert_eq!(group.stats().started, 1);
    /// # });
    /// ```
    pub fn stats(&self) -> GroupStats {
        self.engine.stats()
    }

    /// The number of keys a new call would join; see [`crate::KeyedGroup::in_flight`].
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::local::KeyedGroup;
    ///
    /// let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    /// let rx = group.do_chan("a", |_| async { 1 });
    /// assert_eq!(group.in_flight(), 1);
    /// drop(rx);
    /// assert_eq!(group.in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> usize {
        self.engine.in_flight()
    }
}

impl<K, V, S: BuildHasher> KeyedGroup<K, V, S> {
    /// Forgets the flight running for `key`; see [`crate::KeyedGroup::forget`].
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::local::KeyedGroup;
    ///
    /// let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    /// let _rx = group.do_chan("k", |_| async { 1 });
    /// assert!(group.forget("k"));
    /// assert!(!group.forget("k"));
    /// ```
    pub fn forget<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.engine.forget(key)
    }
}

impl<K, V, S> KeyedGroup<K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    /// Runs `work` for `key`, or joins the flight already running for it, and returns its
    /// value: [`crate::KeyedGroup::call`] without `Send` asked of the work. The role: see
    /// [`Call::with_role`]; cancel safety and panics: see [`Call`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use single_flight::local::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<String, usize> = KeyedGroup::new();
    /// let prefix = Rc::new("user-".to_owned());
    /// let len = group.call("ada".to_owned(), move |name| async move { prefix.len() + name.len() });
    /// assert_eq!(len.await, 8);
    /// # });
    /// ```
    pub fn call<'a, F, Fut>(
        &'a self,
        key: K,
        work: F,
    ) -> Call<impl Future<Output = Outcome<V>> + use<'a, K, V, S, F, Fut>>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + 'static,
    {
        self.engine.call(key, work)
    }

    /// [`call`](Self::call) with a borrowed key; see [`crate::KeyedGroup::call_ref`].
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::local::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<String, usize> = KeyedGroup::new();
    /// let len = group.call_ref("ada", |name: String| async move { name.len() }).await;
    /// assert_eq!(len, 3);
    /// # });
    /// ```
    pub fn call_ref<'a, 'q, Q, F, Fut>(
        &'a self,
        key: &'q Q,
        work: F,
    ) -> Call<impl Future<Output = Outcome<V>> + use<'a, 'q, Q, K, V, S, F, Fut>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        &'q Q: Into<K>,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + 'static,
    {
        self.engine.call_ref(key, work)
    }

    /// Starts or joins the flight for `key` now and returns an owned local [`Receiver`]; see
    /// [`crate::KeyedGroup::do_chan`].
    ///
    /// # Panics
    ///
    /// As for [`crate::KeyedGroup::do_chan`].
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::local::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<u32, u32> = KeyedGroup::new();
    /// let first = group.do_chan(1, |k| async move { k * 10 });
    /// let second = group.do_chan(1, |_| async { unreachable!("joins the running flight") });
    /// assert_eq!((first.await, second.await), (10, 10));
    /// # });
    /// ```
    pub fn do_chan<F, Fut>(&self, key: K, work: F) -> Receiver<V>
    where
        K: 'static,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + 'static,
    {
        let hash = self.engine.hash_one(&key);
        Receiver::new(self.engine.do_chan(hash, Owned(key), work))
    }

    /// Like [`do_chan`](Self::do_chan), but a flight this call starts is handed to `spawn` as a
    /// local [`Detached`] future, for a thread-local executor's `spawn_local`; see
    /// [`crate::KeyedGroup::do_chan_detached`] (promotion of a running flight included).
    ///
    /// # Panics
    ///
    /// As for [`crate::KeyedGroup::do_chan_detached`].
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::executor::LocalPool;
    /// use futures::task::LocalSpawnExt;
    /// use single_flight::local::KeyedGroup;
    ///
    /// let mut pool = LocalPool::new();
    /// let spawner = pool.spawner();
    /// let group: KeyedGroup<u32, u32> = KeyedGroup::new();
    /// let rx = group.do_chan_detached(1, |k| async move { k + 1 }, |task| {
    ///     spawner.spawn_local(task).unwrap();
    /// });
    /// drop(rx); // nobody waits: the detached work runs to its end anyway
    /// pool.run();
    /// assert_eq!(group.stats().started, 1);
    /// assert_eq!(group.in_flight(), 0);
    /// ```
    pub fn do_chan_detached<F, Fut, Sp>(&self, key: K, work: F, spawn: Sp) -> Receiver<V>
    where
        K: 'static,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + 'static,
        Sp: FnOnce(Detached<V>),
    {
        let crate::engine::Detaching { waiter, task } =
            self.engine
                .do_chan_detached(key, work, |registry| registry as LocalLifecycle<V>);
        if let Some(task) = task {
            spawn(Detached(task));
        }
        Receiver::new(waiter)
    }
}

impl<K, V, S> fmt::Debug for KeyedGroup<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("local::KeyedGroup")
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}
