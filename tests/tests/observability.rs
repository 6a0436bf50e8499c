//! Roles, counters and the maximum flight age on every runtime: a herd of spawned callers has
//! one starter and counts its joiners, and a flight past the age limit captures no new caller
//! while its own waiters keep it.

use std::sync::Arc;
use std::time::Duration;

use single_flight::{KeyedGroup, Role};
use single_flight_tests::*;

type Group = Arc<KeyedGroup<u32, u32>>;

/// Work that counts its execution and returns `value` once `gate` opens.
fn gated(runs: &Arc<Counter>, gate: &Arc<Gate>, value: u32) -> impl FnOnce(u32) -> GatedWork {
    let (runs, gate) = (runs.clone(), gate.clone());
    move |_| {
        runs.hit();
        Box::pin(async move {
            gate.wait().await;
            value
        })
    }
}

type GatedWork = std::pin::Pin<Box<dyn std::future::Future<Output = u32> + Send>>;

// Eight spawned callers of one key: one started the flight, seven joined it, all eight got the
// value, and the counters say the same.
all_runtimes!(herd_roles_and_counters, |rt| async move {
    const CALLERS: usize = 8;
    let g: Group = Arc::new(KeyedGroup::new());
    let (runs, gate) = (Counter::shared(), Gate::shared());
    // The starter registers first; the others join while the gate is closed.
    let first = g.do_chan(1, gated(&runs, &gate, 5)).with_role();
    let mut callers = vec![rt.spawn(first)];
    for _ in 1..CALLERS {
        let g = g.clone();
        callers.push(rt.spawn(async move {
            g.call(1, |_| async { unreachable!("joins") as u32 })
                .with_role()
                .await
        }));
    }
    let joined = {
        let g = g.clone();
        move || g.stats().joined == (CALLERS - 1) as u64
    };
    within(HANG_BOUND, async {
        while !joined() {
            yield_many(1).await;
        }
    })
    .await;
    gate.open();
    let mut roles = Vec::new();
    for caller in callers {
        let outcome = caller.await.expect("no caller panics");
        assert_eq!((outcome.value, outcome.callers), (5, CALLERS));
        roles.push(outcome.role);
    }
    assert_eq!(roles.iter().filter(|r| **r == Role::Started).count(), 1);
    assert_eq!(
        roles.iter().filter(|r| **r == Role::Joined).count(),
        CALLERS - 1
    );
    let stats = g.stats();
    assert_eq!((stats.started, stats.joined, stats.in_flight), (1, 7, 0));
    assert_eq!(runs.get(), 1);
});

// A flight past the age limit (zero: at once) is not joined: a later caller starts its own,
// while the old flight's waiters, spawned on the runtime, keep the old one.
all_runtimes!(expired_flight_keeps_its_waiters, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new().max_flight_age(Duration::ZERO));
    let (runs, old_gate, new_gate) = (Counter::shared(), Gate::shared(), Gate::shared());
    let old = rt.spawn(g.do_chan(1, gated(&runs, &old_gate, 1)));
    let new = rt.spawn(g.do_chan(1, gated(&runs, &new_gate, 2)));
    // Under a zero limit no call can join any flight, so none counts as in flight.
    assert_eq!(
        g.in_flight(),
        0,
        "no call can join a flight under a zero age limit"
    );
    assert_eq!(g.stats().in_flight, 0);
    new_gate.open();
    assert_eq!(new.await.unwrap(), 2);
    old_gate.open();
    assert_eq!(
        old.await.unwrap(),
        1,
        "the expired flight's waiter keeps it"
    );
    assert_eq!(runs.get(), 2);
    let stats = g.stats();
    assert_eq!((stats.started, stats.expired, stats.in_flight), (2, 1, 0));
});

// Under the limit, the usual sharing.
all_runtimes!(young_flight_is_joined, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new().max_flight_age(Duration::from_secs(3600)));
    let (runs, gate) = (Counter::shared(), Gate::shared());
    let first = rt.spawn(g.do_chan(1, gated(&runs, &gate, 3)));
    let second = rt.spawn(g.do_chan(1, gated(&runs, &gate, 4)));
    assert_eq!((g.in_flight(), g.stats().in_flight), (1, 1));
    gate.open();
    assert_eq!((first.await.unwrap(), second.await.unwrap()), (3, 3));
    assert_eq!(runs.get(), 1);
    assert_eq!(g.stats().expired, 0);
});

// A flight that grows past the limit while it runs stops counting as in flight at that moment
// (no new call would join it), and `forget` no longer finds a flight to forget: it removes the
// entry and counts it as expired. The wait is a lower bound only: the flight is at least `AGE`
// old afterwards, however slowly the machine runs.
all_runtimes!(flight_past_its_age_is_not_in_flight, |rt| async move {
    const AGE: Duration = Duration::from_millis(20);
    let g: Group = Arc::new(KeyedGroup::new().max_flight_age(AGE));
    let (runs, gate) = (Counter::shared(), Gate::shared());
    let old = g.do_chan(1, gated(&runs, &gate, 1));
    std::thread::sleep(AGE);
    assert_eq!(
        g.in_flight(),
        0,
        "a flight past the age limit cannot be joined"
    );
    assert_eq!(g.stats().in_flight, 0);
    assert!(!g.forget(&1), "nothing joinable to forget");
    let stats = g.stats();
    assert_eq!((stats.forgotten, stats.expired), (0, 1));
    let new = rt.spawn(g.do_chan(1, gated(&runs, &gate, 2)));
    gate.open();
    assert_eq!((old.await, new.await.unwrap()), (1, 2));
    assert_eq!(runs.get(), 2);
    assert_eq!(g.in_flight(), 0);
});
