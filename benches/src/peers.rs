//! The implementations `compare` measures, behind one interface.
//!
//! Every implementation coalesces calls for a `u64` key whose work yields a `u64` (a cheap clone,
//! so the numbers show the machinery, not the value). The work is a closure that receives the
//! key, as single-flight's `call` takes it; implementations whose API takes a future get a future
//! that calls the closure when first polled, so that a caller that joins never runs it there
//! either.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use single_flight::{Group, KeyedGroup};
use single_flight_tokio::{GroupExt, KeyedGroupExt};

use crate::floor::SafeFloor;
use crate::hashers::{Ahash, Foldhash, RowHasher, SipHash};

/// A way to share the execution of work between concurrent callers of the same key.
pub trait Coalescer: Send + Sync + 'static {
    /// The row label in the tables.
    const NAME: &'static str;

    /// Whether it deduplicates at all (`false` for the two floors only).
    const DEDUPLICATES: bool = true;

    /// Whether callers of different keys are kept apart (`false` for `Group`, which has one
    /// implied key: it is only measured where all callers use one key at a time).
    const KEYED: bool = true;

    /// An empty instance.
    fn new() -> Self;

    /// Runs `work(key)`, or joins the execution running for `key`, and returns its value.
    fn call<F, Fut>(&self, key: u64, work: F) -> impl Future<Output = u64> + Send + '_
    where
        F: FnOnce(u64) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send + 'static;

    /// [`call`](Self::call) bounded by `timeout` (`None` when it elapsed): a
    /// `tokio::time::timeout` around `call` unless the implementation has its own.
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
        let call = self.call(key, work);
        async move { tokio::time::timeout(timeout, call).await.ok() }
    }
}

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

/// A hasher of the solo rows (see [`hashers`](crate::hashers)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hasher {
    /// [`SipHash`].
    SipHash,
    /// [`Foldhash`].
    Foldhash,
    /// [`Ahash`].
    Ahash,
}

impl Hasher {
    /// Every hasher measured.
    pub const ALL: [Hasher; 3] = [Hasher::SipHash, Hasher::Foldhash, Hasher::Ahash];

    /// `KeyedGroup::new()`'s, that is [`hashers::Default`](crate::hashers::Default)'s.
    pub const DEFAULT: Hasher = Hasher::SipHash;

    /// A short name for command lines.
    pub fn short(self) -> &'static str {
        match self {
            Hasher::SipHash => "siphash",
            Hasher::Foldhash => "foldhash",
            Hasher::Ahash => "ahash",
        }
    }

    /// Runs `visit` with the hasher's type.
    pub fn visit<V: VisitHasher>(self, visit: V) -> V::Output {
        match self {
            Hasher::SipHash => visit.visit::<SipHash>(),
            Hasher::Foldhash => visit.visit::<Foldhash>(),
            Hasher::Ahash => visit.visit::<Ahash>(),
        }
    }
}

/// A computation generic over the hasher, for [`Hasher::visit`].
pub trait VisitHasher {
    /// What it computes.
    type Output;
    /// Computes it with the hasher `S`.
    fn visit<S: RowHasher>(self) -> Self::Output;
}

/// The implementations measured, as a value to iterate over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// [`SingleFlightKeyed`].
    SingleFlightKeyed,
    /// [`SingleFlightKeyedWith`] the hasher: solo scenarios only.
    KeyedWith(Hasher),
    /// [`SingleFlightGroup`].
    SingleFlightGroup,
    /// [`Uniflight`].
    Uniflight,
    /// [`AsyncSingleflight`].
    AsyncSingleflight,
    /// [`SingleflightAsync`].
    SingleflightAsync,
    /// [`RsSingleflight`].
    RsSingleflight,
    /// [`MokaGetWith`].
    Moka,
    /// [`OnceCellMap`].
    OnceCellMap,
    /// [`SharedMap`].
    SharedMap,
    /// [`NoDedup`].
    NoDedup,
    /// The [`SafeFloor`] on the hasher: solo scenarios only.
    Floor(Hasher),
}

