//! `KeyedGroup`: one flight per key at a time. The calls (`call` and its forms) are in
//! `calls.rs`, the forms that return a `Receiver` in `receivers.rs`.

mod calls;
mod receivers;

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::OnceLock;
use std::time::Duration;

use crate::engine::{Engine, HasherCell};
use crate::flight::Sendable;
use crate::stats::GroupStats;

/// Shares the execution of work per key: while a flight for a key runs, every other call for
/// that key waits for it and gets a clone of its value.
///
/// There is no caching: once a flight has finished, the next call for its key starts a new one.
/// Errors are shared by making `V` a `Result`; wrap a non-`Clone` error in an [`Arc`](std::sync::Arc).
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
/// Each call hashes its key once. The default is std's [`RandomState`]: SipHash-1-3 keyed with
/// 128 random bits drawn from the operating system once per thread (each `RandomState` then
/// varies them). Keys often come from untrusted input (request paths, user names, tenant ids),
/// and every flight in the registry is a live entry an attacker can keep there by holding
/// requests open: keys that collide would make every call probe a long chain under the group's
/// lock, for every caller of the group. A fixed-seed hasher lets anyone compute such keys
/// offline, so none is the default. SipHash is a keyed pseudorandom function: without the key,
/// outputs, timings or table behaviour observed from outside do not help to find colliding keys,
/// so it resists hash flooding even from an attacker who can probe the service interactively.
///
/// This is a choice made on measurements (the repository's `BENCHMARKS.md`, "Which hasher"):
/// against SipHash-1-3, `foldhash` (hashbrown's default, seeded per process) takes a solo call
/// from 943 to 799 instructions for a `u64` key and from 1,489 to 1,309 for an 11-byte `String`,
/// and `ahash` to 805 and 1,327; about an eighth of a solo call. foldhash states that it resists
/// only attackers who cannot observe hash outputs or timings ("minimally DoS-resistant"), and
/// ahash's seeding depends on which of its features the final build enables (without
/// `runtime-rng` its keys are fixed constants mixed with an address). For keys an attacker does
/// not choose, pass such a hasher to [`with_hasher`](Self::with_hasher); `new` keeps the
/// default that is safe for keys from anywhere.
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
/// let lookup = |name: &'static str| {
///     // The key is borrowed: only a call that starts a flight makes a `String` of it.
///     group.call_ref(name, |name: String| {
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
    pub(crate) engine: Engine<K, V, S, Sendable>,
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
            engine: Engine::new(HasherCell::Lazy(OnceLock::new(), RandomState::new), false),
        }
    }
}

impl<V, S> KeyedGroup<(), V, S> {
    /// The group behind `Group`: its only key is `()`, so its registry keeps one slot instead
    /// of a hash table.
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
            engine: Engine::new(HasherCell::Given(hasher), false),
        }
    }

    /// Limits how long one flight captures new callers: a call that finds a flight for its key
    /// running for `age` or longer does not join it but starts a fresh flight, exactly as after
    /// [`forget`](Self::forget); the old flight's waiters keep it and get its value. One hung
    /// upstream call then holds only the callers that arrived within `age` of its start, not
    /// every later caller of its key. From the moment it reaches `age`, the flight no longer
    /// counts in [`in_flight`](Self::in_flight) (no new call can join it), and `forget` returns
    /// `false` for it; it is counted in [`GroupStats::expired`](crate::GroupStats) when a new
    /// caller replaces it or `forget` removes it.
    ///
    /// The age is measured with `std::time::Instant`, read only when a limit is set: once when
    /// a flight starts, once when a caller finds a flight to join, and once by `in_flight` and
    /// `stats`. By default there is no limit. `const`, so a limited group can be a `static`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::KeyedGroup;
    ///
    /// static LOOKUPS: KeyedGroup<u64, u64> =
    ///     KeyedGroup::new().max_flight_age(Duration::from_secs(30));
    ///
    /// let group: KeyedGroup<u8, u8> = KeyedGroup::new().max_flight_age(Duration::ZERO);
    /// let old = group.do_chan(1, |_| async { 1 });
    /// // The running flight is already too old to be joined: this call starts a new one.
    /// let new = group.do_chan(1, |_| async { 2 });
    /// # futures_lite::future::block_on(async {
    /// assert_eq!((old.await, new.await), (1, 2));
    /// assert_eq!(group.stats().expired, 1);
    /// # });
    /// ```
    pub const fn max_flight_age(mut self, age: Duration) -> Self {
        self.engine.max_flight_age = Some(age);
        self
    }

    /// Shows each flight's key in its `tracing` span (field `key`, with `K`'s `Debug`). Without
    /// it, a span carries no key: keys may be personal data, and not every key is `Debug`.
    /// Only with the `tracing` feature.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// static CUSTOMERS: KeyedGroup<String, u64> = KeyedGroup::new().trace_keys();
    /// assert_eq!(CUSTOMERS.in_flight(), 0);
    /// ```
    #[cfg(feature = "tracing")]
    pub const fn trace_keys(mut self) -> Self
    where
        K: fmt::Debug,
    {
        self.engine.key_debug = Some(<K as fmt::Debug>::fmt);
        self
    }

    /// A snapshot of the group's counters: flights started, callers that joined, flights
    /// abandoned, panicked, forgotten, detached and expired, and the flights running now.
    /// Takes the group's short lock once.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<&str, usize> = KeyedGroup::new();
    /// group.call("a", |k| async move { k.len() }).await;
    /// let rx = group.do_chan("b", |k| async move { k.len() });
    /// assert!(group.forget("b"));
    /// drop(rx); // abandoned: its work never finished
    /// let stats = group.stats();
    /// assert_eq!((stats.started, stats.forgotten, stats.abandoned), (2, 1, 1));
    /// assert_eq!(stats.in_flight, 0);
    /// # });
    /// ```
    pub fn stats(&self) -> GroupStats {
        self.engine.stats()
    }

    /// The number of keys a new call would join: flights that are running, not forgotten, and
    /// younger than the group's [`max_flight_age`](Self::max_flight_age) if it has one.
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
        self.engine.in_flight()
    }
}

impl<K, V, S: BuildHasher> KeyedGroup<K, V, S> {
    /// Forgets the flight running for `key`: the next call for it starts a new flight. Callers
    /// already waiting keep the old flight and get its value. Returns whether a flight was
    /// forgotten (`false` also for one already forgotten, and for one past the group's
    /// [`max_flight_age`](Self::max_flight_age), which new calls no longer join anyway).
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
        self.engine.forget(key)
    }
}

impl<K, V, S> fmt::Debug for KeyedGroup<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedGroup")
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}
