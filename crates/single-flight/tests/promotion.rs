//! `do_chan_detached` that joins a running flight promotes it: the work then runs to its end
//! even if every waiter leaves (Go's `DoChan`), whoever started the flight.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_lite::future::block_on;
use single_flight::{Detached, KeyedGroup};

/// Work that waits for `open` and counts its starts and ends.
#[derive(Default)]
struct Probe {
    started: AtomicUsize,
    finished: AtomicUsize,
    open: std::sync::atomic::AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Probe {
    fn work(self: &Arc<Self>, value: u32) -> impl Future<Output = u32> + Send + 'static {
        let this = self.clone();
        async move {
            this.started.fetch_add(1, SeqCst);
            std::future::poll_fn(|cx| {
                *this.waker.lock().unwrap() = Some(cx.waker().clone());
                if this.open.load(SeqCst) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            this.finished.fetch_add(1, SeqCst);
            value
        }
    }

    fn open(&self) {
        self.open.store(true, SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
}

fn poll_noop<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(&futures::task::noop_waker()))
}

/// Joining an idle `do_chan` flight: the task claims the work at once; every receiver leaves;
/// the task still runs the work to its end.
#[test]
fn promoted_do_chan_flight_outlives_its_waiters() {
    let group = KeyedGroup::<u8, u32>::new();
    let probe = Arc::new(Probe::default());
    let starter = group.do_chan(1, |_| probe.work(3));
    let mut task: Option<Detached<u32>> = None;
    let joiner = group.do_chan_detached(1, |_| async { unreachable!("joins") }, |t| task = Some(t));
    let mut task = task.expect("joining a flight no task owns promotes it");
    assert!(
        poll_noop(&mut task).is_pending(),
        "the work waits for the probe"
    );
    assert_eq!(probe.started.load(SeqCst), 1);
    drop((starter, joiner));
    assert_eq!(group.in_flight(), 1, "the task keeps the flight");
    probe.open();
    block_on(task);
    assert_eq!(probe.finished.load(SeqCst), 1, "the work ran to its end");
    assert_eq!(probe.started.load(SeqCst), 1);
    assert_eq!(group.in_flight(), 0);
}

/// Joining a flight that a `call` drives: the task takes the work over from the driver (its
/// wakeups, registered with the flight's waker, reach the task), the call is dropped, and the
/// work still finishes; a waiter that stays gets the value.
#[test]
fn promoted_call_flight_outlives_its_driver() {
    let group = KeyedGroup::<u8, u32>::new();
    let probe = Arc::new(Probe::default());
    let mut call = Box::pin(group.call(1, |_| probe.work(4)));
    assert!(
        poll_noop(&mut call).is_pending(),
        "the call drives the work"
    );
    let mut task: Option<Detached<u32>> = None;
    let stays = group.do_chan_detached(1, |_| async { unreachable!("joins") }, |t| task = Some(t));
    let task = task.expect("joining a flight no task owns promotes it");
    let runner = std::thread::spawn(move || block_on(task));
    drop(call);
    probe.open();
    assert_eq!(block_on(stays), 4);
    runner.join().unwrap();
    assert_eq!(probe.started.load(SeqCst), 1);
    assert_eq!(probe.finished.load(SeqCst), 1);
    assert_eq!(group.in_flight(), 0);
}

/// A second detached join of the same flight spawns nothing: one task per flight.
#[test]
fn detached_flight_is_not_promoted_twice() {
    let group = KeyedGroup::<u8, u32>::new();
    let probe = Arc::new(Probe::default());
    let starter = group.do_chan(1, |_| probe.work(5));
    let mut tasks = Vec::new();
    let a = group.do_chan_detached(1, |_| async { unreachable!() }, |t| tasks.push(t));
    let b = group.do_chan_detached(1, |_| async { unreachable!() }, |t| tasks.push(t));
    assert_eq!(tasks.len(), 1);
    let task = tasks.pop().unwrap();
    let runner = std::thread::spawn(move || block_on(task));
    probe.open();
    runner.join().unwrap();
    assert_eq!(block_on(starter), 5);
    assert_eq!((block_on(a), block_on(b)), (5, 5));
    assert_eq!(group.in_flight(), 0);
}

/// A promoted flight's task dropped before it claimed the work (its runtime shut down) counts
/// itself out: the waiters finish the work, and with none left the flight is abandoned.
#[test]
fn unclaimed_task_dropped_leaves_the_waiters_in_charge() {
    let group = KeyedGroup::<u8, u32>::new();
    let probe = Arc::new(Probe::default());
    let starter = group.do_chan(1, |_| probe.work(6));
    let mut task: Option<Detached<u32>> = None;
    let joiner = group.do_chan_detached(1, |_| async { unreachable!() }, |t| task = Some(t));
    drop(task);
    probe.open();
    assert_eq!(block_on(joiner), 6);
    assert_eq!(block_on(starter), 6);
    assert_eq!(group.in_flight(), 0);

    let starter = group.do_chan(2, |_| probe.work(7));
    let mut task: Option<Detached<u32>> = None;
    let joiner = group.do_chan_detached(2, |_| async { unreachable!() }, |t| task = Some(t));
    drop((starter, joiner));
    assert_eq!(group.in_flight(), 1, "the unclaimed task still counts");
    drop(task);
    assert_eq!(group.in_flight(), 0, "its drop abandons the flight");
}
