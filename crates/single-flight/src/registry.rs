//! The map from keys to running flights, shared by `KeyedGroup`, `Group` and their receivers.
//!
//! One short lock guards the slots, the pool of recycled flights and the list of abandoned
//! flights whose work is being dropped. A call takes it twice at most: once to join or start,
//! once (the finisher only) to unlink. Keys are hashed once, by the group, before locking; the
//! hash is kept in the flight so that unlinking compares identity, never keys.

use std::borrow::Borrow;

use crate::flight::{drop_quietly, Flight, Phase, Ticket, Unlink, Work};
use crate::slots::{Lookup, Slot, Slots};
use crate::sync::{lock, Mutex};

/// Recycled flights kept per group: enough for bursts of distinct keys, small enough that an idle
/// group holds little (each keeps its `Event`'s state, a few dozen bytes).
const POOL_CAPACITY: usize = 16;

pub(crate) struct Registry<K, V> {
    table: Mutex<Table<K, V>>,
}

struct Table<K, V> {
    slots: Slots<K, V>,
    pool: Vec<Flight<V>>,
    abandoning: Vec<Abandoning<V>>,
}

/// An abandoned flight whose work is being dropped, with the flights of the same hash started
/// meanwhile: they must not poll their work before this drop has finished.
struct Abandoning<V> {
    flight: Flight<V>,
    successors: Vec<Flight<V>>,
}

/// How a starter sets its new flight up.
#[derive(Clone, Copy)]
pub(crate) enum Start {
    /// `call`: the starter makes the work and polls it at once.
    Poll,
    /// `do_chan`: the starter makes the work and installs it for whoever polls.
    Install,
    /// A detached flight: a spawned task (ticket 1) owns the work.
    Detach,
}

pub(crate) enum Entry<V, K> {
    /// Joined a running flight with this ticket; the caller's key is handed back so that it is
    /// dropped once the caller's registration is guarded (its `Drop` is user code). The bool says
    /// that another waiter is in charge, so the new one may listen before its first check.
    Joined(Flight<V>, Ticket, K, bool),
    /// Started a new flight (ticket 0); here is the key for the work, and whether the flight
    /// is gated behind an abandoned flight of the same hash whose work is still being dropped.
    Started(Flight<V>, K, bool),
}

impl<K, V> Registry<K, V> {
    /// A registry for any number of keys, or (`one_key`) for the single key of a `Group`.
    pub(crate) fn new(one_key: bool) -> Self {
        Self {
            table: Mutex::new(Table {
                slots: Slots::new(one_key),
                pool: Vec::new(),
                abandoning: Vec::new(),
            }),
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.table).slots.len()
    }
}

impl<K: Eq + Clone, V> Registry<K, V> {
    /// Joins the flight running for `key`, or starts one: one probe of the table either way.
    pub(crate) fn join_or_start(&self, hash: u64, key: K, start: Start) -> Entry<V, K> {
        let mut guard = lock(&self.table);
        let table = &mut *guard;
        let vacant = match table.slots.lookup(hash, &key) {
            Lookup::Occupied(flight) => {
                let flight = flight.clone();
                let (ticket, busy) = flight.join();
                drop(guard);
                return Entry::Joined(flight, ticket, key, busy);
            }
            Lookup::Vacant(vacant) => vacant,
        };
        // `K::clone` runs under the lock, before anything is changed.
        let key_in_slot = key.clone();
        let gate = table
            .abandoning
            .iter()
            .filter(|abandoning| abandoning.flight.hash == hash)
            .count();
        let (phase, waiters) = match start {
            // A gated starter cannot poll at once: it installs its work like `do_chan` does.
            Start::Poll if gate == 0 => (Phase::Polling { woken: false }, 1),
            Start::Poll | Start::Install => (Phase::Starting, 1),
            Start::Detach => (Phase::Detached, 2),
        };
        let flight = fresh_flight(&mut table.pool, hash, phase, waiters, gate);
        if gate > 0 {
            // Make the new flight wait for every abandoned flight of this hash still dropping.
            for abandoning in &mut table.abandoning {
                if abandoning.flight.hash == hash {
                    abandoning.successors.push(flight.clone());
                }
            }
        }
        vacant.insert(Slot {
            key: key_in_slot,
            flight: flight.clone(),
        });
        drop(guard);
        Entry::Started(flight, key, gate > 0)
    }

