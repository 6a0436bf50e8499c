//! The published call-sharing crates, and moka used as a coalescer.

use std::convert::Infallible;
use std::future::Future;

use super::Coalescer;

/// `uniflight::Merger<u64, u64>` (`DashMap` of weak `async-once-cell` cells, ahash).
///
/// Its `execute` runs the caller's closure and boxes the future it returns for every caller, the
/// joiners included (only the cell's initializer polls it), and it finds or inserts the cell when
/// called, not when polled: the call is wrapped so that it registers on first poll, as the others.
pub struct Uniflight(uniflight::Merger<u64, u64>);

impl std::fmt::Debug for Uniflight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(Self::NAME)
    }
}

impl Coalescer for Uniflight {
    const NAME: &'static str = "uniflight 0.8.0";

    fn new() -> Self {
        Self(uniflight::Merger::new())
    }

    async fn call<F, Fut>(&self, key: u64, work: F) -> u64
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        match self.0.execute(&key, move || work(key)).await {
            Ok(value) => value,
            Err(panicked) => panic!("{panicked}"),
        }
    }
}

/// `async_singleflight::UnaryGroup<u64, u64>` (its `Group` only differs by wrapping `Result`s).
pub struct AsyncSingleflight(async_singleflight::UnaryGroup<u64, u64>);

impl std::fmt::Debug for AsyncSingleflight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(Self::NAME)
    }
}

impl Coalescer for AsyncSingleflight {
    const NAME: &'static str = "async_singleflight 0.6.2";

    fn new() -> Self {
        Self(async_singleflight::UnaryGroup::new())
    }

    async fn call<F, Fut>(&self, key: u64, work: F) -> u64
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        self.0.work(&key, async move { work(key).await }).await
    }
}

/// `singleflight_async::SingleFlight<u64, u64>`.
#[derive(Debug)]
pub struct SingleflightAsync(singleflight_async::SingleFlight<u64, u64>);

impl Coalescer for SingleflightAsync {
    const NAME: &'static str = "singleflight-async 0.2.0";

    fn new() -> Self {
        Self(singleflight_async::SingleFlight::new())
    }

    async fn call<F, Fut>(&self, key: u64, work: F) -> u64
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        // `SingleFlight::work` registers when called, not when polled: here that is the first
        // poll of this `call`, as for the others.
        self.0.work(key, move || work(key)).await
    }
}

/// `rs_singleflight::Group<u64, u64, Infallible>::do_call`.
pub struct RsSingleflight(rs_singleflight::Group<u64, u64, Infallible>);

impl std::fmt::Debug for RsSingleflight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(Self::NAME)
    }
}

impl Coalescer for RsSingleflight {
    const NAME: &'static str = "rs-singleflight 0.2.0";

    fn new() -> Self {
        Self(rs_singleflight::Group::new())
    }

    async fn call<F, Fut>(&self, key: u64, work: F) -> u64
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        let result = self
            .0
            .do_call(key, move || async move {
                Ok::<u64, Infallible>(work(key).await)
            })
            .await;
        match result {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }
}

/// moka's `future::Cache::get_with` used as a coalescer: the caller whose `init` ran
/// invalidates the entry as soon as `get_with` returns, so nothing stays cached.
///
/// Between the insertion and that invalidation (one await) a new caller still gets the old
/// value: the closest a cache comes to "no caching". A `time_to_live` of zero is not used: moka
/// keeps expired entries in its map until its housekeeping runs, so a stream of distinct keys
/// grows the map, and a reader can still be handed a value from the entry it inserted.
#[derive(Debug)]
pub struct MokaGetWith(moka::future::Cache<u64, u64>);

impl Coalescer for MokaGetWith {
    const NAME: &'static str = "moka 0.12 get_with + invalidate";

    fn new() -> Self {
        Self(moka::future::Cache::builder().build())
    }

    async fn call<F, Fut>(&self, key: u64, work: F) -> u64
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        let mut ran = false;
        let value = self
            .0
            .get_with(key, async {
                ran = true;
                work(key).await
            })
            .await;
        if ran {
            self.0.invalidate(&key).await;
        }
        value
    }
}
