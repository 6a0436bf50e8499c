//! Coalescing across real processes: this test binary runs itself again as the replicas
//! (`child`), against a `redis-server` that each test starts; faults are real (SIGKILL).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{env_u64, is_child, lines, now_ms, spawn_child, tag, Server, HANG};
use single_flight_redis::{FailurePolicy, Options, RedisGroup};

const KEY: &str = "customer:42";

/// The replica: `SF_TASKS` callers of one key, started together when the parent writes a line
/// to its stdin (it prints `READY` once connected), for `SF_ROUNDS` rounds (default 1, a key
/// per round, each started by a line and ended by `ROUND_DONE`), or until stdin closes.
/// Prints `JOINED` once every caller has joined the local flight, `EXEC <pid>` when its work runs and `VALUE <value> <origin> <unix ms>` per caller
/// (`ERROR <kind> <unix ms>` under `SF_STRICT`, `LEFT <unix ms>` for a caller that left).
/// Under `SF_GATE`, the work ends only once the parent writes a second line in the round
/// (after its `SF_WORK_MS`); under `SF_LEAVE`, that line makes every caller leave instead.
#[test]
fn child() {
    if !is_child() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = std::env::var("SF_URL").unwrap();
        let namespace = std::env::var("SF_NS").unwrap();
        let policy = match std::env::var_os("SF_STRICT") {
            Some(_) => FailurePolicy::Strict,
            None => FailurePolicy::Fallback,
        };
        let options = Options::new()
            .lease(Duration::from_millis(env_u64("SF_LEASE_MS")))
            .max_wait(Duration::from_secs(30))
            // Long enough that no scheduling stall passes for an outage (a stopped server
            // refuses at once).
            .redis_timeout(Duration::from_millis(2000))
            .outage_backoff(Duration::from_millis(300))
            .failure_policy(policy);
        let group: RedisGroup<String, String> =
            RedisGroup::connect(redis::Client::open(url).unwrap(), &namespace, options)
                .await
                .unwrap();
        let group = std::sync::Arc::new(group);
        let work_ms = env_u64("SF_WORK_MS");
        let gated = std::env::var_os("SF_GATE").is_some();
        let leave = std::env::var_os("SF_LEAVE").is_some();
        let rounds = std::env::var("SF_ROUNDS").map_or(1, |r| r.parse().unwrap());
        say("READY");
        for round in 0..rounds {
            let go = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).unwrap()
            });
            if go.await.unwrap() == 0 {
                break; // the parent closed stdin: no more rounds
            }
            // The round's second line: opens the gate, or makes the callers leave.
            let (signal, line) = tokio::sync::watch::channel(false);
            let second = (gated || leave).then(|| {
                tokio::task::spawn_blocking(move || {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line).unwrap();
                    let _ = signal.send(true);
                })
            });
            let mut tasks = Vec::new();
            // `JOINED` once every caller has joined the local flight (`first_poll`): the
            // parent opens a gate only after that, so no caller comes late to a new flight.
            let polled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let n = env_u64("SF_TASKS") as usize;
            for _ in 0..n {
                let group = group.clone();
                let key = if round == 0 {
                    KEY.to_owned()
                } else {
                    format!("{KEY}:{round}")
                };
                let (mut gate, mut left) = (line.clone(), line.clone());
                let polled = polled.clone();
                tasks.push(tokio::spawn(async move {
                    let call = group
                        .call(key, move |_key| async move {
                            say(&format!("EXEC {}", std::process::id()));
                            tokio::time::sleep(Duration::from_millis(work_ms)).await;
                            if gated {
                                let _ = gate.wait_for(|open| *open).await;
                            }
                            format!("from-{}", std::process::id())
                        })
                        .with_origin();
                    let call = common::first_poll(call, polled);
                    let outcome = if leave {
                        let leave = async {
                            let _ = left.wait_for(|go| *go).await;
                            None
                        };
                        futures_lite::future::or(async { Some(call.await) }, leave).await
                    } else {
                        Some(call.await)
                    };
                    match outcome {
                        Some((Ok(value), origin)) => {
                            say(&format!("VALUE {value} {origin:?} {}", now_ms()))
                        }
                        Some((Err(error), _)) => {
                            say(&format!("ERROR {:?} {}", error.kind(), now_ms()))
                        }
                        None => say(&format!("LEFT {}", now_ms())),
                    }
                }));
            }
            common::until(|| polled.load(std::sync::atomic::Ordering::SeqCst) == n).await;
            say("JOINED");
            for task in tasks {
                task.await.unwrap();
            }
            // Read before the next round's `go`, whoever needed it.
            if let Some(second) = second {
                second.await.unwrap();
            }
            say("ROUND_DONE");
        }
        if let Ok(hold) = std::env::var("SF_HOLD_MS") {
            tokio::time::sleep(Duration::from_millis(hold.parse().unwrap())).await;
        }
        assert_eq!(group.in_flight(), 0);
    });
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

