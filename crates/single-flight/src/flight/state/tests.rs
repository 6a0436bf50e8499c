//! Unit tests of the pure transitions of `FlightState`: each decision without threads.

use std::sync::Arc;
use std::task::Waker;

use super::*;

struct TestWaker;

impl futures_task::ArcWake for TestWaker {
    fn wake_by_ref(_: &Arc<Self>) {}
}

/// A waker distinct from every other one made here.
fn waker() -> Waker {
    futures_task::waker(Arc::new(TestWaker))
}

fn started(start: Start, dropping_predecessors: usize) -> FlightState<u32> {
    let mut state = FlightState::new();
    state.reset(start, dropping_predecessors);
    state
}

fn idle(woken: bool) -> Phase<u32> {
    Phase::Idle {
        work: Box::pin(async { 1 }),
        woken,
    }
}

#[test]
fn each_start_has_its_first_phase() {
    let call = started(Start::Poll, 0);
    assert!(matches!(call.phase, Phase::Polling { woken: false }));
    assert_eq!((call.waiters, call.task), (1, false));
    let gated = started(Start::Poll, 1);
    assert!(
        matches!(gated.phase, Phase::Starting),
        "a gated call installs"
    );
    let chan = started(Start::Install, 0);
    assert!(matches!(chan.phase, Phase::Starting));
    let detached = started(Start::Detach, 0);
    assert!(matches!(detached.phase, Phase::Detached));
    assert_eq!((detached.waiters, detached.task), (2, true));
}

#[test]
fn a_solo_runs_state_resets_to_a_call_start() {
    let mut state = started(Start::Poll, 0);
    state.phase = Phase::Polling { woken: true };
    state.reset(Start::Poll, 0);
    assert!(matches!(state.phase, Phase::Polling { woken: false }));
    assert_eq!(
        (state.waiters, state.next_ticket, state.task),
        (1, 1, false)
    );
    // Any other start from it is a full reset.
    for (start, gate) in [(Start::Poll, 1), (Start::Install, 0), (Start::Detach, 0)] {
        let mut state = started(Start::Poll, 0);
        state.reset(start, gate);
        let fresh = started(start, gate);
        assert_eq!(
            (state.waiters, state.next_ticket, state.task),
            (fresh.waiters, fresh.next_ticket, fresh.task),
            "{start:?}"
        );
        assert!(!matches!(state.phase, Phase::Polling { .. }), "{start:?}");
    }
}

#[test]
fn due_work_nobody_drives_wakes_every_listener() {
    for change in [
        Change::Installed,
        Change::Left { was_driver: false },
        Change::Left { was_driver: true },
    ] {
        let mut state = started(Start::Install, 0);
        state.phase = idle(true);
        let wake = state.nudge(change);
        assert_eq!(wake.listeners, Listeners::All, "{change:?}");
        assert!(wake.driver.is_none());
    }
}

#[test]
fn inner_wakeup_wakes_the_driver_and_one_standby() {
    let mut state = started(Start::Install, 0);
    state.phase = idle(true);
    state.set_driver(0, &waker()).release();
    let first = state.nudge(Change::InnerWakeup { first: true });
    assert!(first.driver.is_some());
    assert_eq!(first.listeners, Listeners::One);
    let again = state.nudge(Change::InnerWakeup { first: false });
    assert!(again.driver.is_none(), "the driver was woken once");
    assert_eq!(
        again.listeners,
        Listeners::One,
        "nobody polled since the first wakeup: one more standby"
    );
    drop(state.clear_driver());
    let undriven = state.nudge(Change::InnerWakeup { first: false });
    assert_eq!(
        undriven.listeners,
        Listeners::One,
        "never all on an inner wakeup"
    );
}

#[test]
fn closed_gate_wakes_nobody() {
    let mut state = started(Start::Install, 1);
    state.phase = idle(true);
    assert!(!state.due());
    let wake = state.nudge(Change::Installed);
    assert_eq!(wake.listeners, Listeners::None);
    assert!(wake.driver.is_none() && wake.task.is_none());
}

