//! Misuse of a `Receiver`, a spawn hook that panics, and groups dropped while their flights
//! run.

use super::*;

// ---------------------------------------------------------------------------------------------
// Misuse.

// A receiver polled again after it returned its value panics with a clear message.
hostile!(receiver_polled_after_completion, |_rt| async move {
    let f = Fixture::new();
    let mut rx = f.group.do_chan(f.key(1), f.work(5));
    assert_eq!((&mut rx).await.v, 5);
    let result = catch(&mut rx).await;
    expect_panic(result, "polled after it returned its value");
    drop(rx);
    f.assert_usable(1).await;
});

// The spawn hook of a detached flight panics: `do_chan_detached` panics, the work handed back
// is dropped with its last waiter, and the key is free.
hostile!(spawn_hook_panics, |_rt| async move {
    let f = Fixture::new();
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    let v = f.val(1);
    let result = catch_unwind(AssertUnwindSafe(|| {
        f.group.do_chan_detached(
            f.key(1),
            move |_| async move {
                let _guard = guard;
                v
            },
            |_task| panic!("{TAG} the spawn hook panics"),
        )
    }));
    expect_panic(result, "the spawn hook panics");
    assert!(dropped.is_dropped(), "nobody is left to run the work");
    f.assert_usable(1).await;
});

// ---------------------------------------------------------------------------------------------
// Groups dropped while their flights run.

// Receivers own their place in the flight: they complete after the group is gone, and detached
// work runs to its end with nobody waiting.
hostile!(group_dropped_while_flights_run, |rt| async move {
    let traps = Arc::new(Traps::default());
    let val = |v| HVal {
        v,
        traps: traps.clone(),
    };
    let key = |id| HKey {
        id,
        traps: traps.clone(),
    };
    let group: HGroup = KeyedGroup::new();
    let gate = Gate::shared();

    // Receivers of a running flight.
    let (g, v) = (gate.clone(), val(7));
    let first = group.do_chan(key(1), move |_| async move {
        g.wait().await;
        v
    });
    let second = group.do_chan(key(1), |_| std::future::ready(val(0)));

    // A detached flight whose only receiver is dropped.
    let finished = DropFlag::default();
    let (g, v, done) = (gate.clone(), val(8), finished.guard());
    let detached = group.do_chan_detached(
        key(2),
        move |_| async move {
            g.wait().await;
            drop(done);
            v
        },
        |task| drop(rt.spawn(task)),
    );
    drop(detached);

    // A flight whose work never completes and whose receiver is dropped after the group.
    let abandoned = DropFlag::default();
    let guard = abandoned.guard();
    let never = group.do_chan(key(3), move |_| async move {
        let _guard = guard;
        std::future::pending::<HVal>().await
    });

    drop(group);
    gate.open();
    let (a, b) = futures_lite::future::zip(first, second).await;
    assert_eq!((a.v, b.v), (7, 7));
    finished.wait().await;
    drop(never);
    assert!(
        abandoned.is_dropped(),
        "the last waiter's drop drops the work"
    );
});
