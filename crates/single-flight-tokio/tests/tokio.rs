//! Behaviour of the tokio adapter, on paused time: no test waits on the wall clock.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use single_flight::{Group, KeyedGroup, Panicked};
use single_flight_tokio::{GroupExt, KeyedGroupExt, ReceiverExt};
use tokio::time::{sleep, Instant};

const MS: Duration = Duration::from_millis(1);

/// Sets its flag when dropped: shows whether a work future was dropped or ran to its end.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Work that counts its executions, takes `dur` and returns `value`; `dropped` is set when the
/// work future goes away (finished or not), `finished` when it ran to its end.
#[derive(Clone, Default)]
struct Probe {
    executions: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
}

impl Probe {
    fn work<K>(&self, dur: Duration, value: u32) -> impl FnOnce(K) -> tokio_work::Work + Send {
        let probe = self.clone();
        move |_key| {
            probe.executions.fetch_add(1, SeqCst);
            let flag = DropFlag(probe.dropped.clone());
            Box::pin(async move {
                let _flag = flag;
                sleep(dur).await;
                probe.finished.store(true, SeqCst);
                value
            })
        }
    }

    fn executions(&self) -> usize {
        self.executions.load(SeqCst)
    }
}

mod tokio_work {
    pub(crate) type Work = std::pin::Pin<Box<dyn std::future::Future<Output = u32> + Send>>;
}

fn never<K>(_: K) -> tokio_work::Work {
    unreachable!("a caller that joins never runs its closure")
}

