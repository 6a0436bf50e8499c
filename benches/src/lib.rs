//! Benchmarks of single-flight: the pieces shared by the `compare` binary, which measures the
//! core against its peers in one run, and the `profile` and `contention` binaries.
//!
//! * [`peers`]: one [`Coalescer`](peers::Coalescer) per implementation measured — this
//!   workspace's `KeyedGroup` (on each hasher) and `Group`, the crates `uniflight`,
//!   `async_singleflight`, `singleflight-async`, `rs-singleflight`, moka's
//!   `future::Cache::get_with` used as a coalescer, the two hand-rolled maps a user would write
//!   (`tokio::sync::OnceCell`, `futures::future::Shared`), the floor that runs the work without
//!   deduplication, and the safe floor of a solo call.
//! * [`hashers`]: the hashers the solo rows compare (SipHash-1-3, foldhash, ahash).
//! * [`floor`]: the minimal safe registry that solo calls are measured against.
//! * [`gate`]: the latch that holds a herd's work until every caller has joined.
//! * [`alloc`]: a global allocator that counts heap allocations while switched on.
//! * [`chart`]: the SVG charts written beside the results.
//! * [`markdown`]: the generated blocks of `BENCHMARKS.md`.
//! * [`machine`]: the machine a run measured on.
//!
//! Binaries: `compare` (run it with `cargo xtask bench`, or `cargo xtask bench --quick`; with
//! Go installed it adds the rows of `benches/go/singleflight.go`, Go's x/sync),
//! `profile`, one implementation's solo or herd path without a runtime, for callgrind
//! (`python3 benches/callgrind.py solo keyed`), `http` (`cargo xtask bench http`), `redis` and
//! `contention` (`cargo xtask bench contention`). See `BENCHMARKS.md` at the root of the
//! repository for the numbers and the commands that reproduce them.

pub mod alloc;
pub mod chart;
pub mod floor;
pub mod gate;
pub mod hashers;
pub mod machine;
pub mod markdown;
pub mod peers;
