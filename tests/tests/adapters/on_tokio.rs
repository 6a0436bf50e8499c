//! The suite on tokio (a current-thread runtime on paused time), and what only tokio has: a
//! runtime that shuts down, spawning outside a runtime, a multi-thread runtime.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use single_flight::KeyedGroup;
use single_flight_tests::run_bounded;
use single_flight_tokio as adapter;

use self::adapter::{KeyedGroupExt, ReceiverExt};
use self::suite::Probe;

/// The adapter's runtime, for the core's `timeout` in the suite.
type Runtime = adapter::Tokio;

// The suite is compiled once per runtime, on purpose.
#[allow(clippy::duplicate_mod)]
#[path = "suite.rs"]
mod suite;

/// tokio's side of the suite.
mod rt {
    use std::future::Future;

    pub(super) use tokio::time::{sleep, Instant};

    /// A current-thread runtime on paused time: timeouts expire as soon as nothing else can run.
    pub(super) fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("build a tokio runtime")
            .block_on(future)
    }

    /// Spawns `future` on the current runtime; the returned future waits for its output.
    pub(super) fn spawn<T: Send + 'static>(
        future: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> {
        let task = tokio::spawn(future);
        async move { task.await.expect("the task panicked") }
    }
}

#[test]
fn runtime_shutdown_hands_spawned_work_back_to_its_waiters() {
    run_bounded(
        "runtime_shutdown_hands_spawned_work_back_to_its_waiters",
        || {
            let group: KeyedGroup<&str, u32> = KeyedGroup::new();
            let (open, gate) = tokio::sync::oneshot::channel::<u32>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let rx = {
                let _guard = runtime.enter();
                group.do_chan_spawned("k", |_| async move { gate.await.unwrap() })
            };
            drop(runtime); // the task is dropped before it ever ran
            assert_eq!(group.in_flight(), 1);
            open.send(4).unwrap();
            // The receiver drives the same work itself, on any executor.
            let value = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(rx);
            assert_eq!(value, 4);
            assert_eq!(group.in_flight(), 0);
        },
    );
}

#[test]
fn spawning_outside_a_runtime_panics_and_frees_the_key() {
    run_bounded(
        "spawning_outside_a_runtime_panics_and_frees_the_key",
        || {
            let group: KeyedGroup<&str, u32> = KeyedGroup::new();
            let probe = Probe::new();
            let result = catch_unwind(AssertUnwindSafe(|| {
                group.do_chan_spawned("k", probe.work(1))
            }));
            assert!(result.is_err());
            assert!(probe.dropped.load(SeqCst));
            assert_eq!(group.in_flight(), 0);
        },
    );
}

#[test]
fn spawned_flight_shared_across_worker_threads() {
    static GROUP: KeyedGroup<u32, u32> = KeyedGroup::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("build a tokio runtime");
    run_bounded("spawned_flight_shared_across_worker_threads", || {
        runtime.block_on(async {
            let executions = Arc::new(AtomicUsize::new(0));
            let (open, gate) = tokio::sync::watch::channel(false);
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let (executions, mut gate) = (executions.clone(), gate.clone());
                let rx = GROUP.do_chan_spawned(1, move |k| {
                    executions.fetch_add(1, SeqCst);
                    async move {
                        gate.wait_for(|open| *open).await.unwrap();
                        k + 1
                    }
                });
                tasks.push(tokio::spawn(rx.recv_timeout(Duration::from_secs(30))));
            }
            assert_eq!(GROUP.in_flight(), 1);
            open.send(true).unwrap();
            for task in tasks {
                assert_eq!(task.await.unwrap(), Ok(2));
            }
            assert_eq!(executions.load(SeqCst), 1);
            assert_eq!(GROUP.in_flight(), 0);
        });
    });
}
