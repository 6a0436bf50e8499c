//! Go's `golang.org/x/sync/singleflight` test suite (`singleflight_test.go`), re-expressed for
//! single-flight and run on every runtime. Go's sleeps are replaced by gates and latches: the
//! work of a flight is held until every caller has joined it.

use std::sync::Arc;

use single_flight::KeyedGroup;
use single_flight_tests::*;

#[derive(Debug, PartialEq, Eq)]
struct SomeError(&'static str);

// TestDo: the value comes back, solo calls are not shared.
all_runtimes!(do_returns_value, |_rt| async move {
    let g: KeyedGroup<&str, String> = KeyedGroup::new();
    let runs = Counter::new();
    let (v, shared) = g
        .call("key", |k| {
            runs.hit();
            async move { format!("bar-{k}") }
        })
        .with_role()
        .go_shared()
        .await;
    assert_eq!(v, "bar-key");
    assert!(!shared);
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// TestDoErr: errors are values (`V = Result<_, Arc<E>>`); the waiters share the same error.
all_runtimes!(do_err, |rt| async move {
    type V = Result<String, Arc<SomeError>>;
    let g: Arc<KeyedGroup<&str, V>> = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    let v = g
        .call("key", |_| {
            runs.hit();
            async { Err(Arc::new(SomeError("some error"))) }
        })
        .await;
    assert_eq!(v, Err(Arc::new(SomeError("some error"))));

    // Two waiters of one flight get the very same error.
    let gate = Gate::shared();
    let first = g.do_chan("key", {
        let (gate, runs) = (gate.clone(), runs.clone());
        move |_| {
            runs.hit();
            async move {
                gate.wait().await;
                Err(Arc::new(SomeError("shared error")))
            }
        }
    });
    let second = g.do_chan("key", |_| async {
        unreachable!("joins the running flight")
    });
    let a = rt.spawn(first);
    let b = rt.spawn(second);
    gate.open();
    let (a, b) = (a.value().await, b.value().await);
    let (a, b) = (a.unwrap_err(), b.unwrap_err());
    assert!(
        Arc::ptr_eq(&a, &b),
        "both waiters hold the one shared error"
    );
    assert_eq!(*a, SomeError("shared error"));
    assert_eq!(runs.get(), 2);
    assert_eq!(g.in_flight(), 0);
});

// TestDoDupSuppress: N callers, the work held until all of them joined: one execution, every
// caller gets the value, and it is shared for all of them.
all_runtimes!(do_dup_suppress, |rt| async move {
    const N: usize = 10;
    let g: Arc<KeyedGroup<&str, String>> = Arc::new(KeyedGroup::new());
    let joined = Latch::shared();
    let runs = Counter::shared();
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let (g, joined, runs) = (g.clone(), joined.clone(), runs.clone());
            rt.spawn(async move {
                let work = {
                    let joined = joined.clone();
                    move |k: &'static str| {
                        runs.hit();
                        async move {
                            joined.wait_for(N).await;
                            format!("value-{k}")
                        }
                    }
                };
                arrive_then(&joined, g.call("key", work).with_role().go_shared()).await
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.value().await, ("value-key".to_owned(), true));
    }
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// TestForget / TestForgetUnshared: after `forget`, a new call starts a new flight while the old
// one still runs; the old waiters get the old value, the new callers the new one, and the old
// flight finishing does not remove the new flight's entry.
all_runtimes!(forget_while_running, |rt| async move {
    let g: Arc<KeyedGroup<&str, u32>> = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    let spawn_caller = |latch: &Arc<Latch>, gate: &Arc<Gate>, value: u32| {
        let (g, latch, gate, runs) = (g.clone(), latch.clone(), gate.clone(), runs.clone());
        rt.spawn(async move {
            let work = move |_| {
                runs.hit();
                async move {
                    gate.wait().await;
                    value
                }
            };
            arrive_then(&latch, g.call("key", work).with_role().go_shared()).await
        })
    };

    let (old_joined, old_gate) = (Latch::shared(), Gate::shared());
    let old: Vec<_> = (0..2)
        .map(|_| spawn_caller(&old_joined, &old_gate, 1))
        .collect();
    old_joined.wait_for(2).await;
    assert_eq!(g.in_flight(), 1);
    assert!(g.forget("key"));
    assert!(
        !g.forget("key"),
        "a forgotten flight is not forgotten twice"
    );
    assert_eq!(g.in_flight(), 0, "a forgotten flight no longer counts");

    let (new_joined, new_gate) = (Latch::shared(), Gate::shared());
    let mut new: Vec<_> = (0..2)
        .map(|_| spawn_caller(&new_joined, &new_gate, 2))
        .collect();
    new_joined.wait_for(2).await;
    assert_eq!(g.in_flight(), 1);
    assert_eq!(runs.get(), 2);

    old_gate.open();
    for h in old {
        assert_eq!(
            h.value().await,
            (1, true),
            "old waiters keep the old flight"
        );
    }
    assert_eq!(
        g.in_flight(),
        1,
        "the old flight finishing must not remove the new flight's entry"
    );

    // A caller arriving now joins the new flight.
    new.push(spawn_caller(&new_joined, &new_gate, 3));
    new_joined.wait_for(3).await;
    new_gate.open();
    for h in new {
        assert_eq!(h.value().await, (2, true));
    }
    assert_eq!(runs.get(), 2);
    assert_eq!(g.in_flight(), 0);
});

// TestDoChan: `do_chan` returns an owned receiver of the value.
all_runtimes!(do_chan, |rt| async move {
    let g: KeyedGroup<&str, String> = KeyedGroup::new();
    let runs = Counter::new();
    let rx = g.do_chan("key", |k| {
        runs.hit();
        async move { format!("bar-{k}") }
    });
    assert_eq!(
        runs.get(),
        1,
        "do_chan calls the closure of a flight it starts at once"
    );
    assert_eq!(g.in_flight(), 1);
    let (v, shared) = rt.spawn(rx.with_role().go_shared()).value().await;
    assert_eq!((v.as_str(), shared), ("bar-key", false));
    assert_eq!(g.in_flight(), 0);
});

// TestPanicDo: the work panics with 5 callers waiting; every caller panics (one with the
// original payload, the others with `Panicked` carrying its message), the key is free afterwards.
all_runtimes!(panic_do, |rt| async move {
    const N: usize = 5;
    let g: Arc<KeyedGroup<&str, u32>> = Arc::new(KeyedGroup::new());
    let joined = Latch::shared();
    let runs = Counter::shared();
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let (g, joined, runs) = (g.clone(), joined.clone(), runs.clone());
            rt.spawn(async move {
                let work = {
                    let joined = joined.clone();
                    move |_| {
                        runs.hit();
                        async move {
                            joined.wait_for(N).await;
                            provoke_panic::<u32>("panic_do")
                        }
                    }
                };
                arrive_then(&joined, g.call("key", work)).await
            })
        })
        .collect();
    let message = provoked_message("panic_do");
    let (mut original, mut followers) = (0, 0);
    for h in handles {
        let payload = h
            .await
            .expect_err("every waiter of a panicked flight panics");
        match panic_kind(&*payload) {
            PanicKind::Original(m) if m == message => original += 1,
            PanicKind::Follower(m) if m == message => followers += 1,
            other => panic!("unexpected payload {other:?}"),
        }
    }
    assert_eq!((original, followers), (1, N - 1));
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    // Not poisoned: the key is free for a new flight.
    assert_eq!(g.call("key", |_| async { 7 }).await, 7);
    assert_eq!(g.in_flight(), 0);
});

// TestGoexitDo, the Rust way: the caller that started (and drove) the flight is dropped
// mid-flight; the followers finish the same work, which runs once.
all_runtimes!(leader_dropped_mid_flight, |rt| async move {
    const FOLLOWERS: usize = 3;
    let g: Arc<KeyedGroup<&str, u32>> = Arc::new(KeyedGroup::new());
    let gate = Gate::shared();
    let runs = Counter::shared();
    let finished = Counter::shared();
    let dropped = DropFlag::new();
    let work = {
        let (gate, runs, finished, guard) = (
            gate.clone(),
            runs.clone(),
            finished.clone(),
            dropped.guard(),
        );
        move |_| {
            runs.hit();
            async move {
                let _guard = guard;
                gate.wait().await;
                finished.hit();
                42
            }
        }
    };
    let mut leader = Box::pin(g.call("key", work).with_role().go_shared());
    assert!(futures_lite::future::poll_once(leader.as_mut())
        .await
        .is_none());
    assert_eq!(runs.get(), 1);

    let joined = Latch::shared();
    let followers: Vec<_> = (0..FOLLOWERS)
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
        .collect();
    joined.wait_for(FOLLOWERS).await;
    drop(leader);
    assert!(!dropped.is_dropped(), "the work lives on for the followers");
    assert_eq!(g.in_flight(), 1);

    gate.open();
    for h in followers {
        assert_eq!(h.value().await, (42, true));
    }
    assert_eq!(runs.get(), 1);
    assert_eq!(finished.get(), 1);
    assert_eq!(dropped.drops(), 1);
    assert_eq!(g.in_flight(), 0);
});
