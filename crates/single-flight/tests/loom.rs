//! Loom models of the flight protocol: every interleaving of two or three threads, each model
//! checking one property.
//!
//! Run with `cargo xtask loom` (or `RUSTFLAGS="--cfg loom" cargo test -p single-flight --test
//! loom --release`); `LOOM_MAX_PREEMPTIONS` bounds the search.

#![cfg(loom)]

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::thread;
use single_flight::{KeyedGroup, Panicked};

type Group = KeyedGroup<u8, u32>;

/// Counts executions and checks that no two of them ever overlap.
#[derive(Default)]
struct Executions {
    started: AtomicUsize,
    running: AtomicUsize,
}

impl Executions {
    /// Work that yields once (so that it is polled twice) and returns `value`.
    fn work(self: &Arc<Self>, value: u32) -> impl Future<Output = u32> + Send + 'static {
        let this = self.clone();
        async move {
            this.started.fetch_add(1, SeqCst);
            assert_eq!(
                this.running.fetch_add(1, SeqCst),
                0,
                "two executions overlap"
            );
            YieldOnce(false).await;
            this.running.fetch_sub(1, SeqCst);
            value
        }
    }

    fn started(&self) -> usize {
        self.started.load(SeqCst)
    }
}

/// Returns `Pending` once, waking itself: the work's inner wakeup goes through the flight.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(futures_task::noop_waker_ref()))
}

/// A leader and two followers: one flight when they overlap, every caller gets the value, and
/// nothing is left in flight.
#[test]
fn leader_completes_with_two_followers() {
    loom::model(|| {
        let group = Arc::new(Group::new());
        let executions = Arc::new(Executions::default());
        let rx = group.do_chan(1, {
            let executions = executions.clone();
            move |_| executions.work(7)
        });
        let followers: Vec<_> = (0..2)
            .map(|_| {
                let (group, executions) = (group.clone(), executions.clone());
                thread::spawn(move || block_on(group.call(1, |_| executions.work(7))))
            })
            .collect();
        assert_eq!(block_on(rx), 7);
        for follower in followers {
            assert_eq!(follower.join().unwrap(), 7);
        }
        assert!((1..=3).contains(&executions.started()));
        assert_eq!(group.in_flight(), 0);
    });
}

/// Two `call`s of one key whose work is ready at once: the starter that finishes on its first
/// poll publishes without the flight's lock only if nobody joined. Whatever the interleaving,
/// both callers get a value, the `shared` flags agree with the number of executions, and the
/// flight is gone at the end.
#[test]
fn ready_work_races_a_joiner() {
    loom::model(|| {
        let group = Arc::new(Group::new());
        let executions = Arc::new(AtomicUsize::new(0));
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let (group, executions) = (group.clone(), executions.clone());
                thread::spawn(move || {
                    let outcome = block_on(
                        group
                            .call(1, move |_| async move {
                                executions.fetch_add(1, SeqCst);
                                5
                            })
                            .with_role(),
                    );
                    (outcome.value, outcome.shared())
                })
            })
            .collect();
        let results: Vec<(u32, bool)> = calls.into_iter().map(|c| c.join().unwrap()).collect();
        let shared = executions.load(SeqCst) == 1;
        assert_eq!(results, vec![(5, shared); 2]);
        assert_eq!(group.in_flight(), 0);
    });
}

/// The driving waiter polls the work once and is dropped; the follower finishes the same work.
#[test]
fn driver_dropped_follower_takes_over() {
    loom::model(|| {
        let group = Arc::new(Group::new());
        let executions = Arc::new(Executions::default());
        let mut driver = group.do_chan(1, {
            let executions = executions.clone();
            move |_| executions.work(3)
        });
        let follower = group.do_chan(1, |_| async { unreachable!("joins") });
        let dropper = thread::spawn(move || {
            // Usually drives the first poll; the follower may have finished the work already.
            let _ = poll_once(&mut driver);
            drop(driver);
        });
        assert_eq!(block_on(follower), 3);
        dropper.join().unwrap();
        assert_eq!(executions.started(), 1);
        assert_eq!(group.in_flight(), 0);
    });
}

