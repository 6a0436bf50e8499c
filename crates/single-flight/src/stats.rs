//! `GroupStats`: what a group has done, as a snapshot.

/// A snapshot of a group's counters, from [`KeyedGroup::stats`](crate::KeyedGroup::stats) or
/// [`Group::stats`](crate::Group::stats).
///
/// Every counter counts from the group's creation and is updated under the group's short lock
/// that the counted step takes anyway, so counting costs no atomic operation of its own. A
/// snapshot is consistent: all counters are read at one instant.
///
/// What sharing saved is `joined`: each joining caller is one execution that did not happen.
///
/// # Examples
///
/// ```
/// use single_flight::KeyedGroup;
///
/// # futures_lite::future::block_on(async {
/// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
/// let (a, b) = futures_lite::future::zip(
///     group.call(1, |k| async move {
///         futures_lite::future::yield_now().await; // still running when the second call comes
///         k
///     }),
///     group.call(1, |k| async move { k }),
/// )
/// .await;
/// assert_eq!((a, b), (1, 1));
/// let stats = group.stats();
/// assert_eq!((stats.started, stats.joined, stats.in_flight), (1, 1, 0));
/// # });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct GroupStats {
    /// Flights started (each ran, or began to run, its work once).
    pub started: u64,
    /// Callers that joined a running flight instead of starting one.
    pub joined: u64,
    /// Flights whose last waiter left before the work finished: the work was dropped.
    pub abandoned: u64,
    /// Flights whose work (or the closure that made it) panicked.
    pub panicked: u64,
    /// Flights removed from the group by `forget` while they ran.
    pub forgotten: u64,
    /// Flights handed to a runtime: started detached, or promoted to detached by a detached
    /// call that joined them.
    pub detached: u64,
    /// Flights that new callers stopped joining because they ran longer than the group's
    /// maximum flight age.
    pub expired: u64,
    /// Flights running now that a new call would join (as [`KeyedGroup::in_flight`]).
    ///
    /// [`KeyedGroup::in_flight`]: crate::KeyedGroup::in_flight
    pub in_flight: usize,
}
