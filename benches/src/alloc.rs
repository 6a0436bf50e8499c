//! A global allocator that counts heap allocations, only while counting is switched on.
//!
//! The counter is one relaxed atomic behind a relaxed flag, so with counting off the allocator
//! costs a load and a branch over the system allocator. `compare` times its scenarios with
//! counting off and counts in separate, untimed passes, so that the counting never slows the
//! implementations that allocate more.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counting `alloc`, `alloc_zeroed` and `realloc` calls while
/// [`count`] runs. Install it in a binary with
/// `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

impl CountingAlloc {
    #[inline]
    fn note(&self) {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counting
// touches only two atomics and never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through it) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note();
        // SAFETY: as for `dealloc`; the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Resets the count to zero and switches counting on (process-wide: on every thread).
pub fn start() {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
}

/// Switches counting off and returns the allocations counted since [`start`].
pub fn stop() -> u64 {
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}

/// Runs `f` with counting switched on and returns its output and the number of allocations
/// made meanwhile, on any thread (counting is process-wide: run nothing else meanwhile).
///
/// Only meaningful in a binary that installs [`CountingAlloc`] as its global allocator;
/// elsewhere the count is always zero.
pub fn count<T>(f: impl FnOnce() -> T) -> (T, u64) {
    start();
    let out = f();
    (out, stop())
}

/// Whether allocations are being counted by an installed [`CountingAlloc`]: `count` of a
/// `Box::new` is one.
pub fn installed() -> bool {
    let ((), n) = count(|| drop(std::hint::black_box(Box::new(1u64))));
    n == 1
}
