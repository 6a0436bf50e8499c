//! Holding a herd's work until every caller has joined, without allocating per waiter.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;

use tokio::sync::Notify;

/// A one-way gate: closed until [`open`](Latch::open), then open for good. Waiting allocates
/// nothing (tokio's `Notify` keeps its waiters in an intrusive list).
#[derive(Debug, Default)]
pub struct Latch {
    open: AtomicBool,
    notify: Notify,
}

impl Latch {
    /// A closed latch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the latch is open.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Opens the latch and wakes every waiter.
    pub fn open(&self) {
        self.open.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Waits until the latch is open.
    pub async fn wait(&self) {
        loop {
            if self.is_open() {
                return;
            }
            let mut notified = pin!(self.notify.notified());
            // Registered before the second check: an `open` in between is not lost.
            notified.as_mut().enable();
            if self.is_open() {
                return;
            }
            notified.await;
        }
    }
}

/// A latch that opens once it has been [`tick`](Countdown::tick)ed `n` times.
#[derive(Debug)]
pub struct Countdown {
    left: AtomicUsize,
    latch: Latch,
}

impl Countdown {
    /// A countdown that opens after `n` ticks (at once if `n == 0`).
    pub fn new(n: usize) -> Self {
        let countdown = Self {
            left: AtomicUsize::new(n),
            latch: Latch::new(),
        };
        if n == 0 {
            countdown.latch.open();
        }
        countdown
    }

    /// Counts one event; the last one opens the latch.
    pub fn tick(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.latch.open();
        }
    }

    /// Ticks still missing.
    pub fn left(&self) -> usize {
        self.left.load(Ordering::Acquire)
    }

    /// Waits until every tick has been counted.
    pub async fn wait(&self) {
        self.latch.wait().await;
    }
}

/// Polls `fut` to completion, calling `arrived` right after its first poll.
///
/// Every implementation measured registers a caller with its flight in the first poll of its
/// call future (single-flight's `call`, `rs-singleflight`, `singleflight-async`, moka, the
/// hand-rolled maps), except `async_singleflight`, which first takes a `tokio::sync::Mutex`
/// and may need more polls when that lock is contended. So "every caller has arrived" means
/// "every caller's call has been polled once and is waiting".
pub async fn arrive<F: Future>(fut: F, arrived: impl FnOnce()) -> F::Output {
    let mut fut = pin!(fut);
    let mut arrived = Some(arrived);
    poll_fn(move |cx| {
        let poll = fut.as_mut().poll(cx);
        if let Some(arrived) = arrived.take() {
            arrived();
        }
        match poll {
            Poll::Ready(out) => Poll::Ready(out),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdown_opens_on_the_last_tick_and_arrive_reports_the_first_poll() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let countdown = Countdown::new(2);
            let arrived = AtomicUsize::new(0);
            let waiter = arrive(countdown.wait(), || {
                arrived.fetch_add(1, Ordering::SeqCst);
            });
            let ticks = async {
                countdown.tick();
                assert_eq!(countdown.left(), 1);
                tokio::task::yield_now().await;
                countdown.tick();
            };
            futures::future::join(waiter, ticks).await;
            assert_eq!(countdown.left(), 0);
            assert_eq!(arrived.load(Ordering::SeqCst), 1);
            assert!(Countdown::new(0).latch.is_open());
        });
    }
}
