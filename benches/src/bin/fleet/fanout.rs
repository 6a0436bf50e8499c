//! `cargo xtask bench redis fanout [SECONDS]`: what a flight costs Redis as the fleet grows.
//!
//! Real OS processes (this binary again, `fanout-child`), each with its own `RedisGroup`,
//! against one loopback `redis-server`:
//!
//! * **own keys**: P = 1, 2, 4, 8, 16 processes, each calling on keys no other process asks for
//!   (nothing to share), 1 KiB values, keys of 10 bytes; for `SECONDS` (default 2) each.
//! * **shared key**: one flight per round that every process calls at once (work 3 ms); the
//!   first one owns it, W = P - 1 processes wait for it.
//!
//! Per row: flights per second, bytes Redis sent and received per flight (`INFO stats`
//! `total_net_output_bytes`, `total_net_input_bytes`, minus this program's own `INFO` calls),
//! keys Redis stored per flight (the namespace's keys at the end, before any TTL ran out), the owner's
//! added latency (own keys: the call's time, the work being ready at once) and the remote
//! joiner's (shared key: from the end of the owner's work to the joiner's value, wall clocks of
//! one machine), each as p50 in µs and in `PING` round trips measured in the same run.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use single_flight_benches::chart::{self, Lines, Series};
use single_flight_redis::{Options, Origin, RedisGroup};

const VALUE_BYTES: usize = 1024;
const SHARED_WORK: Duration = Duration::from_millis(3);
const NAMESPACE: &str = "fan";

pub(crate) fn main(url: &str, args: &[String]) {
    let secs: f64 = args.first().map_or(2.0, |s| s.parse().expect("SECONDS"));
    let mut admin = redis::Client::open(url)
        .unwrap()
        .get_connection()
        .expect("connect");
    let rtt = ping_p50(&mut admin);
    println!(
        "redis fanout: {VALUE_BYTES} B values, 10 B keys, {secs} s per row; PING p50 {:.1} µs",
        rtt
    );
    println!();
    println!("own keys (nothing shared):");
    println!(
        "  {:>9} {:>10} {:>12} {:>12} {:>12} {:>16}",
        "processes", "flights/s", "sent/flight", "recv/flight", "keys/flight", "owner p50"
    );
    // Bytes per flight against the processes involved, for the chart (sent, received).
    let (mut own_sent, mut own_received) = (Vec::new(), Vec::new());
    for p in [1usize, 2, 4, 8, 16] {
        flush(&mut admin);
        let mut children: Vec<Kid> = (0..p).map(|i| Kid::spawn(url, "own", i, secs)).collect();
        let before = net(&mut admin);
        for c in &mut children {
            c.send("go");
        }
        let mut flights = 0u64;
        let mut overheads = Vec::new();
        for c in &mut children {
            let line = c.expect("OWN");
            let mut it = line.split_whitespace();
            flights += it.next().unwrap().parse::<u64>().unwrap();
            overheads.push(it.next().unwrap().parse::<f64>().unwrap());
        }
        let after = net(&mut admin);
        let keys = dbsize(&mut admin);
        for c in children {
            c.finish();
        }
        overheads.sort_by(f64::total_cmp);
        let owner = overheads[overheads.len() / 2];
        let f = flights.max(1) as f64;
        let (sent, received) = (
            (after.0 - before.0 - before.2) as f64 / f,
            (after.1 - before.1 - before.3) as f64 / f,
        );
        own_sent.push((p as f64, sent));
        own_received.push((p as f64, received));
        println!(
            "  {p:>9} {:>10.0} {sent:>12.0} {received:>12.0} {:>12.3} {:>8.1} µs {:>4.2}x",
            flights as f64 / secs,
            keys as f64 / f,
            owner,
            owner / rtt,
        );
    }
    println!();
    println!("shared key (one owner, W processes wait for it, work {SHARED_WORK:?}):");
    println!(
        "  {:>7} {:>7} {:>12} {:>12} {:>12} {:>9} {:>16}",
        "waiters", "rounds", "sent/flight", "recv/flight", "keys/flight", "joined", "joiner p50"
    );
    let rounds = (secs * 100.0) as usize;
    let mut shared_sent = Vec::new();
    for p in [2usize, 5, 9, 17] {
        flush(&mut admin);
        let mut children: Vec<Kid> = (0..p).map(|i| Kid::spawn(url, "shared", i, secs)).collect();
        let before = net(&mut admin);
        let mut latencies = Vec::new();
        let mut joined = 0usize;
        for round in 0..rounds {
            for c in &mut children {
                c.send(&format!("go {round}"));
            }
            let (mut end, mut got) = (None, Vec::new());
            for c in &mut children {
                let line = c.expect("ROUND");
                let mut it = line.split_whitespace();
                let origin = it.next().unwrap().to_owned();
                let at: u64 = it.next().unwrap().parse().unwrap();
                match origin.as_str() {
                    "owner" => end = Some(at),
                    "joined" => got.push(at),
                    _ => {}
                }
            }
            joined += got.len();
            if let Some(end) = end {
                latencies.extend(got.iter().map(|&g| g.saturating_sub(end) as f64));
            }
        }
        let after = net(&mut admin);
        let keys = dbsize(&mut admin);
        for c in children {
            c.finish();
        }
        latencies.sort_by(f64::total_cmp);
        let joiner = latencies
            .get(latencies.len() / 2)
            .copied()
            .unwrap_or(f64::NAN);
        let f = rounds as f64;
        let sent = (after.0 - before.0 - before.2) as f64 / f;
        shared_sent.push((p as f64, sent));
        println!(
            "  {:>7} {rounds:>7} {sent:>12.0} {:>12.0} {:>12.3} {:>9} {:>8.1} µs {:>4.2}x",
            p - 1,
            (after.1 - before.1 - before.3) as f64 / f,
            keys as f64 / f,
            joined,
            joiner,
            joiner / rtt,
        );
    }
    println!();
    println!(
        "targets: owner p50 <= 2.5 x PING, remote joiner p50 <= 2 x PING; own keys <= 300 B each way per flight, flat within 10 %"
    );
    let path = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/results/redis-bytes.svg"
    ));
    let series = |name: &str, points: Vec<(f64, f64)>| Series {
        name: name.to_owned(),
        points,
    };
    let chart = Lines {
        title: "Bytes per flight through Redis (1 KiB values)",
        x: "processes calling the key's flights",
        y: "bytes per flight",
        series: vec![
            series("own keys: Redis sent", own_sent),
            series("own keys: Redis received", own_received),
            series("one shared key (P - 1 waiting): Redis sent", shared_sent),
        ],
    };
    match chart::lines(path, &chart) {
        Ok(()) => println!("chart: {}", path.display()),
        Err(message) => eprintln!("redis fanout: no chart: {message}"),
    }
}

