//! The map from keys to running flights, shared by `KeyedGroup`, `Group` and their receivers,
//! and the registry's part in the end of a flight (`Lifecycle`); its table is in `slots.rs`.
//!
//! One short lock guards the slots, the pool of recycled flights and the list of abandoned
//! flights whose work is being dropped. A call takes it once to join or start and, if it
//! publishes the flight's end, once to unlink; a last caller that abandons unfinished work takes
//! it twice more (`begin_abandon`, `end_abandon`). Keys are hashed once, by the group, before
//! locking; the hash is kept in the flight so that unlinking compares identity, never keys.

use std::borrow::Borrow;
use std::time::{Duration, Instant};

use crate::flight::{
    drop_quietly, Carrier, Flight, Joined, Lifecycle, PanicPublished, Published, Sendable, Solo,
    Start, Ticket, Work,
};
use crate::panicked::Panicked;
mod slots;

use self::slots::{Lookup, Slot, Slots};
use crate::stats::GroupStats;
use crate::sync::{lock, Lock};

/// Recycled flights kept per group: enough for bursts of distinct keys, small enough that an idle
/// group holds little (each keeps its `Event`'s state, a few dozen bytes).
const POOL_CAPACITY: usize = 16;

pub(crate) struct Registry<K, V, C: Carrier<V> = Sendable> {
    table: C::RegistryLock<RegistryState<K, V, C>>,
    /// Flights older than this are not joined (`None`: no limit, and the clock is never read).
    max_flight_age: Option<Duration>,
}

struct RegistryState<K, V, C: Carrier<V>> {
    slots: Slots<K, V, C>,
    flights: Flights<V, C>,
}

/// What the registry keeps besides its table (a field of its own, so that a start can use it
/// while it holds the table's vacant entry).
struct Flights<V, C: Carrier<V>> {
    pool: Vec<Flight<V, C>>,
    abandoning: Vec<Abandoning<V, C>>,
    /// Counted here, under the lock each counted step takes anyway.
    stats: GroupStats,
}

/// An abandoned flight whose work is being dropped, with the flights of the same hash started
/// meanwhile: they must not poll their work before this drop has finished.
struct Abandoning<V, C: Carrier<V>> {
    flight: Flight<V, C>,
    successors: Vec<Flight<V, C>>,
}

/// A key as a caller gives it: owned (`call`), or borrowed and made owned only when it starts
/// a flight (`call_ref`, the way hashbrown's `entry_ref` works).
pub(crate) trait CallerKey<K> {
    /// Whether the live flight's `key` is this key (`K::eq`: user code, under the lock).
    fn is(&self, key: &K) -> bool;

    /// The owned keys of a flight this key starts: one for the registry's slot, one for the
    /// work. Runs `K::clone` (or the conversion from the borrowed key) under the lock.
    fn into_keys(self) -> (K, K);
}

/// An owned key.
pub(crate) struct Owned<K>(pub(crate) K);

impl<K: Eq + Clone> CallerKey<K> for Owned<K> {
    fn is(&self, key: &K) -> bool {
        *key == self.0
    }

    fn into_keys(self) -> (K, K) {
        (self.0.clone(), self.0)
    }
}

impl<'q, K, Q> CallerKey<K> for &'q Q
where
    K: Borrow<Q> + Clone,
    Q: Eq + ?Sized,
    &'q Q: Into<K>,
{
    fn is(&self, key: &K) -> bool {
        key.borrow() == *self
    }

    fn into_keys(self) -> (K, K) {
        let key: K = self.into();
        (key.clone(), key)
    }
}

pub(crate) enum Entry<V, K, Q, C: Carrier<V> = Sendable> {
    /// Joined a running flight with this ticket; the caller's key is handed back so that it is
    /// dropped once the caller's registration is guarded (its `Drop` is user code). `listen`
    /// says that another waiter is in charge, so the new one may listen before its first check.
    Joined {
        flight: Flight<V, C>,
        ticket: Ticket,
        key: Q,
        listen: bool,
        /// The join promoted the flight to detached (`Start::Detach` only): spawn a claiming
        /// task.
        promoted: bool,
    },
    /// Started a new flight (ticket 0); here is the key for the work, and whether the flight
    /// is gated behind an abandoned flight of the same hash whose work is still being dropped.
    Started {
        flight: Flight<V, C>,
        key: K,
        gated: bool,
    },
}

