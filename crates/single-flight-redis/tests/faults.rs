//! Faults and edge cases, with several groups in one test process (each group has its own
//! connection and local flights, so they coordinate only through Redis, as processes do):
//! renewal, a paused owner, the server stopped and started again, values over the cap or
//! of the wrong type, panics. Each test starts its own `redis-server`.

mod common;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{tag, Server, HANG};
use futures_lite::FutureExt as _;
use single_flight::Panicked;
use single_flight_redis::{ErrorKind, FailurePolicy, Options, Origin, RedisGroup};
use tokio::sync::watch;

type Group<V> = Arc<RedisGroup<u32, V>>;

async fn group<V>(server: &Server, namespace: &str, options: Options) -> Group<V>
where
    V: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    Arc::new(
        RedisGroup::connect(server.client(), namespace, options)
            .await
            .unwrap(),
    )
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` callers of `group` for `key`, each running `work_ms` of work that counts in `runs`
/// and returns `value`.
/// Returns once every caller has joined its local flight (see `common::first_poll`).
async fn herd<V>(
    group: &Group<V>,
    key: u32,
    n: usize,
    work_ms: u64,
    runs: &Arc<AtomicUsize>,
    value: V,
) -> Vec<tokio::task::JoinHandle<(Result<V, single_flight_redis::Error>, Origin)>>
where
    V: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let polled = Arc::new(AtomicUsize::new(0));
    let handles = (0..n)
        .map(|_| {
            let (group, runs, value) = (group.clone(), runs.clone(), value.clone());
            let call = async move {
                group
                    .call(key, move |_| async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(ms(work_ms)).await;
                        value
                    })
                    .with_origin()
                    .await
            };
            tokio::spawn(common::first_poll(call, polled.clone()))
        })
        .collect();
    common::until(|| polled.load(Ordering::SeqCst) == n).await;
    handles
}

/// Like [`herd`] (and returning once every caller joined), with work that ends only once the test opens `gate` (and not before
/// `min_ms`): "the owner is still running" is then a fact, not a hope about the scheduler.
async fn gated_herd<V>(
    group: &Group<V>,
    key: u32,
    n: usize,
    min_ms: u64,
    gate: &watch::Receiver<bool>,
    runs: &Arc<AtomicUsize>,
    value: V,
) -> Vec<tokio::task::JoinHandle<(Result<V, single_flight_redis::Error>, Origin)>>
where
    V: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let polled = Arc::new(AtomicUsize::new(0));
    let handles = (0..n)
        .map(|_| {
            let (group, runs, value) = (group.clone(), runs.clone(), value.clone());
            let mut gate = gate.clone();
            let call = async move {
                group
                    .call(key, move |_| async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(ms(min_ms)).await;
                        gate.wait_for(|open| *open).await.unwrap();
                        value
                    })
                    .with_origin()
                    .await
            };
            tokio::spawn(common::first_poll(call, polled.clone()))
        })
        .collect();
    common::until(|| polled.load(Ordering::SeqCst) == n).await;
    handles
}

/// Waits until `n` waiting groups are registered in the lease of `key` (they will get its
/// owner's value).
fn until_waiters(server: &Server, namespace: &str, key: u32, n: u64) {
    let lease = format!("{namespace}:{{{}}}:lease", tag(&key));
    tokio::task::block_in_place(|| server.until_lease_waiters(&lease, n));
}

/// Every handle's output; a hang fails at the watchdog bound instead of hanging the run.
async fn join_all<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(tokio::time::timeout(HANG, h).await.expect("hung").unwrap());
    }
    out
}

/// Waits until `runs` reaches `n` (the owner's work has begun).
async fn until_runs(runs: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + HANG;
    while runs.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "the work never started");
        tokio::time::sleep(ms(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_longer_than_three_leases_still_runs_once() {
    let server = Server::start();
    // Renewed every 100 ms, a 900 ms lease survives any stall of the owner's runtime shorter
    // than 800 ms (the design's bound: a longer pause is the documented takeover). The work
    // lasts more than three leases, and ends only once both other groups wait for it.
    let options = Options::new().lease(ms(900)).renew_every(ms(100));
    let mut groups = Vec::new();
    for _ in 0..3 {
        groups.push(group::<String>(&server, "renew", options.clone()).await);
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let (open, gate) = watch::channel(false);
    let mut handles = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        handles.extend(gated_herd(g, 1, 10, 2800, &gate, &runs, format!("from-{i}")).await);
        if i == 0 {
            until_runs(&runs, 1).await;
        }
    }
    until_waiters(&server, "renew", 1, 2);
    open.send(true).unwrap();
    let results = join_all(handles).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(results.iter().all(|(v, _)| v.as_ref().unwrap() == "from-0"));
    assert_eq!(
        results.iter().filter(|(_, r)| *r == Origin::Owner).count(),
        1
    );
    assert_eq!(
        results
            .iter()
            .filter(|(_, r)| *r == Origin::JoinedRemote)
            .count(),
        2
    );
    assert_eq!(groups[0].stats().lost_leases, 0);
    server.assert_clean("renew");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_paused_past_its_lease_never_touches_the_successors_lease() {
    let server = Server::start();
    let lease_key = format!("paused:{{{}}}:lease", tag(&5u32));
    // The paused owner: its own single-threaded runtime, blocked by its work until the test
    // lets it go, so that it cannot renew its 200 ms lease.
    let url = server.url();
    let (resume, paused_work) = std::sync::mpsc::channel::<()>();
    let paused = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let options = Options::new().lease(ms(200));
            let g: RedisGroup<u32, String> =
                RedisGroup::connect(redis::Client::open(url).unwrap(), "paused", options)
                    .await
                    .unwrap();
            let v = g
                .call(5, |_| async move {
                    // Paused: nothing else runs on this runtime.
                    paused_work.recv_timeout(HANG).unwrap();
                    "late".to_owned()
                })
                .await
                .unwrap();
            (v, g.stats())
        })
    });
    // Wait until it holds the lease, then until the lease expires, then take over.
    let deadline = Instant::now() + HANG;
    while server.lease_token(&lease_key).is_none() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(ms(5)).await;
    }
    let first_token = server.lease_token(&lease_key).unwrap();
    while server.lease_token(&lease_key).is_some() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(ms(5)).await;
    }
    // A 30 s lease: a renewal (or a shortening by the late owner) would show in its TTL.
    let successor: Group<String> = group(&server, "paused", Options::new().lease(ms(30_000))).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let (open, gate) = watch::channel(false);
    let handles = gated_herd(&successor, 5, 3, 0, &gate, &runs, "successor".to_owned()).await;
    until_runs(&runs, 1).await;
    let second_token = server.lease_token(&lease_key).unwrap();
    assert_ne!(first_token, second_token, "the successor holds a new lease");

    resume.send(()).unwrap();
    let (late, stats) = tokio::task::block_in_place(|| paused.join().unwrap());
    assert_eq!(late, "late", "the paused owner's own caller gets its value");
    // The late owner's renewal and finish left the successor's lease alone.
    assert_eq!(
        server.lease_token(&lease_key).as_deref(),
        Some(second_token.as_str())
    );
    assert!(
        server.pttl(&lease_key) > 1000,
        "the lease was not shortened"
    );
    assert!(stats.lost_leases >= 1);
    open.send(true).unwrap();
    let results = join_all(handles).await;
    assert!(results
        .iter()
        .all(|(v, _)| v.as_ref().unwrap() == "successor"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    server.assert_clean("paused");
}

async fn server_stopped_mid_flight(policy: FailurePolicy) {
    let mut server = Server::start();
    let namespace = "outage";
    // A stopped server refuses at once; the command timeout only bounds a server that does
    // not answer, so it is long enough for no scheduling stall to pass for an outage.
    let options = Options::new()
        .lease(ms(500))
        .redis_timeout(ms(2000))
        .outage_backoff(ms(300))
        .failure_policy(policy);
    let a: Group<String> = group(&server, namespace, options.clone()).await;
    let b: Group<String> = group(&server, namespace, options.clone()).await;
    let (runs_a, runs_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // `a` owns, `b` waits for it (registered in its lease), then the server goes; `a`'s work
    // ends only after that.
    let (open, gate) = watch::channel(false);
    let ha = gated_herd(&a, 9, 5, 0, &gate, &runs_a, "a".to_owned()).await;
    until_runs(&runs_a, 1).await;
    let hb = herd(&b, 9, 5, 200, &runs_b, "b".to_owned()).await;
    until_waiters(&server, namespace, 9, 1);
    server.stop();
    open.send(true).unwrap();

    // Bounded by the command timeout (`join_all`'s watchdog catches a hang).
    let ra = join_all(ha).await;
    let rb = join_all(hb).await;
    // The owner's callers get the owner's value, Redis or not.
    assert!(ra.iter().all(|(v, _)| v.as_ref().unwrap() == "a"));
    match policy {
        FailurePolicy::Fallback => {
            assert_eq!(runs_b.load(Ordering::SeqCst), 1, "b ran the work itself");
            assert!(rb
                .iter()
                .all(|(v, r)| v.as_ref().unwrap() == "b" && *r != Origin::JoinedRemote));
            assert!(b.stats().fallbacks >= 1);
        }
        _ => {
            assert_eq!(runs_b.load(Ordering::SeqCst), 0);
            assert!(rb
                .iter()
                .all(|(v, _)| v.as_ref().unwrap_err().kind() == ErrorKind::Redis));
        }
    }

    // The server comes back: once each group reaches it again, flights coalesce across
    // groups again.
    server.restart();
    for g in [&a, &b] {
        let deadline = Instant::now() + HANG;
        // A first call finds the reconnected connection (or falls back, or errs, meanwhile).
        while g
            .call(100, |_| async { String::new() })
            .with_origin()
            .await
            .1
            != Origin::Owner
        {
            assert!(Instant::now() < deadline, "never reached the server again");
            tokio::time::sleep(ms(50)).await;
        }
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let (open, gate) = watch::channel(false);
    let mut handles = gated_herd(&a, 11, 5, 0, &gate, &runs, "again".to_owned()).await;
    until_runs(&runs, 1).await;
    handles.extend(herd(&b, 11, 5, 0, &runs, "again".to_owned()).await);
    until_waiters(&server, namespace, 11, 1);
    open.send(true).unwrap();
    let results = join_all(handles).await;
    assert!(results.iter().all(|(v, _)| v.as_ref().unwrap() == "again"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    server.assert_clean(namespace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stopped_mid_flight_falls_back_then_coalesces_again() {
    server_stopped_mid_flight(FailurePolicy::Fallback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stopped_mid_flight_strict_returns_errors() {
    server_stopped_mid_flight(FailurePolicy::Strict).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_from_the_start_of_a_flight() {
    let mut server = Server::start();
    let strict: Group<u64> = group(
        &server,
        "down",
        Options::new()
            .failure_policy(FailurePolicy::Strict)
            .redis_timeout(ms(300)),
    )
    .await;
    let lenient: Group<u64> = group(&server, "down", Options::new().redis_timeout(ms(300))).await;
    server.stop();
    // Each command is bounded by the 300 ms command timeout; the watchdog only catches a hang.
    let err = tokio::time::timeout(HANG, strict.call(1, |_| async { 1 }))
        .await
        .expect("hung")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redis);
    let (v, origin) = tokio::time::timeout(HANG, lenient.call(1, |_| async { 2 }).with_origin())
        .await
        .expect("hung");
    assert_eq!((v.unwrap(), origin), (2, Origin::Fallback));
}

/// `a` writes `value`; `b`, waiting for it, must never get it as a wrong value.
async fn rejected<A, B>(
    a_options: Options,
    b_options: Options,
    value: A,
    own: B,
) -> Vec<(Result<B, single_flight_redis::Error>, Origin)>
where
    A: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    B: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let server = Server::start();
    let a: Group<A> = group(&server, "wire", a_options).await;
    let b: Group<B> = group(&server, "wire", b_options).await;
    let (runs_a, runs_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (open, gate) = watch::channel(false);
    let ha = gated_herd(&a, 3, 2, 0, &gate, &runs_a, value).await;
    until_runs(&runs_a, 1).await;
    let hb = herd(&b, 3, 4, 10, &runs_b, own).await;
    until_waiters(&server, "wire", 3, 1);
    open.send(true).unwrap();
    let ra = join_all(ha).await;
    assert!(ra.iter().all(|(v, _)| v.is_ok()));
    let rb = join_all(hb).await;
    assert!(b.stats().rejected_values >= 1);
    server.assert_clean("wire");
    rb
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_over_the_cap_or_of_another_type_are_never_handed_out() {
    let big = "x".repeat(10_000);
    let small = Options::new().max_value_size(1000);
    let strict = |o: Options| o.failure_policy(FailurePolicy::Strict);

    // Over the reader's cap: run here (default) or an error (strict).
    let rb = rejected(Options::new(), small.clone(), big.clone(), "own".to_owned()).await;
    assert!(rb
        .iter()
        .all(|(v, r)| v.as_ref().unwrap() == "own" && *r != Origin::JoinedRemote));
    let rb = rejected(
        Options::new(),
        strict(small.clone()),
        big.clone(),
        "own".to_owned(),
    )
    .await;
    assert!(rb
        .iter()
        .all(|(v, _)| v.as_ref().unwrap_err().kind() == ErrorKind::Oversize));
    // Over the owner's cap: the owner writes a marker instead.
    let rb = rejected(small.clone(), Options::new(), big.clone(), "own".to_owned()).await;
    assert!(rb.iter().all(|(v, _)| v.as_ref().unwrap() == "own"));
    let rb = rejected(small.clone(), strict(Options::new()), big, "own".to_owned()).await;
    assert!(rb
        .iter()
        .all(|(v, _)| v.as_ref().unwrap_err().kind() == ErrorKind::Oversize));
    // Bytes that do not decode as the reader's type.
    let rb = rejected(Options::new(), Options::new(), "seven".to_owned(), 7u64).await;
    assert!(rb.iter().all(|(v, _)| *v.as_ref().unwrap() == 7));
    let rb = rejected(
        Options::new(),
        strict(Options::new()),
        "seven".to_owned(),
        7u64,
    )
    .await;
    assert!(rb
        .iter()
        .all(|(v, _)| v.as_ref().unwrap_err().kind() == ErrorKind::Decode));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_reaches_the_other_processes_as_panicked() {
    let server = Server::start();
    let a: Group<u64> = group(&server, "panic", Options::new()).await;
    let b: Group<u64> = group(&server, "panic", Options::new()).await;
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let (open, mut gate) = watch::channel(false);
    let owner = tokio::spawn({
        let a = a.clone();
        async move {
            AssertUnwindSafe(a.call(3, move |_| async move {
                s.fetch_add(1, Ordering::SeqCst);
                gate.wait_for(|open| *open).await.unwrap();
                panic!("database is on fire");
            }))
            .catch_unwind()
            .await
        }
    });
    until_runs(&started, 1).await;
    let polled = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let b = b.clone();
            let call = async move { b.call(3, |_| async { 0 }).await };
            tokio::spawn(common::first_poll(call, polled.clone()))
        })
        .collect();
    common::until(|| polled.load(Ordering::SeqCst) == 4).await;
    until_waiters(&server, "panic", 3, 1);
    open.send(true).unwrap();
    let payload = owner.await.unwrap().unwrap_err();
    assert_eq!(*payload.downcast::<&str>().unwrap(), "database is on fire");
    for w in waiters {
        let payload = w.await.unwrap_err().into_panic();
        let panicked = payload.downcast::<Panicked>().expect("a Panicked payload");
        assert_eq!(panicked.message(), "database is on fire");
    }
    assert_eq!(started.load(Ordering::SeqCst), 1);
    assert_eq!((a.in_flight(), b.in_flight()), (0, 0));
    server.assert_clean("panic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_up_messages_come_back_after_a_restart() {
    let mut server = Server::start();
    // A 30 s lease: a waiter polls only every 10 s, so it learns of the end by the message
    // (counted in `ends_by_message`) unless a 10 s stall comes first.
    let options = Options::new()
        .lease(ms(30_000))
        .redis_timeout(ms(2000))
        .outage_backoff(ms(100));
    let a: Group<u32> = group(&server, "resubscribe", options.clone()).await;
    let b: Group<u32> = group(&server, "resubscribe", options).await;
    server.restart();
    // The first commands after the restart reconnect (or fall back meanwhile).
    for (i, g) in [&a, &b].into_iter().enumerate() {
        let deadline = Instant::now() + HANG;
        while g
            .call(100 + i as u32, |_| async { 0 })
            .with_origin()
            .await
            .1
            != Origin::Owner
        {
            assert!(Instant::now() < deadline, "never reached the server again");
            tokio::time::sleep(ms(50)).await;
        }
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let (open, gate) = watch::channel(false);
    let ha = gated_herd(&a, 1, 1, 0, &gate, &runs, 5).await;
    until_runs(&runs, 1).await;
    let waiter = tokio::spawn({
        let b = b.clone();
        async move { b.call(1, |_| async { 6 }).with_origin().await }
    });
    // `b` listens on the flight's channel and has checked once: only then does the owner end.
    common::until(|| b.stats().checks >= 1).await;
    open.send(true).unwrap();
    let (v, origin) = tokio::time::timeout(HANG, waiter)
        .await
        .expect("hung")
        .unwrap();
    assert_eq!((v.unwrap(), origin), (5, Origin::JoinedRemote));
    assert_eq!(
        b.stats().ends_by_message,
        1,
        "woken by polling, not by the message"
    );
    join_all(ha).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    server.assert_clean("resubscribe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_caller_waits_past_the_maximum_wait() {
    let server = Server::start();
    let owner: Group<String> = group(&server, "max-wait", Options::new()).await;
    let patient = Options::new().max_wait(ms(300));
    let strict: Group<String> = group(
        &server,
        "max-wait",
        patient.clone().failure_policy(FailurePolicy::Strict),
    )
    .await;
    let lenient: Group<String> = group(&server, "max-wait", patient).await;
    let runs = Arc::new(AtomicUsize::new(0));
    // The owner ends only after both other groups have returned: they cannot have waited for
    // it, so the maximum wait (not the owner's end) released them.
    let (open, gate) = watch::channel(false);
    let slow = gated_herd(&owner, 4, 1, 0, &gate, &runs, "slow".to_owned()).await;
    until_runs(&runs, 1).await;

    let (err, _) = tokio::time::timeout(
        HANG,
        strict
            .call(4, |_| async { "never".to_owned() })
            .with_origin(),
    )
    .await
    .expect("hung");
    assert_eq!(err.unwrap_err().kind(), ErrorKind::Timeout);
    let (v, origin) = tokio::time::timeout(
        HANG,
        lenient
            .call(4, |_| async { "here".to_owned() })
            .with_origin(),
    )
    .await
    .expect("hung");
    assert_eq!((v.unwrap().as_str(), origin), ("here", Origin::Fallback));
    assert_eq!(lenient.stats().fallbacks, 1);

    open.send(true).unwrap();
    let results = join_all(slow).await;
    assert_eq!(results[0].0.as_ref().unwrap(), "slow");
    server.assert_clean("max-wait");
}
