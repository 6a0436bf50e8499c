//! The hashers measured side by side in the solo rows: std's SipHash-1-3, foldhash and ahash,
//! each in a `KeyedGroup` and in the safe floor, so that what the hash costs and what the rest
//! of a call costs can be told apart.

use std::hash::BuildHasher;

/// A hasher of a solo row: its label and a freshly seeded instance.
pub trait RowHasher: BuildHasher + Send + Sync + Sized + 'static {
    /// The hasher's name.
    const NAME: &'static str;

    /// The label of the `KeyedGroup::with_hasher` row on this hasher.
    const KEYED: &'static str;

    /// The label of the safe floor's row on this hasher.
    const FLOOR: &'static str;

    /// A new, randomly seeded instance (as a user's group would get it).
    fn seeded() -> Self;
}

/// std's `RandomState`: SipHash-1-3 keyed with 128 random bits drawn once per thread.
pub type SipHash = std::collections::hash_map::RandomState;

/// foldhash's fast hasher: a folded multiply, a random per-process seed mixed per instance.
pub type Foldhash = foldhash::fast::RandomState;

/// ahash (uniflight's hasher, through `DashMap`), seeded from the OS (its `runtime-rng` feature);
/// without AES instructions enabled at compile time it runs its folded-multiply fallback.
pub type Ahash = ahash::RandomState;

/// The hasher `KeyedGroup::new()` uses: the rows built on it are the default's.
pub type Default = SipHash;

// Fails to compile when the core's default hasher changes and this alias did not follow.
const _: fn(single_flight::KeyedGroup<u64, u64>) -> single_flight::KeyedGroup<u64, u64, Default> =
    |group| group;

impl RowHasher for SipHash {
    const NAME: &'static str = "SipHash-1-3";
    const KEYED: &'static str = "single-flight KeyedGroup::with_hasher(SipHash-1-3)";
    const FLOOR: &'static str = "safe floor (SipHash-1-3)";

    fn seeded() -> Self {
        Self::new()
    }
}

impl RowHasher for Foldhash {
    const NAME: &'static str = "foldhash";
    const KEYED: &'static str = "single-flight KeyedGroup::with_hasher(foldhash)";
    const FLOOR: &'static str = "safe floor (foldhash)";

    fn seeded() -> Self {
        <Self as std::default::Default>::default()
    }
}

impl RowHasher for Ahash {
    const NAME: &'static str = "ahash";
    const KEYED: &'static str = "single-flight KeyedGroup::with_hasher(ahash)";
    const FLOOR: &'static str = "safe floor (ahash)";

    fn seeded() -> Self {
        Self::new()
    }
}
