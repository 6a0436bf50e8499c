//! The adapters' behaviour suite: included by each runtime's module, which provides `rt` (its
//! `block_on`, `spawn`, `sleep` and `Instant`) and `adapter` (the adapter crate).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future::{self, FutureExt as _};
use single_flight::{Group, KeyedGroup, Panicked, Role};
use smol::channel::{bounded, Receiver, Sender};

use single_flight::runtime::timeout;

use super::adapter::{GroupExt, KeyedGroupExt, ReceiverExt};
use super::rt::{self, Instant};
use super::Runtime;

pub(super) const SHORT: Duration = Duration::from_millis(20);

pub(super) type Work = Pin<Box<dyn Future<Output = u32> + Send>>;

/// Runs a test body on the runtime, under the harness's hang bound.
pub(super) fn run<F: Future<Output = ()>>(name: &str, body: F) {
    single_flight_tests::run_bounded(name, || rt::block_on(body));
}

/// Sets its flag when dropped: shows whether a work future was dropped or ran to its end.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Work that counts its executions and returns `value` once its gate opens (the sender is
/// closed); `dropped` is set when the work future goes away, `finished` when it ran to its end.
#[derive(Clone)]
pub(super) struct Probe {
    executions: Arc<AtomicUsize>,
    pub(super) dropped: Arc<AtomicBool>,
    pub(super) finished: Arc<AtomicBool>,
    open: Sender<()>,
    gate: Receiver<()>,
}

impl Probe {
    pub(super) fn new() -> Self {
        let (open, gate) = bounded(1);
        Self {
            executions: Arc::default(),
            dropped: Arc::default(),
            finished: Arc::default(),
            open,
            gate,
        }
    }

    pub(super) fn work<K>(&self, value: u32) -> impl FnOnce(K) -> Work + Send {
        let probe = self.clone();
        move |_key| {
            probe.executions.fetch_add(1, SeqCst);
            let flag = DropFlag(probe.dropped.clone());
            Box::pin(async move {
                let _flag = flag;
                let _ = probe.gate.recv().await;
                probe.finished.store(true, SeqCst);
                value
            })
        }
    }

    pub(super) fn open(&self) {
        self.open.close();
    }

    pub(super) fn executions(&self) -> usize {
        self.executions.load(SeqCst)
    }
}

pub(super) fn never<K>(_: K) -> Work {
    unreachable!("a caller that joins never runs its closure")
}

/// Waits (a bounded time) for work running on another task or thread to publish its end.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out: {what}"
        );
        rt::sleep(Duration::from_millis(1)).await;
    }
}

#[test]
fn follower_times_out_while_leader_succeeds() {
    run("follower_times_out_while_leader_succeeds", async {
        let group: KeyedGroup<&str, u32> = KeyedGroup::new();
        let probe = Probe::new();
        let leader = group.call("k", probe.work(7));
        let follower = async {
            let out = group.call_timeout("k", SHORT, never).await;
            assert_eq!(
                group.in_flight(),
                1,
                "the follower's timeout left the flight running"
            );
            probe.open();
            out
        };
        let (leader, follower) = future::zip(leader, follower).await;
        assert_eq!(leader, 7);
        assert_eq!(follower.unwrap_err().waited(), SHORT);
        assert_eq!(probe.executions(), 1);
        assert!(probe.finished.load(SeqCst));
        assert_eq!(group.in_flight(), 0);
    });
}

