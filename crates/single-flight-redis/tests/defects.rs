//! Regression tests of issue 20's defects and of what an unshared flight leaves in Redis: the
//! key pattern of a namespace with glob characters, a value whose `Serialize` fails, duration
//! options at 0, 1 ms and `Duration::MAX`, a lease without TTL; and a lease that Redis grants
//! after its caller left. Each test starts its own `redis-server`; several groups in one process stand for several processes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{tag, until, Server, HANG};
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

/// Waits until `runs` reaches `n` (the owner's work has begun), up to a watchdog bound.
async fn until_runs(runs: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + HANG;
    while runs.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "the work never started");
        tokio::time::sleep(ms(5)).await;
    }
}

/// A gate for an owner's work, opened (from a blocking thread) once a waiting group is
/// registered in the lease of `key`: then the owner is sure to be running when the other
/// group asks, whatever the scheduler does.
fn gate_until_waiting(
    server: &Server,
    namespace: &str,
    key: u32,
) -> (watch::Receiver<bool>, std::thread::JoinHandle<()>) {
    let (open, gate) = watch::channel(false);
    let lease = format!("{namespace}:{{{}}}:lease", tag(&key));
    let admin = server.client();
    let opener = std::thread::spawn(move || {
        let mut conn = admin.get_connection().unwrap();
        let deadline = Instant::now() + HANG;
        loop {
            let w: Option<u64> = redis::cmd("HGET")
                .arg(&lease)
                .arg("w")
                .query(&mut conn)
                .unwrap();
            if w.unwrap_or(0) >= 1 {
                break;
            }
            assert!(Instant::now() < deadline, "no group waited for {lease}");
            std::thread::sleep(ms(5));
        }
        open.send(true).unwrap();
    });
    (gate, opener)
}

