//! Coalescing across real processes: this test binary runs itself again as the replicas
//! (`child`), against a `redis-server` that each test starts; faults are real (SIGKILL).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{env_u64, is_child, lines, now_ms, spawn_child, Server};
use single_flight_redis::{FailurePolicy, Options, RedisGroup};

const KEY: &str = "customer:42";

/// The replica: `SF_TASKS` callers of one key, started together when the parent writes a line
/// to its stdin (it prints `READY` once connected), for `SF_ROUNDS` rounds (default 1, a key
/// per round, each started by a line and ended by `ROUND_DONE`).
/// Prints `EXEC <pid>` when its work runs and `VALUE <value> <role> <unix ms>` per caller
/// (`ERROR <kind> <unix ms>` under `SF_STRICT`, `TIMEOUT <unix ms>` for a caller that gave up
/// after `SF_CALLER_TIMEOUT_MS`).
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
            .redis_timeout(Duration::from_millis(300))
            .outage_backoff(Duration::from_millis(300))
            .failure_policy(policy);
        let group: RedisGroup<String, String> =
            RedisGroup::connect(redis::Client::open(url).unwrap(), &namespace, options)
                .await
                .unwrap();
        let group = std::sync::Arc::new(group);
        let work_ms = env_u64("SF_WORK_MS");
        let timeout = std::env::var("SF_CALLER_TIMEOUT_MS")
            .ok()
            .map(|ms| Duration::from_millis(ms.parse().unwrap()));
        let rounds = std::env::var("SF_ROUNDS").map_or(1, |r| r.parse().unwrap());
        say("READY");
        for round in 0..rounds {
            let go = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).unwrap();
            });
            go.await.unwrap();
            let mut tasks = Vec::new();
            for _ in 0..env_u64("SF_TASKS") {
                let group = group.clone();
                let key = if round == 0 {
                    KEY.to_owned()
                } else {
                    format!("{KEY}:{round}")
                };
                tasks.push(tokio::spawn(async move {
                    let call = group.call_with_role(key, move |_key| async move {
                        say(&format!("EXEC {}", std::process::id()));
                        tokio::time::sleep(Duration::from_millis(work_ms)).await;
                        format!("from-{}", std::process::id())
                    });
                    let outcome = match timeout {
                        Some(t) => tokio::time::timeout(t, call).await.ok(),
                        None => Some(call.await),
                    };
                    match outcome {
                        Some((Ok(value), role)) => {
                            say(&format!("VALUE {value} {role:?} {}", now_ms()))
                        }
                        Some((Err(error), _)) => {
                            say(&format!("ERROR {:?} {}", error.kind(), now_ms()))
                        }
                        None => say(&format!("TIMEOUT {}", now_ms())),
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
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
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
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

    /// Waits (at most 20 s) for a line starting with `prefix`.
    fn wait_for(&mut self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no `{prefix}` line from the replica"));
            self.output.push_str(&line);
            self.output.push('\n');
            if line.contains(prefix) {
                return line;
            }
        }
    }

    /// Waits for the replica to exit successfully; returns its whole output.
    fn finish(mut self) -> String {
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

/// `(value, role, served at)` of every `VALUE` line.
fn values(output: &str) -> Vec<(String, String, u64)> {
    lines(output, "VALUE")
        .into_iter()
        .map(|l| {
            let mut parts = l.split(' ');
            let value = parts.next().unwrap().to_owned();
            let role = parts.next().unwrap().to_owned();
            let at = parts.next().unwrap().parse().unwrap();
            (value, role, at)
        })
        .collect()
}

#[test]
fn one_execution_for_a_herd_of_processes() {
    if is_child() {
        return;
    }
    let server = Server::start();
    let namespace = "herd";
    let (processes, tasks) = (4, 25);
    let mut replicas = Replica::ready(&server, namespace, processes, &env(tasks, 500, 500));
    for r in &mut replicas {
        r.go();
    }
    let outputs: Vec<String> = replicas.into_iter().map(Replica::finish).collect();
    let all = outputs.concat();

    assert_eq!(lines(&all, "EXEC").len(), 1, "executions:\n{all}");
    let served = values(&all);
    assert_eq!(served.len(), processes * tasks as usize);
    let distinct: HashSet<&str> = served.iter().map(|(v, _, _)| v.as_str()).collect();
    assert_eq!(distinct.len(), 1, "every caller gets the one value");
    let started = served.iter().filter(|(_, r, _)| r == "Started").count();
    let remote = served
        .iter()
        .filter(|(_, r, _)| r == "JoinedRemote")
        .count();
    assert_eq!((started, remote), (1, processes - 1));
    server.assert_clean(namespace);
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
    // The owner: its work would take 30 s.
    let mut owner = Replica::ready(&server, namespace, 1, &env(1, 30_000, lease_ms)).remove(0);
    owner.go();
    owner.wait_for("EXEC");
    // Three waiting replicas, whose own work (should they take over) takes 200 ms.
    let mut waiters = Replica::ready(&server, namespace, 3, &env(10, 200, lease_ms));
    for w in &mut waiters {
        w.go();
    }
    thread::sleep(Duration::from_millis(300));
    kill_9(&owner.child);
    let killed_at = now_ms();
    let _ = owner.child.wait();

    let outputs: Vec<String> = waiters.into_iter().map(Replica::finish).collect();
    let all = outputs.concat();
    assert_eq!(lines(&all, "EXEC").len(), 1, "exactly one takeover:\n{all}");
    let served = values(&all);
    assert_eq!(served.len(), 30);
    let distinct: HashSet<&str> = served.iter().map(|(v, _, _)| v.as_str()).collect();
    assert_eq!(distinct.len(), 1);
    let last = served.iter().map(|(_, _, at)| *at).max().unwrap();
    let takeover = last.saturating_sub(killed_at);
    eprintln!(
        "takeover: every waiter served {takeover} ms after SIGKILL (lease {lease_ms} ms, work 200 ms)"
    );
    // Served within lease + work + a generous bound for a loaded machine.
    assert!(
        takeover < lease_ms + 200 + 3000,
        "served {takeover} ms after the kill"
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
    // A long lease: a takeover well before it expires can only come from the release.
    let lease_ms = 6000;
    let mut owner_env = env(3, 30_000, lease_ms);
    owner_env.push(("SF_CALLER_TIMEOUT_MS", "2500".into()));
    owner_env.push(("SF_HOLD_MS", "4000".into()));
    let mut owner = Replica::ready(&server, namespace, 1, &owner_env).remove(0);
    owner.go();
    owner.wait_for("EXEC");
    let mut waiter = Replica::ready(&server, namespace, 1, &env(5, 100, lease_ms)).remove(0);
    waiter.go();
    let go_at = now_ms();
    let waiter_out = waiter.finish();
    let owner_out = owner.finish();

    let timeouts = lines(&owner_out, "TIMEOUT");
    assert_eq!(timeouts.len(), 3, "{owner_out}");
    let left_at = timeouts
        .iter()
        .map(|t| t.parse::<u64>().unwrap())
        .min()
        .unwrap();
    assert!(
        go_at < left_at,
        "the waiter must be waiting when the owner's callers leave"
    );
    assert_eq!(lines(&waiter_out, "EXEC").len(), 1, "{waiter_out}");
    let served = values(&waiter_out);
    assert_eq!(served.len(), 5);
    let last = served.iter().map(|(_, _, at)| *at).max().unwrap();
    let after = last.saturating_sub(left_at);
    eprintln!("abandon: waiter served {after} ms after the owner's callers left (lease {lease_ms} ms, work 100 ms)");
    // Without the release it would wait for the rest of the 6 s lease.
    assert!(
        after < 2000,
        "the waiter waited for the lease to expire ({after} ms)"
    );
    server.assert_clean(namespace);
}

/// One round of every replica: go, then each one's output up to `ROUND_DONE`.
fn round(replicas: &mut [Replica], between: impl FnOnce()) -> Vec<String> {
    for r in replicas.iter_mut() {
        r.go();
    }
    between();
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
    let mut env = env(5, 1000, 500);
    env.push(("SF_ROUNDS", "3".into()));
    if strict {
        env.push(("SF_STRICT", "1".into()));
    }
    let mut replicas = Replica::ready(&server, namespace, 3, &env);

    // Round 1: the server is killed while the owner's work runs.
    let mut stopped_at = 0;
    let outputs = round(&mut replicas, || {
        thread::sleep(Duration::from_millis(300));
        server.stop();
        stopped_at = now_ms();
    });
    let all = outputs.concat();
    let served = values(&all);
    let errors = lines(&all, "ERROR");
    let last = served
        .iter()
        .map(|(_, _, at)| *at)
        .chain(
            errors
                .iter()
                .map(|e| e.split(' ').nth(1).unwrap().parse().unwrap()),
        )
        .max()
        .unwrap();
    // Within the bound: the work, the command timeout, slack for a loaded machine.
    assert!(
        last - stopped_at < 1000 + 300 + 3000,
        "served {} ms after the stop",
        last - stopped_at
    );
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

    // The server comes back. Round 2 reconnects (and may fall back); round 3 coalesces.
    server.restart();
    thread::sleep(Duration::from_millis(500));
    let warm = round(&mut replicas, || {}).concat();
    assert_eq!(values(&warm).len() + lines(&warm, "ERROR").len(), 15);
    thread::sleep(Duration::from_millis(400));
    let again = round(&mut replicas, || {}).concat();
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
