//! The suite on smol, and what only smol has: spawning on an executor passed in, and that
//! executor dropped before it ran the work.

use std::sync::atomic::Ordering::SeqCst;

use futures_lite::future;
use single_flight::{Group, KeyedGroup};
use single_flight_smol as adapter;
use single_flight_tests::run_bounded;
use smol::Executor;

use self::adapter::{GroupExt, KeyedGroupExt, ReceiverExt};
use self::suite::{never, Probe, SHORT};

/// The adapter's runtime, for the core's `timeout` in the suite.
type Runtime = adapter::Smol;

// The suite is compiled once per runtime, on purpose.
#[allow(clippy::duplicate_mod)]
#[path = "suite.rs"]
mod suite;

/// smol's side of the suite.
mod rt {
    use std::future::Future;

    pub(super) use smol::block_on;
    pub(super) use std::time::Instant;

    /// Spawns `future` on smol's global executor; the returned future waits for its output.
    pub(super) fn spawn<T: Send + 'static>(
        future: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> {
        smol::spawn(future)
    }

    /// Sleeps on `async-io`'s timer.
    pub(super) async fn sleep(duration: std::time::Duration) {
        smol::Timer::after(duration).await;
    }
}

#[test]
fn the_unkeyed_group_on_a_given_executor() {
    let executor = Executor::new();
    run_bounded("the_unkeyed_group_on_a_given_executor", || {
        future::block_on(executor.run(async {
            let group: Group<u32> = Group::new();
            // Spawned on this executor: a timed-out caller leaves the refresh running.
            let probe = Probe::new();
            let rx = group.do_chan_spawned_on(&executor, || probe.work(6)(()));
            assert!(rx.recv_timeout(SHORT).await.is_err());
            assert_eq!(group.in_flight(), 1);
            let (value, ()) = future::zip(group.call(|| never(())), async { probe.open() }).await;
            assert_eq!(value, 6);
            assert_eq!(probe.executions(), 1);
            assert_eq!(group.in_flight(), 0);
        }));
    });
}

#[test]
fn dropped_executor_hands_spawned_work_back_to_its_waiters() {
    run_bounded(
        "dropped_executor_hands_spawned_work_back_to_its_waiters",
        || {
            let group: KeyedGroup<&str, u32> = KeyedGroup::new();
            let probe = Probe::new();
            let executor = Executor::new();
            let rx = group.do_chan_spawned_on(&executor, "k", probe.work(4));
            drop(executor); // never run: the task is dropped before it ever polled the work
            assert_eq!(group.in_flight(), 1);
            assert!(!probe.dropped.load(SeqCst));
            probe.open();
            assert_eq!(future::block_on(rx), 4, "the receiver drives the same work");
            assert_eq!(probe.executions(), 1);
            assert_eq!(group.in_flight(), 0);
        },
    );
}

#[test]
fn spawned_flight_shared_across_threads() {
    suite::spawned_flight_shared_across_threads();
}
