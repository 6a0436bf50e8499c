//! Regression tests for edge paths of the flight protocol, driven by hand: each waiter is
//! polled with its own counting waker, so that a test decides exactly who is polled, who is
//! stalled (kept alive, never polled again) and who is dropped. The crate's semantics cited
//! here are the numbered ones of its crate docs.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use single_flight::{Detached, KeyedGroup};

/// A waker that counts its wakeups and whose clones can be counted (`Arc::strong_count`).
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl CountingWaker {
    fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn wakes(&self) -> usize {
        self.0.load(SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn poll_with<F: Future + Unpin>(future: &mut F, waker: &Arc<CountingWaker>) -> Poll<F::Output> {
    let waker = Waker::from(waker.clone());
    Pin::new(future).poll(&mut Context::from_waker(&waker))
}

/// Starts a `do_chan` flight for key 1 on another thread whose closure waits until `joiners`
/// has run on this thread (so that the joiners find the flight `Starting`), then returns the
/// starter's receiver, never polled.
fn start_while<T>(
    group: &Arc<KeyedGroup<u8, u32>>,
    value: u32,
    joiners: impl FnOnce() -> T,
) -> (single_flight::Receiver<u32>, T) {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let starter = thread::spawn({
        let group = group.clone();
        move || {
            group.do_chan(1, move |_| {
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                async move { value }
            })
        }
    });
    entered_rx.recv().unwrap();
    let joined = joiners();
    release_tx.send(()).unwrap();
    (starter.join().unwrap(), joined)
}

/// A receiver and the waker it was polled with.
type Polled = (single_flight::Receiver<u32>, Arc<CountingWaker>);

/// Two receivers that join the starting flight and each register their wait (one poll).
fn two_listening_joiners(group: &KeyedGroup<u8, u32>) -> [Polled; 2] {
    [(); 2].map(|()| {
        let mut rx = group.do_chan(1, |_| async { unreachable!("joins the running flight") });
        let waker = CountingWaker::new();
        assert!(poll_with(&mut rx, &waker).is_pending());
        (rx, waker)
    })
}

/// Splits the joiners into the one the starter's install woke (which the test then stalls)
/// and the other one.
fn woken_and_other(joiners: [Polled; 2]) -> (Polled, Polled) {
    let [a, b] = joiners;
    assert!(
        a.1.wakes() + b.1.wakes() >= 1,
        "installing the work woke nobody"
    );
    if a.1.wakes() > 0 {
        (a, b)
    } else {
        (b, a)
    }
}

/// Semantic 3: the starter of a `do_chan` flight never polls its receiver and drops it; the
/// joiner that the install woke is stalled. The other joiner must be woken and finish the work.
#[test]
fn joiner_finishes_after_unpolled_starter_leaves() {
    let group = Arc::new(KeyedGroup::<u8, u32>::new());
    let (starter, joiners) = start_while(&group, 7, || two_listening_joiners(&group));
    let ((stalled, _), (mut live, live_waker)) = woken_and_other(joiners);
    drop(starter);
    assert!(
        live_waker.wakes() > 0,
        "the work is due and nobody drives it, yet the live joiner was not woken"
    );
    assert_eq!(poll_with(&mut live, &live_waker), Poll::Ready(7));
    drop(stalled);
    assert_eq!(group.in_flight(), 0);
}

/// Semantic 3: a waiter that is being polled (here: by a `select!`-like loop that polls it on
/// its own schedule) takes up due work even though its wakeup went to a stalled waiter.
#[test]
fn polled_joiner_takes_up_due_work() {
    let group = Arc::new(KeyedGroup::<u8, u32>::new());
    let (starter, joiners) = start_while(&group, 8, || two_listening_joiners(&group));
    let ((stalled, _), (mut live, live_waker)) = woken_and_other(joiners);
    // The starter's receiver stays alive, never polled; the live joiner is polled again.
    assert_eq!(poll_with(&mut live, &live_waker), Poll::Ready(8));
    drop((starter, stalled));
    assert_eq!(group.in_flight(), 0);
}

/// Semantic 3 on the detached path: the spawned task gives its work back (runtime shut down)
/// while two waiters listen; the one woken is stalled, the other, being polled, finishes.
#[test]
fn polled_waiter_takes_up_given_back_work() {
    let group = KeyedGroup::<u8, u32>::new();
    let mut task: Option<Detached<u32>> = None;
    let first = group.do_chan_detached(1, |_| async { 9 }, |t| task = Some(t));
    let mut joiners = two_listening_joiners(&group);
    drop(first);
    drop(task.take().expect("the flight was started detached"));
    let woken = joiners.iter().position(|(_, w)| w.wakes() > 0);
    let live = match woken {
        Some(i) => 1 - i,
        None => 0,
    };
    let (rx, waker) = &mut joiners[live];
    assert_eq!(poll_with(rx, waker), Poll::Ready(9));
    drop(joiners);
    assert_eq!(group.in_flight(), 0);
}

/// Semantic 8: once a flight that needed several polls has ended, the group keeps no clone of
/// the waker of the task that drove it.
#[test]
fn finished_flight_keeps_no_driver_waker() {
    let group = KeyedGroup::<u8, u32>::new();
    let waker = CountingWaker::new();
    let mut call = Box::pin(group.call(1, |_| async {
        futures_lite::future::yield_now().await;
        5
    }));
    assert!(poll_with(&mut call, &waker).is_pending());
    assert_eq!(poll_with(&mut call, &waker), Poll::Ready(5));
    drop(call);
    assert_eq!(group.in_flight(), 0);
    assert_eq!(
        Arc::strong_count(&waker),
        1,
        "the recycled flight state still holds the driver's waker"
    );
}

/// Semantic 8 for a flight whose last waiter took over from a driver that left.
#[test]
fn handed_over_flight_keeps_no_waker() {
    let group = KeyedGroup::<u8, u32>::new();
    let (a_waker, b_waker) = (CountingWaker::new(), CountingWaker::new());
    let mut a = group.do_chan(1, |_| async {
        futures_lite::future::yield_now().await;
        futures_lite::future::yield_now().await;
        6
    });
    let mut b = group.do_chan(1, |_| async { unreachable!() });
    assert!(poll_with(&mut a, &a_waker).is_pending());
    assert!(poll_with(&mut b, &b_waker).is_pending());
    drop(a);
    let value = loop {
        if let Poll::Ready(v) = poll_with(&mut b, &b_waker) {
            break v;
        }
    };
    assert_eq!(value, 6);
    drop(b);
    assert_eq!(Arc::strong_count(&a_waker), 1);
    assert_eq!(Arc::strong_count(&b_waker), 1);
}

/// A panic in the value's `Drop`.
#[derive(Clone)]
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("value dropped");
        }
    }
}

