//! `forget` (semantic 9 of the core's crate docs: "a finished or forgotten flight never removes a
//! newer flight's entry for its key"):
//! after `forget`, the next call starts a new flight, the old flight's waiters keep the old one,
//! and the old flight ending (value, panic, abandonment) leaves the new flight registered.

use std::sync::Arc;

use single_flight::{Detached, KeyedGroup};
use single_flight_tests::*;

type Group = Arc<KeyedGroup<String, u32>>;

/// Work that counts its execution, waits for `gate` and returns `value`.
fn gated(
    runs: &Arc<Counter>,
    gate: &Arc<Gate>,
    value: u32,
) -> impl FnOnce(String) -> std::pin::Pin<Box<dyn std::future::Future<Output = u32> + Send>> {
    let (runs, gate) = (runs.clone(), gate.clone());
    move |_| {
        runs.hit();
        Box::pin(async move {
            gate.wait().await;
            value
        })
    }
}

// forget's return value and in_flight, with a borrowed key (`&str` for `String` keys).
all_runtimes!(forget_return_value, |_rt| async move {
    let g: KeyedGroup<String, u32> = KeyedGroup::new();
    assert!(!g.forget("k"), "nothing to forget in a fresh group");
    let (runs, gate) = (Counter::shared(), Gate::shared());
    let rx = g.do_chan("k".to_owned(), gated(&runs, &gate, 1));
    assert!(!g.forget("other"));
    assert_eq!(g.in_flight(), 1);
    assert!(g.forget("k"));
    assert!(!g.forget("k"), "already forgotten");
    assert_eq!(g.in_flight(), 0);
    gate.open();
    assert_eq!(
        rx.await,
        1,
        "the forgotten flight's waiter keeps its flight"
    );
    assert!(!g.forget("k"));
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// The old flight ends with a value after a new one started: the new entry stays.
all_runtimes!(old_value_keeps_new_entry, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    let (old_gate, new_gate) = (Gate::shared(), Gate::shared());
    let old = g.do_chan("k".into(), gated(&runs, &old_gate, 1));
    let old_follower = g.do_chan("k".into(), |_| async { unreachable!("joins") });
    assert!(g.forget("k"));
    let new = g.do_chan("k".into(), gated(&runs, &new_gate, 2));
    let (old, old_follower) = (rt.spawn(old), rt.spawn(old_follower));
    old_gate.open();
    assert_eq!((old.value().await, old_follower.value().await), (1, 1));
    assert_eq!(g.in_flight(), 1, "the old flight's end left the new entry");
    let new_follower = g.do_chan("k".into(), |_| async {
        unreachable!("joins the new flight")
    });
    new_gate.open();
    assert_eq!((rt.spawn(new).value().await, new_follower.await), (2, 2));
    assert_eq!(runs.get(), 2);
    assert_eq!(g.in_flight(), 0);
});

// The old flight is abandoned (its last waiter leaves) after a new one started: the new entry
// stays, the old work is dropped.
all_runtimes!(old_abandoned_keeps_new_entry, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    let (old_gate, new_gate) = (Gate::shared(), Gate::shared());
    let dropped = DropFlag::new();
    let old = g.do_chan("k".into(), {
        let (gate, guard) = (old_gate.clone(), dropped.guard());
        move |_| async move {
            let _guard = guard;
            gate.wait().await;
            1
        }
    });
    assert!(g.forget("k"));
    let new = g.do_chan("k".into(), gated(&runs, &new_gate, 2));
    drop(old);
    assert!(dropped.is_dropped());
    assert_eq!(
        g.in_flight(),
        1,
        "abandoning the old flight left the new entry"
    );
    new_gate.open();
    assert_eq!(rt.spawn(new).value().await, 2);
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// The old flight panics after a new one started: the new entry stays, the new flight is fine.
all_runtimes!(old_panic_keeps_new_entry, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    let (old_gate, new_gate) = (Gate::shared(), Gate::shared());
    let old = g.do_chan("k".into(), {
        let (gate, runs) = (old_gate.clone(), runs.clone());
        move |_| {
            runs.hit();
            async move {
                gate.wait().await;
                provoke_panic::<u32>("old flight")
            }
        }
    });
    assert!(g.forget("k"));
    let new = g.do_chan("k".into(), gated(&runs, &new_gate, 2));
    let old = rt.spawn(old);
    old_gate.open();
    let payload = old.await.expect_err("the old flight panicked");
    assert_eq!(
        panic_kind(&*payload),
        PanicKind::Original(provoked_message("old flight"))
    );
    assert_eq!(
        g.in_flight(),
        1,
        "the old flight's panic left the new entry"
    );
    new_gate.open();
    assert_eq!(rt.spawn(new).value().await, 2);
    assert_eq!(runs.get(), 2);
    assert_eq!(g.in_flight(), 0);
});

// Forgetting a detached flight: it runs on for its waiters, a new call starts a new flight.
all_runtimes!(forget_detached, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    let (old_gate, new_gate) = (Gate::shared(), Gate::shared());
    let mut task: Option<JoinHandle<()>> = None;
    let old = g.do_chan_detached(
        "k".into(),
        gated(&runs, &old_gate, 1),
        |t: Detached<u32>| {
            task = Some(rt.spawn(t));
        },
    );
    assert!(g.forget("k"));
    let new = g.do_chan("k".into(), gated(&runs, &new_gate, 2));
    old_gate.open();
    assert_eq!(old.await, 1);
    task.expect("spawned").await.expect("the task completes");
    assert_eq!(g.in_flight(), 1);
    new_gate.open();
    assert_eq!(new.await, 2);
    assert_eq!(runs.get(), 2);
    assert_eq!(g.in_flight(), 0);
});

// Many generations: forget and restart several times while every flight is held; each
// generation's waiters get their own generation's value.
all_runtimes!(many_generations, |rt| async move {
    const GENERATIONS: u32 = 5;
    let g: Group = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    let gates: Vec<_> = (0..GENERATIONS).map(|_| Gate::shared()).collect();
    let mut handles = Vec::new();
    for (generation, gate) in (0..GENERATIONS).zip(&gates) {
        let a = g.do_chan("k".into(), gated(&runs, gate, generation));
        let b = g.do_chan("k".into(), |_| async { unreachable!("joins") });
        handles.push((generation, rt.spawn(a), rt.spawn(b)));
        assert_eq!(g.in_flight(), 1);
        assert!(g.forget("k"));
        assert_eq!(g.in_flight(), 0);
    }
    // Release in reverse order: each finishing generation leaves the others alone.
    for gate in gates.iter().rev() {
        gate.open();
    }
    for (generation, a, b) in handles {
        assert_eq!((a.value().await, b.value().await), (generation, generation));
    }
    assert_eq!(runs.get(), GENERATIONS as usize);
    assert_eq!(g.in_flight(), 0);
});