#[test]
fn driver_times_out_and_followers_finish_the_same_work() {
    run(
        "driver_times_out_and_followers_finish_the_same_work",
        async {
            let group: KeyedGroup<&str, u32> = KeyedGroup::new();
            let probe = Probe::new();
            // The leader starts the flight and drives the work until its timeout; then it opens the
            // gate, and one of the followers must go on with the same work.
            let leader = async {
                let out = group.call_timeout("k", SHORT, probe.work(7)).await;
                assert_eq!(group.in_flight(), 1);
                assert!(
                    !probe.dropped.load(SeqCst),
                    "followers wait: the work lives on"
                );
                probe.open();
                out
            };
            let followers = async {
                // Receivers register at once; the `call` registers on the first poll of this zip.
                let spawned: Vec<_> = (0..3)
                    .map(|_| rt::spawn(group.do_chan("k", never)))
                    .collect();
                let called = group.call("k", never).await;
                let mut values = vec![called];
                for task in spawned {
                    values.push(task.await);
                }
                values
            };
            let (leader, values) = future::zip(leader, followers).await;
            assert!(leader.is_err());
            assert_eq!(values, [7, 7, 7, 7]);
            assert_eq!(probe.executions(), 1, "nothing was run twice");
            assert!(probe.finished.load(SeqCst));
            assert_eq!(group.in_flight(), 0);
        },
    );
}

#[test]
fn all_callers_time_out_and_caller_driven_work_is_dropped() {
    run(
        "all_callers_time_out_and_caller_driven_work_is_dropped",
        async {
            let group: KeyedGroup<&str, u32> = KeyedGroup::new();
            let probe = Probe::new();
            let (a, b) = future::zip(
                group.call_timeout("k", SHORT, probe.work(7)),
                group.call_timeout("k", 2 * SHORT, never),
            )
            .await;
            assert!(a.is_err() && b.is_err());
            assert!(
                probe.dropped.load(SeqCst),
                "the last waiter left: the work is dropped"
            );
            assert!(!probe.finished.load(SeqCst));
            assert_eq!(probe.executions(), 1);
            assert_eq!(group.in_flight(), 0);
        },
    );
}

#[test]
fn spawned_work_outlives_timed_out_callers_and_new_callers_join_it() {
    run(
        "spawned_work_outlives_timed_out_callers_and_new_callers_join_it",
        async {
            let group: KeyedGroup<&str, u32> = KeyedGroup::new();
            let probe = Probe::new();
            let first = group.do_chan_spawned("k", probe.work(7));
            let second = group.do_chan_spawned("k", never);
            let (a, b) = future::zip(
                first.recv_timeout(SHORT),
                second.recv_deadline(Instant::now() + SHORT),
            )
            .await;
            assert!(a.is_err() && b.is_err());
            assert!(
                !probe.dropped.load(SeqCst),
                "spawned work runs on without waiters"
            );
            assert_eq!(group.in_flight(), 1);

            // A caller arriving meanwhile joins the running work (it registers before the gate
            // opens: `zip` polls it first).
            let (value, ()) = future::zip(group.call("k", never), async { probe.open() }).await;
            assert_eq!(value, 7);
            assert_eq!(probe.executions(), 1);
            assert!(probe.finished.load(SeqCst));
            assert_eq!(group.in_flight(), 0);

            // With nobody waiting at all, the spawned work still runs to its end and frees the
            // key.
            let probe = Probe::new();
            drop(group.do_chan_spawned("k", probe.work(8)));
            probe.open();
            eventually("the key is freed", || group.in_flight() == 0).await;
            assert!(probe.finished.load(SeqCst));
            assert_eq!(probe.executions(), 1);
        },
    );
}

/// A spawned call that joins a flight started without a task promotes it: the runtime runs the
/// work to its end although every caller has left (semantic 6).
#[test]
fn spawned_call_promotes_a_running_flight() {
    run("spawned_call_promotes_a_running_flight", async {
        let group: KeyedGroup<&str, u32> = KeyedGroup::new();
        let probe = Probe::new();
        let started = group.do_chan("k", probe.work(5));
        let spawned = group.do_chan_spawned("k", never);
        drop((started, spawned));
        eventually("the task takes the work over", || probe.executions() == 1).await;
        assert!(
            !probe.dropped.load(SeqCst),
            "promoted work outlives its waiters"
        );
        assert_eq!(group.in_flight(), 1);
        probe.open();
        eventually("the key is freed", || group.in_flight() == 0).await;
        assert!(probe.finished.load(SeqCst));
        assert_eq!(probe.executions(), 1);
        assert_eq!(group.stats().detached, 1);
    });
}

