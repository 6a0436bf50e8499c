//! The implementations `compare` measures, behind one interface.
//!
//! Every implementation coalesces calls for a `u64` key whose work yields a `u64` (a cheap clone,
//! so the numbers show the machinery, not the value). The work is a closure that receives the
//! key, as single-flight's `call` takes it; implementations whose API takes a future get a future
//! that calls the closure when first polled, so that a caller that joins never runs it there
//! either.
//!
//! The rows themselves are in [`ours`] (this workspace's), [`crates`] (the published peers) and
//! [`hand_rolled`] (what a user writes, and the no-dedup floor); the safe floor is in
//! [`floor`](crate::floor).

use std::future::Future;
use std::time::Duration;

use crate::floor::SafeFloor;
use crate::hashers::{Ahash, Foldhash, RowHasher, SipHash};

pub mod crates;
pub mod hand_rolled;
pub mod ours;

pub use self::crates::*;
pub use self::hand_rolled::*;
pub use self::ours::*;

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
    use std::sync::Arc;

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
