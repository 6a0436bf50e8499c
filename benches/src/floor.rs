//! The safe floor of a solo call: the least any registry of running calls does, in safe Rust,
//! on a given hasher (one row per hasher: the targets compare `KeyedGroup::new()` with the floor
//! on the same hasher, [`hashers::Default`](crate::hashers::Default)).
//!
//! A call hashes its key once, locks a
//! `hashbrown::HashTable`, inserts an entry holding a pooled `Arc`, unlocks; boxes the work and
//! awaits it; locks, removes its entry (by identity), puts the `Arc` back in the pool, unlocks.
//! Two short locks, one `Arc` clone and drop, one allocation (the boxed work): six atomic
//! read-modify-writes, the same as a solo `KeyedGroup::call` needs at the least.
//!
//! It shares nothing (concurrent calls of one key each run their own work: the table keeps
//! duplicates), so only its solo figures mean anything: every solo target of single-flight is a
//! ratio to this row, measured in the same run (`cargo xtask bench`) or under callgrind
//! (`python3 benches/callgrind.py solo floor`).

use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::HashTable;

use crate::hashers::RowHasher;

/// Pooled entries kept, as single-flight keeps recycled flights.
const POOL_CAPACITY: usize = 16;

/// What an entry holds: a stand-in for a flight's shared state, never looked at.
#[derive(Debug, Default)]
struct Entry {
    _callers: AtomicUsize,
}

#[derive(Debug)]
struct Slot<K> {
    hash: u64,
    /// Owned and never read (removal is by identity): what owning a key costs a registry, the
    /// clone in and the drop out (for a `String`, an allocation and a free).
    _key: K,
    entry: Arc<Entry>,
}

#[derive(Debug)]
struct Table<K> {
    slots: HashTable<Slot<K>>,
    pool: Vec<Arc<Entry>>,
}

/// The minimal safe registry for keys `K` hashed with `S`: see the module docs.
#[derive(Debug)]
pub struct SafeFloor<K, S> {
    hasher: S,
    table: Mutex<Table<K>>,
}

impl<K: Hash + Eq, S: RowHasher> Default for SafeFloor<K, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq, S: RowHasher> SafeFloor<K, S> {
    /// An empty registry with a freshly seeded hasher.
    pub fn new() -> Self {
        Self {
            hasher: S::seeded(),
            table: Mutex::new(Table {
                slots: HashTable::new(),
                pool: Vec::new(),
            }),
        }
    }

    /// Registers `key`, awaits `work(key)`, unregisters: a solo call (`key` is moved in, as
    /// `KeyedGroup::call` takes it, so `String` keys cost the same allocations in both).
    pub async fn call_key<F, Fut>(&self, key: K, work: F) -> u64
    where
        K: Clone,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = u64> + Send + 'static,
    {
        let hash = self.hasher.hash_one(&key);
        let (mine, key) = self.insert(hash, key);
        let work: Pin<Box<dyn Future<Output = u64> + Send>> = Box::pin(work(key));
        let value = work.await;
        self.remove(hash, mine);
        value
    }

    fn table(&self) -> MutexGuard<'_, Table<K>> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a call of `key` (hashed `hash`): its entry's `Arc`, for removing it, and the
    /// key for the work (the table keeps a clone, as `KeyedGroup` does: a `u64` copy, or for a
    /// `String` the one allocation a starting caller makes).
    fn insert(&self, hash: u64, key: K) -> (Arc<Entry>, K)
    where
        K: Clone,
    {
        let mut table = self.table();
        let entry = table.pool.pop().unwrap_or_default();
        let mine = entry.clone();
        let slot = Slot {
            hash,
            _key: key.clone(),
            entry,
        };
        table.slots.insert_unique(hash, slot, |slot| slot.hash);
        (mine, key)
    }

    /// Removes the entry `mine` registered (found by identity: the key is not compared again)
    /// and pools its `Arc`.
    fn remove(&self, hash: u64, mine: Arc<Entry>) {
        let mut table = self.table();
        let removed = table
            .slots
            .find_entry(hash, |slot| Arc::ptr_eq(&slot.entry, &mine))
            .ok()
            .map(|entry| entry.remove().0);
        drop(mine);
        if let Some(slot) = removed {
            if table.pool.len() < POOL_CAPACITY {
                table.pool.push(slot.entry);
            }
        }
    }
}
