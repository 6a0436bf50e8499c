//! This workspace's rows: `KeyedGroup` (made by `new()`, and on each hasher) and `Group`.

use std::future::Future;
use std::time::Duration;

use single_flight::{Group, KeyedGroup};
use single_flight_tokio::{GroupExt, KeyedGroupExt};

use super::Coalescer;
use crate::hashers::RowHasher;

/// `single_flight::KeyedGroup<u64, u64>` made by `KeyedGroup::new()` (timeouts:
/// `single_flight_tokio::KeyedGroupExt::call_timeout`).
#[derive(Debug)]
pub struct SingleFlightKeyed(KeyedGroup<u64, u64>);

/// `KeyedGroup<u64, u64, S>` made by `KeyedGroup::with_hasher`: one solo row per hasher `S`.
#[derive(Debug)]
pub struct SingleFlightKeyedWith<S: RowHasher>(KeyedGroup<u64, u64, S>);

/// `call` of both `KeyedGroup` rows.
fn keyed_call<S, F, Fut>(
    group: &KeyedGroup<u64, u64, S>,
    key: u64,
    work: F,
) -> impl Future<Output = u64> + Send + '_
where
    S: std::hash::BuildHasher + Send + Sync,
    F: FnOnce(u64) -> Fut + Send + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    group.call(key, work)
}

/// `call_timeout` of both `KeyedGroup` rows.
fn keyed_call_timeout<S, F, Fut>(
    group: &KeyedGroup<u64, u64, S>,
    key: u64,
    timeout: Duration,
    work: F,
) -> impl Future<Output = Option<u64>> + Send + '_
where
    S: std::hash::BuildHasher + Send + Sync,
    F: FnOnce(u64) -> Fut + Send + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    let call = group.call_timeout(key, timeout, work);
    async move { call.await.ok() }
}

impl Coalescer for SingleFlightKeyed {
    const NAME: &'static str = "single-flight KeyedGroup";

    fn new() -> Self {
        Self(KeyedGroup::new())
    }

    fn call<F, Fut>(&self, key: u64, work: F) -> impl Future<Output = u64> + Send + '_
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        keyed_call(&self.0, key, work)
    }

    fn call_timeout<F, Fut>(
        &self,
        key: u64,
        timeout: Duration,
        work: F,
    ) -> impl Future<Output = Option<u64>> + Send + '_
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        keyed_call_timeout(&self.0, key, timeout, work)
    }
}

impl<S: RowHasher> Coalescer for SingleFlightKeyedWith<S> {
    const NAME: &'static str = S::KEYED;

    fn new() -> Self {
        Self(KeyedGroup::with_hasher(S::seeded()))
    }

    fn call<F, Fut>(&self, key: u64, work: F) -> impl Future<Output = u64> + Send + '_
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        keyed_call(&self.0, key, work)
    }

    fn call_timeout<F, Fut>(
        &self,
        key: u64,
        timeout: Duration,
        work: F,
    ) -> impl Future<Output = Option<u64>> + Send + '_
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        keyed_call_timeout(&self.0, key, timeout, work)
    }
}

/// `single_flight::Group<u64>`: one implied key, so the key only reaches the work.
#[derive(Debug, Default)]
pub struct SingleFlightGroup(Group<u64>);

impl Coalescer for SingleFlightGroup {
    const NAME: &'static str = "single-flight Group";
    const KEYED: bool = false;

    fn new() -> Self {
        Self(Group::new())
    }

    fn call<F, Fut>(&self, key: u64, work: F) -> impl Future<Output = u64> + Send + '_
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        self.0.call(move || work(key))
    }

    fn call_timeout<F, Fut>(
        &self,
        key: u64,
        timeout: Duration,
        work: F,
    ) -> impl Future<Output = Option<u64>> + Send + '_
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        let call = self.0.call_timeout(timeout, move || work(key));
        async move { call.await.ok() }
    }
}
