//! Cancellation (semantics 1, 2 and 8 of the core's crate docs): dropping callers never strands the others and
//! never restarts the work; the last waiter leaving drops the work at once and frees the key; a
//! flight started meanwhile does not poll its work before the abandoned work has been dropped.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};

use futures_lite::future::{poll_once, yield_now};
use futures_lite::FutureExt;
use single_flight::{Detached, KeyedGroup};
use single_flight_tests::*;

// A `call` future that was never polled has not registered: nothing is in flight.
all_runtimes!(unpolled_call_registers_nothing, |_rt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let runs = Counter::new();
    let call = g.call("key", |_| {
        runs.hit();
        async { 1 }
    });
    assert_eq!(g.in_flight(), 0);
    drop(call);
    assert_eq!(runs.get(), 0);
    assert_eq!(g.in_flight(), 0);
});

// The caller driving the work is dropped again and again while others wait: each time another
// waiter continues the SAME work (its progress never goes back), the last survivor gets the
// value, and the work ran once. Driven by hand, so that the dropped caller is the driver.
all_runtimes!(driver_dropped_repeatedly_by_hand, |_rt| async move {
    const CALLERS: usize = 5;
    const STEPS: usize = 100;
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let runs = Counter::shared();
    let progress = Counter::shared();
    let dropped = DropFlag::new();
    let work = {
        let (runs, progress, guard) = (runs.clone(), progress.clone(), dropped.guard());
        move |_| {
            runs.hit();
            async move {
                let _guard = guard;
                for _ in 0..STEPS {
                    progress.hit();
                    yield_now().await; // wakes the flight's waker at once
                }
                42
            }
        }
    };
    type Caller<'a> = Pin<Box<dyn Future<Output = u32> + 'a>>;
    let mut callers: VecDeque<Caller<'_>> = VecDeque::new();
    callers.push_back(Box::pin(g.call("key", work)));
    for _ in 1..CALLERS {
        callers.push_back(Box::pin(g.call("key", |_| async { unreachable!("joins") })));
    }
    for caller in callers.iter_mut() {
        assert!(poll_noop(caller.as_mut()).is_pending());
    }
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 1);

    for _ in 0..CALLERS - 1 {
        let mut driver = callers.pop_front().expect("a caller is left");
        let before = progress.get();
        for _ in 0..3 {
            assert!(poll_noop(driver.as_mut()).is_pending());
        }
        assert!(
            progress.get() > before,
            "the front caller drives the work when its turn comes"
        );
        drop(driver); // the driver leaves mid-flight
        assert!(!dropped.is_dropped(), "the others keep the work alive");
        assert_eq!(g.in_flight(), 1);
    }
    assert!(progress.get() < STEPS, "the work is still running");
    let survivor = callers.pop_front().expect("one caller is left");
    assert_eq!(survivor.await, 42);
    assert_eq!(runs.get(), 1);
    assert_eq!(
        progress.get(),
        STEPS,
        "the work was continued, never restarted"
    );
    assert_eq!(dropped.drops(), 1);
    assert_eq!(g.in_flight(), 0);
});