fn scan(server: &Server, pattern: &str) -> Vec<String> {
    let mut conn = server.client().get_connection().unwrap();
    let mut keys: Vec<String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(1000)
        .clone()
        .iter::<String>(&mut conn)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    keys.sort();
    keys.dedup();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_pattern_matches_its_own_namespace_only() {
    let server = Server::start();
    let namespaces = ["p*", "px", "p?", "p[x", "p\\"];
    let mut conn = server.client().get_connection().unwrap();
    for ns in namespaces {
        let key = format!("{ns}:{{{}}}:lease", tag(&1u32));
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("t")
            .arg("PX")
            .arg(60_000)
            .query(&mut conn)
            .unwrap();
    }
    for ns in namespaces {
        let g: Group<u32> = group(&server, ns, Options::new()).await;
        let own = format!("{ns}:{{{}}}:lease", tag(&1u32));
        assert_eq!(scan(&server, &g.key_pattern()), vec![own], "namespace {ns}");
    }
}

/// A value that serializes only when `ok`.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
struct Flaky {
    ok: bool,
}

impl serde::Serialize for Flaky {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !self.ok {
            return Err(serde::ser::Error::custom("Flaky refuses"));
        }
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Flaky", 1)?;
        st.serialize_field("ok", &self.ok)?;
        st.end()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_that_does_not_serialize_is_handled_like_an_oversize_one() {
    for policy in [FailurePolicy::Fallback, FailurePolicy::Strict] {
        let server = Server::start();
        let options = Options::new().failure_policy(policy);
        let a: Group<Flaky> = group(&server, "flaky", options.clone()).await;
        let b: Group<Flaky> = group(&server, "flaky", options).await;
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let (mut gate, opener) = gate_until_waiting(&server, "flaky", 1);
        let owner = tokio::spawn({
            let a = a.clone();
            async move {
                a.call(1, move |_| async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    gate.wait_for(|open| *open).await.unwrap();
                    Flaky { ok: false }
                })
                .with_origin()
                .await
            }
        });
        until_runs(&runs, 1).await;
        let r = runs.clone();
        // Before the fix, this panicked with `Panicked: value does not serialize`.
        let (value, origin) = b
            .call(1, move |_| async move {
                r.fetch_add(1, Ordering::SeqCst);
                Flaky { ok: false }
            })
            .with_origin()
            .await;
        opener.join().unwrap();
        let (own, own_origin) = owner.await.unwrap();
        assert_eq!(
            (own.unwrap(), own_origin),
            (Flaky { ok: false }, Origin::Owner)
        );
        match policy {
            FailurePolicy::Strict => {
                assert_eq!(value.unwrap_err().kind(), ErrorKind::Encode);
                assert_eq!(runs.load(Ordering::SeqCst), 1);
            }
            _ => {
                assert_eq!(
                    (value.unwrap(), origin),
                    (Flaky { ok: false }, Origin::Fallback)
                );
                assert_eq!(runs.load(Ordering::SeqCst), 2);
            }
        }
        assert_eq!(b.stats().rejected_values, 1);
        server.assert_clean("flaky");
    }
}

/// When the owner's work in [`herd_with`] ends.
#[derive(Clone, Copy, PartialEq)]
enum OwnerEnds {
    /// Once the second group is registered in its lease (it will get the owner's value).
    Joined,
    /// Only after the second group's call returned (it cannot have got the owner's value).
    After,
}

/// A herd across two groups with `options`: the owner's work runs until `ends`; the second
/// group calls once it has begun. Answers the second group's origin and the number of
/// executions.
async fn herd_with(
    server: &Server,
    ns: &str,
    options: Options,
    ends: OwnerEnds,
) -> (Origin, usize) {
    let a: Group<u32> = group(server, ns, options.clone()).await;
    let b: Group<u32> = group(server, ns, options).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let (open, mut gate) = watch::channel(false);
    let open = Arc::new(open);
    let opener = (ends == OwnerEnds::Joined).then(|| {
        // Once `b` listens on the flight's channel and has checked: it gets the value by the
        // message even if the result is kept 0 ms.
        let (b, open) = (b.clone(), open.clone());
        tokio::spawn(async move {
            common::until(|| b.stats().checks >= 1).await;
            open.send(true).unwrap();
        })
    });
    let owner = tokio::spawn({
        let a = a.clone();
        async move {
            a.call(7, move |_| async move {
                r.fetch_add(1, Ordering::SeqCst);
                gate.wait_for(|open| *open).await.unwrap();
                1
            })
            .await
        }
    });
    until_runs(&runs, 1).await;
    let r = runs.clone();
    let (value, origin) = b
        .call(7, move |_| async move {
            r.fetch_add(1, Ordering::SeqCst);
            1
        })
        .with_origin()
        .await;
    assert_eq!(value.unwrap(), 1);
    match opener {
        Some(opener) => opener.await.unwrap(),
        None => open.send(true).unwrap(),
    }
    assert_eq!(owner.await.unwrap().unwrap(), 1);
    (origin, runs.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_options_at_zero_one_ms_and_max() {
    let server = Server::start();
    for (i, d) in [Duration::ZERO, ms(1), Duration::MAX]
        .into_iter()
        .enumerate()
    {
        // Before the fix, `result_lifetime(MAX)` made Redis refuse the result's `PX` and left
        // the lease behind (two executions), and `max_wait(MAX)` panicked in every call.
        let ns = format!("durations-{i}");
        let patient = Options::new().result_lifetime(d).lease(d.max(ms(500)));
        assert_eq!(
            herd_with(&server, &ns, patient, OwnerEnds::Joined).await,
            (Origin::JoinedRemote, 1)
        );
        server.assert_clean(&ns);
        let ns = format!("waits-{i}");
        if d == Duration::MAX {
            let joined = herd_with(&server, &ns, Options::new().max_wait(d), OwnerEnds::Joined);
            assert_eq!(joined.await, (Origin::JoinedRemote, 1));
        } else {
            // The owner runs until this group has returned: 0 or 1 ms of waiting ended first,
            // and the policy applied.
            let after = herd_with(&server, &ns, Options::new().max_wait(d), OwnerEnds::After);
            assert_eq!(after.await, (Origin::Fallback, 2));
        }
        server.assert_clean(&ns);
        let ns = format!("others-{i}");
        // The command timeout at least 2 s: shorter, a scheduling stall passes for an outage.
        let others = Options::new()
            .redis_timeout(d.max(ms(2000)))
            .outage_backoff(d)
            .renew_every(d);
        assert_eq!(
            herd_with(&server, &ns, others, OwnerEnds::Joined).await,
            (Origin::JoinedRemote, 1)
        );
        server.assert_clean(&ns);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unshared_flight_leaves_nothing_and_a_shared_one_its_result() {
    let server = Server::start();
    let a: Group<u32> = group(&server, "unshared", Options::new()).await;
    for key in 0..20 {
        assert_eq!(a.call(key, |k| async move { k }).await.unwrap(), key);
    }
    assert_eq!((a.stats().owned, a.stats().unshared), (20, 20));
    assert_eq!(scan(&server, &a.key_pattern()), Vec::<String>::new());
    // Shared: the owner leaves its result (with a TTL) for the waiter.
    assert_eq!(
        herd_with(&server, "unshared", Options::new(), OwnerEnds::Joined).await,
        (Origin::JoinedRemote, 1)
    );
    let keys = scan(&server, &a.key_pattern());
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].contains(":result:"));
    server.assert_clean("unshared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_without_ttl_is_checked_with_a_bounded_back_off() {
    let server = Server::start();
    let lease = format!("no-ttl:{{{}}}:lease", tag(&3u32));
    let mut conn = server.client().get_connection().unwrap();
    let _: () = redis::cmd("SET")
        .arg(&lease)
        .arg("someone-else")
        .query(&mut conn)
        .unwrap();
    let max_wait = ms(1000);
    let g: Group<u32> = group(&server, "no-ttl", Options::new().max_wait(max_wait)).await;
    let (value, origin) = g.call(3, |_| async { 9 }).with_origin().await;
    assert_eq!((value.unwrap(), origin), (9, Origin::Fallback));
    let stats = g.stats();
    assert_eq!(stats.fallbacks, 1);
    // Checks at 0, 10, 30, 70, 150, 310, 630 ms (the back-off doubles from 10 ms): at most
    // 7 within the 1 s wait, however slow the machine (before: one every 5 ms, about 200).
    assert!(
        (1..=8).contains(&stats.leases_without_ttl),
        "{} checks",
        stats.leases_without_ttl
    );
    let _: () = redis::cmd("DEL").arg(&lease).query(&mut conn).unwrap();
    server.assert_clean("no-ttl");
}

/// The clients that the server holds back (`CLIENT PAUSE`) with `command` as their next one.
fn held_back(server: &Server, command: &str) -> usize {
    let mut conn = server.client().get_connection().unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut conn).unwrap();
    let paused = |line: &&str| {
        let field = |name: &str| line.split(' ').find_map(|f| f.strip_prefix(name));
        field("flags=").is_some_and(|f| f.contains('b')) && field("cmd=") == Some(command)
    };
    list.lines().filter(paused).count()
}

fn client_pause(server: &Server, args: &[&str]) {
    let mut conn = server.client().get_connection().unwrap();
    let () = redis::cmd("CLIENT").arg(args).query(&mut conn).unwrap();
}

/// A caller that leaves while its ACQUIRE is out, which Redis then runs, leaves no lease
/// behind: the lease is released at once, not when it expires (600 s here, ten times the
/// watchdog). The server holds writes back (`CLIENT PAUSE .. WRITE`) so that the ACQUIRE is
/// certainly out when the caller leaves and certainly runs after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_granted_after_its_caller_left_is_released() {
    let server = Server::start();
    let options = Options::new()
        .lease(Duration::from_secs(600))
        .redis_timeout(Duration::from_secs(600));
    let g: Group<u32> = group(&server, "gone", options).await;
    let lease = format!("gone:{{{}}}:lease", tag(&1u32));
    // A first flight loads the scripts: the held-back ACQUIRE then runs as it is, with no
    // `NOSCRIPT` answer that only a caller still there would act on.
    assert_eq!(g.call(0, |_| async { 0 }).await.unwrap(), 0);
    client_pause(&server, &["PAUSE", &HANG.as_millis().to_string(), "WRITE"]);
    let caller = tokio::spawn({
        let g = g.clone();
        async move { g.call(1, |_| async { 1 }).await }
    });
    until(|| held_back(&server, "evalsha") == 1).await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    client_pause(&server, &["UNPAUSE"]);
    until(|| server.lease_token(&lease).is_none()).await;
    // The group is still usable, and no process waits on a lease nobody holds.
    assert_eq!(g.call(1, |_| async { 2 }).await.unwrap(), 2);
    server.assert_clean("gone");
}