    /// Removes the entry for `key`; returns whether there was one.
    pub(crate) fn forget<Q>(&self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let mut table = lock(&self.table);
        let removed = table.slots.remove_key(hash, key);
        drop(table);
        removed.is_some()
    }
}

impl<K, V> Table<K, V> {
    fn unlink(&mut self, flight: &Flight<V>) -> Option<Slot<K, V>> {
        self.slots.remove_flight(flight)
    }

    fn recycle(&mut self, flight: Flight<V>) {
        if self.pool.len() < POOL_CAPACITY {
            self.pool.push(flight);
        }
    }
}

/// A flight nobody else holds, from the pool if possible, reset for a new run. (One
/// `Arc::get_mut` per flight: each is an atomic read-modify-write, a large share of a solo call.)
#[inline]
fn fresh_flight<V>(
    pool: &mut Vec<Flight<V>>,
    hash: u64,
    phase: Phase<V>,
    waiters: usize,
    gate: usize,
) -> Flight<V> {
    while let Some(mut flight) = pool.pop() {
        if let Some(inner) = flight.get_mut() {
            inner.reset(hash, phase, waiters, gate);
            return flight;
        }
        // Still held (a stale waker inside some finished work, or a waiter not yet gone): let
        // its last holder free it.
    }
    let mut flight = Flight::new();
    flight
        .get_mut()
        .expect("a new flight is unshared")
        .reset(hash, phase, waiters, gate);
    flight
}

impl<K, V> Unlink<V> for Registry<K, V>
where
    K: Send,
    V: Send,
{
    fn unlink_with(&self, flight: &Flight<V>, publish: &mut dyn FnMut()) {
        let mut table = lock(&self.table);
        let slot = table.unlink(flight);
        publish();
        // Recycle the slot's own handle when there is one: a move, not a reference-count trip.
        let key = match slot {
            Some(Slot { key, flight }) => {
                table.recycle(flight);
                Some(key)
            }
            None => {
                table.recycle(flight.clone());
                None
            }
        };
        drop(table);
        // The key's drop is user code: not under the lock, and not allowed to unwind through
        // the publication of the flight's end.
        drop_quietly(key);
    }

    fn begin_abandon(&self, flight: &Flight<V>) -> Option<Work<V>> {
        let mut table = lock(&self.table);
        let mut state = lock(&flight.state);
        if state.waiters != 0 || !matches!(state.phase, Phase::Idle { .. }) {
            // Someone joined between the last leave and this lock: the flight lives on.
            return None;
        }
        let Phase::Idle { work, .. } = std::mem::replace(&mut state.phase, Phase::Abandoned) else {
            unreachable!()
        };
        drop(state);
        let slot = table.unlink(flight);
        table.abandoning.push(Abandoning {
            flight: flight.clone(),
            successors: Vec::new(),
        });
        drop(table);
        drop_quietly(slot);
        Some(work)
    }

    fn end_abandon(&self, flight: &Flight<V>) {
        let mut table = lock(&self.table);
        let index = table
            .abandoning
            .iter()
            .position(|abandoning| abandoning.flight.ptr_eq(flight))
            .expect("an abandoning flight is listed until its work is dropped");
        let Abandoning {
            flight: dropped,
            successors,
        } = table.abandoning.swap_remove(index);
        table.recycle(dropped);
        drop(table);
        for successor in successors {
            successor.ungate();
        }
    }
}
