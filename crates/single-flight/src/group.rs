//! `Group`: one flight at a time for the whole group, for refreshing shared state.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::call::Call;
use crate::flight::detached::Detached;
use crate::keyed::KeyedGroup;
use crate::outcome::Outcome;
use crate::receiver::Receiver;
use crate::stats::GroupStats;

/// Shares one execution at a time across the whole group: [`KeyedGroup`] with a single, implied
/// key. Made for refreshing shared state (an access token, a configuration snapshot): however
/// many tasks notice it is stale at once, one refresh runs and all of them get its result.
///
/// Everything [`KeyedGroup`] documents about cancellation, panics and re-entrancy holds here.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use single_flight::Group;
///
/// static REFRESH: Group<String> = Group::new();
/// static REFRESHES: AtomicU32 = AtomicU32::new(0);
///
/// async fn token() -> String {
///     REFRESH
///         .call(|| async {
///             let n = REFRESHES.fetch_add(1, Ordering::SeqCst) + 1;
///             futures_lite::future::yield_now().await; // the token endpoint is slow
///             format!("token-{n}")
///         })
///         .await
/// }
///
/// # futures_lite::future::block_on(async {
/// let (a, b) = futures_lite::future::zip(token(), token()).await;
/// assert_eq!((a.as_str(), b.as_str()), ("token-1", "token-1"));
/// assert_eq!(REFRESHES.load(Ordering::SeqCst), 1);
/// # });
/// ```
pub struct Group<V> {
    inner: KeyedGroup<(), V, UnitHasher>,
}

/// Hashes the single key `()` to a constant: no hashing work at all.
#[derive(Clone, Copy, Default)]
pub(crate) struct UnitHasher;

impl BuildHasher for UnitHasher {
    type Hasher = UnitHasher;

    fn build_hasher(&self) -> UnitHasher {
        UnitHasher
    }
}

impl Hasher for UnitHasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, _bytes: &[u8]) {}
}

impl<V> Group<V> {
    /// Creates an empty group; `const`, so a group can be a `static`.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::Group;
    ///
    /// static CONFIG: Group<u64> = Group::new();
    /// assert_eq!(CONFIG.in_flight(), 0);
    /// ```
    pub const fn new() -> Self {
        Self {
            inner: KeyedGroup::with_one_key(UnitHasher),
        }
    }

    /// `1` while a flight runs that a new call would join (not forgotten, and younger than the
    /// group's maximum flight age if it has one), else `0`.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::Group;
    ///
    /// let group: Group<u8> = Group::new();
    /// let rx = group.do_chan(|| async { 1 });
    /// assert_eq!(group.in_flight(), 1);
    /// drop(rx);
    /// assert_eq!(group.in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }

    /// Limits how long one flight captures new callers; see
    /// [`KeyedGroup::max_flight_age`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::Group;
    ///
    /// static TOKEN: Group<String> = Group::new().max_flight_age(Duration::from_secs(10));
    /// assert_eq!(TOKEN.in_flight(), 0);
    /// ```
    pub const fn max_flight_age(mut self, age: Duration) -> Self {
        self.inner.engine.max_flight_age = Some(age);
        self
    }

    /// A snapshot of the group's counters; see [`KeyedGroup::stats`].
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::Group;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: Group<u8> = Group::new();
    /// group.call(|| async { 1 }).await;
    /// assert_eq!(group.stats().started, 1);
    /// # });
    /// ```
    pub fn stats(&self) -> GroupStats {
        self.inner.stats()
    }
}

impl<V> Default for Group<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Send + 'static> Group<V> {
    /// Runs `work`, or joins the flight already running, and returns its value.
    ///
    /// `work` is called only if this call starts the flight. The role: see
    /// [`Call::with_role`]; cancel safety and panics: see [`Call`].
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::Group;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: Group<u32> = Group::new();
    /// assert_eq!(group.call(|| async { 7 }).await, 7);
    /// # });
    /// ```
    pub fn call<'a, F, Fut>(
        &'a self,
        work: F,
    ) -> Call<impl Future<Output = Outcome<V>> + use<'a, V, F, Fut>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        self.inner.call((), |()| work())
    }

    /// Starts or joins the flight now and returns an owned [`Receiver`] for its value; see
    /// [`KeyedGroup::do_chan`].
    ///
    /// # Panics
    ///
    /// If `work` (the closure) panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::Group;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: Group<u32> = Group::new();
    /// let rx = group.do_chan(|| async { 3 });
    /// assert_eq!(rx.await, 3);
    /// # });
    /// ```
    pub fn do_chan<F, Fut>(&self, work: F) -> Receiver<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        self.inner.do_chan((), |()| work())
    }

    /// Like [`do_chan`](Self::do_chan), with the work of a flight this call starts handed to
    /// `spawn`; see [`KeyedGroup::do_chan_detached`].
    ///
    /// # Panics
    ///
    /// If `work` (the closure) or `spawn` panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::Group;
    ///
    /// let group: Group<u32> = Group::new();
    /// let rx = group.do_chan_detached(|| async { 3 }, |task| {
    ///     std::thread::spawn(move || futures_lite::future::block_on(task));
    /// });
    /// assert_eq!(futures_lite::future::block_on(rx), 3);
    /// ```
    pub fn do_chan_detached<F, Fut, Sp>(&self, work: F, spawn: Sp) -> Receiver<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
        Sp: FnOnce(Detached<V>),
    {
        self.inner.do_chan_detached((), |()| work(), spawn)
    }

    /// Forgets the running flight: the next call starts a new one, callers already waiting keep
    /// the old one. Returns whether a flight was forgotten.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::Group;
    ///
    /// let group: Group<u32> = Group::new();
    /// let rx = group.do_chan(|| async { 3 });
    /// assert!(group.forget());
    /// assert_eq!(group.in_flight(), 0);
    /// assert_eq!(futures_lite::future::block_on(rx), 3);
    /// ```
    pub fn forget(&self) -> bool {
        self.inner.forget(&())
    }
}

impl<V> fmt::Debug for Group<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("in_flight", &self.in_flight())
            .finish()
    }
}
