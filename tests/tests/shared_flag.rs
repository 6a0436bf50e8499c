//! Go's `shared` flag: true when the value went to more than one caller (the starter included),
//! for `Outcome::shared` through `with_role()` on `KeyedGroup::call`, `Group::call` and `Receiver`.

use std::sync::Arc;

use single_flight::{Group, KeyedGroup};
use single_flight_tests::*;

// A solo call is not shared.
all_runtimes!(solo_is_not_shared, |_rt| async move {
    let runs = Counter::new();
    let keyed: KeyedGroup<u8, u8> = KeyedGroup::new();
    let work = |k| {
        runs.hit();
        async move { k }
    };
    assert_eq!(
        keyed.call(1, work).with_role().go_shared().await,
        (1, false)
    );
    assert_eq!(
        keyed.do_chan(3, work).with_role().go_shared().await,
        (3, false)
    );
    let group: Group<u8> = Group::new();
    let work = || {
        runs.hit();
        async { 2 }
    };
    assert_eq!(group.call(work).with_role().go_shared().await, (2, false));
    assert_eq!(
        group.do_chan(work).with_role().go_shared().await,
        (2, false)
    );
    assert_eq!(runs.get(), 4, "every solo call runs its own work");
    assert_eq!((keyed.in_flight(), group.in_flight()), (0, 0));
});

// The leader and every follower of a joined flight see `shared == true` (KeyedGroup).
all_runtimes!(joined_flight_is_shared_keyed, |rt| async move {
    const N: usize = 4;
    let g: Arc<KeyedGroup<u8, u8>> = Arc::new(KeyedGroup::new());
    let (joined, runs) = (Latch::shared(), Counter::shared());
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let (g, joined, runs) = (g.clone(), joined.clone(), runs.clone());
            rt.spawn(async move {
                let work = {
                    let joined = joined.clone();
                    move |k| {
                        runs.hit();
                        async move {
                            joined.wait_for(N).await;
                            k
                        }
                    }
                };
                arrive_then(&joined, g.call(9, work).with_role().go_shared()).await
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.value().await, (9, true));
    }
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// The same for the unkeyed Group.
all_runtimes!(joined_flight_is_shared_group, |rt| async move {
    const N: usize = 3;
    let g: Arc<Group<u8>> = Arc::new(Group::new());
    let (joined, runs) = (Latch::shared(), Counter::shared());
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let (g, joined, runs) = (g.clone(), joined.clone(), runs.clone());
            rt.spawn(async move {
                let work = {
                    let joined = joined.clone();
                    move || {
                        runs.hit();
                        async move {
                            joined.wait_for(N).await;
                            8
                        }
                    }
                };
                arrive_then(&joined, g.call(work).with_role().go_shared()).await
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.value().await, (8, true));
    }
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// Receivers and calls mixed: every waiter of the flight sees `true`.
all_runtimes!(receiver_with_shared, |rt| async move {
    let g: Arc<KeyedGroup<u8, u8>> = Arc::new(KeyedGroup::new());
    let (gate, runs) = (Gate::shared(), Counter::new());
    let a = g.do_chan(1, |k| {
        runs.hit();
        let gate = gate.clone();
        async move {
            gate.wait().await;
            k + 10
        }
    });
    let b = g.do_chan(1, |_| async { unreachable!("joins") });
    let joined = Latch::shared();
    let c = {
        let (g, joined) = (g.clone(), joined.clone());
        rt.spawn(async move {
            arrive_then(
                &joined,
                g.call(1, |_| async { unreachable!("joins") })
                    .with_role()
                    .go_shared(),
            )
            .await
        })
    };
    joined.wait_for(1).await;
    let (a, b) = (
        rt.spawn(a.with_role().go_shared()),
        rt.spawn(b.with_role().go_shared()),
    );
    gate.open();
    assert_eq!(a.value().await, (11, true));
    assert_eq!(b.value().await, (11, true));
    assert_eq!(c.value().await, (11, true));
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// A follower that left before the end does not count: the value went to one caller only.
all_runtimes!(not_shared_when_the_others_left, |_rt| async move {
    let g: KeyedGroup<u8, u8> = KeyedGroup::new();
    let (gate, runs) = (Gate::shared(), Counter::new());
    let leader = g.do_chan(1, |k| {
        runs.hit();
        let gate = gate.clone();
        async move {
            gate.wait().await;
            k
        }
    });
    let follower = g.do_chan(1, |_| async { unreachable!("joins") });
    drop(follower);
    gate.open();
    assert_eq!(leader.with_role().go_shared().await, (1, false));
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});
