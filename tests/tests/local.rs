//! The shared scenarios (semantics 1 to 9 of the core's crate docs) for the groups of
//! `single_flight::local`, on two thread-local executors (a tokio `LocalSet`, smol's
//! `LocalExecutor`), with work that captures an `Rc` and so is not `Send`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures_lite::future::{poll_once, yield_now};
use single_flight::local::{Group, KeyedGroup};
use single_flight::Role;
use single_flight_tests::*;

/// Counts executions from inside `!Send` work.
type Runs = Rc<Cell<usize>>;

/// Work that counts its run in `runs` (an `Rc`: not `Send`), waits for `gate`, returns `value`.
fn gated(
    runs: &Runs,
    gate: &Rc<Gate>,
    value: u32,
) -> impl FnOnce(&'static str) -> std::pin::Pin<Box<dyn std::future::Future<Output = u32>>> {
    let (runs, gate) = (runs.clone(), gate.clone());
    move |_| {
        runs.set(runs.get() + 1);
        Box::pin(async move {
            gate.wait().await;
            value
        })
    }
}

// Semantic 1: a herd of local tasks on one key runs the work once; every caller gets its value
// and exactly one of them started the flight.
local_runtimes!(herd_runs_once, |rt: LocalRt| async move {
    const CALLERS: usize = 8;
    let g: Rc<KeyedGroup<&str, u32>> = Rc::new(KeyedGroup::new());
    let (runs, gate, arrived) = (Runs::default(), Rc::new(Gate::new()), Rc::new(Latch::new()));
    let results = Rc::new(RefCell::new(Vec::new()));
    let done = Rc::new(Latch::new());
    for _ in 0..CALLERS {
        let (g, work) = (g.clone(), gated(&runs, &gate, 7));
        let (arrived, results, done) = (arrived.clone(), results.clone(), done.clone());
        rt.spawn_local(async move {
            let outcome = arrive_then(&arrived, g.call("k", work).with_role()).await;
            results.borrow_mut().push(outcome);
            done.arrive();
        });
    }
    arrived.wait_for(CALLERS).await;
    assert_eq!(g.in_flight(), 1);
    gate.open();
    done.wait_for(CALLERS).await;
    let results = results.borrow();
    assert_eq!(runs.get(), 1);
    assert!(results.iter().all(|o| o.value == 7 && o.callers == CALLERS));
    assert_eq!(
        results.iter().filter(|o| o.role == Role::Started).count(),
        1
    );
    assert_eq!(g.in_flight(), 0);
});

// Semantic 2: the caller driving the work is dropped; a waiter continues the SAME work (its
// progress is kept, nothing runs twice).
local_runtimes!(dropped_driver_hands_off, |_rt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let (runs, progress) = (Runs::default(), Rc::new(Cell::new(0)));
    let work = {
        let (runs, progress) = (runs.clone(), progress.clone());
        move |_| {
            runs.set(runs.get() + 1);
            async move {
                for _ in 0..10 {
                    progress.set(progress.get() + 1);
                    yield_now().await;
                }
                progress.get()
            }
        }
    };
    let mut driver = Box::pin(g.call("k", work));
    let mut follower = Box::pin(g.call("k", |_| async { unreachable!("joins") }));
    assert!(poll_once(driver.as_mut()).await.is_none());
    assert!(poll_once(follower.as_mut()).await.is_none());
    let before = progress.get();
    assert!(before >= 1);
    drop(driver);
    assert_eq!(follower.await, 10);
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// Semantics 2 and 8: the last waiter leaving drops the work at once and frees the key; the
// next call starts a fresh flight.
local_runtimes!(last_waiter_drops_the_work, |_rt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let dropped = DropFlag::new();
    let guard = Rc::new(dropped.guard()); // an `Rc` in the work: not `Send`
    let rx = g.do_chan("k", move |_| async move {
        let _guard = guard;
        std::future::pending::<u32>().await
    });
    assert_eq!(g.in_flight(), 1);
    drop(rx);
    assert!(dropped.is_dropped());
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call("k", |_| async { 2 }).await, 2);
    assert_eq!(g.stats().abandoned, 1);
});

