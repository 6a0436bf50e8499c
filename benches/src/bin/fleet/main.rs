//! `fleet` (run as `cargo xtask bench redis`): the latency a flight through Redis
//! (`single-flight-redis`) adds over a local flight (`single_flight::KeyedGroup`), per owner and
//! per remote joiner, against a local `redis-server`.
//!
//! ```text
//! cargo xtask bench redis [ROUNDS]
//! cargo xtask bench redis fanout [SECONDS]   # what a flight costs Redis per fleet size (fanout.rs)
//! ```
//!
//! Starts its own `redis-server` on a free loopback port (no persistence), or uses `REDIS_URL`.
//! Two groups stand for two processes (each has its own connection and local flights, so they
//! meet only through Redis). Per round, on a 2-thread tokio runtime:
//!
//! * **owner**: one call whose work is ready at once; added = the call's time. The owner pays
//!   the lease acquisition and the finish script (two round trips).
//! * **remote joiner**: group B calls while group A's flight runs (its work sleeps 3 ms, then
//!   `WORK`); added = the time from the end of A's work to B's value (A's finish script, the
//!   message, B's check script).
//! * the same two figures for a local `KeyedGroup` (owner, and a local joiner).
//!
//! * a plain `PING` round trip, the unit of all this.
//!
//! Prints p50 and p99 of each, in microseconds. Latency on a shared machine is noisy: compare
//! the rows of one run, not runs of different days.

use std::net::TcpListener;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use single_flight::KeyedGroup;
use single_flight_redis::{Options, RedisGroup};

const WORK: Duration = Duration::from_millis(1);

mod fanout;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("fanout-child") {
        fanout::child(&args[1..]);
        return ExitCode::SUCCESS;
    }
    let fanout = args.first().map(String::as_str) == Some("fanout");
    let rounds: usize = match args.first() {
        Some(n) if !fanout => n.parse().expect("ROUNDS is a number"),
        _ => 500,
    };
    let (url, _server) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => match start_server() {
            Ok((url, server)) => (url, Some(ServerGuard(server))),
            Err(message) => {
                eprintln!("redis: {message}");
                return ExitCode::FAILURE;
            }
        },
    };
    if fanout {
        fanout::main(&url, &args[1..]);
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(&url, rounds));
    ExitCode::SUCCESS
}

async fn run(url: &str, rounds: usize) {
    let options = Options::new().lease(Duration::from_secs(5));
    let connect = || async {
        Arc::new(
            RedisGroup::<u64, u64>::connect(
                redis::Client::open(url).unwrap(),
                "bench-redis",
                options.clone(),
            )
            .await
            .expect("connect to redis-server"),
        )
    };
    let (a, b) = (connect().await, connect().await);
    let local: Arc<KeyedGroup<u64, u64>> = Arc::new(KeyedGroup::new());

    let mut ping = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis-server");
    let mut rows: Vec<(&str, Vec<Duration>)> = vec![
        ("redis PING round trip", Vec::new()),
        ("local owner", Vec::new()),
        ("redis owner", Vec::new()),
        ("local joiner", Vec::new()),
        ("redis remote joiner", Vec::new()),
    ];
    for round in 0..rounds as u64 {
        // The unit of cost: one round trip to the server.
        let t = Instant::now();
        let _: String = redis::cmd("PING").query_async(&mut ping).await.unwrap();
        rows[0].1.push(t.elapsed());
        // Owners: ready work, so added = the call's time.
        let t = Instant::now();
        local.call(round, |_| async { 7 }).await;
        rows[1].1.push(t.elapsed());
        let t = Instant::now();
        a.call(round, |_| async { 7 }).await.unwrap();
        rows[2].1.push(t.elapsed());

        // Joiners: added = end of the owner's work -> the joiner's value.
        let key = u64::MAX - round;
        let end = Arc::new(Mutex::new(None));
        let e = end.clone();
        // Registered at once, so that the call below joins it.
        let owner = tokio::spawn(local.do_chan(key, move |_| work(Some(e))));
        local.call(key, |_| async { unreachable!("joins") }).await;
        let got = Instant::now();
        owner.await.unwrap();
        let ended = end.lock().unwrap().expect("the work ran");
        rows[3].1.push(got.saturating_duration_since(ended));

        let end = Arc::new(Mutex::new(None));
        let (g, e) = (a.clone(), end.clone());
        let (began_tx, began) = tokio::sync::oneshot::channel();
        let owner = tokio::spawn(async move {
            g.call(key, move |_| async move {
                let _ = began_tx.send(());
                tokio::time::sleep(Duration::from_millis(3)).await; // B joins meanwhile
                work(Some(e)).await
            })
            .await
        });
        began.await.expect("A owns the flight");
        let (value, origin) = b.call(key, |_| async { 0 }).with_origin().await;
        let got = Instant::now();
        owner.await.unwrap().unwrap();
        assert_eq!(
            (value.unwrap(), origin),
            (7, single_flight_redis::Origin::JoinedRemote)
        );
        if origin == single_flight_redis::Origin::JoinedRemote {
            let ended = end.lock().unwrap().expect("the work ran");
            rows[4].1.push(got.saturating_duration_since(ended));
        }
    }
    println!("redis: added latency per flight, {rounds} rounds (µs)");
    println!("  {:<22} {:>8} {:>8} {:>6}", "row", "p50", "p99", "n");
    for (name, mut samples) in rows {
        samples.sort();
        let pct = |p: f64| {
            samples
                .get(((samples.len() as f64 - 1.0) * p).round() as usize)
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
        };
        println!(
            "  {name:<22} {:>8.1} {:>8.1} {:>6}",
            pct(0.5),
            pct(0.99),
            samples.len()
        );
    }
    let stats = (a.stats(), b.stats());
    println!(
        "  (group A: {} owned, {} fallbacks; group B: {} joined remotely, {} fallbacks)",
        stats.0.owned, stats.0.fallbacks, stats.1.joined_remote, stats.1.fallbacks
    );
}

/// The work: `WORK` long, then notes when it ended.
async fn work(end: Option<Arc<Mutex<Option<Instant>>>>) -> u64 {
    tokio::time::sleep(WORK).await;
    if let Some(end) = end {
        *end.lock().unwrap() = Some(Instant::now());
    }
    7
}

struct ServerGuard(Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `redis-server` on a free loopback port, without persistence.
fn start_server() -> Result<(String, Child), String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start redis-server ({e}): install it (`apt-get install -y redis-server`) or set REDIS_URL"
            )
        })?;
    let url = format!("redis://127.0.0.1:{port}/");
    let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.get_connection().is_err() {
        if Instant::now() > deadline {
            return Err("redis-server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok((url, child))
}
