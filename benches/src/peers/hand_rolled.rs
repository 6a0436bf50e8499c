//! What a user writes by hand (a map of `OnceCell`s, a map of `Shared` futures), and the floor
//! that shares nothing.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::{BoxFuture, FutureExt, Shared};

use super::Coalescer;
use crate::floor::SafeFloor;
use crate::hashers::RowHasher;

/// The first thing a user writes: a map of `Arc<tokio::sync::OnceCell<u64>>`, the entry removed
/// by the caller whose initializer ran, once it has the value.
#[derive(Debug, Default)]
pub struct OnceCellMap(Mutex<HashMap<u64, Arc<tokio::sync::OnceCell<u64>>>>);

impl OnceCellMap {
    fn map(&self) -> MutexGuard<'_, HashMap<u64, Arc<tokio::sync::OnceCell<u64>>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Coalescer for OnceCellMap {
    const NAME: &'static str = "hand-rolled Mutex<HashMap<_, Arc<OnceCell>>>";

    fn new() -> Self {
        Self::default()
    }

    async fn call<F, Fut>(&self, key: u64, work: F) -> u64
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        let cell = self.map().entry(key).or_default().clone();
        let mut ran = false;
        let value = *cell
            .get_or_init(|| {
                ran = true;
                work(key)
            })
            .await;
        if ran {
            let mut map = self.map();
            if map.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                map.remove(&key);
            }
        }
        value
    }
}

type SharedWork = Shared<BoxFuture<'static, u64>>;

/// The other thing a user writes: a map of `futures::future::Shared` boxed futures; every
/// caller removes the entry once it has the value, if it is still the one it awaited.
#[derive(Debug, Default)]
pub struct SharedMap(Mutex<HashMap<u64, SharedWork>>);

impl SharedMap {
    fn map(&self) -> MutexGuard<'_, HashMap<u64, SharedWork>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Coalescer for SharedMap {
    const NAME: &'static str = "hand-rolled Mutex<HashMap<_, Shared>>";

    fn new() -> Self {
        Self::default()
    }

    async fn call<F, Fut>(&self, key: u64, work: F) -> u64
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        let shared = self
            .map()
            .entry(key)
            .or_insert_with(|| work(key).boxed().shared())
            .clone();
        // Await a clone: `Shared::ptr_eq` is false for a handle that has completed.
        let value = shared.clone().await;
        let mut map = self.map();
        if map.get(&key).is_some_and(|s| s.ptr_eq(&shared)) {
            map.remove(&key);
        }
        value
    }
}

/// The floor: every caller runs its own work.
#[derive(Debug, Default)]
pub struct NoDedup;

impl Coalescer for NoDedup {
    const NAME: &'static str = "no dedup (floor)";
    const DEDUPLICATES: bool = false;

    fn new() -> Self {
        Self
    }

    fn call<F, Fut>(&self, key: u64, work: F) -> impl Future<Output = u64> + Send + '_
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        work(key)
    }
}

// The safe floor's row: the floor itself (`floor.rs`) knows nothing of the rows measured
// against it.
impl<S: RowHasher> Coalescer for SafeFloor<u64, S> {
    const NAME: &'static str = S::FLOOR;
    const DEDUPLICATES: bool = false;

    fn new() -> Self {
        SafeFloor::new()
    }

    fn call<F, Fut>(&self, key: u64, work: F) -> impl Future<Output = u64> + Send + '_
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        self.call_key(key, work)
    }
}