#[tokio::test(start_paused = true)]
async fn follower_times_out_while_leader_succeeds() {
    let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    let probe = Probe::default();
    let leader = group.call("k", probe.work(100 * MS, 7));
    let follower = async {
        let out = group.call_timeout("k", 10 * MS, never).await;
        assert_eq!(
            group.in_flight(),
            1,
            "the follower's timeout left the flight running"
        );
        out
    };
    let (leader, follower) = tokio::join!(leader, follower);
    assert_eq!(leader, 7);
    assert_eq!(follower.unwrap_err().waited(), 10 * MS);
    assert_eq!(probe.executions(), 1);
    assert!(probe.finished.load(SeqCst));
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn driver_times_out_and_followers_finish_the_same_work() {
    let group: Arc<KeyedGroup<&str, u32>> = Arc::new(KeyedGroup::new());
    let probe = Probe::default();
    let start = Instant::now();
    // The leader starts the flight and drives the work until its timeout.
    let leader = group.call_timeout("k", 10 * MS, probe.work(100 * MS, 7));
    let followers = async {
        tokio::task::yield_now().await;
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let group = group.clone();
                tokio::spawn(async move { group.call("k", never).await })
            })
            .collect();
        let mut values = Vec::new();
        for task in tasks {
            values.push(task.await.unwrap());
        }
        values
    };
    let (leader, values) = tokio::join!(leader, followers);
    assert!(leader.is_err());
    assert_eq!(values, [7, 7, 7]);
    assert_eq!(probe.executions(), 1, "nothing was run twice");
    assert!(probe.finished.load(SeqCst));
    assert_eq!(start.elapsed(), 100 * MS, "the work was not restarted");
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn all_callers_time_out_and_caller_driven_work_is_dropped() {
    let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    let probe = Probe::default();
    let (a, b) = tokio::join!(
        group.call_timeout("k", 10 * MS, probe.work(Duration::from_secs(3600), 7)),
        group.call_timeout("k", 20 * MS, never),
    );
    assert!(a.is_err() && b.is_err());
    assert!(
        probe.dropped.load(SeqCst),
        "the last waiter left: the work is dropped"
    );
    assert!(!probe.finished.load(SeqCst));
    assert_eq!(probe.executions(), 1);
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn spawned_work_outlives_timed_out_callers_and_new_callers_join_it() {
    let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    let probe = Probe::default();
    let first = group.do_chan_spawned("k", probe.work(100 * MS, 7));
    let second = group.do_chan_spawned("k", never);
    let (a, b) = tokio::join!(first.recv_timeout(10 * MS), second.recv_timeout(20 * MS));
    assert!(a.is_err() && b.is_err());
    assert!(
        !probe.dropped.load(SeqCst),
        "spawned work runs on without waiters"
    );
    assert_eq!(group.in_flight(), 1);

    // A caller arriving meanwhile joins the running work.
    assert_eq!(group.call("k", never).await, 7);
    assert_eq!(probe.executions(), 1);
    assert!(probe.finished.load(SeqCst));
    assert_eq!(group.in_flight(), 0);

    // With nobody waiting at all, the spawned work still runs to its end and frees the key.
    let probe = Probe::default();
    drop(group.do_chan_spawned("k", probe.work(100 * MS, 8)));
    sleep(200 * MS).await;
    assert!(probe.finished.load(SeqCst));
    assert_eq!(probe.executions(), 1);
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn spawned_work_panic_reaches_every_waiter_and_frees_the_key() {
    let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    let first = group.do_chan_spawned("k", |_| async {
        sleep(10 * MS).await;
        panic!("backend exploded")
    });
    let second = group.do_chan_spawned("k", never);
    for waiter in [tokio::spawn(first), tokio::spawn(second)] {
        let payload = waiter.await.unwrap_err().into_panic();
        let panicked = payload.downcast::<Panicked>().expect("a Panicked payload");
        assert_eq!(panicked.message(), "backend exploded");
    }
    assert_eq!(group.in_flight(), 0);

    // The key is usable again.
    let probe = Probe::default();
    assert_eq!(group.do_chan_spawned("k", probe.work(MS, 9)).await, 9);
    assert_eq!(probe.executions(), 1);
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn receiver_timeout() {
    let group: KeyedGroup<&str, u32> = KeyedGroup::new();

    // A receiver that times out alone takes its caller-driven work with it.
    let probe = Probe::default();
    let err = group
        .do_chan("k", probe.work(100 * MS, 1))
        .recv_timeout(10 * MS)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "single-flight: waited longer than 10ms for the flight"
    );
    assert!(probe.dropped.load(SeqCst) && !probe.finished.load(SeqCst));
    assert_eq!(group.in_flight(), 0);

    // In time, it returns the value; with a deadline too.
    let probe = Probe::default();
    let rx = group.do_chan("k", probe.work(10 * MS, 2));
    assert_eq!(rx.recv_timeout(100 * MS).await, Ok(2));
    let rx = group.do_chan("k", probe.work(10 * MS, 3));
    let deadline = Instant::now() + 5 * MS;
    assert_eq!(
        rx.recv_deadline(deadline).await.unwrap_err().waited(),
        5 * MS
    );
    assert_eq!(probe.executions(), 2);
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn deadlines_and_the_unkeyed_group() {
    let group: Group<u32> = Group::new();
    let probe = Probe::default();
    let deadline = Instant::now() + 10 * MS;
    let (late, value) = tokio::join!(
        group.call_deadline(deadline, || probe.work(100 * MS, 5)(())),
        group.call_timeout(Duration::from_secs(1), || never(())),
    );
    assert_eq!(late.unwrap_err().waited(), 10 * MS);
    assert_eq!(value, Ok(5));
    assert_eq!(probe.executions(), 1);

    // Spawned: a timed-out caller leaves the refresh running for the next one.
    let probe = Probe::default();
    let rx = group.do_chan_spawned(|| probe.work(100 * MS, 6)(()));
    assert!(rx.recv_timeout(10 * MS).await.is_err());
    assert_eq!(group.in_flight(), 1);
    assert_eq!(group.call(|| never(())).await, 6);
    assert_eq!(probe.executions(), 1);
    assert_eq!(group.in_flight(), 0);

    // Far-away deadlines do not overflow.
    assert_eq!(
        group.call_timeout(Duration::MAX, || async { 1 }).await,
        Ok(1)
    );
    let keyed: KeyedGroup<u8, u32> = KeyedGroup::new();
    let far = Instant::now() + Duration::from_secs(86400 * 365 * 30);
    assert_eq!(keyed.call_deadline(1, far, |_| async { 2 }).await, Ok(2));
}

#[test]
fn runtime_shutdown_hands_spawned_work_back_to_its_waiters() {
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
}

#[test]
fn spawning_outside_a_runtime_panics_and_frees_the_key() {
    let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    let probe = Probe::default();
    let result = catch_unwind(AssertUnwindSafe(|| {
        group.do_chan_spawned("k", probe.work(MS, 1))
    }));
    assert!(result.is_err());
    assert!(probe.dropped.load(SeqCst));
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_flight_shared_across_worker_threads() {
    static GROUP: KeyedGroup<u32, u32> = KeyedGroup::new();
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
}
