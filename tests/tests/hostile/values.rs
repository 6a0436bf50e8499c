//! Values whose `Clone` panics.

use super::*;

// ---------------------------------------------------------------------------------------------
// Values.

// `V::clone` panics for one follower of a flight with three waiters: that follower panics with
// the clone's panic, the other two get the value, and the last taker still finds it.
hostile!(value_clone_panics_for_a_follower, |_rt| async move {
    let f = Fixture::new();
    let gate = Gate::shared();
    let leader = f.group.do_chan(f.key(1), f.gated(&gate, 7));
    let second = f.group.do_chan(f.key(1), f.work(8));
    let third = f.group.do_chan(f.key(1), f.work(9));
    gate.open();
    // The first clone (the leader's share) succeeds, the second panics.
    Traps::arm(&f.traps.clone_value, 2);
    assert_eq!(
        catch(leader).await.expect("the leader's clone succeeds").v,
        7
    );
    expect_panic(catch(second).await, "V::clone panics");
    assert_eq!(
        catch(third)
            .await
            .expect("the last taker moves the value")
            .v,
        7
    );
    f.assert_usable(1).await;
});

// `V::clone` panics for the waiter that completes the flight while the other waiters of the
// flight are already waiting: that waiter panics with the clone's panic, and every other waiter
// must still be woken and get the value.
hostile!(value_clone_panics_for_the_finisher, |_rt| async move {
    let f = Fixture::new();
    let gate = Gate::shared();
    let opener = {
        let gate = gate.clone();
        async move {
            yield_now().await;
            gate.open();
            Ok(None)
        }
    };

    // All in one task: the leader starts the flight and drives it (the work waits for the
    // gate); the followers register and listen; then the gate opens and the leader's next poll
    // completes the work, with the clone of its share armed to panic.
    Traps::arm(&f.traps.clone_value, 1);
    let futs: Vec<Pin<Box<dyn Future<Output = Outcome> + Send + '_>>> = vec![
        Box::pin(waiter(f.group.call(f.key(1), f.gated(&gate, 7)))),
        Box::pin(waiter(f.group.call(f.key(1), f.work(8)))),
        Box::pin(waiter(f.group.call(f.key(1), f.work(9)))),
        Box::pin(opener),
    ];
    let outcomes = join_all(futs).await;
    let mut outcomes = outcomes.into_iter();
    expect_panic(outcomes.next().expect("leader"), "V::clone panics");
    for follower in outcomes.by_ref().take(2) {
        assert_eq!(follower.expect("followers get the value"), Some(7));
    }
    f.assert_usable(1).await;
});