/// A timeout bounds a call's `with_role()` as it bounds the call: the role with the time limit.
#[test]
fn timeouts_tell_the_role() {
    run("timeouts_tell_the_role", async {
        let group: KeyedGroup<&str, u32> = KeyedGroup::new();
        let probe = Probe::new();
        let long = Duration::from_secs(60);
        let ((leader, follower), ()) = future::zip(
            future::zip(
                timeout::<Runtime, _>(long, group.call("k", probe.work(3)).with_role()),
                timeout::<Runtime, _>(long, group.call("k", never).with_role()),
            ),
            async { probe.open() },
        )
        .await;
        let (leader, follower) = (leader.unwrap(), follower.unwrap());
        assert_eq!((leader.role, follower.role), (Role::Started, Role::Joined));
        assert_eq!((leader.value, follower.value, leader.callers), (3, 3, 2));

        let unkeyed: Group<u32> = Group::new();
        let solo = timeout::<Runtime, _>(long, unkeyed.call(|| async { 4 }).with_role())
            .await
            .unwrap();
        assert_eq!((solo.value, solo.role, solo.callers), (4, Role::Started, 1));

        let rx = group.do_chan_spawned("r", |_| async { 6 });
        let outcome = timeout::<Runtime, _>(long, rx.with_role()).await.unwrap();
        assert_eq!((outcome.value, outcome.role), (6, Role::Started));
        let late = timeout::<Runtime, _>(
            SHORT,
            group
                .call("late", |_| Box::pin(std::future::pending()) as Work)
                .with_role(),
        )
        .await;
        assert_eq!(late.unwrap_err().waited(), SHORT);
    });
}

#[test]
fn spawned_work_panic_reaches_every_waiter_and_frees_the_key() {
    run(
        "spawned_work_panic_reaches_every_waiter_and_frees_the_key",
        async {
            let group: KeyedGroup<&str, u32> = KeyedGroup::new();
            let (open, gate) = bounded::<()>(1);
            let first = group.do_chan_spawned("k", |_| async move {
                let _ = gate.recv().await;
                panic!("{}: backend exploded", single_flight_tests::EXPECTED_PANIC)
            });
            let second = group.do_chan_spawned("k", never);
            open.close();
            for waiter in [first, second] {
                let payload = AssertUnwindSafe(waiter).catch_unwind().await.unwrap_err();
                let panicked = payload.downcast::<Panicked>().expect("a Panicked payload");
                assert!(panicked.message().ends_with("backend exploded"));
            }
            assert_eq!(group.in_flight(), 0);

            // The key is usable again.
            let probe = Probe::new();
            probe.open();
            assert_eq!(group.do_chan_spawned("k", probe.work(9)).await, 9);
            assert_eq!(probe.executions(), 1);
            assert_eq!(group.in_flight(), 0);
        },
    );
}

#[test]
fn receiver_timeout() {
    run("receiver_timeout", async {
        let group: KeyedGroup<&str, u32> = KeyedGroup::new();

        // A receiver that times out alone takes its caller-driven work with it.
        let probe = Probe::new();
        let err = group
            .do_chan("k", probe.work(1))
            .recv_timeout(SHORT)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "single-flight: waited longer than 20ms for the flight"
        );
        assert!(probe.dropped.load(SeqCst) && !probe.finished.load(SeqCst));
        assert_eq!(group.in_flight(), 0);

        // In time, it returns the value; with a deadline too.
        let probe = Probe::new();
        probe.open();
        let rx = group.do_chan("k", probe.work(2));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).await, Ok(2));
        let rx = group.do_chan("k", probe.work(3));
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(rx.recv_deadline(deadline).await, Ok(3));
        assert_eq!(probe.executions(), 2);
        assert_eq!(group.in_flight(), 0);

        // Far-away timeouts and deadlines do not overflow.
        let rx = group.do_chan("k", |_| async { 4 });
        assert_eq!(rx.recv_timeout(Duration::MAX).await, Ok(4));
        let far = Instant::now() + Duration::from_secs(86400 * 365 * 30);
        assert_eq!(group.call_deadline("k", far, |_| async { 5 }).await, Ok(5));
    });
}