impl<K, V, C: Carrier<V>> Registry<K, V, C> {
    /// A registry for any number of keys, or (`one_key`) for the single key of a `Group`;
    /// flights older than `max_flight_age` are not joined.
    pub(crate) fn new(one_key: bool, max_flight_age: Option<Duration>) -> Self {
        Self {
            table: Lock::new(RegistryState {
                slots: Slots::new(one_key),
                flights: Flights {
                    pool: Vec::new(),
                    abandoning: Vec::new(),
                    stats: GroupStats::default(),
                },
            }),
            max_flight_age,
        }
    }

    /// The flights a new call would join: those not older than the group's age limit. (An
    /// expired flight keeps its slot until a new caller replaces it, so counting slots alone
    /// would count flights nobody can join any more.)
    pub(crate) fn in_flight(&self) -> usize {
        self.joinable(&lock(&self.table).slots)
    }

    pub(crate) fn stats(&self) -> GroupStats {
        let table = lock(&self.table);
        GroupStats {
            in_flight: self.joinable(&table.slots),
            ..table.flights.stats
        }
    }

    fn joinable(&self, slots: &Slots<K, V, C>) -> usize {
        match self.max_flight_age {
            None => slots.len(),
            Some(age) => {
                let now = Instant::now();
                slots.count(|flight| !flight.inner().is_older_than_at(age, now))
            }
        }
    }
}

impl<K, V, C: Carrier<V>> Registry<K, V, C> {
    /// Joins the flight running for `key`, or starts one: one probe of the table either way,
    /// under one lock; [`join`](Self::join) and [`start`](Self::start) say what each means.
    pub(crate) fn enter<Q: CallerKey<K>>(
        &self,
        hash: u64,
        key: Q,
        start: Start,
    ) -> Entry<V, K, Q, C> {
        let mut guard = lock(&self.table);
        let table = &mut *guard;
        let max_age = self.max_flight_age;
        let lookup = table.slots.lookup(
            hash,
            |live| key.is(live),
            // The clock is read only when the group has a limit (and a flight to join).
            |live| max_age.is_some_and(|age| live.inner().is_older_than(age)),
        );
        match lookup {
            (Lookup::Occupied(flight), _) => {
                let flight = flight.clone();
                let joined = Self::join(table, &flight, start);
                drop(guard);
                #[cfg(feature = "tracing")]
                {
                    flight.inner().trace_event(crate::trace::Event::Joined);
                    if joined.promoted {
                        flight
                            .inner()
                            .trace_event(crate::trace::Event::PromotedToDetached);
                    }
                }
                Entry::Joined {
                    flight,
                    ticket: joined.ticket,
                    key,
                    listen: joined.listen,
                    promoted: joined.promoted,
                }
            }
            (Lookup::Vacant(vacant), expired) => {
                // Too old to be joined: it stops capturing callers as after `forget`, and its
                // own waiters keep it.
                table.flights.stats.expired += u64::from(expired.is_some());
                // `K::clone` (or the conversion) runs under the lock, before anything changes.
                let (key_in_slot, key) = key.into_keys();
                let (flight, gated) = Self::start(&mut table.flights, hash, start, max_age);
                vacant.insert(Slot {
                    key: key_in_slot,
                    flight: flight.clone(),
                });
                drop(guard);
                // The expired slot's key drops here, unlocked: its drop is user code.
                // `drop_quietly` is not inlined (its `catch_unwind`): call it only with a key.
                if expired.is_some() {
                    drop_quietly(expired);
                }
                Entry::Started { flight, key, gated }
            }
        }
    }