/// The last other waiter is dropped while the value is being published: the value reaches the
/// remaining waiter, and the flight's value is not leaked.
#[test]
fn waiter_dropped_while_value_published() {
    loom::model(|| {
        let group: Arc<KeyedGroup<u8, Arc<u32>>> = Arc::new(KeyedGroup::new());
        let value = Arc::new(5);
        let first = group.do_chan(1, {
            let value = value.clone();
            move |_| async move {
                YieldOnce(false).await;
                value
            }
        });
        let second = group.do_chan(1, |_| async { unreachable!("joins") });
        let dropper = thread::spawn(move || drop(second));
        assert_eq!(*block_on(first), 5);
        dropper.join().unwrap();
        assert_eq!(group.in_flight(), 0);
        assert_eq!(Arc::strong_count(&value), 1, "the flight's value leaked");
    });
}

/// A panic in the work reaches both waiters, and the key is free afterwards.
///
/// Bounded at two preemptions whatever `LOOM_MAX_PREEMPTIONS` says: loom runs its threads as
/// coroutines on one OS thread, and with three preemptions it resumes a model thread that holds
/// event-listener's (loom) mutex while another model thread's panic is unwinding; the std mutex
/// inside loom's then sees `std::thread::panicking()` at unlock and poisons itself, and the next
/// lock fails in event-listener. That is a property of the harness, not of the flight protocol.
#[test]
fn panic_reaches_follower() {
    std::panic::set_hook(Box::new(|_| {}));
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.map_or(2, |bound| bound.min(2)));
    builder.check(|| {
        let group = Arc::new(Group::new());
        let leader = group.do_chan(1, |_| async {
            YieldOnce(false).await;
            panic!("boom")
        });
        let follower = group.do_chan(1, |_| async { unreachable!("joins") });
        let other = thread::spawn(move || catch_unwind(AssertUnwindSafe(|| block_on(follower))));
        let mine = catch_unwind(AssertUnwindSafe(|| block_on(leader)));
        let theirs = other.join().unwrap();
        let messages: Vec<String> = [mine, theirs]
            .into_iter()
            .map(|result| {
                let payload = result.expect_err("every waiter panics");
                match payload.downcast::<Panicked>() {
                    Ok(panicked) => panicked.message().to_owned(),
                    Err(payload) => payload.downcast::<&str>().unwrap().to_string(),
                }
            })
            .collect();
        assert_eq!(messages, ["boom", "boom"]);
        assert_eq!(group.in_flight(), 0);
        assert_eq!(block_on(group.call(1, |_| async { 9 })), 9);
    });
    let _ = std::panic::take_hook();
}

/// `forget` races the old flight's completion and a new call: the old flight never removes the
/// new flight's entry, and every caller gets the value of a flight it joined.
#[test]
fn forget_races_completion_and_new_call() {
    loom::model(|| {
        let group = Arc::new(Group::new());
        let old = group.do_chan(1, |_| async {
            YieldOnce(false).await;
            1
        });
        let finisher = thread::spawn(move || block_on(old));
        let forgetter = {
            let group = group.clone();
            thread::spawn(move || {
                group.forget(&1);
                group.do_chan(1, |_| async { 2 })
            })
        };
        let new = forgetter.join().unwrap();
        assert_eq!(finisher.join().unwrap(), 1);
        // Whether `forget` caught the old flight or the old flight had already finished, the
        // new call started its own flight, and the old one's end did not unlist it.
        assert_eq!(group.in_flight(), 1);
        assert_eq!(block_on(new), 2);
        assert_eq!(group.in_flight(), 0);
    });
}

