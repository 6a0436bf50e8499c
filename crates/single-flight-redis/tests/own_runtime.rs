//! A `RedisGroup` on a runtime this crate does not name: `Threads` below, async-io's timers and
//! a thread per spawned task, implementing `single_flight::runtime::Runtime` in a few lines.
//! Its callers run on plain threads (`block_on`), outside any runtime's context; the group's
//! command timeouts, waits and background task (an abandoned lease released at once, a
//! channel given up) all run on `Threads`, and a caller dropped on the test's thread hands its
//! lease's release over without a runtime in sight.
//!
//! redis-rs does its I/O on the runtime its features build, and with `tokio-comp` alone its
//! commands need a tokio runtime's context: so this file needs the feature `smol` (async-io
//! serves any thread), as `tests/smol.rs` does: `cargo test -p single-flight-redis --features
//! smol --test own_runtime`, and `cargo test --workspace`. The groups connect inside a tokio
//! runtime all the same: with both features, that is where redis-rs drives the connection.

#![cfg(feature = "smol")]

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{tag, Server, HANG};
use futures_lite::future::{block_on, poll_once};
use single_flight::runtime::Runtime;
use single_flight_redis::{Options, Origin, RedisGroup};

// --- The whole runtime. ---
/// How many tasks the groups handed to `Threads`.
static SPAWNED: AtomicUsize = AtomicUsize::new(0);

struct Threads;

impl Runtime for Threads {
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        let timer = async_io::Timer::at(deadline);
        async move {
            timer.await;
        }
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(task: F) {
        SPAWNED.fetch_add(1, Ordering::SeqCst);
        thread::spawn(move || block_on(task));
    }
}
// --- End of the runtime. ---

type Group = Arc<RedisGroup<u32, String, Threads>>;

/// Connects a group on `Threads` (inside a tokio runtime's context, for redis-rs's I/O only).
fn connect(io: &tokio::runtime::Runtime, server: &Server, ns: &str, options: Options) -> Group {
    let _io = io.enter();
    let connect = RedisGroup::connect_on(Threads, server.client(), ns, options);
    Arc::new(block_on(connect).expect("connect"))
}

/// Waits (up to the watchdog bound, for hangs only) until `done` holds, on this thread.
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: never happened (watchdog)"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_group_runs_on_a_runtime_the_crate_does_not_name() {
    let server = Server::start();
    let io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ns = "own-runtime";
    // A lease far longer than the watchdog: only an abandon can remove it in time.
    let options = Options::new().lease(Duration::from_secs(600));
    let (owner, waiter) = (
        connect(&io, &server, ns, options.clone()),
        connect(&io, &server, ns, options),
    );
    assert!(
        SPAWNED.load(Ordering::SeqCst) >= 2,
        "each group spawned its background task"
    );

    // A herd across the two groups, each caller on a plain thread: one run, two values.
    let runs = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicBool::new(false));
    let call = |group: &Group| {
        let (group, runs, open) = (group.clone(), runs.clone(), open.clone());
        thread::spawn(move || {
            block_on(
                group
                    .call(1, move |_| async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        while !open.load(Ordering::SeqCst) {
                            async_io::Timer::after(Duration::from_millis(5)).await;
                        }
                        "v".to_owned()
                    })
                    .with_origin(),
            )
        })
    };
    let first = call(&owner);
    until("the work runs", || runs.load(Ordering::SeqCst) == 1);
    let second = call(&waiter);
    server.until_lease_waiters(&format!("{ns}:{{{}}}:lease", tag(&1u32)), 1);
    open.store(true, Ordering::SeqCst);
    let (first, second) = (first.join().unwrap(), second.join().unwrap());
    assert_eq!(first.0.unwrap(), "v");
    assert_eq!(second.0.unwrap(), "v");
    assert_eq!((first.1, second.1), (Origin::Owner, Origin::JoinedRemote));
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // An owner whose only caller is dropped here, on the test's thread, outside any runtime:
    // the drop hands the lease's release to the group's background task on `Threads`.
    let lease = format!("{ns}:{{{}}}:lease", tag(&2u32));
    let mut call = Box::pin(owner.call(2, |_| std::future::pending::<String>()));
    // Polled until it owns the lease (`owned` is counted as the owner starts, with its
    // release armed), not merely until the lease is in Redis (the answer may be on its way).
    block_on(async {
        while owner.stats().owned < 2 {
            assert!(poll_once(call.as_mut()).await.is_none());
            async_io::Timer::after(Duration::from_millis(5)).await;
        }
    });
    assert!(server.lease_token(&lease).is_some());
    drop(call);
    until("the lease is released", || {
        server.lease_token(&lease).is_none()
    });
    assert_eq!(owner.stats().abandoned, 1);
    assert_eq!((owner.in_flight(), waiter.in_flight()), (0, 0));
    drop((owner, waiter));
    server.assert_clean(ns);
}
