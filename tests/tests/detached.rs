//! Detached flights (semantic 6 of the core's crate docs), through the core hook `do_chan_detached` with a
//! spawner that spawns the `Detached` on the test's runtime: the work runs to completion even if
//! every receiver leaves, callers arriving meanwhile join it, its panic reaches the waiters; a
//! `Detached` dropped unpolled (or half-polled) hands the work back to the waiters.

use std::pin::Pin;
use std::sync::Arc;

use single_flight::{Detached, Group, KeyedGroup, Panicked};
use single_flight_tests::*;

type Keyed = Arc<KeyedGroup<&'static str, u32>>;

/// Work that counts its start, waits for `gate`, counts its completion and returns `value`.
fn gated(
    runs: &Arc<Counter>,
    gate: &Arc<Gate>,
    finished: &Arc<Counter>,
    value: u32,
) -> impl FnOnce(&'static str) -> Pin<Box<dyn std::future::Future<Output = u32> + Send>> {
    let (runs, gate, finished) = (runs.clone(), gate.clone(), finished.clone());
    move |_| {
        runs.hit();
        Box::pin(async move {
            gate.wait().await;
            finished.hit();
            value
        })
    }
}

// Every receiver dropped at once: the spawned work still runs to its end, then the key is free.
all_runtimes!(runs_to_completion_without_receivers, |rt| async move {
    let g: Keyed = Arc::new(KeyedGroup::new());
    let (runs, gate, finished) = (Counter::shared(), Gate::shared(), Counter::shared());
    let mut task: Option<JoinHandle<()>> = None;
    let rx = g.do_chan_detached("key", gated(&runs, &gate, &finished, 1), |t| {
        task = Some(rt.spawn(t));
    });
    drop(rx);
    assert_eq!(
        g.in_flight(),
        1,
        "the detached flight lives on without waiters"
    );
    gate.open();
    task.expect("spawned")
        .await
        .expect("the detached task completes normally");
    assert_eq!((runs.get(), finished.get()), (1, 1));
    assert_eq!(g.in_flight(), 0);
});

// Callers arriving while the detached work runs join it (call, do_chan, do_chan_detached without
// a second spawn): one execution.
all_runtimes!(callers_join_detached_flight, |rt| async move {
    let g: Keyed = Arc::new(KeyedGroup::new());
    let (runs, gate, finished) = (Counter::shared(), Gate::shared(), Counter::shared());
    let spawns = Counter::new();
    let mut task: Option<JoinHandle<()>> = None;
    let rx = g.do_chan_detached("key", gated(&runs, &gate, &finished, 2), |t| {
        spawns.hit();
        task = Some(rt.spawn(t));
    });
    drop(rx); // even with the starter gone
    let joined = Latch::shared();
    let caller = {
        let (g, joined) = (g.clone(), joined.clone());
        rt.spawn(async move {
            arrive_then(
                &joined,
                g.call("key", |_| async { unreachable!("joins") })
                    .with_role()
                    .go_shared(),
            )
            .await
        })
    };
    let receiver = g.do_chan("key", |_| async { unreachable!("joins") });
    let second = g.do_chan_detached(
        "key",
        |_| async { unreachable!("joins") },
        |_: Detached<u32>| panic!("no second spawn for a joining call"),
    );
    joined.wait_for(1).await;
    gate.open();
    assert_eq!(caller.value().await, (2, true));
    assert_eq!(rt.spawn(receiver).value().await, 2);
    assert_eq!(
        rt.spawn(second.with_role().go_shared()).value().await,
        (2, true)
    );
    task.expect("spawned").await.expect("completes");
    assert_eq!((runs.get(), finished.get(), spawns.get()), (1, 1, 1));
    assert_eq!(g.in_flight(), 0);
});

// A panic of detached work reaches every waiter as `Panicked`; the task itself completes.
all_runtimes!(detached_panic_reaches_waiters, |rt| async move {
    let g: Keyed = Arc::new(KeyedGroup::new());
    let (gate, runs) = (Gate::shared(), Counter::new());
    let mut task: Option<JoinHandle<()>> = None;
    let rx = g.do_chan_detached(
        "key",
        |_| {
            runs.hit();
            let gate = gate.clone();
            async move {
                gate.wait().await;
                provoke_panic::<u32>("detached work")
            }
        },
        |t| task = Some(rt.spawn(t)),
    );
    let follower = g.do_chan("key", |_| async { unreachable!("joins") });
    let (rx, follower) = (rt.spawn(rx), rt.spawn(follower));
    gate.open();
    for h in [rx, follower] {
        let payload = h.await.expect_err("the waiters panic");
        let panicked = payload
            .downcast::<Panicked>()
            .expect("waiters of a detached flight get Panicked");
        assert_eq!(panicked.message(), provoked_message("detached work"));
    }
    task.expect("spawned")
        .await
        .expect("the task itself does not panic");
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call("key", |_| async { 1 }).await, 1);
});

