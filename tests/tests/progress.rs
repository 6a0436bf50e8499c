//! Progress does not hinge on one caller (semantic 3 of the core's crate docs, moka issue 240): a waiter kept
//! alive but no longer polled, driver or follower, never stalls the waiters that are polled.

use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use futures_lite::FutureExt;
use single_flight::KeyedGroup;
use single_flight_tests::*;

type Group = Arc<KeyedGroup<&'static str, u32>>;

/// The flight's work: counts its execution, waits for `gate`, returns 42.
fn gated_work(runs: &Arc<Counter>, gate: &Arc<Gate>) -> impl FnOnce(&'static str) -> GatedWork {
    let (runs, gate) = (runs.clone(), gate.clone());
    move |_| {
        runs.hit();
        Box::pin(async move {
            gate.wait().await;
            42
        })
    }
}

type GatedWork = std::pin::Pin<Box<dyn std::future::Future<Output = u32> + Send>>;

/// Spawns `n` callers that join the running flight of `"key"`; each counts on `joined` once it
/// has registered.
fn spawn_followers(
    rt: Rt,
    g: &Group,
    joined: &Arc<Latch>,
    n: usize,
) -> Vec<JoinHandle<(u32, bool)>> {
    (0..n)
        .map(|_| {
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
        })
        .collect()
}

// The driver (the starter, which polled the work last) is polled once with a waker that does
// nothing and then never again; the followers still get the value.
all_runtimes!(stalled_driver_noop_waker, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let (runs, gate, joined) = (Counter::shared(), Gate::shared(), Latch::shared());
    let mut stalled = Box::pin(
        g.call("key", gated_work(&runs, &gate))
            .with_role()
            .go_shared(),
    );
    assert!(poll_noop(stalled.as_mut()).is_pending());
    let followers = spawn_followers(rt, &g, &joined, 2);
    joined.wait_for(2).await;
    gate.open();
    for h in followers {
        assert_eq!(h.value().await, (42, true));
    }
    assert_eq!(runs.get(), 1);
    assert_eq!(
        g.in_flight(),
        0,
        "the flight ended without the stalled caller"
    );
    // The stalled caller still has its share when it is polled again.
    assert_eq!(poll_noop(stalled.as_mut()), Poll::Ready((42, true)));
});

// The driver sits in a select (`or`) whose other branch won; the future is kept alive and never
// polled again (its waker is a real task's, but nothing polls the future any more).
all_runtimes!(stalled_driver_abandoned_select, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let (runs, gate, joined) = (Counter::shared(), Gate::shared(), Latch::shared());
    let mut stalled = pin!(g
        .call("key", gated_work(&runs, &gate))
        .with_role()
        .go_shared());
    let raced = async { Some(stalled.as_mut().await) }
        .or(async { None })
        .await;
    assert_eq!(
        raced, None,
        "the other branch won; the call is kept, not dropped"
    );
    let followers = spawn_followers(rt, &g, &joined, 2);
    joined.wait_for(2).await;
    gate.open();
    for h in followers {
        assert_eq!(h.value().await, (42, true));
    }
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(stalled.await, (42, true));
});

// A follower is polled once (it listens) and never again, while the driver runs on a task: the
// other follower and the driver complete.
all_runtimes!(stalled_follower_live_driver, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let (runs, gate, joined) = (Counter::shared(), Gate::shared(), Latch::shared());
    let driver = {
        let (g, joined, work) = (g.clone(), joined.clone(), gated_work(&runs, &gate));
        rt.spawn(
            async move { arrive_then(&joined, g.call("key", work).with_role().go_shared()).await },
        )
    };
    joined.wait_for(1).await;
    let mut stalled = Box::pin(
        g.call("key", |_| async { unreachable!("joins") })
            .with_role()
            .go_shared(),
    );
    assert!(poll_noop(stalled.as_mut()).is_pending());
    let followers = spawn_followers(rt, &g, &joined, 1);
    joined.wait_for(2).await;
    gate.open();
    assert_eq!(driver.value().await, (42, true));
    for h in followers {
        assert_eq!(h.value().await, (42, true));
    }
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(poll_noop(stalled.as_mut()), Poll::Ready((42, true)));
});

// The driver leaves while the work waits; a stalled follower (first in line for the standby
// wakeup) and a live follower remain. When the work is woken, the live follower must take over.
//
// Core bug (hangs): the driver leaves while the work is idle and not woken, so `Flight::leave`
// hands nothing off and the flight has no driver; the work's next wakeup (`wake_flight`) then
// notifies one standby (`notify_additional(1)`), which is the oldest listener: the stalled
// follower. The live follower is never notified.
all_runtimes!(stalled_follower_after_driver_left, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let (runs, gate, joined) = (Counter::shared(), Gate::shared(), Latch::shared());
    let mut driver = Box::pin(
        g.call("key", gated_work(&runs, &gate))
            .with_role()
            .go_shared(),
    );
    assert!(poll_noop(driver.as_mut()).is_pending());
    let mut stalled = Box::pin(
        g.call("key", |_| async { unreachable!("joins") })
            .with_role()
            .go_shared(),
    );
    assert!(poll_noop(stalled.as_mut()).is_pending());
    let followers = spawn_followers(rt, &g, &joined, 1);
    joined.wait_for(1).await;
    drop(driver);
    assert_eq!(g.in_flight(), 1);
    gate.open();
    for h in followers {
        assert_eq!(h.value().await, (42, true));
    }
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(poll_noop(stalled.as_mut()), Poll::Ready((42, true)));
});

// The same with receivers: one receiver polled once and kept, another awaited on a task.
all_runtimes!(stalled_receiver, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let (runs, gate) = (Counter::shared(), Gate::shared());
    let mut stalled = g.do_chan("key", gated_work(&runs, &gate));
    assert!(poll_noop(std::pin::Pin::new(&mut stalled)).is_pending());
    let live = rt.spawn(g.do_chan("key", |_| async { unreachable!("joins") }));
    gate.open();
    assert_eq!(live.value().await, 42);
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(poll_noop(std::pin::Pin::new(&mut stalled)), Poll::Ready(42));
});

// A stalled driver and many followers arriving and finishing while the work yields a lot:
// the work keeps moving through the standby wakeups alone.
all_runtimes!(stalled_driver_busy_work, |rt| async move {
    const FOLLOWERS: usize = 4;
    let g: Group = Arc::new(KeyedGroup::new());
    let (runs, joined) = (Counter::shared(), Latch::shared());
    let work = {
        let (runs, joined) = (runs.clone(), joined.clone());
        move |_| {
            runs.hit();
            async move {
                joined.wait_for(FOLLOWERS).await;
                yield_many(200).await;
                42
            }
        }
    };
    let mut stalled = Box::pin(g.call("key", work).with_role().go_shared());
    assert!(poll_noop(stalled.as_mut()).is_pending());
    let followers = spawn_followers(rt, &g, &joined, FOLLOWERS);
    for h in followers {
        assert_eq!(h.value().await, (42, true));
    }
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(poll_noop(stalled.as_mut()), Poll::Ready((42, true)));
});
