//! Where the registry keeps its live flights: a hash table for `KeyedGroup`, one slot for `Group`.
//!
//! `Group` has a single implied key, so its table never holds more than one entry; a plain
//! `Option` spares every call the table's probes (about 130 instructions of a solo call).

use std::borrow::Borrow;

use hashbrown::hash_table::{self, HashTable};

use crate::flight::{Carrier, Flight, Sendable};

/// A live flight and the key it runs for.
pub(crate) struct Slot<K, V, C: Carrier<V> = Sendable> {
    pub(crate) key: K,
    pub(crate) flight: Flight<V, C>,
}

pub(crate) enum Slots<K, V, C: Carrier<V> = Sendable> {
    /// Any number of keys, found by the hash the group computed.
    Many(HashTable<Slot<K, V, C>>),
    /// One key at a time: every key is equal to every other (the `()` of `Group`).
    One(Option<Slot<K, V, C>>),
}

/// The result of looking a key up: its live flight, or the place to put a new one.
pub(crate) enum Lookup<'a, K, V, C: Carrier<V> = Sendable> {
    Occupied(&'a Flight<V, C>),
    Vacant(Vacancy<'a, K, V, C>),
}

/// What `lookup` found, and the expired slot it removed on the way (if any).
pub(crate) type Found<'a, K, V, C> = (Lookup<'a, K, V, C>, Option<Slot<K, V, C>>);

pub(crate) enum Vacancy<'a, K, V, C: Carrier<V> = Sendable> {
    Many(hash_table::VacantEntry<'a, Slot<K, V, C>>),
    One(&'a mut Option<Slot<K, V, C>>),
}

impl<K, V, C: Carrier<V>> Slots<K, V, C> {
    pub(crate) fn new(one_key: bool) -> Self {
        if one_key {
            Self::One(None)
        } else {
            Self::Many(HashTable::new())
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Many(table) => table.len(),
            Self::One(slot) => usize::from(slot.is_some()),
        }
    }

    /// How many live flights `counts` accepts.
    pub(crate) fn count(&self, counts: impl Fn(&Flight<V, C>) -> bool) -> usize {
        match self {
            Self::Many(table) => table.iter().filter(|slot| counts(&slot.flight)).count(),
            Self::One(slot) => usize::from(slot.as_ref().is_some_and(|slot| counts(&slot.flight))),
        }
    }

    /// Finds the flight of the key that `is_key` recognizes, with one probe. `K::eq` runs in
    /// `is_key` (user code, under the registry lock); if it panics, nothing has been changed.
    /// A live flight that `expired` rejects is removed (as by `remove_key`) and returned with
    /// the vacancy it leaves.
    pub(crate) fn lookup(
        &mut self,
        hash: u64,
        is_key: impl Fn(&K) -> bool,
        expired: impl Fn(&Flight<V, C>) -> bool,
    ) -> Found<'_, K, V, C> {
        match self {
            Self::Many(table) => {
                match table.entry(
                    hash,
                    |slot| is_key(&slot.key),
                    |slot| slot.flight.inner().hash,
                ) {
                    hash_table::Entry::Occupied(occupied) if expired(&occupied.get().flight) => {
                        let (slot, vacant) = occupied.remove();
                        (Lookup::Vacant(Vacancy::Many(vacant)), Some(slot))
                    }
                    hash_table::Entry::Occupied(occupied) => {
                        (Lookup::Occupied(&occupied.into_mut().flight), None)
                    }
                    hash_table::Entry::Vacant(vacant) => {
                        (Lookup::Vacant(Vacancy::Many(vacant)), None)
                    }
                }
            }
            Self::One(live) => {
                if let Some(slot) = live {
                    debug_assert!(is_key(&slot.key), "a one-slot registry has a single key");
                }
                let expired_slot = match live {
                    Some(slot) if expired(&slot.flight) => live.take(),
                    _ => None,
                };
                match live {
                    Some(slot) => (Lookup::Occupied(&slot.flight), None),
                    empty => (Lookup::Vacant(Vacancy::One(empty)), expired_slot),
                }
            }
        }
    }

    /// Removes the entry of `key`, whatever flight it holds (`forget`).
    pub(crate) fn remove_key<Q>(&mut self, hash: u64, key: &Q) -> Option<Slot<K, V, C>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        match self {
            Self::Many(table) => table
                .find_entry(hash, |slot| slot.key.borrow() == key)
                .ok()
                .map(|entry| entry.remove().0),
            Self::One(slot) => slot.take(),
        }
    }

    /// Removes `flight`'s entry if it is still the live one for its key: identity, not key,
    /// comparison, so a finished or forgotten flight never removes a newer flight's entry.
    pub(crate) fn remove_flight(&mut self, flight: &Flight<V, C>) -> Option<Slot<K, V, C>> {
        match self {
            Self::Many(table) => {
                let slot = table
                    .find_entry(flight.inner().hash, |slot| slot.flight.ptr_eq(flight))
                    .ok()
                    .map(|entry| entry.remove().0);
                // Give memory back after a burst of keys, without thrashing around a steady size.
                let (len, capacity) = (table.len(), table.capacity());
                if capacity > 64 && capacity > 4 * len {
                    table.shrink_to(2 * len, |slot| slot.flight.inner().hash);
                }
                slot
            }
            Self::One(slot) => match slot {
                Some(live) if live.flight.ptr_eq(flight) => slot.take(),
                _ => None,
            },
        }
    }
}

impl<K, V, C: Carrier<V>> Vacancy<'_, K, V, C> {
    #[inline]
    pub(crate) fn insert(self, slot: Slot<K, V, C>) {
        match self {
            Self::Many(vacant) => {
                vacant.insert(slot);
            }
            Self::One(empty) => *empty = Some(slot),
        }
    }
}