// Semantic 3: a caller kept alive but no longer polled does not stall another that is polled.
local_runtimes!(stalled_caller_does_not_stall_others, |_rt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let runs = Runs::default();
    let work = {
        let runs = runs.clone();
        move |_| {
            runs.set(runs.get() + 1);
            async {
                yield_many(5).await;
                3
            }
        }
    };
    let mut stalled = Box::pin(g.call("k", work));
    assert!(poll_once(stalled.as_mut()).await.is_none()); // drives once, then is never polled
    assert_eq!(g.call("k", |_| async { unreachable!("joins") }).await, 3);
    assert_eq!(runs.get(), 1);
    drop(stalled);
    assert_eq!(g.in_flight(), 0);
});

// Semantic 4: a panic reaches every waiter (the poller with the original payload, the others
// with `Panicked`), and the group stays usable.
local_runtimes!(panic_reaches_every_waiter, |_rt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let gate = Rc::new(Gate::new());
    let work = {
        let gate = gate.clone();
        move |_| async move {
            gate.wait().await;
            provoke_panic::<u32>("local work")
        }
    };
    let mut first = Box::pin(catch(g.call("k", work)));
    let mut second = Box::pin(catch(g.call("k", |_| async { unreachable!("joins") })));
    assert!(poll_once(first.as_mut()).await.is_none());
    assert!(poll_once(second.as_mut()).await.is_none());
    gate.open();
    let first = first.await.expect_err("the poller panics");
    let second = second.await.expect_err("the follower panics");
    let message = provoked_message("local work");
    assert_eq!(panic_kind(&*first), PanicKind::Original(message.clone()));
    assert_eq!(panic_kind(&*second), PanicKind::Follower(message));
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call("k", |_| async { 5 }).await, 5);
});

// Semantic 5: work that awaits its own flight panics with the re-entrancy message.
local_runtimes!(reentrant_call_panics, |_rt| async move {
    let g: Rc<Group<u32>> = Rc::new(Group::new());
    let inner = g.clone();
    let result = catch(g.call(move || async move {
        inner.call(|| async { 1 }).await // waits for itself
    }))
    .await;
    let payload = result.expect_err("a re-entrant call panics");
    let message = panic_message(&*payload).unwrap_or_default();
    assert!(message.contains("re-entrant"), "{message}");
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call(|| async { 2 }).await, 2);
});

// Semantic 6: a detached flight on the local executor runs to its end after every receiver
// left, and a new caller joins it meanwhile.
local_runtimes!(detached_runs_to_its_end, |rt: LocalRt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let (runs, gate) = (Runs::default(), Rc::new(Gate::new()));
    let finished = Rc::new(Cell::new(false));
    let work = {
        let (runs, gate, finished) = (runs.clone(), gate.clone(), finished.clone());
        move |_| {
            runs.set(runs.get() + 1);
            async move {
                gate.wait().await;
                finished.set(true);
                9
            }
        }
    };
    drop(g.do_chan_detached("k", work, rt.spawner()));
    assert_eq!(g.in_flight(), 1); // nobody waits, the task keeps it
    let joined = g.do_chan("k", |_| async { unreachable!("joins") });
    gate.open();
    assert_eq!(joined.await, 9);
    assert!(finished.get());
    assert_eq!(runs.get(), 1);
    assert_eq!((g.in_flight(), g.stats().detached), (0, 1));
});

// Semantics 8 and 9: `forget` lets the next call start a new flight while the old waiters
// keep the old one; a forgotten flight no longer counts and cannot be forgotten twice.
local_runtimes!(forget_starts_a_new_flight, |_rt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let (runs, gate) = (Runs::default(), Rc::new(Gate::new()));
    let old = g.do_chan("k", gated(&runs, &gate, 1));
    assert!(g.forget("k"));
    assert!(!g.forget("k"));
    assert_eq!(g.in_flight(), 0);
    let new = g.do_chan("k", gated(&runs, &gate, 2));
    gate.open();
    assert_eq!((old.await, new.await, runs.get()), (1, 2, 2));
    assert_eq!(g.in_flight(), 0);
});

// Semantic 9: `do_chan` calls the closure before it returns, and the receiver drives the work.
local_runtimes!(do_chan_calls_the_closure_at_once, |_rt| async move {
    let g: Group<u32> = Group::new();
    let runs = Runs::default();
    let rx = {
        let runs = runs.clone();
        g.do_chan(move || {
            runs.set(runs.get() + 1);
            async { 4 }
        })
    };
    assert_eq!(runs.get(), 1);
    assert!(!rx.is_finished());
    assert_eq!(rx.with_role().await.role, Role::Started);
    assert_eq!(g.in_flight(), 0);
});