/// A receiver dropped while another completes the flight: nothing hangs or leaks, whichever
/// side wins.
#[test]
fn receiver_dropped_racing_completion() {
    loom::model(|| {
        let group = Arc::new(Group::new());
        let executions = Arc::new(Executions::default());
        let first = group.do_chan(1, {
            let executions = executions.clone();
            move |_| executions.work(4)
        });
        let second = group.do_chan(1, |_| async { unreachable!("joins") });
        let completer = thread::spawn(move || block_on(first));
        drop(second);
        assert_eq!(completer.join().unwrap(), 4);
        assert_eq!(executions.started(), 1);
        assert_eq!(group.in_flight(), 0);
    });
}

/// Work whose drop takes a while (a preemption point in the middle).
struct SlowDrop(Arc<AtomicBool>);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
        thread::yield_now();
        self.0.store(false, SeqCst);
    }
}

/// The last waiter leaves, the work is dropped with no lock held, and a call that arrives
/// meanwhile starts a new flight whose work is not polled before that drop has finished.
#[test]
fn abandoned_work_drops_before_successor_polls() {
    loom::model(|| {
        let group = Arc::new(Group::new());
        let dropping = Arc::new(AtomicBool::new(false));
        let mut abandoned = group.do_chan(1, {
            let guard = SlowDrop(dropping.clone());
            move |_| async move {
                let _guard = guard;
                YieldOnce(false).await;
                1
            }
        });
        assert!(poll_once(&mut abandoned).is_pending());
        let leaver = thread::spawn(move || drop(abandoned));
        let value = block_on(group.call(1, {
            let dropping = dropping.clone();
            move |_| async move {
                assert!(
                    !dropping.load(SeqCst),
                    "new work polled while the old one drops"
                );
                8
            }
        }));
        // 1 if the call joined the old flight before its last waiter left, else a new flight.
        assert!(value == 1 || value == 8);
        leaver.join().unwrap();
        assert_eq!(group.in_flight(), 0);
    });
}

/// As above with a detached successor: its spawned task must not poll the new work before the
/// abandoned work has finished dropping either.
#[test]
fn abandoned_work_drops_before_detached_successor_polls() {
    loom::model(|| {
        let group = Arc::new(Group::new());
        let dropping = Arc::new(AtomicBool::new(false));
        let mut abandoned = group.do_chan(1, {
            let guard = SlowDrop(dropping.clone());
            move |_| async move {
                let _guard = guard;
                YieldOnce(false).await;
                1
            }
        });
        assert!(poll_once(&mut abandoned).is_pending());
        let leaver = thread::spawn(move || drop(abandoned));
        let mut task = None;
        let rx = group.do_chan_detached(
            1,
            {
                let dropping = dropping.clone();
                move |_| async move {
                    assert!(
                        !dropping.load(SeqCst),
                        "new work polled while the old one drops"
                    );
                    8
                }
            },
            |detached| task = Some(detached),
        );
        let runner = task.map(|task| thread::spawn(move || block_on(task)));
        let value = block_on(rx);
        assert!(value == 1 || value == 8);
        leaver.join().unwrap();
        if let Some(runner) = runner {
            runner.join().unwrap();
        }
        assert_eq!(group.in_flight(), 0);
    });
}

/// A one-shot event from outside the flight (an I/O readiness, a timer), loom-modelled.
#[derive(Default)]
struct Signal {
    ready: AtomicBool,
    waker: loom::sync::Mutex<Option<Waker>>,
}