struct Replica {
    child: Child,
    lines: mpsc::Receiver<String>,
    output: String,
}

impl Replica {
    fn spawn(server: &Server, namespace: &str, env: &[(&str, String)]) -> Replica {
        let mut all = vec![("SF_URL", server.url()), ("SF_NS", namespace.to_owned())];
        all.extend(env.iter().cloned());
        let mut child = spawn_child("child", &all);
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Replica {
            child,
            lines: rx,
            output: String::new(),
        }
    }

    /// Starts the replica's callers (once it is `READY`).
    fn go(&mut self) {
        self.line("go");
    }

    /// Writes a line to the replica: `go`, or a round's second line (`SF_GATE`, `SF_LEAVE`).
    fn line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Spawns `n` replicas and waits until every one is connected.
    fn ready(server: &Server, namespace: &str, n: usize, env: &[(&str, String)]) -> Vec<Replica> {
        let mut replicas: Vec<Replica> = (0..n)
            .map(|_| Replica::spawn(server, namespace, env))
            .collect();
        for r in &mut replicas {
            r.wait_for("READY");
        }
        replicas
    }

    /// Waits (up to the watchdog bound) for a line starting with `prefix`.
    fn wait_for(&mut self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(HANG)
                .unwrap_or_else(|_| panic!("no `{prefix}` line from the replica"));
            self.output.push_str(&line);
            self.output.push('\n');
            if line.contains(prefix) {
                return line;
            }
        }
    }

    /// Like [`wait_for`](Self::wait_for), unless a line with `prefix` came already (while
    /// waiting for another one).
    fn wait_for_once(&mut self, prefix: &str) {
        if !self.output.lines().any(|l| l.contains(prefix)) {
            self.wait_for(prefix);
        }
    }

    /// Waits for the replica to exit successfully; returns its whole output.
    fn finish(mut self) -> String {
        drop(self.child.stdin.take()); // no more rounds
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.output.push_str(&line);
            self.output.push('\n');
        }
        assert!(status.success(), "replica failed:\n{}", self.output);
        self.output
    }
}

fn env(tasks: u64, work_ms: u64, lease_ms: u64) -> Vec<(&'static str, String)> {
    vec![
        ("SF_TASKS", tasks.to_string()),
        ("SF_WORK_MS", work_ms.to_string()),
        ("SF_LEASE_MS", lease_ms.to_string()),
    ]
}

/// `(value, origin, served at)` of every `VALUE` line.
fn values(output: &str) -> Vec<(String, String, u64)> {
    lines(output, "VALUE")
        .into_iter()
        .map(|l| {
            let mut parts = l.split(' ');
            let value = parts.next().unwrap().to_owned();
            let origin = parts.next().unwrap().to_owned();
            let at = parts.next().unwrap().parse().unwrap();
            (value, origin, at)
        })
        .collect()
}

/// `processes` replicas at `url` (the server's, or a user's), 25 callers each, one key: the
/// owner's work ends only once every other replica is registered in its lease.
fn herd_of_processes(server: &Server, namespace: &str, url: Option<String>) {
    let (processes, tasks) = (4, 25);
    let mut env = env(tasks, 0, 10_000);
    env.push(("SF_GATE", "1".into()));
    if let Some(url) = url {
        env.push(("SF_URL", url));
    }
    let mut replicas = Replica::ready(server, namespace, processes, &env);
    for r in &mut replicas {
        r.go();
    }
    server.until_lease_waiters(&lease(namespace, KEY), processes as u64 - 1);
    for r in &mut replicas {
        r.wait_for("JOINED");
    }
    for r in &mut replicas {
        r.line("open");
    }
    let outputs: Vec<String> = replicas.into_iter().map(Replica::finish).collect();
    let all = outputs.concat();

    assert_eq!(lines(&all, "EXEC").len(), 1, "executions:\n{all}");
    let served = values(&all);
    assert_eq!(served.len(), processes * tasks as usize);
    let distinct: HashSet<&str> = served.iter().map(|(v, _, _)| v.as_str()).collect();
    assert_eq!(distinct.len(), 1, "every caller gets the one value");
    let started = served.iter().filter(|(_, r, _)| r == "Owner").count();
    let remote = served
        .iter()
        .filter(|(_, r, _)| r == "JoinedRemote")
        .count();
    assert_eq!((started, remote), (1, processes - 1));
    server.assert_clean(namespace);
}

