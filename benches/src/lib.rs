//! Benchmarks of single-flight: the shared pieces of the criterion benches (`benches/core.rs`)
//! and of the `compare` binary, which measures the core against its peers in one run.
//!
//! * [`peers`]: one [`Coalescer`](peers::Coalescer) per implementation measured — this
//!   workspace's `KeyedGroup` and `Group`, the crates `async_singleflight`, `singleflight-async`,
//!   `rs-singleflight`, moka's `future::Cache::get_with` used as a coalescer, the two
//!   hand-rolled maps a user would write (`tokio::sync::OnceCell`, `futures::future::Shared`),
//!   the floor that runs the work without deduplication, and the safe floor of a solo call.
//! * [`floor`]: the minimal safe registry that solo calls are measured against.
//! * [`gate`]: the latch that holds a herd's work until every caller has joined.
//! * [`alloc`]: a global allocator that counts heap allocations while switched on.
//!
//! Binaries: `compare` (run it with `cargo xtask bench`, or `cargo xtask bench --quick`) and
//! `profile`, one implementation's solo or herd path without a runtime, for callgrind
//! (`python3 benches/callgrind.py solo keyed`). See `BENCHMARKS.md` at the root of the repository
//! for the method, the latest numbers and where the core spends its time.

pub mod alloc;
pub mod chart;
pub mod floor;
pub mod gate;
pub mod hashers;
pub mod peers;