    /// Registers one more waiter with a running flight (registry locked: invariant 5).
    fn join(table: &mut RegistryState<K, V, C>, flight: &Flight<V, C>, start: Start) -> Joined {
        let joined = flight.inner().join(matches!(start, Start::Detach));
        table.flights.stats.joined += 1;
        table.flights.stats.detached += u64::from(joined.promoted);
        joined
    }

    /// A new flight for `hash` (registry locked), and whether it is gated behind abandoned
    /// flights of the same hash whose work is still being dropped (invariant 6).
    fn start(
        flights: &mut Flights<V, C>,
        hash: u64,
        start: Start,
        max_age: Option<Duration>,
    ) -> (Flight<V, C>, bool) {
        let dropping_predecessors = flights
            .abandoning
            .iter()
            .filter(|abandoning| abandoning.flight.inner().hash == hash)
            .count();
        // The clock is read only for a group with an age limit.
        let started_at = max_age.map(|_| Instant::now());
        let flight = fresh_flight(
            &mut flights.pool,
            hash,
            start,
            dropping_predecessors,
            started_at,
        );
        flights.stats.started += 1;
        flights.stats.detached += u64::from(start == Start::Detach);
        if dropping_predecessors > 0 {
            // The new flight waits for every abandoned flight of this hash still dropping.
            for abandoning in &mut flights.abandoning {
                if abandoning.flight.inner().hash == hash {
                    abandoning.successors.push(flight.clone());
                }
            }
        }
        (flight, dropping_predecessors > 0)
    }

    /// Removes the entry for `key`; returns whether it held a flight a new call would have
    /// joined. A flight past the age limit is removed too, but counted as expired, not
    /// forgotten: new calls had already stopped joining it.
    pub(crate) fn forget<Q>(&self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let mut table = lock(&self.table);
        let removed = table.slots.remove_key(hash, key);
        let expired = removed.as_ref().is_some_and(|slot| {
            self.max_flight_age
                .is_some_and(|age| slot.flight.inner().is_older_than(age))
        });
        let forgotten = removed.is_some() && !expired;
        table.flights.stats.forgotten += u64::from(forgotten);
        table.flights.stats.expired += u64::from(expired);
        drop(table);
        // The key's drop is user code: not under the lock.
        drop_quietly(removed);
        forgotten
    }
}

impl<K, V, C: Carrier<V>> RegistryState<K, V, C> {
    fn unlink(&mut self, flight: &Flight<V, C>) -> Option<Slot<K, V, C>> {
        self.slots.remove_flight(flight)
    }

    /// Unlinks a flight that ended and keeps it for reuse; returns the key of its slot (if it
    /// still had one) for the caller to drop unlocked.
    #[inline]
    fn unlink_and_recycle(&mut self, flight: &Flight<V, C>) -> Option<K> {
        // Recycle the slot's own handle when there is one: a move, not a reference-count trip.
        match self.unlink(flight) {
            Some(Slot { key, flight }) => {
                self.recycle(flight);
                Some(key)
            }
            None => {
                self.recycle(flight.clone());
                None
            }
        }
    }

    /// Keeps a finished flight for reuse. Its waiters may still hold it for a moment (taking
    /// their share, dropping their handle); it is reused once they let go (`fresh_flight`).
    #[inline]
    fn recycle(&mut self, flight: Flight<V, C>) {
        if self.flights.pool.len() < POOL_CAPACITY {
            self.flights.pool.push(flight);
        } else {
            self.recycle_into_full_pool(flight);
        }
    }

    #[cold]
    fn recycle_into_full_pool(&mut self, flight: Flight<V, C>) {
        if let Some(held) = self
            .flights
            .pool
            .iter_mut()
            .find(|pooled| pooled.is_shared())
        {
            // A flight held for long (a stale waker kept by some timer) makes way for one that
            // will be free soon; its last holder frees it. It holds no waker, work or value of
            // its own (semantic 8), so dropping this handle runs no user or executor code.
            *held = flight;
        }
    }
}