/// A child process of the bench.
struct Kid {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Kid {
    fn spawn(url: &str, mode: &str, index: usize, secs: f64) -> Kid {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "fanout-child",
                url,
                mode,
                &index.to_string(),
                &secs.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn a child");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut kid = Kid {
            child,
            stdin,
            stdout,
        };
        kid.expect("READY");
        kid
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The rest of the next line, which must start with `prefix`.
    fn expect(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let rest = line
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected {prefix}, got {line:?}"));
        rest.trim().to_owned()
    }

    fn finish(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// (output bytes, input bytes, the size of this INFO's answer, the size of this INFO command).
fn net(conn: &mut redis::Connection) -> (u64, u64, u64, u64) {
    let info: String = redis::cmd("INFO").arg("stats").query(conn).unwrap();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    // RESP framing of the answer (a bulk string) and of the command `INFO stats`.
    let answer = info.len() as u64 + 3 + info.len().to_string().len() as u64 + 4;
    (
        field("total_net_output_bytes:"),
        field("total_net_input_bytes:"),
        answer,
        27,
    )
}

/// The keys of the bench's namespace (not `DBSIZE`: `REDIS_URL` may be a shared server).
fn namespace_keys(conn: &mut redis::Connection) -> Vec<String> {
    redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(format!("{NAMESPACE}:{{*"))
        .arg("COUNT")
        .arg(10_000)
        .clone()
        .iter::<String>(conn)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn dbsize(conn: &mut redis::Connection) -> u64 {
    namespace_keys(conn).len() as u64
}

/// Deletes the keys a previous row left, so that each row counts its own.
fn flush(conn: &mut redis::Connection) {
    for key in namespace_keys(conn) {
        let _: () = redis::cmd("DEL").arg(key).query(conn).unwrap();
    }
}

fn ping_p50(conn: &mut redis::Connection) -> f64 {
    let mut samples: Vec<f64> = (0..500)
        .map(|_| {
            let t = Instant::now();
            let _: String = redis::cmd("PING").query(conn).unwrap();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// The child: `fanout-child URL own|shared INDEX SECONDS`.
pub(crate) fn child(args: &[String]) {
    let (url, mode, index, secs) = (
        args[0].clone(),
        args[1].clone(),
        args[2].parse::<usize>().unwrap(),
        args[3].parse::<f64>().unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let group: RedisGroup<String, String> = RedisGroup::connect(
            redis::Client::open(url.as_str()).unwrap(),
            NAMESPACE,
            Options::new().lease(Duration::from_secs(5)),
        )
        .await
        .expect("connect");
        let value = "x".repeat(VALUE_BYTES);
        println!("READY");
        let stdin = std::io::stdin();
        let mut line = String::new();
        if mode == "own" {
            stdin.lock().read_line(&mut line).unwrap();
            let end = Instant::now() + Duration::from_secs_f64(secs);
            let mut samples = Vec::new();
            let mut n = 0u64;
            while Instant::now() < end {
                // 10 bytes: two digits of process, a dash, seven of flight.
                let key = format!("{index:02}-{n:07}");
                let v = value.clone();
                let t = Instant::now();
                let got = group.call(key, move |_| async move { v }).await.unwrap();
                samples.push(t.elapsed().as_secs_f64() * 1e6);
                assert_eq!(got.len(), VALUE_BYTES);
                n += 1;
            }
            samples.sort_by(f64::total_cmp);
            println!("OWN {n} {:.1}", samples[samples.len() / 2]);
            return;
        }
        loop {
            line.clear();
            if stdin.lock().read_line(&mut line).unwrap() == 0 {
                return;
            }
            let round: usize = line.trim().strip_prefix("go ").unwrap().parse().unwrap();
            let v = value.clone();
            let ended = std::sync::Arc::new(std::sync::Mutex::new(0u64));
            let e = ended.clone();
            let (got, origin) = group
                .call(format!("sh-{round:07}"), move |_| async move {
                    tokio::time::sleep(SHARED_WORK).await;
                    *e.lock().unwrap() = unix_us();
                    v
                })
                .with_origin()
                .await;
            let at = unix_us();
            assert_eq!(got.unwrap().len(), VALUE_BYTES);
            match origin {
                Origin::Owner => println!("ROUND owner {}", *ended.lock().unwrap()),
                Origin::JoinedRemote => println!("ROUND joined {at}"),
                _ => println!("ROUND other {at}"),
            }
        }
    });
}
