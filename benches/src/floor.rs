//! The safe floor of a solo call: the least any registry of running calls does, in safe Rust,
//! with the same hasher as `KeyedGroup::new()`.
//!
//! A call hashes its key once (std's seeded SipHash, `RandomState`), locks a
//! `hashbrown::HashTable`, inserts an entry holding a pooled `Arc`, unlocks; boxes the work and
//! awaits it; locks, removes its entry (by identity), puts the `Arc` back in the pool, unlocks.
//! Two short locks, one `Arc` clone and drop, one allocation (the boxed work): six atomic
//! read-modify-writes, the same as a solo `KeyedGroup::call` needs at the least.
//!
//! It shares nothing (concurrent calls of one key each run their own work: the table keeps
//! duplicates), so only its solo figures mean anything: every solo target of single-flight is a
//! ratio to this row, measured in the same run (`cargo xtask bench`) or under callgrind
//! (`python3 benches/callgrind.py solo floor`).

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::HashTable;

use crate::peers::Coalescer;

/// Pooled entries kept, as single-flight keeps recycled flights.
const POOL_CAPACITY: usize = 16;

/// What an entry holds: a stand-in for a flight's shared state, never looked at.
#[derive(Debug, Default)]
struct Entry {
    _callers: AtomicUsize,
}

#[derive(Debug)]
struct Slot {
    hash: u64,
    key: u64,
    entry: Arc<Entry>,
}

#[derive(Debug, Default)]
struct Table {
    slots: HashTable<Slot>,
    pool: Vec<Arc<Entry>>,
}

/// The minimal safe registry: see the module docs.
#[derive(Debug, Default)]
pub struct SafeFloor {
    hasher: RandomState,
    table: Mutex<Table>,
}

impl SafeFloor {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a call of `key` (hashed `hash`): its entry's `Arc`, for removing it.
    fn insert(&self, hash: u64, key: u64) -> Arc<Entry> {
        let mut table = self.table();
        let entry = table.pool.pop().unwrap_or_default();
        let mine = entry.clone();
        table
            .slots
            .insert_unique(hash, Slot { hash, key, entry }, |slot| slot.hash);
        mine
    }

    /// Removes the entry `mine` registered for `key` and pools its `Arc`.
    fn remove(&self, hash: u64, key: u64, mine: Arc<Entry>) {
        let mut table = self.table();
        let removed = table
            .slots
            .find_entry(hash, |slot| {
                slot.key == key && Arc::ptr_eq(&slot.entry, &mine)
            })
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

impl Coalescer for SafeFloor {
    const NAME: &'static str = "safe floor (Mutex<HashTable>, pooled Arc, no sharing)";
    const DEDUPLICATES: bool = false;

    fn new() -> Self {
        Self::default()
    }

    async fn call<F, Fut>(&self, key: u64, work: F) -> u64
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        let hash = self.hasher.hash_one(key);
        let mine = self.insert(hash, key);
        let work: Pin<Box<dyn Future<Output = u64> + Send>> = Box::pin(work(key));
        let value = work.await;
        self.remove(hash, key, mine);
        value
    }
}