impl Signal {
    fn fire(&self) {
        self.ready.store(true, SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }

    fn wait(self: Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        std::future::poll_fn(move |cx| {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            if self.ready.load(SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// The waiter that polled the work last is kept alive but never polled again; the inner wakeup
/// still reaches the follower, which finishes the same work (moka issue 240).
#[test]
fn stalled_driver_does_not_block_follower() {
    loom::model(|| {
        let group = Arc::new(Group::new());
        let signal = Arc::new(Signal::default());
        let mut stalled = group.do_chan(1, {
            let signal = signal.clone();
            move |_| async move {
                signal.wait().await;
                6
            }
        });
        assert!(poll_once(&mut stalled).is_pending());
        let follower = group.do_chan(1, |_| async { unreachable!("joins") });
        let firer = {
            let signal = signal.clone();
            thread::spawn(move || signal.fire())
        };
        assert_eq!(block_on(follower), 6);
        firer.join().unwrap();
        drop(stalled);
        assert_eq!(group.in_flight(), 0);
    });
}

/// Waits, yielding to loom's scheduler, until `ready` holds.
fn spin_until(ready: impl Fn() -> bool) {
    while !ready() {
        thread::yield_now();
    }
}

/// A `do_chan` starter whose receiver is never polled and then dropped, a joiner that listened
/// while the closure ran and is then stalled (never polled again), and a joiner blocked on its
/// value: the work is due and nobody drives it, so the blocked joiner must be woken and finish
/// it, whatever the interleaving.
#[test]
fn starter_dropped_unpolled_joiner_takes_over() {
    loom::model(|| {
        let group = Arc::new(Group::new());
        let release = Arc::new(AtomicBool::new(false));
        let executions = Arc::new(Executions::default());
        let starter = thread::spawn({
            let (group, release, executions) = (group.clone(), release.clone(), executions.clone());
            move || {
                let rx = group.do_chan(1, move |_| {
                    spin_until(|| release.load(SeqCst));
                    executions.work(4)
                });
                drop(rx); // never polled
            }
        });
        spin_until(|| group.in_flight() == 1);
        // Joins while the closure runs; listens once, then is stalled.
        let mut stalled = group.do_chan(1, |_| async { unreachable!("joins") });
        let listening = poll_once(&mut stalled).is_pending();
        let live = group.do_chan(1, |_| async { unreachable!("joins") });
        release.store(true, SeqCst);
        assert!(listening, "nothing can finish before the closure returns");
        assert_eq!(block_on(live), 4);
        starter.join().unwrap();
        drop(stalled);
        assert_eq!(executions.started(), 1);
        assert_eq!(group.in_flight(), 0);
    });
}

/// A detached task is dropped before it polled its work (its runtime shut down) while one
/// waiter listens stalled and another is blocked on its value: the work given back reaches the
/// blocked waiter, which finishes it.
#[test]
fn given_back_work_reaches_a_live_waiter() {
    loom::model(|| {
        let group = Arc::new(Group::new());
        let executions = Arc::new(Executions::default());
        let mut task = None;
        let first = group.do_chan_detached(
            1,
            {
                let executions = executions.clone();
                move |_| executions.work(5)
            },
            |detached| task = Some(detached),
        );
        let mut stalled = group.do_chan(1, |_| async { unreachable!("joins") });
        assert!(poll_once(&mut stalled).is_pending());
        drop(first);
        let task = task.expect("started detached");
        let shutdown = thread::spawn(move || drop(task));
        let live = group.do_chan(1, |_| async { unreachable!("joins") });
        assert_eq!(block_on(live), 5);
        shutdown.join().unwrap();
        drop(stalled);
        assert_eq!(executions.started(), 1);
        assert_eq!(group.in_flight(), 0);
    });
}

/// A detached successor parked behind the gate of an abandoned flight is dropped (given back)
/// before the gate opens; a waiter then drives the work. The task's parked waker has its own
/// slot, so it never passes for a former driver.
#[test]
fn gated_detached_task_given_back() {
    loom::model(|| {
        let group = Arc::new(Group::new());
        let mut abandoned = group.do_chan(1, |_| async {
            YieldOnce(false).await;
            1
        });
        assert!(poll_once(&mut abandoned).is_pending());
        let leaver = thread::spawn(move || drop(abandoned));
        let mut task = None;
        let rx = group.do_chan_detached(1, |_| async { 9 }, |detached| task = Some(detached));
        if let Some(mut task) = task {
            // Parks its waker if the gate is still closed, then the runtime drops it.
            let _ = poll_once(&mut task);
            drop(task);
        }
        let value = block_on(rx);
        assert!(value == 1 || value == 9);
        leaver.join().unwrap();
        assert_eq!(group.in_flight(), 0);
    });
}