impl Impl {
    /// Every implementation, ours first and the floors last.
    pub const ALL: [Impl; 16] = [
        Impl::SingleFlightKeyed,
        Impl::KeyedWith(Hasher::SipHash),
        Impl::KeyedWith(Hasher::Foldhash),
        Impl::KeyedWith(Hasher::Ahash),
        Impl::SingleFlightGroup,
        Impl::Uniflight,
        Impl::AsyncSingleflight,
        Impl::SingleflightAsync,
        Impl::RsSingleflight,
        Impl::Moka,
        Impl::OnceCellMap,
        Impl::SharedMap,
        Impl::NoDedup,
        Impl::Floor(Hasher::SipHash),
        Impl::Floor(Hasher::Foldhash),
        Impl::Floor(Hasher::Ahash),
    ];

    /// The safe floor on `KeyedGroup::new()`'s hasher: the solo targets' reference.
    pub const FLOOR: Impl = Impl::Floor(Hasher::DEFAULT);

    /// Runs `visit` with the implementation's type.
    pub fn visit<V: Visit>(self, visit: V) -> V::Output {
        struct Keyed<V>(V);
        impl<V: Visit> VisitHasher for Keyed<V> {
            type Output = V::Output;
            fn visit<S: RowHasher>(self) -> V::Output {
                self.0.visit::<SingleFlightKeyedWith<S>>()
            }
        }
        struct Floor<V>(V);
        impl<V: Visit> VisitHasher for Floor<V> {
            type Output = V::Output;
            fn visit<S: RowHasher>(self) -> V::Output {
                self.0.visit::<SafeFloor<u64, S>>()
            }
        }
        match self {
            Impl::SingleFlightKeyed => visit.visit::<SingleFlightKeyed>(),
            Impl::KeyedWith(hasher) => hasher.visit(Keyed(visit)),
            Impl::SingleFlightGroup => visit.visit::<SingleFlightGroup>(),
            Impl::Uniflight => visit.visit::<Uniflight>(),
            Impl::AsyncSingleflight => visit.visit::<AsyncSingleflight>(),
            Impl::SingleflightAsync => visit.visit::<SingleflightAsync>(),
            Impl::RsSingleflight => visit.visit::<RsSingleflight>(),
            Impl::Moka => visit.visit::<MokaGetWith>(),
            Impl::OnceCellMap => visit.visit::<OnceCellMap>(),
            Impl::SharedMap => visit.visit::<SharedMap>(),
            Impl::NoDedup => visit.visit::<NoDedup>(),
            Impl::Floor(hasher) => hasher.visit(Floor(visit)),
        }
    }

    /// A short name for command lines (`keyed`, `keyed-foldhash`, `floor-siphash`, `moka`, ...).
    pub fn short(self) -> String {
        match self {
            Impl::SingleFlightKeyed => "keyed".into(),
            Impl::KeyedWith(hasher) => format!("keyed-{}", hasher.short()),
            Impl::SingleFlightGroup => "group".into(),
            Impl::Uniflight => "uniflight".into(),
            Impl::AsyncSingleflight => "async_singleflight".into(),
            Impl::SingleflightAsync => "singleflight-async".into(),
            Impl::RsSingleflight => "rs-singleflight".into(),
            Impl::Moka => "moka".into(),
            Impl::OnceCellMap => "oncecell".into(),
            Impl::SharedMap => "shared".into(),
            Impl::NoDedup => "nodedup".into(),
            Impl::Floor(hasher) => format!("floor-{}", hasher.short()),
        }
    }

    /// The implementation of a [`short`](Self::short) name; `floor` is [`Impl::FLOOR`].
    pub fn from_short(name: &str) -> Option<Impl> {
        if name == "floor" {
            return Some(Impl::FLOOR);
        }
        Impl::ALL.into_iter().find(|imp| imp.short() == name)
    }

    /// The short names, for usage messages.
    pub fn shorts() -> String {
        let mut names: Vec<String> = Impl::ALL.into_iter().map(Impl::short).collect();
        names.dedup();
        names.join(", ")
    }

