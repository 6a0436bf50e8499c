//! `Group`, the unkeyed group (one flight at a time for the whole group): herds, no caching,
//! forget, do_chan, in_flight, and a `static` group.

use std::sync::Arc;

use single_flight::Group;
use single_flight_tests::*;

// A herd of callers: one execution, everyone gets the value, shared for all.
all_runtimes!(herd_runs_once, |rt| async move {
    const N: usize = 8;
    let g: Arc<Group<String>> = Arc::new(Group::new());
    let (runs, joined) = (Counter::shared(), Latch::shared());
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let (g, runs, joined) = (g.clone(), runs.clone(), joined.clone());
            rt.spawn(async move {
                let work = {
                    let joined = joined.clone();
                    move || {
                        let n = runs.hit();
                        async move {
                            joined.wait_for(N).await;
                            format!("token-{n}")
                        }
                    }
                };
                arrive_then(&joined, g.call(work).with_role().go_shared()).await
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.value().await, ("token-1".to_owned(), true));
    }
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// No caching: sequential calls each start a flight of their own.
all_runtimes!(sequential_calls_run_again, |_rt| async move {
    let g: Group<usize> = Group::new();
    let runs = Counter::new();
    for i in 1..=3 {
        let v = g
            .call(|| {
                let n = runs.hit();
                async move { n }
            })
            .await;
        assert_eq!(v, i);
        assert_eq!(g.in_flight(), 0);
    }
    assert_eq!(runs.get(), 3);
});

// in_flight is 1 while a flight runs, 0 before and after.
all_runtimes!(in_flight, |rt| async move {
    let g: Group<u32> = Group::new();
    assert_eq!(g.in_flight(), 0);
    let (gate, runs) = (Gate::shared(), Counter::new());
    let rx = g.do_chan(|| {
        runs.hit();
        let gate = gate.clone();
        async move {
            gate.wait().await;
            1
        }
    });
    assert_eq!(g.in_flight(), 1);
    let joined = g.do_chan(|| async { unreachable!("joins") });
    assert_eq!(g.in_flight(), 1, "one flight, however many waiters");
    let (a, b) = (rt.spawn(rx), rt.spawn(joined));
    gate.open();
    assert_eq!((a.value().await, b.value().await), (1, 1));
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// do_chan: the receiver joins NOW; a call arriving later joins the same flight.
all_runtimes!(do_chan_joined_by_call, |rt| async move {
    let g: Arc<Group<u32>> = Arc::new(Group::new());
    let (runs, gate, joined) = (Counter::shared(), Gate::shared(), Latch::shared());
    let rx = g.do_chan({
        let (runs, gate) = (runs.clone(), gate.clone());
        move || {
            runs.hit();
            async move {
                gate.wait().await;
                5
            }
        }
    });
    assert_eq!(runs.get(), 1, "do_chan called the closure before returning");
    let caller = {
        let (g, joined) = (g.clone(), joined.clone());
        rt.spawn(async move {
            arrive_then(
                &joined,
                g.call(|| async { unreachable!("joins") })
                    .with_role()
                    .go_shared(),
            )
            .await
        })
    };
    joined.wait_for(1).await;
    gate.open();
    assert_eq!(
        rt.spawn(rx.with_role().go_shared()).value().await,
        (5, true)
    );
    assert_eq!(caller.value().await, (5, true));
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// forget: the next call starts a new flight; the old waiters keep the old one; the old flight
// ending does not end the new one.
all_runtimes!(forget, |rt| async move {
    let g: Group<u32> = Group::new();
    assert!(!g.forget(), "nothing to forget");
    let (old_gate, new_gate) = (Gate::shared(), Gate::shared());
    let runs = Counter::shared();
    let make = |gate: &Arc<Gate>, value: u32| {
        let (gate, runs) = (gate.clone(), runs.clone());
        move || {
            runs.hit();
            async move {
                gate.wait().await;
                value
            }
        }
    };
    let old = g.do_chan(make(&old_gate, 1));
    assert!(g.forget());
    assert!(!g.forget());
    assert_eq!(g.in_flight(), 0);
    let new = g.do_chan(make(&new_gate, 2));
    assert_eq!(g.in_flight(), 1);
    let (old, new) = (rt.spawn(old), rt.spawn(new));
    old_gate.open();
    assert_eq!(old.value().await, 1);
    assert_eq!(g.in_flight(), 1, "the new flight is still registered");
    let joined = rt.spawn(g.do_chan(|| async { unreachable!("joins the new flight") }));
    new_gate.open();
    assert_eq!((new.value().await, joined.value().await), (2, 2));
    assert_eq!(runs.get(), 2);
    assert_eq!(g.in_flight(), 0);
});

// A group can be a `static` (`new` is const), like Go's package-level group.
all_runtimes!(static_group, |_rt| async move {
    static REFRESH: Group<u64> = Group::new();
    let runs = Counter::new();
    let (a, b) = futures_lite::future::zip(
        REFRESH
            .call(|| {
                runs.hit();
                async {
                    futures_lite::future::yield_now().await;
                    7
                }
            })
            .with_role()
            .go_shared(),
        REFRESH
            .call(|| async { unreachable!("joins") })
            .with_role()
            .go_shared(),
    )
    .await;
    assert_eq!((a, b), ((7, true), (7, true)));
    assert_eq!(runs.get(), 1);
    assert_eq!(REFRESH.in_flight(), 0);
});
