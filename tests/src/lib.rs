//! Cross-runtime integration and acceptance tests for the single-flight workspace.
//!
//! The library part holds the helpers the test files share:
//!
//! * [`Rt`] and [`all_runtimes!`]: one async test body, one `#[test]` per supported runtime
//!   (tokio current-thread, tokio multi-thread with 2 workers, smol with a 2-thread executor,
//!   async-std, plain `futures_lite::future::block_on` on OS threads); [`test_on!`] for a
//!   selection of them; [`Rt::spawn`] and [`Rt::timeout`], each runtime's spawn and timer;
//! * [`LocalRt`] and [`local_runtimes!`]: the thread-local executors (a tokio `LocalSet`, smol's
//!   `LocalExecutor`) that the `!Send` groups of `single_flight::local` run their scenarios on;
//! * [`Gate`] (an async latch that opens once), [`Latch`] (an async count-up latch), [`Counter`]
//!   (executions), [`DropFlag`] (observes the drop of a work future);
//! * the hang bound ([`HANG_BOUND`], generous on purpose, never a timing assertion): every test
//!   body runs under [`within`], which fails the test with a message instead of hanging, and
//!   under a [`Watchdog`] thread, which ends the process naming the test when the executor
//!   cannot even run that timer (a blocked thread); [`run_bounded`] for a test that brings its
//!   own runtime;
//! * [`alloc::CountingAllocator`], the counting global allocator of the binaries that measure
//!   memory;
//! * [`GoShared`]: Go's `(value, shared)` pair from a future of an `Outcome`;
//! * panic helpers: [`provoke_panic`], [`panic_kind`], [`catch`], and a panic hook that keeps
//!   provoked panics ([`EXPECTED_PANIC`]) off stderr.
//!
//! No helper sleeps "to let things happen": tests wait on gates and latches.

pub mod alloc;
mod go;
mod local;
mod panics;
mod runtime;
mod sync;

pub use crate::go::*;
pub use crate::local::*;
pub use crate::panics::*;
pub use crate::runtime::*;
pub use crate::sync::*;

// The workspace README's Rust examples are compiled and run as doctests of this crate, so the
// README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct WorkspaceReadme;
