//! Roles, counters and the maximum flight age: what a caller and an operator can learn about
//! a group's flights.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use futures_lite::future::{block_on, zip};
use single_flight::{Detached, Group, GroupStats, KeyedGroup, Role};

#[test]
fn a_herd_has_one_starter_and_joiners() {
    let group = KeyedGroup::<u8, u8>::new();
    let ((a, b), c) = block_on(zip(
        zip(
            group
                .call(1, |k| async move {
                    // Long enough for the other two to join whoever polls it.
                    for _ in 0..10 {
                        futures_lite::future::yield_now().await;
                    }
                    k
                })
                .with_role(),
            group
                .call(1, |_| async { unreachable!("joins") })
                .with_role(),
        ),
        group
            .call(1, |_| async { unreachable!("joins") })
            .with_role(),
    ));
    assert_eq!(
        [a.role, b.role, c.role],
        [Role::Started, Role::Joined, Role::Joined]
    );
    assert_eq!([a.callers, b.callers, c.callers], [3, 3, 3]);
    assert!(a.shared() && b.shared());
    let stats = group.stats();
    assert_eq!((stats.started, stats.joined), (1, 2));
}

#[test]
fn roles_of_receivers_and_borrowed_keys() {
    let group = KeyedGroup::<String, usize>::new();
    let starter = group.do_chan_ref("ada", |k: String| async move { k.len() });
    let joiner = group
        .call_ref("ada", |_| async { unreachable!("joins") })
        .with_role();
    // The joiner registers first (and drives the work); the starter's receiver takes its share.
    let (b, a) = block_on(zip(joiner, starter.with_role()));
    assert_eq!((a.role, b.role), (Role::Started, Role::Joined));
    assert_eq!((a.value, b.value, a.callers), (3, 3, 2));
    let solo = block_on(
        group
            .call("bob".to_owned(), |k| async move { k.len() })
            .with_role(),
    );
    assert_eq!(
        (solo.role, solo.callers, solo.shared()),
        (Role::Started, 1, false)
    );
}

/// A caller that left before the value was published is not counted among its callers.
#[test]
fn callers_counts_those_that_got_the_value() {
    let group = KeyedGroup::<u8, u8>::new();
    let stays = group.do_chan(1, |_| async { 5 });
    let leaves = group.do_chan(1, |_| async { unreachable!("joins") });
    drop(leaves);
    let outcome = block_on(stays.with_role());
    assert_eq!((outcome.value, outcome.callers), (5, 1));
}

#[test]
fn counters_follow_every_end_of_a_flight() {
    let group = KeyedGroup::<u8, u8>::new();
    assert_eq!(group.stats(), GroupStats::default());

    block_on(group.call(1, |k| async move { k })); // started
    let forgotten = group.do_chan(2, |k| async move { k });
    assert!(group.forget(&2));
    assert_eq!(block_on(forgotten), 2); // started, forgotten
    drop(group.do_chan(3, |k| async move { k })); // started, abandoned
    let panicked = group.do_chan(4, |_| async { panic!("expected test panic") });
    assert!(catch_unwind(AssertUnwindSafe(|| block_on(panicked))).is_err()); // panicked
    let mut task: Option<Detached<u8>> = None;
    let detached = group.do_chan_detached(5, |k| async move { k }, |t| task = Some(t));
    block_on(task.take().unwrap());
    assert_eq!(block_on(detached), 5); // started, detached
    let promoted = group.do_chan(6, |k| async move { k });
    let joiner = group.do_chan_detached(6, |_| async { unreachable!() }, |t| task = Some(t));
    block_on(task.take().unwrap());
    assert_eq!((block_on(promoted), block_on(joiner)), (6, 6)); // started, joined, detached

    let stats = group.stats();
    assert_eq!(
        (stats.started, stats.joined, stats.in_flight),
        (6, 1, 0),
        "{stats:?}"
    );
    assert_eq!(
        (stats.abandoned, stats.panicked, stats.forgotten),
        (1, 1, 1),
        "{stats:?}"
    );
    assert_eq!((stats.detached, stats.expired), (2, 0), "{stats:?}");
}

#[test]
fn in_flight_in_the_snapshot() {
    let group = Group::<u8>::new();
    let rx = group.do_chan(|| async { 1 });
    assert_eq!(group.stats().in_flight, 1);
    assert_eq!(block_on(rx), 1);
    assert_eq!(group.stats().in_flight, 0);
}

/// With a limit of zero every running flight is too old: each call starts its own flight,
/// and the old flight's waiters keep it.
#[test]
fn a_flight_past_the_age_limit_is_not_joined() {
    let group = KeyedGroup::<u8, u8>::new().max_flight_age(Duration::ZERO);
    let old = group.do_chan(1, |_| async { 1 });
    let old_joiner_attempt = group.do_chan(1, |_| async { 2 });
    assert_eq!(
        group.in_flight(),
        0,
        "under a zero limit no flight can be joined, the fresh one included"
    );
    assert_eq!(block_on(old_joiner_attempt), 2, "started a fresh flight");
    assert_eq!(block_on(old), 1, "the old flight's waiter keeps it");
    let stats = group.stats();
    assert_eq!((stats.started, stats.joined, stats.expired), (2, 0, 1));
    assert_eq!(stats.in_flight, 0);
}

/// Under the limit, callers join as usual.
#[test]
fn a_flight_under_the_age_limit_is_joined() {
    let group = KeyedGroup::<u8, u8>::new().max_flight_age(Duration::from_secs(3600));
    let first = group.do_chan(1, |_| async { 1 });
    let second = group.do_chan(1, |_| async { unreachable!("joins") });
    assert_eq!((block_on(first), block_on(second)), (1, 1));
    let stats = group.stats();
    assert_eq!((stats.started, stats.joined, stats.expired), (1, 1, 0));
}

/// The limit on a `Group`, which has a single slot.
#[test]
fn group_age_limit() {
    static TOKEN: Group<u8> = Group::new().max_flight_age(Duration::ZERO);
    let old = TOKEN.do_chan(|| async { 1 });
    let new = TOKEN.do_chan(|| async { 2 });
    assert_eq!((block_on(old), block_on(new)), (1, 2));
    assert_eq!(TOKEN.stats().expired, 1);
}
