//! Keys whose `Hash`, `Eq` or `Clone` panic, keys that lie about their identity, and keys
//! whose `Drop` panics.

use super::*;

// ---------------------------------------------------------------------------------------------
// Keys.

// `K::hash` runs before any lock is taken: the caller panics, nothing is registered.
hostile!(key_hash_panics, |_rt| async move {
    let f = Fixture::new();

    Traps::arm(&f.traps.hash, 1);
    let result = catch(f.group.call(f.key(1), f.work(1))).await;
    expect_panic(result, "K::hash panics");
    f.assert_usable(1).await;

    Traps::arm(&f.traps.hash, 1);
    let result = catch_unwind(AssertUnwindSafe(|| f.group.do_chan(f.key(1), f.work(1))));
    expect_panic(result, "K::hash panics");
    f.assert_usable(1).await;

    // While a flight for the key runs: the flight is untouched and still completes.
    let gate = Gate::shared();
    let running = f.group.do_chan(f.key(1), f.gated(&gate, 7));
    Traps::arm(&f.traps.hash, 1);
    let result = catch(f.group.call(f.key(1), f.work(8))).await;
    expect_panic(result, "K::hash panics");
    Traps::arm(&f.traps.hash, 1);
    let result = catch_unwind(AssertUnwindSafe(|| f.group.forget(&f.key(1))));
    expect_panic(result, "K::hash panics");
    assert_eq!(f.group.in_flight(), 1);
    gate.open();
    assert_eq!(running.await.v, 7);
    f.assert_usable(1).await;
});

// `K::eq` runs under the group's lock, when a flight of the same hash is running: a panic there
// must neither poison the lock nor disturb the running flight.
hostile!(key_eq_panics, |_rt| async move {
    let f = Fixture::new();
    let gate = Gate::shared();
    let running = f.group.do_chan(f.key(1), f.gated(&gate, 7));

    // The second joiner's comparison panics ("on a chosen call"); the first joins normally.
    Traps::arm(&f.traps.eq, 2);
    let joined = f.group.do_chan(f.key(1), f.work(8));
    let result = catch(f.group.call(f.key(1), f.work(9))).await;
    expect_panic(result, "K::eq panics");
    assert_eq!(f.group.in_flight(), 1, "the running flight is still there");

    // `forget` compares keys too.
    Traps::arm(&f.traps.eq, 1);
    let result = catch_unwind(AssertUnwindSafe(|| f.group.forget(&f.key(1))));
    expect_panic(result, "K::eq panics");
    assert_eq!(
        f.group.in_flight(),
        1,
        "a forget that panicked forgot nothing"
    );

    // `do_chan` panics synchronously.
    Traps::arm(&f.traps.eq, 1);
    let result = catch_unwind(AssertUnwindSafe(|| f.group.do_chan(f.key(1), f.work(10))));
    expect_panic(result, "K::eq panics");

    // The lock is not poisoned: another joiner gets in, and the flight ends normally.
    let late = f.group.do_chan(f.key(1), f.work(11));
    gate.open();
    let (a, (b, c)) =
        futures_lite::future::zip(running, futures_lite::future::zip(joined, late)).await;
    assert_eq!((a.v, b.v, c.v), (7, 7, 7));
    f.assert_usable(1).await;
});

// `K::clone` runs under the group's lock when a call starts a flight (the key kept in the map):
// nothing is registered, and the key is not wedged.
hostile!(key_clone_panics, |_rt| async move {
    let f = Fixture::new();

    Traps::arm(&f.traps.clone_key, 1);
    let result = catch(f.group.call(f.key(1), f.work(1))).await;
    expect_panic(result, "K::clone panics");
    assert_eq!(f.group.in_flight(), 0);
    f.assert_usable(1).await;

    Traps::arm(&f.traps.clone_key, 1);
    let result = catch_unwind(AssertUnwindSafe(|| f.group.do_chan(f.key(1), f.work(1))));
    expect_panic(result, "K::clone panics");
    f.assert_usable(1).await;

    Traps::arm(&f.traps.clone_key, 1);
    let result = catch_unwind(AssertUnwindSafe(|| {
        f.group
            .do_chan_detached(f.key(1), f.work(1), |_task| unreachable!("never started"))
    }));
    expect_panic(result, "K::clone panics");
    f.assert_usable(1).await;
});