    /// The row label.
    pub fn name(self) -> &'static str {
        struct Name;
        impl Visit for Name {
            type Output = &'static str;
            fn visit<C: Coalescer>(self) -> &'static str {
                C::NAME
            }
        }
        self.visit(Name)
    }

    /// Whether it keeps keys apart (see [`Coalescer::KEYED`]).
    pub fn keyed(self) -> bool {
        struct Keyed;
        impl Visit for Keyed {
            type Output = bool;
            fn visit<C: Coalescer>(self) -> bool {
                C::KEYED
            }
        }
        self.visit(Keyed)
    }

    /// Whether it deduplicates (see [`Coalescer::DEDUPLICATES`]).
    pub fn deduplicates(self) -> bool {
        struct Dedup;
        impl Visit for Dedup {
            type Output = bool;
            fn visit<C: Coalescer>(self) -> bool {
                C::DEDUPLICATES
            }
        }
        self.visit(Dedup)
    }

    /// Whether it is this workspace's (`KeyedGroup` or `Group`).
    pub fn ours(self) -> bool {
        matches!(
            self,
            Impl::SingleFlightKeyed | Impl::KeyedWith(_) | Impl::SingleFlightGroup
        )
    }

    /// Whether only its solo figures mean anything: the safe floors (they share nothing, and
    /// herd and spread have the no-dedup floor) and the hasher rows (the hash is a solo cost;
    /// the default's row stands for them elsewhere).
    pub fn solo_only(self) -> bool {
        matches!(self, Impl::Floor(_) | Impl::KeyedWith(_))
    }

    /// Whether it is a published crate (not ours, not hand-rolled, not a floor).
    pub fn crate_peer(self) -> bool {
        matches!(
            self,
            Impl::Uniflight
                | Impl::AsyncSingleflight
                | Impl::SingleflightAsync
                | Impl::RsSingleflight
                | Impl::Moka
        )
    }
}

/// A computation generic over the implementation, for [`Impl::visit`].
pub trait Visit {
    /// What it computes.
    type Output;
    /// Computes it with the implementation `C`.
    fn visit<C: Coalescer>(self) -> Self::Output;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::gate::{arrive, Countdown};

    struct Herd;

    impl Visit for Herd {
        type Output = (usize, usize);

        /// Eight concurrent callers of one key whose work waits until all have arrived, then one
        /// more call after the flight: (executions of the herd, executions of the later call).
        fn visit<C: Coalescer>(self) -> (usize, usize) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                let group = C::new();
                let executions = Arc::new(AtomicUsize::new(0));
                let release = Arc::new(Countdown::new(8));
                let calls = (0..8).map(|_| {
                    let (executions, gate) = (executions.clone(), release.clone());
                    let call = group.call(7, move |key| async move {
                        executions.fetch_add(1, Ordering::SeqCst);
                        gate.wait().await;
                        key * 2
                    });
                    arrive(call, || release.tick())
                });
                let values = futures::future::join_all(calls).await;
                assert_eq!(values, vec![14; 8], "{}", C::NAME);
                let herd = executions.swap(0, Ordering::SeqCst);
                let executions_later = executions.clone();
                let later = group
                    .call(7, move |key| async move {
                        executions_later.fetch_add(1, Ordering::SeqCst);
                        key * 3
                    })
                    .await;
                assert_eq!(later, 21, "{} must not cache", C::NAME);
                (herd, executions.load(Ordering::SeqCst))
            })
        }
    }

    #[test]
    fn every_implementation_shares_one_execution_and_caches_nothing() {
        for imp in Impl::ALL {
            if imp.solo_only() && imp.deduplicates() {
                continue; // a hasher row: the same group as `keyed`
            }
            let (herd, later) = imp.visit(Herd);
            let expected = if imp.deduplicates() { 1 } else { 8 };
            assert_eq!(herd, expected, "executions of {}", imp.name());
            assert_eq!(later, 1, "executions after the flight of {}", imp.name());
        }
    }

    #[test]
    fn short_names_round_trip() {
        for imp in Impl::ALL {
            assert_eq!(Impl::from_short(&imp.short()), Some(imp));
        }
    }

    #[test]
    fn the_default_hasher_is_the_one_new_uses() {
        assert_eq!(
            std::any::type_name::<crate::hashers::Default>(),
            Hasher::DEFAULT.visit(TypeName)
        );
        struct TypeName;
        impl VisitHasher for TypeName {
            type Output = &'static str;
            fn visit<S: RowHasher>(self) -> &'static str {
                std::any::type_name::<S>()
            }
        }
    }
}