/// The lease key of `key` in `namespace`.
fn lease(namespace: &str, key: &str) -> String {
    format!("{namespace}:{{{}}}:lease", tag(&key))
}

#[test]
fn one_execution_for_a_herd_of_processes() {
    if is_child() {
        return;
    }
    let server = Server::start();
    herd_of_processes(&server, "herd", None);
}

#[test]
fn one_execution_for_a_herd_of_processes_under_the_least_privilege_user() {
    if is_child() {
        return;
    }
    let server = Server::start();
    let namespace = "herd-acl";
    let rule = single_flight_redis::acl_rule(namespace).unwrap();
    let url = server.acl_user("herd", "secret", &rule);
    herd_of_processes(&server, namespace, Some(url));
}

fn kill_9(child: &Child) {
    let status = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn owner_killed_mid_work_one_process_takes_over() {
    if is_child() {
        return;
    }
    let server = Server::start();
    let namespace = "sigkill";
    let lease_ms = 400;
    let key = lease(namespace, KEY);
    // The owner: its work would take 30 s.
    let mut owner = Replica::ready(&server, namespace, 1, &env(1, 30_000, lease_ms)).remove(0);
    owner.go();
    owner.wait_for("EXEC");
    let first = server.lease_token(&key).unwrap();
    // Three waiting replicas; the one that takes over ends its work only once the two others
    // wait for it (registered in its lease).
    let mut waiter_env = env(10, 0, lease_ms);
    waiter_env.push(("SF_GATE", "1".into()));
    let mut waiters = Replica::ready(&server, namespace, 3, &waiter_env);
    for w in &mut waiters {
        w.go();
    }
    server.until_lease_waiters(&key, 3);
    for w in &mut waiters {
        w.wait_for("JOINED");
    }
    kill_9(&owner.child);
    let killed_at = now_ms();
    let _ = owner.child.wait();
    // The lease expires (its owner cannot renew it), one waiter takes it over.
    let deadline = std::time::Instant::now() + HANG;
    while server.lease_token(&key).is_none_or(|t| t == first) {
        assert!(std::time::Instant::now() < deadline, "nobody took over");
        thread::sleep(Duration::from_millis(5));
    }
    server.until_lease_waiters(&key, 2);
    for w in &mut waiters {
        w.line("open");
    }

    let outputs: Vec<String> = waiters.into_iter().map(Replica::finish).collect();
    let all = outputs.concat();
    assert_eq!(lines(&all, "EXEC").len(), 1, "exactly one takeover:\n{all}");
    let served = values(&all);
    assert_eq!(served.len(), 30);
    let distinct: HashSet<&str> = served.iter().map(|(v, _, _)| v.as_str()).collect();
    assert_eq!(distinct.len(), 1);
    let last = served.iter().map(|(_, _, at)| *at).max().unwrap();
    // Reported, not asserted: how soon depends on the lease (the design) and on the machine.
    eprintln!(
        "takeover: every waiter served {} ms after SIGKILL (lease {lease_ms} ms)",
        last.saturating_sub(killed_at)
    );
    server.assert_clean(namespace);
}

#[test]
fn owner_whose_callers_all_leave_releases_its_lease_at_once() {
    if is_child() {
        return;
    }
    let server = Server::start();
    let namespace = "abandon";
    // A lease far longer than any wait of the test: a takeover can only come from the release.
    let lease_ms = 120_000;
    let mut owner_env = env(3, 600_000, lease_ms);
    owner_env.push(("SF_LEAVE", "1".into()));
    // The owner's process stays up after its callers left: the release, not its death, frees
    // the lease.
    owner_env.push(("SF_HOLD_MS", "1000".into()));
    let mut owner = Replica::ready(&server, namespace, 1, &owner_env).remove(0);
    let mut waiter = Replica::ready(&server, namespace, 1, &env(5, 100, lease_ms)).remove(0);
    owner.go();
    owner.wait_for("EXEC");
    waiter.go();
    server.until_lease_waiters(&lease(namespace, KEY), 1);
    owner.wait_for_once("JOINED");
    waiter.wait_for("JOINED");
    owner.line("leave");
    // Served long before the 120 s lease could expire (or the watchdog fails the test).
    waiter.wait_for("ROUND_DONE");
    let waiter_out = waiter.finish();
    let owner_out = owner.finish();

    assert_eq!(lines(&owner_out, "LEFT").len(), 3, "{owner_out}");
    assert_eq!(lines(&waiter_out, "EXEC").len(), 1, "{waiter_out}");
    let served = values(&waiter_out);
    assert_eq!(served.len(), 5);
    let started = served
        .iter()
        .filter(|(_, origin, _)| origin == "Owner")
        .count();
    assert_eq!(started, 1, "the waiter took the flight over:\n{waiter_out}");
    server.assert_clean(namespace);
}

/// One round of every replica (`SF_GATE`): go; `before_open` (the server at hand); the gate's
/// line; then each one's output up to `ROUND_DONE`.
fn round(replicas: &mut [Replica], before_open: impl FnOnce()) -> Vec<String> {
    for r in replicas.iter_mut() {
        r.go();
    }
    for r in replicas.iter_mut() {
        r.wait_for("JOINED");
    }
    before_open();
    for r in replicas.iter_mut() {
        r.line("open");
    }
    replicas
        .iter_mut()
        .map(|r| {
            r.wait_for("ROUND_DONE");
            std::mem::take(&mut r.output)
        })
        .collect()
}

fn server_stopped_mid_flight(strict: bool) {
    let mut server = Server::start();
    let namespace = if strict { "outage-strict" } else { "outage" };
    let mut env = env(5, 0, 500);
    env.push(("SF_ROUNDS", "1000".into()));
    env.push(("SF_GATE", "1".into()));
    if strict {
        env.push(("SF_STRICT", "1".into()));
    }
    let mut replicas = Replica::ready(&server, namespace, 3, &env);

    // Round 1: the server is killed while the owner's work runs and both other replicas wait
    // for it; the work ends after that.
    let outputs = round(&mut replicas, || {
        server.until_lease_waiters(&lease(namespace, KEY), 2);
        server.stop();
    });
    // Every caller was served: each command is bounded by the command timeout (and each line
    // by the harness's watchdog).
    let all = outputs.concat();
    let served = values(&all);
    let errors = lines(&all, "ERROR");
    if strict {
        // The owner's callers have its value; every other caller an error, none a wrong value.
        assert_eq!(lines(&all, "EXEC").len(), 1, "{all}");
        assert_eq!((served.len(), errors.len()), (5, 10), "{all}");
        assert!(errors.iter().all(|e| e.starts_with("Redis ")));
    } else {
        // Every process ran the work once (the owner under the lease, the others locally).
        assert_eq!(lines(&all, "EXEC").len(), 3, "{all}");
        assert_eq!(served.len(), 15);
        for output in &outputs {
            let mine: HashSet<String> = values(output).into_iter().map(|(v, _, _)| v).collect();
            assert_eq!(mine.len(), 1, "one value per process:\n{output}");
        }
    }

    // The server comes back. Rounds go on until one passes without a Redis failure in any
    // replica (each replica's connection reconnects on its own, in the background after its
    // first failed command; a round more than the 300 ms outage backoff after a failure);
    // the next round coalesces.
    server.restart();
    let mut rounds = 1;
    let deadline = std::time::Instant::now() + HANG;
    loop {
        thread::sleep(Duration::from_millis(400));
        let warm = round(&mut replicas, || {}).concat();
        rounds += 1;
        assert_eq!(values(&warm).len() + lines(&warm, "ERROR").len(), 15);
        let failed = !lines(&warm, "ERROR").is_empty()
            || values(&warm)
                .iter()
                .any(|(_, origin, _)| origin == "Fallback");
        if !failed {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never reconnected");
    }
    let key = format!("{KEY}:{rounds}");
    let again = round(&mut replicas, || {
        server.until_lease_waiters(&lease(namespace, &key), 2);
    })
    .concat();
    assert_eq!(lines(&again, "EXEC").len(), 1, "coalesced again:\n{again}");
    let served = values(&again);
    assert_eq!(served.len(), 15);
    let distinct: HashSet<&str> = served.iter().map(|(v, _, _)| v.as_str()).collect();
    assert_eq!(distinct.len(), 1);
    for r in replicas {
        r.finish();
    }
    server.assert_clean(namespace);
}

#[test]
fn server_stopped_mid_flight_processes_fall_back_then_coalesce_again() {
    if is_child() {
        return;
    }
    server_stopped_mid_flight(false);
}

#[test]
fn server_stopped_mid_flight_strict_processes_get_errors() {
    if is_child() {
        return;
    }
    server_stopped_mid_flight(true);
}