// A `Detached` dropped without being polled hands the work back: the waiters drive it.
all_runtimes!(unpolled_detached_hands_work_back, |rt| async move {
    let g: Keyed = Arc::new(KeyedGroup::new());
    let (runs, gate, finished) = (Counter::shared(), Gate::shared(), Counter::shared());
    let mut task: Option<Detached<u32>> = None;
    let rx = g.do_chan_detached("key", gated(&runs, &gate, &finished, 3), |t| task = Some(t));
    let follower = g.do_chan("key", |_| async { unreachable!("joins") });
    // The waiters are already waiting on tasks when the work comes back.
    let (rx, follower) = (rt.spawn(rx), rt.spawn(follower));
    drop(task.take().expect("handed to the spawner"));
    gate.open();
    assert_eq!((rx.value().await, follower.value().await), (3, 3));
    assert_eq!((runs.get(), finished.get()), (1, 1));
    assert_eq!(g.in_flight(), 0);
});

// A `Detached` polled part of the way and then dropped: the waiters go on with the SAME work.
all_runtimes!(half_polled_detached_hands_work_back, |rt| async move {
    let g: Keyed = Arc::new(KeyedGroup::new());
    let (runs, progress) = (Counter::shared(), Counter::shared());
    let gate = Gate::shared();
    let mut task: Option<Detached<u32>> = None;
    let rx = g.do_chan_detached(
        "key",
        {
            let (runs, progress, gate) = (runs.clone(), progress.clone(), gate.clone());
            move |_| {
                runs.hit();
                async move {
                    progress.hit();
                    gate.wait().await;
                    progress.hit();
                    4
                }
            }
        },
        |t| task = Some(t),
    );
    let mut detached = task.take().expect("handed to the spawner");
    assert!(poll_noop(Pin::new(&mut detached)).is_pending());
    assert_eq!(progress.get(), 1);
    drop(detached);
    assert_eq!(g.in_flight(), 1);
    let rx = rt.spawn(rx);
    gate.open();
    assert_eq!(rx.value().await, 4);
    assert_eq!(progress.get(), 2, "continued, not restarted");
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// A `Detached` dropped after every waiter left: the work is dropped and the key freed.
all_runtimes!(detached_dropped_without_waiters, |_rt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let (dropped, runs) = (DropFlag::new(), Counter::new());
    let mut task: Option<Detached<u32>> = None;
    let rx = g.do_chan_detached(
        "key",
        |_| {
            runs.hit();
            let guard = dropped.guard();
            async move {
                let _guard = guard;
                std::future::pending::<u32>().await
            }
        },
        |t| task = Some(t),
    );
    assert_eq!(runs.get(), 1);
    drop(rx);
    assert_eq!(g.in_flight(), 1);
    assert!(!dropped.is_dropped());
    drop(task);
    assert!(dropped.is_dropped());
    assert_eq!(g.in_flight(), 0);
});

// The unkeyed group's detached flights behave the same.
all_runtimes!(group_detached, |rt| async move {
    let g: Arc<Group<u32>> = Arc::new(Group::new());
    let (gate, finished) = (Gate::shared(), Counter::shared());
    let mut task: Option<JoinHandle<()>> = None;
    let rx = g.do_chan_detached(
        {
            let (gate, finished) = (gate.clone(), finished.clone());
            move || async move {
                gate.wait().await;
                finished.hit();
                5
            }
        },
        |t| task = Some(rt.spawn(t)),
    );
    drop(rx);
    let joined = g.do_chan(|| async { unreachable!("joins") });
    gate.open();
    assert_eq!(joined.with_role().go_shared().await, (5, false));
    task.expect("spawned").await.expect("completes");
    assert_eq!(finished.get(), 1);
    assert_eq!(g.in_flight(), 0);
});
