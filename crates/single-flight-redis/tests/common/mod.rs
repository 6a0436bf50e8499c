//! The tests' harness: a real `redis-server` on a free loopback port without persistence, child
//! processes (the test binary run again), the check that no key is left without a TTL, and a
//! gated herd across groups (`herd.rs`).

#![allow(dead_code, unreachable_pub)]

pub mod herd;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A `redis-server` child process, killed on drop.
pub struct Server {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
    extra: Vec<String>,
}

pub const MISSING: &str = "redis-server is not on PATH: install it (Debian/Ubuntu: \
    `apt-get update && apt-get install -y redis-server`) or run `cargo xtask ci`, which does";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra arguments (e.g. cluster mode), in its own directory.
    pub fn start_with(extra: &[&str]) -> Server {
        // Another test may take the free port first: then try another one.
        for _ in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("sf-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut server = Server {
                port,
                child: None,
                dir,
                extra: extra.iter().map(|s| s.to_string()).collect(),
            };
            if server.launch() {
                return server;
            }
        }
        panic!("redis-server did not start on any of five free ports");
    }

    /// Starts the server on its port; `false` if it exited (the port was taken).
    fn launch(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .spawn()
            .expect(MISSING);
        self.child = Some(child);
        let deadline = Instant::now() + HANG;
        loop {
            // Exited: the port was taken (and a PING could reach another test's server).
            if let Ok(Some(_)) = self.child.as_mut().unwrap().try_wait() {
                self.child = None;
                return false;
            }
            if let Ok(mut conn) = self.client().get_connection() {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return true;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.launch(),
            "redis-server did not start again on port {}",
            self.port
        );
    }

    /// Every key of `namespace` has a TTL (`SCAN`, then `PTTL` of each).
    pub fn assert_every_key_expires(&self, namespace: &str) {
        let mut conn = self.client().get_connection().unwrap();
        let pattern = format!("{namespace}:{{*");
        let keys: Vec<String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(10_000)
            .clone()
            .iter::<String>(&mut conn)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for key in keys {
            let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
            assert!(ttl != -1, "key {key} has no TTL");
        }
    }

    /// Every key of `namespace` has a TTL, and no connection listens on any of its flights'
    /// channels any more (classic or sharded): every wait gave its channel up. Unsubscribing
    /// happens in the background after a flight ends, so this waits for it, up to a watchdog
    /// bound.
    pub fn assert_clean(&self, namespace: &str) {
        self.assert_every_key_expires(namespace);
        let pattern = format!("{namespace}:{{*");
        let deadline = Instant::now() + HANG;
        loop {
            let left = self.channels(&pattern);
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "channels still subscribed: {left:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The channels (classic and sharded) matching `pattern` that have subscribers.
    pub fn channels(&self, pattern: &str) -> Vec<String> {
        let mut conn = self.client().get_connection().unwrap();
        let mut channels: Vec<String> = redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg(pattern)
            .query(&mut conn)
            .unwrap();
        let sharded: Vec<String> = redis::cmd("PUBSUB")
            .arg("SHARDCHANNELS")
            .arg(pattern)
            .query(&mut conn)
            .unwrap();
        channels.extend(sharded);
        channels
    }

    /// The token in a lease key (a hash `{t, w}`).
    pub fn lease_token(&self, key: &str) -> Option<String> {
        let mut conn = self.client().get_connection().unwrap();
        redis::cmd("HGET")
            .arg(key)
            .arg("t")
            .query(&mut conn)
            .unwrap()
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let mut conn = self.client().get_connection().unwrap();
        redis::cmd("GET").arg(key).query(&mut conn).unwrap()
    }

    pub fn pttl(&self, key: &str) -> i64 {
        let mut conn = self.client().get_connection().unwrap();
        redis::cmd("PTTL").arg(key).query(&mut conn).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Unix time in milliseconds (children start their herd at a common instant).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Sleeps until unix time `at_ms`.
pub fn sleep_until_ms(at_ms: u64) {
    let now = now_ms();
    if at_ms > now {
        thread::sleep(Duration::from_millis(at_ms - now));
    }
}

/// A child process: this test binary again, running only the test named `entry`, with `env`.
pub fn spawn_child(entry: &str, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([entry, "--exact", "--nocapture", "--test-threads", "1"])
        .env("SF_REDIS_CHILD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("re-run the test binary")
}

/// Whether this process is a child run by `spawn_child`.
pub fn is_child() -> bool {
    std::env::var_os("SF_REDIS_CHILD").is_some()
}

pub fn env_u64(name: &str) -> u64 {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set"))
        .parse()
        .unwrap()
}

/// The lines of a child's output that start with `prefix ` (the rest of each).
pub fn lines<'a>(output: &'a str, prefix: &str) -> Vec<&'a str> {
    let p = format!("{prefix} ");
    output
        .lines()
        // The test harness prints `test child ... ` before the first line of a child.
        .filter_map(|l| l.find(p.as_str()).map(|at| &l[at + p.len()..]))
        .collect()
}

/// The hash tag of a key, as the crate builds it (URL-safe base64 of the MessagePack
/// encoding, without padding).
pub fn tag<K: serde::Serialize>(key: &K) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = rmp_serde::to_vec(key).unwrap();
    let mut s = String::new();
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            n |= u32::from(b) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            s.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    s
}

impl Server {
    /// The number of waiting processes registered in a lease (its `w`), 0 if none.
    pub fn lease_waiters(&self, key: &str) -> u64 {
        let mut conn = self.client().get_connection().unwrap();
        let w: Option<u64> = redis::cmd("HGET")
            .arg(key)
            .arg("w")
            .query(&mut conn)
            .unwrap();
        w.unwrap_or(0)
    }

    /// Waits (up to a watchdog bound, for hangs only) until `n` waiting processes are
    /// registered in the lease `key`: they are then sure to get its owner's value.
    pub fn until_lease_waiters(&self, key: &str, n: u64) {
        let deadline = Instant::now() + HANG;
        while self.lease_waiters(key) < n {
            assert!(
                Instant::now() < deadline,
                "{n} waiters never registered in {key}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Creates (or resets) the user `name` with password `password` and `rule`; answers the
    /// URL that connects as that user.
    pub fn acl_user(&self, name: &str, password: &str, rule: &str) -> String {
        let mut conn = self.client().get_connection().unwrap();
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER")
            .arg(name)
            .arg("reset")
            .arg("on")
            .arg(format!(">{password}"));
        for part in rule.split_whitespace() {
            cmd.arg(part);
        }
        let () = cmd.query(&mut conn).unwrap();
        format!("redis://{name}:{password}@127.0.0.1:{}/", self.port)
    }
}

/// The watchdog bound of every wait in these tests: only a hang reaches it, never a slow
/// machine (the design bounds nothing by wall-clock time that a test should assert).
pub const HANG: Duration = Duration::from_secs(60);

/// Waits (up to the watchdog bound) until `done` holds, checking every few milliseconds.
pub async fn until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !done() {
        assert!(Instant::now() < deadline, "never happened (watchdog)");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `future`, counting in `polled` once its first poll has returned: a `call` has then joined
/// its group's local flight (it registers at its first poll), so a herd whose every call is
/// counted cannot have a late caller start a second flight after the first one ended.
pub fn first_poll<F: std::future::Future>(
    future: F,
    polled: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> impl std::future::Future<Output = F::Output> {
    let mut future = Box::pin(future);
    let mut counted = false;
    std::future::poll_fn(move |cx| {
        let poll = future.as_mut().poll(cx);
        if !counted {
            counted = true;
            polled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        poll
    })
}