// Keys that lie: a `Hash` that changes on every call and an `Eq` that is never true. Nothing is
// shared (each call runs its own flight), but nothing leaks or wedges either.
hostile!(lying_keys, |_rt| async move {
    #[derive(Clone, Debug)]
    struct Liar(Arc<AtomicUsize>);
    impl Hash for Liar {
        fn hash<H: Hasher>(&self, state: &mut H) {
            self.0.fetch_add(1, SeqCst).hash(state);
        }
    }
    impl PartialEq for Liar {
        fn eq(&self, _: &Self) -> bool {
            false
        }
    }
    impl Eq for Liar {}

    let group: KeyedGroup<Liar, u32> = KeyedGroup::new();
    let liar = Liar(Arc::new(AtomicUsize::new(0)));
    let gate = Gate::shared();
    let runs = Arc::new(AtomicUsize::new(0));
    let receivers: Vec<_> = (0..4)
        .map(|i| {
            let (gate, runs) = (gate.clone(), runs.clone());
            group.do_chan(liar.clone(), move |_| {
                runs.fetch_add(1, SeqCst);
                async move {
                    gate.wait().await;
                    i
                }
            })
        })
        .collect();
    assert_eq!(runs.load(SeqCst), 4, "a key equal to nothing joins nothing");
    assert_eq!(group.in_flight(), 4);
    assert!(!group.forget(&liar));
    gate.open();
    let mut values = Vec::new();
    for rx in receivers {
        values.push(rx.await);
    }
    assert_eq!(values, [0, 1, 2, 3]);
    assert_eq!(
        group.in_flight(),
        0,
        "flights are unlinked by identity, not by key"
    );
});

// ---------------------------------------------------------------------------------------------
// Keys whose `Drop` panics. Semantic 9 of the core's crate docs names `Hash`, `Eq`, `Clone` and `V::clone` as the user code
// that may panic inside the group; a panicking `Drop` of a key is outside that list, but the core
// drops keys as user code too, so these pin down that it wedges nothing: no waiter left behind,
// no key gated forever, no waiter left asleep.

// A joiner's key is dropped after it joined: the panic must not leave a ghost waiter that keeps
// the flight (and its work) alive after every real waiter has left.
hostile!(key_drop_panics_when_joining, |_rt| async move {
    let f = Fixture::new();
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    let first = f.group.do_chan(f.key(1), move |_| async move {
        let _guard = guard;
        std::future::pending::<HVal>().await
    });
    let key = f.key(1);
    let work = f.work(2);
    Traps::arm(&f.traps.drop_key, 1);
    let result = catch_unwind(AssertUnwindSafe(|| f.group.do_chan(key, work)));
    match result {
        // The joiner registered before its key was dropped: it may get its receiver.
        Ok(joined) => drop(joined),
        Err(payload) => drop(expect_panic(Err::<(), _>(payload), "K::drop panics")),
    }
    drop(first); // the last waiter leaves
    assert!(
        dropped.is_dropped(),
        "the work must be dropped with its last waiter"
    );
    f.assert_usable(1).await;
});

// The key kept in the group is dropped when an abandoned flight is unlinked: the panic must not
// leave the key gated behind a drop that never ends.
hostile!(key_drop_panics_when_abandoning, |_rt| async move {
    let f = Fixture::new();
    let mut rx = f
        .group
        .do_chan(f.key(1), |_| std::future::pending::<HVal>());
    assert!(poll_once(&mut rx).await.is_none());
    // The next key dropped is the group's copy. Its panic may reach the waiter that leaves, or
    // be reported and swallowed by the group.
    Traps::arm(&f.traps.drop_key, 1);
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(rx))) {
        expect_panic(Err::<(), _>(payload), "K::drop panics");
    }
    f.assert_usable(1).await;
});

// The key kept in the group is dropped when a finished flight is unlinked, while other waiters
// listen: they must still be woken.
hostile!(key_drop_panics_when_finishing, |_rt| async move {
    let f = Fixture::new();
    let gate = Gate::shared();
    let opener = {
        let (gate, traps) = (gate.clone(), f.traps.clone());
        async move {
            yield_now().await;
            // Every caller's own key has been dropped by now: the next is the group's copy.
            Traps::arm(&traps.drop_key, 1);
            gate.open();
            Ok(None)
        }
    };
    let futs: Vec<Pin<Box<dyn Future<Output = Outcome> + Send + '_>>> = vec![
        Box::pin(waiter(f.group.call(f.key(1), f.gated(&gate, 7)))),
        Box::pin(waiter(f.group.call(f.key(1), f.work(8)))),
        Box::pin(waiter(f.group.call(f.key(1), f.work(9)))),
        Box::pin(opener),
    ];
    let outcomes = join_all(futs).await;
    let mut outcomes = outcomes.into_iter();
    let _finisher = outcomes.next().expect("leader"); // a value or the drop's panic
    for follower in outcomes.by_ref().take(2) {
        assert_eq!(follower.expect("followers get the value"), Some(7));
    }
    f.assert_usable(1).await;
});
