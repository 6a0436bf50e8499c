//! Re-entrant calls are detected (semantic 5 of the core's crate docs): work that awaits its own flight (same
//! group, same key) panics with a clear message instead of waiting for itself forever, directly,
//! through `do_chan`, through another key's flight polled on the same thread, and in a detached
//! flight. Calls that are not re-entrant are not flagged. The group stays usable.

use std::sync::Arc;

use single_flight::{Detached, Group, KeyedGroup, Panicked};
use single_flight_tests::*;

type Keyed = Arc<KeyedGroup<&'static str, u32>>;

/// Asserts that `payload` is a re-entrancy panic (original or relayed as `Panicked`).
fn assert_reentrant(payload: &(dyn std::any::Any + Send)) {
    let message = panic_message(payload).expect("a printable payload");
    assert!(
        message.contains("re-entrant"),
        "expected the re-entrancy panic, got {message:?}"
    );
}

// Work that calls its own key and awaits it.
all_runtimes!(reentrant_call, |_rt| async move {
    let g: Keyed = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    let work = {
        let (g, runs) = (g.clone(), runs.clone());
        move |_| {
            runs.hit();
            async move { g.call("key", |_| async { unreachable!("joins") }).await + 1 }
        }
    };
    let payload = catch(g.call("key", work))
        .await
        .expect_err("a re-entrant call panics");
    assert_reentrant(&*payload);
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call("key", |_| async { 3 }).await, 3, "usable afterwards");
    assert_eq!(g.in_flight(), 0);
});

// Work that joins its own flight through `do_chan` and awaits the receiver; a follower of the
// flight gets the re-entrancy message as `Panicked`.
all_runtimes!(reentrant_do_chan, |rt| async move {
    let g: Keyed = Arc::new(KeyedGroup::new());
    let (runs, gate) = (Counter::shared(), Gate::shared());
    let work = {
        let (g, runs, gate) = (g.clone(), runs.clone(), gate.clone());
        move |_| {
            runs.hit();
            async move {
                gate.wait().await;
                g.do_chan("key", |_| async { unreachable!("joins") }).await
            }
        }
    };
    let a = rt.spawn(g.do_chan("key", work));
    let b = rt.spawn(g.do_chan("key", |_| async { unreachable!("joins") }));
    gate.open();
    let a = a.await.expect_err("every waiter panics");
    let b = b.await.expect_err("every waiter panics");
    assert_reentrant(&*a);
    assert_reentrant(&*b);
    assert!(
        a.is::<Panicked>() != b.is::<Panicked>(),
        "one original payload, one Panicked"
    );
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call("key", |_| async { 4 }).await, 4);
    assert_eq!(g.in_flight(), 0);
});

// Work for "a" calls "b", whose work calls "a": b's work is polled on the same thread inside a's
// work, so the wait for "a" is re-entrant. Both flights end, both keys are free.
all_runtimes!(reentrant_through_other_key, |_rt| async move {
    let g: Keyed = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    let work_a = {
        let (g, runs) = (g.clone(), runs.clone());
        move |_| {
            runs.hit();
            async move {
                let work_b = {
                    let (g, runs) = (g.clone(), runs.clone());
                    move |_| {
                        runs.hit();
                        async move { g.call("a", |_| async { unreachable!("joins") }).await }
                    }
                };
                g.call("b", work_b).await
            }
        }
    };
    let payload = catch(g.call("a", work_a))
        .await
        .expect_err("a re-entrant chain panics");
    assert_reentrant(&*payload);
    assert_eq!(runs.get(), 2);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call("a", |_| async { 1 }).await, 1);
    assert_eq!(g.call("b", |_| async { 2 }).await, 2);
    assert_eq!(g.in_flight(), 0);
});

// Not re-entrant: work that calls another key of the same group, or the same key of another
// group, completes normally.
all_runtimes!(nested_calls_that_are_not_reentrant, |_rt| async move {
    let g: Keyed = Arc::new(KeyedGroup::new());
    let other: Keyed = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    let work = {
        let (g, other, runs) = (g.clone(), other.clone(), runs.clone());
        move |_| async move {
            runs.hit();
            let b = g.call("b", |_| async { 20 }).await;
            let same_key_other_group = other.call("a", |_| async { 300 }).await;
            1 + b + same_key_other_group
        }
    };
    assert_eq!(g.call("a", work).await, 321);
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(other.in_flight(), 0);
});

// A detached flight's work that awaits its own flight: the panic is caught in the task and
// reaches the waiters with the re-entrancy message.
all_runtimes!(reentrant_detached, |rt| async move {
    let g: Keyed = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    let work = {
        let (g, runs) = (g.clone(), runs.clone());
        move |_| {
            runs.hit();
            async move { g.do_chan("key", |_| async { unreachable!("joins") }).await }
        }
    };
    let mut task: Option<JoinHandle<()>> = None;
    let rx = g.do_chan_detached("key", work, |t: Detached<u32>| task = Some(rt.spawn(t)));
    let payload = catch(rx).await.expect_err("the waiter panics");
    assert!(payload.is::<Panicked>());
    assert_reentrant(&*payload);
    task.expect("spawned")
        .await
        .expect("the detached task completes normally");
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call("key", |_| async { 6 }).await, 6);
});

// The unkeyed group: work that calls the group again.
all_runtimes!(reentrant_group, |_rt| async move {
    let g: Arc<Group<u32>> = Arc::new(Group::new());
    let runs = Counter::shared();
    let work = {
        let (g, runs) = (g.clone(), runs.clone());
        move || async move {
            runs.hit();
            g.call(|| async { unreachable!("joins") }).await
        }
    };
    let payload = catch(g.call(work)).await.expect_err("re-entrant");
    assert_reentrant(&*payload);
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call(|| async { 8 }).await, 8);
    assert_eq!(g.in_flight(), 0);
});