// The same on real tasks: the work itself cancels the callers one after another (each one gives
// up its `call` in a select-like `or`) and waits until that caller has left before going on.
all_runtimes!(callers_cancelled_one_by_one_on_tasks, |rt| async move {
    const CALLERS: usize = 4;
    let g: Arc<KeyedGroup<&str, u32>> = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    let joined = Latch::shared();
    let left = Latch::shared();
    let cancels: Arc<Vec<Gate>> = Arc::new((0..CALLERS).map(|_| Gate::new()).collect());
    let dropped = DropFlag::new();
    // Every caller brings the same work; whichever is polled first starts the flight.
    let make_work = || {
        let (runs, joined, left, cancels, dropped) = (
            runs.clone(),
            joined.clone(),
            left.clone(),
            cancels.clone(),
            dropped.clone(),
        );
        move |_| {
            runs.hit();
            let guard = dropped.guard();
            async move {
                let _guard = guard;
                joined.wait_for(CALLERS).await;
                for (i, cancel) in cancels.iter().take(CALLERS - 1).enumerate() {
                    yield_many(10).await;
                    cancel.open();
                    left.wait_for(i + 1).await;
                }
                yield_many(10).await;
                42
            }
        }
    };
    let handles: Vec<_> = (0..CALLERS)
        .map(|i| {
            let (g, joined, left, cancels, work) = (
                g.clone(),
                joined.clone(),
                left.clone(),
                cancels.clone(),
                make_work(),
            );
            rt.spawn(async move {
                let call = async { Some(g.call("key", work).await) };
                let cancelled = async {
                    cancels[i].wait().await;
                    None
                };
                let out = arrive_then(&joined, call.or(cancelled)).await;
                if out.is_none() {
                    left.arrive();
                }
                out
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for h in handles {
        outcomes.push(h.value().await);
    }
    let mut expected = vec![None; CALLERS - 1];
    expected.push(Some(42));
    assert_eq!(outcomes, expected);
    assert_eq!(runs.get(), 1);
    assert_eq!(dropped.drops(), 1);
    assert_eq!(g.in_flight(), 0);
});

// The last waiter leaving drops the work future at once and frees the key; the next call starts
// a fresh flight.
all_runtimes!(last_waiter_dropped_drops_work, |_rt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let runs = Counter::new();
    let gate = Gate::shared(); // never opened
    let dropped = DropFlag::new();
    let mut call = Box::pin(g.call("key", |_| {
        runs.hit();
        let (gate, guard) = (gate.clone(), dropped.guard());
        async move {
            let _guard = guard;
            gate.wait().await;
            1
        }
    }));
    assert!(poll_noop(call.as_mut()).is_pending());
    assert_eq!(g.in_flight(), 1);
    assert!(!dropped.is_dropped());
    drop(call);
    assert!(
        dropped.is_dropped(),
        "the work is dropped with its last waiter"
    );
    assert_eq!(g.in_flight(), 0);

    let v = g
        .call("key", |_| {
            runs.hit();
            async { 2 }
        })
        .await;
    assert_eq!(v, 2, "a fresh flight, not the abandoned one");
    assert_eq!(runs.get(), 2);
    assert_eq!(g.in_flight(), 0);
});

// With several waiters (a driving call, a listening call, an unpolled receiver), the work is
// dropped only when the last of them leaves, whatever the order.
all_runtimes!(work_dropped_only_with_the_last_waiter, |_rt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let gate = Gate::shared(); // never opened
    let (dropped, runs) = (DropFlag::new(), Counter::new());
    let work = |_| {
        runs.hit();
        let (gate, guard) = (gate.clone(), dropped.guard());
        async move {
            let _guard = guard;
            gate.wait().await;
            1
        }
    };
    let mut driver = Box::pin(g.call("key", work));
    assert!(poll_noop(driver.as_mut()).is_pending());
    let mut follower = Box::pin(g.call("key", |_| async { unreachable!("joins") }));
    assert!(poll_noop(follower.as_mut()).is_pending());
    let receiver = g.do_chan("key", |_| async { unreachable!("joins") });

    drop(driver);
    assert!(!dropped.is_dropped());
    assert_eq!(g.in_flight(), 1);
    drop(receiver);
    assert!(!dropped.is_dropped());
    assert_eq!(g.in_flight(), 1);
    drop(follower);
    assert_eq!(dropped.drops(), 1);
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

/// Holds the drop of an abandoned work future until the test releases it.
struct BlockingDrop {
    started: Arc<Gate>,
    release: mpsc::Receiver<()>,
    finished: Arc<Gate>,
}

impl Drop for BlockingDrop {
    fn drop(&mut self) {
        self.started.open();
        self.release
            .recv_timeout(HANG_BOUND)
            .expect("the test releases the drop");
        self.finished.open();
    }
}

/// How the fresh flight is started while the abandoned one's work is being dropped.
#[derive(Clone, Copy, Debug)]
enum Start {
    Call,
    DoChan,
    Detached,
}

/// Abandons a flight whose work takes its time to drop (on another thread), starts a fresh
/// flight for the same key meanwhile and checks that the fresh work is not polled before the old
/// work's drop has finished: no overlapping executions of one key.
async fn fresh_flight_waits_for_abandoned_drop(start: Start) {
    let g: Arc<KeyedGroup<&str, u32>> = Arc::new(KeyedGroup::new());
    let (started, finished) = (Gate::shared(), Gate::shared());
    let (release, release_rx) = mpsc::channel();
    let blocking = BlockingDrop {
        started: started.clone(),
        release: release_rx,
        finished: finished.clone(),
    };
    let old = g.do_chan("key", move |_| async move {
        let _blocking = blocking;
        std::future::pending::<u32>().await
    });
    let dropper = std::thread::spawn(move || drop(old));
    started.wait().await;
    assert_eq!(g.in_flight(), 0, "the abandoned flight is unlinked at once");

    let polled_too_early = Arc::new(AtomicBool::new(false));
    let runs = Counter::shared();
    let work = {
        let (finished, polled_too_early, runs) =
            (finished.clone(), polled_too_early.clone(), runs.clone());
        move |_| {
            runs.hit();
            async move {
                if !finished.is_open() {
                    polled_too_early.store(true, SeqCst);
                }
                2
            }
        }
    };
    let mut detached: Option<Detached<u32>> = None;
    let mut fresh: Pin<Box<dyn Future<Output = u32> + Send + '_>> = match start {
        Start::Call => Box::pin(g.call("key", work)),
        Start::DoChan => Box::pin(g.do_chan("key", work)),
        Start::Detached => Box::pin(g.do_chan_detached("key", work, |t| detached = Some(t))),
    };
    assert!(poll_once(fresh.as_mut()).await.is_none());
    if let Some(task) = detached.as_mut() {
        assert!(poll_noop(Pin::new(task)).is_pending());
    }
    assert_eq!(g.in_flight(), 1);
    assert!(
        !polled_too_early.load(SeqCst),
        "{start:?}: the fresh work was polled while the abandoned work was still being dropped"
    );

    release.send(()).expect("the dropper waits");
    finished.wait().await;
    if let Some(task) = detached.take() {
        task.await;
    }
    assert_eq!(fresh.await, 2);
    dropper.join().expect("the dropper thread");
    assert!(!polled_too_early.load(SeqCst));
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
}

all_runtimes!(fresh_call_waits_for_abandoned_drop, |_rt| async move {
    fresh_flight_waits_for_abandoned_drop(Start::Call).await;
});

all_runtimes!(fresh_do_chan_waits_for_abandoned_drop, |_rt| async move {
    fresh_flight_waits_for_abandoned_drop(Start::DoChan).await;
});

all_runtimes!(fresh_detached_waits_for_abandoned_drop, |_rt| async move {
    fresh_flight_waits_for_abandoned_drop(Start::Detached).await;
});