#[test]
fn leaving_driver_hands_off_to_one_standby() {
    let mut state = started(Start::Install, 0);
    state.phase = idle(false);
    let wake = state.nudge(Change::Left { was_driver: true });
    assert_eq!(wake.listeners, Listeners::One);
    let wake = state.nudge(Change::Left { was_driver: false });
    assert_eq!(
        wake.listeners,
        Listeners::None,
        "not due, somebody else left"
    );
}

#[test]
fn detached_join_promotes_a_flight_once() {
    let mut state = started(Start::Install, 0);
    let first = state.join(true);
    assert!(first.promoted);
    assert_eq!((state.waiters, state.task), (3, true));
    let second = state.join(true);
    assert!(!second.promoted, "one task per flight");
    assert_ne!(first.ticket, second.ticket);
    let detached = started(Start::Detach, 0);
    let mut detached = detached;
    assert!(!detached.join(true).promoted);
}

#[test]
fn promoted_task_is_woken_to_claim_idle_work() {
    let mut state = started(Start::Install, 0);
    assert!(state.join(true).promoted);
    state.task_waker = Some(waker());
    assert!(
        state.claimant().is_none(),
        "nothing to claim while starting"
    );
    state.phase = idle(true);
    assert!(state.nudge(Change::Installed).task.is_some());
    assert!(state.task_waker.is_none());
}

#[test]
fn solo_publication_moves_the_value() {
    let mut state = started(Start::Poll, 0);
    let published = state.publish(Some(0), 7);
    assert_eq!(published.mine, Some(7));
    assert_eq!((published.others, published.callers), (0, 1));
    assert!(matches!(
        state.phase,
        Phase::Done {
            value: None,
            remaining: 0,
            ..
        }
    ));
}

#[test]
fn herd_publication_clones_for_all_but_the_last_taker() {
    let mut state = started(Start::Poll, 0);
    state.join(false);
    state.join(false);
    let published = state.publish(Some(0), 7);
    assert_eq!(published.mine, None);
    assert_eq!((published.others, published.callers), (2, 3));
    assert_eq!(state.take_value(), Some((7, 3)));
    assert_eq!(state.take_value(), Some((7, 3)));
    assert_eq!(state.take_value(), Some((7, 3)));
    assert!(matches!(state.phase, Phase::Done { value: None, .. }));
}

#[test]
fn detached_value_without_waiters_is_unclaimed() {
    let mut state = started(Start::Detach, 0);
    state.waiters -= 1; // the starter's receiver left; only the task is registered
    let published = state.publish(None, 7);
    assert_eq!(published.unclaimed, Some(7));
    assert_eq!(published.mine, None);
    assert!(!state.task);
}

#[test]
fn publication_releases_the_drivers_waker() {
    let mut state = started(Start::Poll, 0);
    state.join(false);
    state.set_driver(1, &waker()).release();
    let published = state.publish(Some(0), 7);
    assert!(matches!(published.driver, Some(Replaced::FormerDriver(_))));
    assert!(state.driver.is_none() && state.driver_waker.is_none());

    let mut state = started(Start::Poll, 0);
    state.set_driver(0, &waker()).release();
    let published = state.publish(Some(0), 7);
    assert!(matches!(published.driver, Some(Replaced::Stale(_))));
    assert!(
        state.driver_waker.is_none(),
        "a recycled state keeps no waker"
    );
}

#[test]
fn set_driver_says_which_waker_it_replaced() {
    let mut state = started(Start::Install, 0);
    let (a, b) = (waker(), waker());
    assert!(matches!(state.set_driver(0, &a), Replaced::Nothing));
    assert!(matches!(state.set_driver(0, &a), Replaced::Nothing));
    assert!(matches!(state.set_driver(0, &b), Replaced::Stale(_)));
    assert!(matches!(state.set_driver(1, &a), Replaced::FormerDriver(_)));
    assert!(state.clear_driver().is_some());
    assert!(state.driver.is_none());
}

#[test]
fn abandoned_work_is_taken_only_from_an_idle_flight_nobody_holds() {
    let mut state = started(Start::Install, 0);
    state.phase = idle(true);
    assert!(
        state.take_abandoned_work().is_none(),
        "the starter is registered"
    );
    state.waiters = 0;
    assert!(state.take_abandoned_work().is_some());
    assert!(matches!(state.phase, Phase::Abandoned));
}