#[test]
fn the_unkeyed_group() {
    run("the_unkeyed_group", async {
        let group: Group<u32> = Group::new();
        let probe = Probe::new();
        let late = async {
            let out = group.call_deadline(Instant::now() + SHORT, || probe.work(5)(()));
            let out = out.await;
            probe.open();
            out
        };
        let value = group.call_timeout(Duration::from_secs(5), || never(()));
        let (late, value) = future::zip(late, value).await;
        let waited = late.unwrap_err().waited(); // from the call to the deadline
        assert!(waited <= SHORT && waited > SHORT / 2, "{waited:?}");
        assert_eq!(value, Ok(5));
        assert_eq!(probe.executions(), 1);

        // Spawned: a timed-out caller leaves the refresh running for the next one.
        let probe = Probe::new();
        let rx = group.do_chan_spawned(|| probe.work(6)(()));
        assert!(rx.recv_timeout(SHORT).await.is_err());
        assert_eq!(group.in_flight(), 1);
        let (value, ()) = future::zip(group.call(|| never(())), async { probe.open() }).await;
        assert_eq!(value, 6);
        assert_eq!(probe.executions(), 1);
        assert_eq!(group.in_flight(), 0);

        // Far-away timeouts do not overflow.
        assert_eq!(
            group.call_timeout(Duration::MAX, || async { 1 }).await,
            Ok(1)
        );
    });
}

/// A hasher that is neither `Send` nor `Sync`.
#[derive(Default)]
struct LocalHasher(std::marker::PhantomData<*const ()>);

impl std::hash::BuildHasher for LocalHasher {
    type Hasher = std::collections::hash_map::DefaultHasher;

    fn build_hasher(&self) -> Self::Hasher {
        Self::Hasher::new()
    }
}

#[test]
fn spawned_flights_ask_nothing_of_the_hasher() {
    run("spawned_flights_ask_nothing_of_the_hasher", async {
        // `Default` for any `S: Default`; `do_chan_spawned` needs neither `S: Send` nor `Sync`.
        let group: KeyedGroup<u8, u32, LocalHasher> = KeyedGroup::default();
        assert_eq!(
            group
                .do_chan_spawned(3, |k| async move { u32::from(k) })
                .await,
            3
        );
        assert_eq!(group.in_flight(), 0);
    });
}

/// A spawned flight started outside any runtime, its receivers waiting on threads of their own
/// (not on tokio, whose spawn needs a runtime: it has its own multi-thread test).
#[allow(dead_code)]
pub(super) fn spawned_flight_shared_across_threads() {
    static GROUP: KeyedGroup<u32, u32> = KeyedGroup::new();
    single_flight_tests::run_bounded("spawned_flight_shared_across_threads", || {
        let probe = Probe::new();
        let receivers: Vec<_> = (0..8)
            .map(|_| GROUP.do_chan_spawned(1, probe.work(2)))
            .collect();
        assert_eq!(GROUP.in_flight(), 1);
        let threads: Vec<_> = receivers
            .into_iter()
            .map(|rx| {
                std::thread::spawn(move || rt::block_on(rx.recv_timeout(Duration::from_secs(5))))
            })
            .collect();
        probe.open();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), Ok(2));
        }
        assert_eq!(probe.executions(), 1);
        assert_eq!(GROUP.in_flight(), 0);
    });
}