/// `Detached` never panics: not even when the value it publishes has no taker and panics in
/// its `Drop`.
#[test]
fn detached_survives_a_panicking_unclaimed_value() {
    let group = KeyedGroup::<u8, Arc<PanicOnDrop>>::new();
    let mut task = None;
    let rx = group.do_chan_detached(1, |_| async { Arc::new(PanicOnDrop) }, |t| task = Some(t));
    drop(rx);
    let task = task.expect("started detached");
    let outcome = catch_unwind(AssertUnwindSafe(|| futures_lite::future::block_on(task)));
    assert!(outcome.is_ok(), "the detached task panicked on its way out");
    assert_eq!(group.in_flight(), 0);
}

/// A panic payload whose `Drop` panics.
struct PanickingPayload;

impl Drop for PanickingPayload {
    fn drop(&mut self) {
        panic!("payload dropped");
    }
}

/// `Detached` never panics: not even when the work's panic payload panics in its `Drop`.
#[test]
fn detached_survives_a_panicking_payload() {
    let group = KeyedGroup::<u8, u32>::new();
    let mut task = None;
    let rx = group.do_chan_detached(
        1,
        |_| async { std::panic::panic_any(PanickingPayload) },
        |t| task = Some(t),
    );
    let task = task.expect("started detached");
    let outcome = catch_unwind(AssertUnwindSafe(|| futures_lite::future::block_on(task)));
    assert!(outcome.is_ok(), "the detached task panicked on its way out");
    let waiter = catch_unwind(AssertUnwindSafe(|| futures_lite::future::block_on(rx)));
    assert!(waiter.is_err(), "the waiter must see the panic");
    assert_eq!(group.in_flight(), 0);
}

