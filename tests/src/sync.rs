//! Latches, counters and drop flags that tests wait on instead of sleeping, and polling helpers.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use event_listener::{listener, Event};

/// An async latch that opens once and stays open: work waits on it until the test has every
/// caller in place.
#[derive(Debug, Default)]
pub struct Gate {
    open: AtomicBool,
    event: Event,
}

impl Gate {
    /// A closed gate.
    pub const fn new() -> Self {
        Self {
            open: AtomicBool::new(false),
            event: Event::new(),
        }
    }

    /// A closed gate behind an `Arc`, to share with work futures.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::new())
    }

    /// Opens the gate and wakes everyone waiting on it.
    pub fn open(&self) {
        self.open.store(true, SeqCst);
        self.event.notify(usize::MAX);
    }

    /// Whether the gate has been opened.
    pub fn is_open(&self) -> bool {
        self.open.load(SeqCst)
    }

    /// Waits until the gate is open.
    pub async fn wait(&self) {
        loop {
            if self.is_open() {
                return;
            }
            listener!(self.event => listener);
            if self.is_open() {
                return;
            }
            listener.await;
        }
    }
}

/// An async count-up latch: callers [`arrive`](Latch::arrive), someone waits for `n` arrivals.
#[derive(Debug, Default)]
pub struct Latch {
    count: AtomicUsize,
    event: Event,
}

impl Latch {
    /// A latch with no arrival yet.
    pub const fn new() -> Self {
        Self {
            count: AtomicUsize::new(0),
            event: Event::new(),
        }
    }

    /// A latch behind an `Arc`.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::new())
    }

    /// Counts one arrival; returns the new count.
    pub fn arrive(&self) -> usize {
        let count = self.count.fetch_add(1, SeqCst) + 1;
        self.event.notify(usize::MAX);
        count
    }

    /// Arrivals so far.
    pub fn count(&self) -> usize {
        self.count.load(SeqCst)
    }

    /// Waits until at least `n` arrivals have been counted.
    pub async fn wait_for(&self, n: usize) {
        loop {
            if self.count() >= n {
                return;
            }
            listener!(self.event => listener);
            if self.count() >= n {
                return;
            }
            listener.await;
        }
    }
}

/// Polls `fut` once (for `call`, that registers the caller with its flight: it starts or joins
/// it), counts an arrival on `latch`, then awaits the rest of `fut`.
///
/// With work that waits for `latch` to reach N, this holds a flight until all N callers joined.
pub async fn arrive_then<F: Future>(latch: &Latch, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let first = futures_lite::future::poll_once(fut.as_mut()).await;
    latch.arrive();
    match first {
        Some(value) => value,
        None => fut.await,
    }
}

/// Counts executions (or any event) across threads.
#[derive(Debug, Default)]
pub struct Counter(AtomicUsize);

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self(AtomicUsize::new(0))
    }

    /// A counter at zero behind an `Arc`.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::new())
    }

    /// Counts one more; returns the new count.
    pub fn hit(&self) -> usize {
        self.0.fetch_add(1, SeqCst) + 1
    }

    /// The count.
    pub fn get(&self) -> usize {
        self.0.load(SeqCst)
    }
}

/// Records when the guards it hands out are dropped: capture a [`DropGuard`] in a work future to
/// observe when the flight drops the work.
#[derive(Clone, Debug, Default)]
pub struct DropFlag(Arc<DropState>);

#[derive(Debug, Default)]
struct DropState {
    drops: AtomicUsize,
    dropped: Gate,
}

impl DropFlag {
    /// A flag with no guard dropped yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A guard to move into the observed future.
    pub fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }

    /// Whether a guard has been dropped.
    pub fn is_dropped(&self) -> bool {
        self.drops() > 0
    }

    /// How many guards have been dropped.
    pub fn drops(&self) -> usize {
        self.0.drops.load(SeqCst)
    }

    /// Waits until a guard has been dropped.
    pub async fn wait(&self) {
        self.0.dropped.wait().await;
    }
}

/// Sets its [`DropFlag`] when dropped.
#[derive(Debug)]
pub struct DropGuard(Arc<DropState>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.drops.fetch_add(1, SeqCst);
        self.0.dropped.open();
    }
}
/// Polls `fut` once with a waker that does nothing: a future "kept alive but not polled" after
/// this is a waiter that will never be woken.
pub fn poll_noop<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Yields to the executor `n` times.
pub async fn yield_many(n: usize) {
    for _ in 0..n {
        futures_lite::future::yield_now().await;
    }
}
