//! Seeded chaos: thousands of tasks hammer a `KeyedGroup` over a small key space on every
//! runtime, mixing joins, receivers, cancellations at random poll counts, timeouts, stalled
//! callers, panicking work, forgets and detached flights; afterwards the run is checked against
//! the contract: the semantics 1-9 of the core's crate docs, cited by number below.
//!
//! # Reproducing a failure
//!
//! Every run prints its seed. The seed fixes every decision the test makes (which operation, on
//! which key, how the work behaves, when a caller is dropped, how long a timeout is); it does not
//! fix how the runtime interleaves the tasks, so a failure that hinges on a rare interleaving may
//! need a few replays (or more operations) to show again:
//!
//! ```text
//! CHAOS_SEED=0x1234abcd CHAOS_OPS=200000 cargo test -p single-flight-tests --test chaos -- --nocapture
//! ```
//!
//! `CHAOS_OPS` is the number of operations per runtime (default [`DEFAULT_OPS`]); append a test
//! name (`tokio`, `smol`, `async_std`, `threads`) to replay one runtime.
//!
//! # Operations
//!
//! [`LANES`] lanes (tasks; OS threads for the plain-threads run) draw operations over [`KEYS`]
//! keys, coming back to their previous key half of the time: 3% `forget`; 10% bursts of 2 to 5
//! callers of one key joined in one task (some with timeouts, some dropped after a few polls);
//! the rest single callers, `call` (47%), `do_chan` (27%) or `do_chan_detached` with the
//! runtime's spawn (13%), each awaited (45%), dropped after 0 to 5 polls (17%), bounded by the
//! runtime's timer (18%), stalled (8%) or, for receivers, moved to a task of their own. The work
//! of a flight yields 0 to 15 times, waits for a timer (20%), panics (6%) and takes a while to
//! drop when abandoned (20%).
//!
//! # What is checked
//!
//! * **One execution at a time per key** (semantics 1, 2): every execution logs when its work was
//!   first polled and when its work future was dropped (a guard inside the work); two executions
//!   of a key whose logged intervals overlap are a failure, unless a successful `forget` of that
//!   key could have separated them (see [`World::check_overlaps`] for the exact rule: a forgotten
//!   flight legitimately runs on while a new one starts).
//! * **Every waiter that was not dropped gets its flight's outcome** (semantics 2, 4): the value
//!   carries its key and execution id; a caller checks the key, a caller that started the flight
//!   checks that it got its own execution, and no caller may get the outcome of an execution that
//!   some other caller had already received before this caller even started (a stale result).
//!   A panic must reach the caller as the original payload or as [`single_flight::Panicked`],
//!   with the work's message.
//! * **Progress does not hinge on one caller** (semantics 3): stalled callers are polled a few
//!   times and then kept alive, unpolled: at most one per key by the lane that made it, which
//!   often goes on to wait for the same flight (so a wakeup lost to the stalled caller hangs the
//!   run), the others by a holder thread that drops them within 2 ms.
//! * **Detached flights run to completion** (semantics 6): no detached work is dropped unfinished.
//! * **Bounded completion**: a watchdog thread ends the process with the seed if a run takes
//!   longer than [`WATCHDOG`], or if nothing at all happens in it for [`STALL`].
//! * **No leaks** (semantics 8): `in_flight() == 0`; every key, value and work future the run
//!   created has been dropped (exact live counts); every key still works afterwards; the group
//!   holds at most [`GROUP_RETAINED_BOUND`] bytes once its flights have ended; and live heap
//!   (counted by this binary's `#[global_allocator]`) is back to its baseline, within
//!   [`HEAP_SLACK`] bytes and [`HEAP_BLOCKS_SLACK`] blocks, once the run, its group and its
//!   runtime are gone. The baseline is taken after a warm-up run on the same runtime.

use std::any::Any;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{listener, Event};
use futures_lite::future::{poll_once, yield_now};
use futures_lite::FutureExt;
use single_flight::{KeyedGroup, Panicked};
use single_flight_tests::alloc::{live_heap, CountingAllocator};
use single_flight_tests::{quiet_expected_panics, Rt};

/// Operations per runtime unless `CHAOS_OPS` says otherwise: four runtimes make 2 * 10^5 per run.
const DEFAULT_OPS: usize = 50_000;
/// The key space: small, so that flights are shared, forgotten and restarted all the time.
const KEYS: u8 = 8;
/// Concurrent lanes (tasks, or OS threads for the plain-threads run) issuing operations.
const LANES: usize = 16;
/// The bound on one run: a hang detector, never a timing assertion.
const WATCHDOG: Duration = Duration::from_secs(60);
/// A run in which no caller, work or forget did anything for this long is hung.
const STALL: Duration = Duration::from_secs(15);
/// Every panic the work raises on purpose starts with this; it contains the harness's
/// `EXPECTED_PANIC`, so the harness's panic hook keeps them (thousands per run) off stderr.
const PANIC_TAG: &str = "expected test panic (chaos)";

// ---------------------------------------------------------------------------------------------
// Seeds and randomness.

/// `splitmix64`: a tiny, good-enough generator whose whole state is the seed.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`); the modulo bias is irrelevant here.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent / 100`.
    fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A derived, independent stream.
    fn fork(&mut self) -> Rng {
        Rng::new(self.next())
    }
}

fn parse_u64(text: &str) -> Option<u64> {
    let text = text.trim().replace('_', "");
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The run's seed: `CHAOS_SEED`, or a fresh one (the same for every runtime of this process).
fn seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| match std::env::var("CHAOS_SEED") {
        Ok(text) => parse_u64(&text)
            .unwrap_or_else(|| panic!("CHAOS_SEED must be a decimal or 0x-hex u64, got {text:?}")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            Rng::new(nanos ^ u64::from(std::process::id()).rotate_left(32)).next()
        }
    })
}

fn ops_per_runtime() -> usize {
    match std::env::var("CHAOS_OPS") {
        Ok(text) => parse_u64(&text)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("CHAOS_OPS must be a positive integer, got {text:?}")),
        Err(_) => DEFAULT_OPS,
    }
}

mod checks;
mod ops;
mod run;
mod spawner;
mod work;
mod world;

use crate::ops::*;
use crate::run::*;
use crate::spawner::*;
use crate::work::*;
use crate::world::*;

// ---------------------------------------------------------------------------------------------
// Live heap.

/// Counts the live heap of the process (see `run::run`).
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn tokio() {
    run(Rt::TokioMultiThread);
}

#[test]
fn smol() {
    run(Rt::Smol);
}

#[test]
fn async_std() {
    run(Rt::AsyncStd);
}

#[test]
fn threads() {
    run(Rt::Threads);
}

#[test]
fn provoked_panics_are_quiet() {
    assert!(PANIC_TAG.contains(single_flight_tests::EXPECTED_PANIC));
}