/// Semantic 5: a call for the flight's own key, blocked on inside the *closure* that makes the
/// work, panics instead of waiting for itself forever.
#[test]
fn reentrant_call_inside_the_closure_panics() {
    let group = Arc::new(KeyedGroup::<u8, u32>::new());
    let (done_tx, done_rx) = mpsc::channel();
    let worker = thread::spawn({
        let group = group.clone();
        move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                futures_lite::future::block_on(group.call(1, |_| {
                    let inner = futures_lite::future::block_on(group.call(1, |_| async { 1 }));
                    async move { inner + 1 }
                }))
            }));
            done_tx.send(outcome.is_err()).unwrap();
        }
    });
    let panicked = done_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a re-entrant call inside the closure hangs");
    assert!(panicked, "the re-entrant call must panic");
    worker.join().unwrap();
    assert_eq!(group.in_flight(), 0);
}

/// Holds the flight's work back in its `Drop` until released.
struct BlockingDrop {
    dropping: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

impl Drop for BlockingDrop {
    fn drop(&mut self) {
        let _ = self.dropping.send(());
        let _ = self.release.recv();
    }
}

/// A detached successor parked behind the gate of an abandoned flight is dropped (its runtime
/// shut down) while the gate is still closed; a waiter then takes the driver's role. The task's
/// parked waker lives in a slot of its own: the waiter finds no stale waker in the driver's
/// (debug builds asserted on it), and finishes the work once the gate opens.
#[test]
fn waiter_drives_after_gated_detached_task_is_dropped() {
    let group = Arc::new(KeyedGroup::<u8, u32>::new());
    let (dropping_tx, dropping_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let guard = BlockingDrop {
        dropping: dropping_tx,
        release: release_rx,
    };
    let mut abandoned = group.do_chan(1, move |_| async move {
        let _guard = guard;
        futures_lite::future::yield_now().await;
        1
    });
    assert!(poll_with(&mut abandoned, &CountingWaker::new()).is_pending());
    let leaver = thread::spawn(move || drop(abandoned));
    dropping_rx.recv().unwrap(); // the abandoned work is dropping: the gate is closed

    let mut task: Option<Detached<u32>> = None;
    let mut rx = group.do_chan_detached(1, |_| async { 9 }, |t| task = Some(t));
    let mut task = task.expect("started detached");
    let task_waker = CountingWaker::new();
    assert!(
        poll_with(&mut task, &task_waker).is_pending(),
        "parked at the gate"
    );
    drop(task);
    let waker = CountingWaker::new();
    assert!(
        poll_with(&mut rx, &waker).is_pending(),
        "gated: drives once it opens"
    );

    release_tx.send(()).unwrap();
    leaver.join().unwrap();
    assert!(waker.wakes() > 0, "the opened gate wakes the driver");
    assert_eq!(poll_with(&mut rx, &waker), Poll::Ready(9));
    assert_eq!(
        task_waker.wakes(),
        0,
        "the dropped task's waker is not woken"
    );
    assert_eq!(Arc::strong_count(&task_waker), 1, "nor kept");
    assert_eq!(group.in_flight(), 0);
}
