//! `local::Group`: one flight at a time for the whole group, for work that is not `Send`.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::detached::Detached;
use super::keyed::KeyedGroup;
use super::receiver::Receiver;
use crate::call::Call;
use crate::group::UnitHasher;
use crate::outcome::Outcome;
use crate::stats::GroupStats;

/// [`crate::Group`] for work that need not be `Send`; the group is then `!Send` and `!Sync`
/// itself (see the [module docs](crate::local)).
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use single_flight::local::Group;
///
/// # futures_lite::future::block_on(async {
/// let refresh: Group<u32> = Group::new();
/// let refreshes = Rc::new(Cell::new(0));
/// let token = || {
///     let refreshes = refreshes.clone();
///     refresh.call(move || async move {
///         refreshes.set(refreshes.get() + 1);
///         futures_lite::future::yield_now().await;
///         refreshes.get()
///     })
/// };
/// let (a, b) = futures_lite::future::zip(token(), token()).await;
/// assert_eq!((a, b, refreshes.get()), (1, 1, 1));
/// # });
/// ```
pub struct Group<V> {
    inner: KeyedGroup<(), V, UnitHasher>,
}

impl<V> Group<V> {
    /// Creates an empty group; `const`, for a `thread_local!`.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::local::Group;
    ///
    /// thread_local! {
    ///     static CONFIG: Group<u64> = const { Group::new() };
    /// }
    /// assert_eq!(CONFIG.with(|group| group.in_flight()), 0);
    /// ```
    pub const fn new() -> Self {
        Self {
            inner: KeyedGroup::with_one_key(UnitHasher),
        }
    }

    /// `1` while a flight runs and has not been forgotten, else `0`.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::local::Group;
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
    /// [`crate::KeyedGroup::max_flight_age`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::local::Group;
    ///
    /// let group: Group<u8> = Group::new().max_flight_age(Duration::from_secs(10));
    /// assert_eq!(group.in_flight(), 0);
    /// ```
    pub const fn max_flight_age(mut self, age: Duration) -> Self {
        self.inner.engine.max_flight_age = Some(age);
        self
    }

    /// A snapshot of the group's counters; see [`crate::KeyedGroup::stats`].
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::local::Group;
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

    /// Forgets the running flight; see [`crate::Group::forget`].
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::local::Group;
    ///
    /// let group: Group<u32> = Group::new();
    /// let rx = group.do_chan(|| async { 3 });
    /// assert!(group.forget());
    /// assert_eq!(futures_lite::future::block_on(rx), 3);
    /// ```
    pub fn forget(&self) -> bool {
        self.inner.forget(&())
    }
}

impl<V> Default for Group<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Send + 'static> Group<V> {
    /// Runs `work`, or joins the flight already running, and returns its value:
    /// [`crate::Group::call`] without `Send` asked of the work. The role: see
    /// [`Call::with_role`]; cancel safety and panics: see [`Call`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use single_flight::local::Group;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: Group<u32> = Group::new();
    /// let seven = Rc::new(7);
    /// assert_eq!(group.call(move || async move { *seven }).await, 7);
    /// # });
    /// ```
    pub fn call<'a, F, Fut>(
        &'a self,
        work: F,
    ) -> Call<impl Future<Output = Outcome<V>> + use<'a, V, F, Fut>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + 'static,
    {
        self.inner.call((), |()| work())
    }

    /// Starts or joins the flight now and returns an owned local [`Receiver`].
    ///
    /// # Panics
    ///
    /// As for [`crate::KeyedGroup::do_chan`].
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::local::Group;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: Group<u32> = Group::new();
    /// assert_eq!(group.do_chan(|| async { 4 }).await, 4);
    /// # });
    /// ```
    pub fn do_chan<F, Fut>(&self, work: F) -> Receiver<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + 'static,
    {
        self.inner.do_chan((), |()| work())
    }

    /// Like [`do_chan`](Self::do_chan), with a flight this call starts handed to `spawn` as a
    /// local [`Detached`]; see [`KeyedGroup::do_chan_detached`].
    ///
    /// # Panics
    ///
    /// As for [`crate::KeyedGroup::do_chan_detached`].
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::local::{Detached, Group};
    ///
    /// let group: Group<u32> = Group::new();
    /// let mut task: Option<Detached<u32>> = None;
    /// let rx = group.do_chan_detached(|| async { 3 }, |t| task = Some(t));
    /// futures_lite::future::block_on(task.unwrap());
    /// assert_eq!(futures_lite::future::block_on(rx), 3);
    /// ```
    pub fn do_chan_detached<F, Fut, Sp>(&self, work: F, spawn: Sp) -> Receiver<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + 'static,
        Sp: FnOnce(Detached<V>),
    {
        self.inner.do_chan_detached((), |()| work(), spawn)
    }
}

impl<V> fmt::Debug for Group<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("local::Group")
            .field("in_flight", &self.in_flight())
            .finish()
    }
}