/// A flight nobody else holds, from the pool if possible, reset for a new run.
///
/// Pooled flights that some waiter still holds (it is taking its share of the value or
/// dropping its handle) are skipped, not discarded: a later start reuses them. A pooled flight
/// found unshared stays so, since only the registry, which is locked, hands out handles. (One
/// `Arc::get_mut` per pooled flight looked at: an atomic read-modify-write each.)
#[inline]
fn fresh_flight<V, C: Carrier<V>>(
    pool: &mut Vec<Flight<V, C>>,
    hash: u64,
    start: Start,
    dropping_predecessors: usize,
    started_at: Option<Instant>,
) -> Flight<V, C> {
    // Newest first: on a solo path that is the flight this thread just finished, still cached.
    let free = pool.iter_mut().rposition(|pooled| match pooled.get_mut() {
        Some(inner) => {
            inner.reset(hash, start, dropping_predecessors, started_at);
            true
        }
        None => false,
    });
    match free {
        Some(index) => pool.swap_remove(index),
        None => new_flight(hash, start, dropping_predecessors, started_at),
    }
}

/// A flight made new, for a start that found no free flight in the pool.
#[cold]
fn new_flight<V, C: Carrier<V>>(
    hash: u64,
    start: Start,
    dropping_predecessors: usize,
    started_at: Option<Instant>,
) -> Flight<V, C> {
    let mut flight = Flight::new();
    flight.get_mut().expect("a new flight is unshared").reset(
        hash,
        start,
        dropping_predecessors,
        started_at,
    );
    flight
}

impl<K, V, C: Carrier<V>> Lifecycle<V, C> for Registry<K, V, C> {
    fn publish(&self, flight: &Flight<V, C>, taker: Option<Ticket>, value: V) -> Published<V> {
        let mut table = lock(&self.table);
        let key = table.unlink_and_recycle(flight);
        // Invariant 7: published together with the unlink, under this lock.
        let published = flight.inner().publish(taker, value);
        drop(table);
        // The key's drop is user code: not under the lock, and not allowed to unwind through
        // the publication of the flight's end.
        drop_quietly(key);
        published
    }

    #[cold]
    fn publish_panic(&self, flight: &Flight<V, C>, panicked: Panicked) -> PanicPublished {
        let mut table = lock(&self.table);
        table.flights.stats.panicked += 1;
        let key = table.unlink_and_recycle(flight);
        let published = flight.inner().publish_panic(panicked);
        drop(table);
        drop_quietly(key);
        published
    }

    fn end_solo(&self, flight: &Flight<V, C>) -> Solo {
        let mut table = lock(&self.table);
        if flight.inner().has_joiners() {
            return Solo::Joined;
        }
        let key = table.unlink_and_recycle(flight);
        drop(table);
        // `drop_quietly` is not inlined (its `catch_unwind`): call it only with a key to drop.
        if key.is_some() {
            drop_quietly(key);
        }
        Solo::Ended
    }

    fn begin_abandon(&self, flight: &Flight<V, C>) -> Option<Work<V, C>> {
        let mut table = lock(&self.table);
        // `None` if someone joined between the last leave and this lock: the flight lives on.
        let work = flight.unpark(flight.inner().take_abandoned_work()?);
        table.flights.stats.abandoned += 1;
        let slot = table.unlink(flight);
        table.flights.abandoning.push(Abandoning {
            flight: flight.clone(),
            successors: Vec::new(),
        });
        drop(table);
        drop_quietly(slot);
        Some(work)
    }

    fn end_abandon(&self, flight: &Flight<V, C>) -> Vec<Flight<V, C>> {
        let mut table = lock(&self.table);
        let index = table
            .flights
            .abandoning
            .iter()
            .position(|abandoning| abandoning.flight.ptr_eq(flight))
            .expect("an abandoning flight is listed until its work is dropped");
        let Abandoning {
            flight: dropped,
            successors,
        } = table.flights.abandoning.swap_remove(index);
        table.recycle(dropped);
        successors
    }
}
