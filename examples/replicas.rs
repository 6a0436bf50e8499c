//! Several replica *processes* of a small HTTP customer service on one SQLite file, hit by one
//! herd of requests: each replica coalescing only its own requests (a `KeyedGroup`), then all of
//! them coalescing through Redis (a `single_flight_redis::RedisGroup`).
//!
//! `GET /customers?name=ada` answers `{"name":"ada","id":1}`; `GET /stats` answers the number of
//! database queries the replica ran. Each query deliberately takes 100 ms.
//!
//! ```text
//! cargo run --release --example replicas                    # starts its own redis-server
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --release --example replicas
//! ```
//!
//! It uses `REDIS_URL` if set, or starts `redis-server` (without persistence) on a free loopback
//! port if it is on `PATH`; otherwise it exits non-zero with the command that installs it. It
//! runs the replicas (this program again, with `--replica`), sends the same herd twice (240
//! requests over three names, spread over the replicas, all at once), prints requests, database
//! queries and latencies of both runs, and ends with the line
//! `replicas: P processes, R requests, Q queries with redis (L with local coalescing only)`.
//! It exits non-zero if Redis coalescing does not cut the queries.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Deserialize;
use serde_json::json;
use single_flight::KeyedGroup;
use single_flight_redis::{Options, RedisGroup};

const PROCESSES: usize = 4;
const REQUESTS: usize = 240;
const NAMES: [&str; 3] = ["ada", "grace", "edsger"];
const QUERY_TIME: Duration = Duration::from_millis(100);
const INSTALL_HINT: &str = "install redis-server (Debian/Ubuntu: `apt-get update && apt-get install -y redis-server`; macOS: `brew install redis`), or set REDIS_URL";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--replica") {
        return replica(&args[2..]);
    }
    match coordinator() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("replicas: {message}");
            ExitCode::FAILURE
        }
    }
}

// ---- the replica: one process of the customer service --------------------------------------

/// How a replica coalesces.
enum Coalescer {
    Local(KeyedGroup<String, Option<i64>>),
    Redis(RedisGroup<String, Option<i64>>),
}

struct Replica {
    db: PathBuf,
    coalescer: Coalescer,
    queries: AtomicU64,
}

impl Replica {
    async fn customer_id(self: Arc<Self>, name: String) -> Option<i64> {
        let this = self.clone();
        let work = move |name: String| async move {
            this.queries.fetch_add(1, Ordering::Relaxed);
            let db = this.db.clone();
            tokio::task::spawn_blocking(move || query(&db, &name))
                .await
                .expect("the query does not panic")
        };
        match &self.coalescer {
            Coalescer::Local(group) => group.call(name, work).await,
            // The default failure policy never fails: without Redis, it runs the query here.
            Coalescer::Redis(group) => group.call(name, work).await.expect("fallback policy"),
        }
    }
}

/// The slow query, on its own read-only connection to the shared file.
fn query(db: &Path, name: &str) -> Option<i64> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    std::thread::sleep(QUERY_TIME);
    conn.query_row("SELECT id FROM customers WHERE name = ?1", [name], |row| {
        row.get(0)
    })
    .optional()
    .expect("query")
}

#[derive(Deserialize)]
struct Lookup {
    name: String,
}

fn replica(args: &[String]) -> ExitCode {
    let [mode, db, url, namespace] = args else {
        eprintln!("usage: replicas --replica local|redis DB REDIS_URL NAMESPACE");
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let coalescer = if mode == "redis" {
            let client = redis::Client::open(url.as_str()).expect("REDIS_URL");
            let options = Options::new().lease(Duration::from_secs(2));
            Coalescer::Redis(
                RedisGroup::connect(client, namespace, options)
                    .await
                    .expect("connect to Redis"),
            )
        } else {
            Coalescer::Local(KeyedGroup::new())
        };
        let state = Arc::new(Replica {
            db: PathBuf::from(db),
            coalescer,
            queries: AtomicU64::new(0),
        });
        let app = Router::new()
            .route(
                "/customers",
                get(
                    |State(r): State<Arc<Replica>>, Query(q): Query<Lookup>| async move {
                        match r.customer_id(q.name.clone()).await {
                            Some(id) => Ok(Json(json!({ "name": q.name, "id": id }))),
                            None => Err(StatusCode::NOT_FOUND),
                        }
                    },
                ),
            )
            .route(
                "/stats",
                get(|State(r): State<Arc<Replica>>| async move {
                    Json(json!({ "queries": r.queries.load(Ordering::Relaxed) }))
                }),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("LISTENING {}", listener.local_addr().expect("address"));
        std::io::stdout().flush().expect("stdout");
        // The coordinator closes our stdin when it is done (or dies): stop then.
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
        });
        tokio::select! {
            served = axum::serve(listener, app) => served.expect("serve"),
            _ = stdin_closed => {}
        }
    });
    ExitCode::SUCCESS
}

// ---- the coordinator -----------------------------------------------------------------------

struct Report {
    queries: u64,
    latencies: Vec<Duration>,
}

impl Report {
    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
}

fn coordinator() -> Result<(), String> {
    let (url, _server) = redis_server()?;
    let dir = std::env::temp_dir().join(format!("sf-replicas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let db = dir.join("customers.sqlite");
    seed(&db).map_err(|e| format!("cannot create the database: {e}"))?;
    let namespace = format!("replicas-{}", std::process::id());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = runtime.block_on(async {
        let local = run("local", &db, &url, &namespace).await?;
        let redis = run("redis", &db, &url, &namespace).await?;
        Ok::<_, String>((local, redis))
    });
    let _ = std::fs::remove_dir_all(&dir);
    let (local, redis) = result?;

    println!(
        "{:<28} {:>9} {:>8} {:>9} {:>9}",
        "coalescing", "requests", "queries", "p50", "p99"
    );
    for (name, report) in [
        ("local only (per process)", &local),
        ("redis (across processes)", &redis),
    ] {
        println!(
            "{name:<28} {REQUESTS:>9} {:>8} {:>9.1?} {:>9.1?}",
            report.queries,
            report.percentile(0.5),
            report.percentile(0.99)
        );
    }
    println!(
        "replicas: {PROCESSES} processes, {REQUESTS} requests, {} queries with redis ({} with local coalescing only)",
        redis.queries, local.queries
    );
    if redis.queries >= local.queries {
        return Err("coalescing through Redis did not cut the database queries".into());
    }
    Ok(())
}

/// Runs the replicas in `mode`, sends the herd, collects queries and latencies.
async fn run(mode: &str, db: &Path, url: &str, namespace: &str) -> Result<Report, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut children = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..PROCESSES {
        let mut child = Command::new(&exe)
            .arg("--replica")
            .arg(mode)
            .arg(db)
            .args([url, namespace])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start a replica: {e}"))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let address = line
            .trim()
            .strip_prefix("LISTENING ")
            .ok_or_else(|| format!("a replica did not start: {line:?}"))?
            .to_owned();
        addresses.push(address);
        children.push(ReplicaProcess(child));
    }

    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut requests = Vec::new();
    for i in 0..REQUESTS {
        let name = NAMES[i % NAMES.len()];
        let url = format!("http://{}/customers?name={name}", addresses[i % PROCESSES]);
        let client = client.clone();
        requests.push(tokio::spawn(async move {
            let start = Instant::now();
            let body = fetch(&client, &url).await?;
            let id = body["id"].as_i64().ok_or("no id")?;
            let expected = NAMES.iter().position(|n| *n == name).unwrap() as i64 + 1;
            if id != expected {
                return Err(format!("{name}: got id {id}, expected {expected}"));
            }
            Ok::<_, String>(start.elapsed())
        }));
    }
    let mut latencies = Vec::new();
    for request in requests {
        latencies.push(request.await.map_err(|e| e.to_string())??);
    }
    latencies.sort();
    let mut queries = 0;
    for address in &addresses {
        let stats = fetch(&client, &format!("http://{address}/stats")).await?;
        queries += stats["queries"].as_u64().ok_or("no query count")?;
    }
    drop(children);
    Ok(Report { queries, latencies })
}

async fn fetch(
    client: &Client<HttpConnector, Empty<Bytes>>,
    url: &str,
) -> Result<serde_json::Value, String> {
    let response = client
        .get(url.parse().map_err(|e| format!("{url}: {e}"))?)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if response.status() != StatusCode::OK {
        return Err(format!("{url}: {}", response.status()));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// A replica process: stopped (stdin closed, then killed) on drop.
struct ReplicaProcess(Child);

impl Drop for ReplicaProcess {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn seed(db: &Path) -> rusqlite::Result<()> {
    let _ = std::fs::remove_file(db);
    let conn = Connection::open(db)?;
    conn.execute_batch(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);",
    )?;
    for name in NAMES {
        conn.execute("INSERT INTO customers (name) VALUES (?1)", [name])?;
    }
    Ok(())
}

/// `REDIS_URL`, or a `redis-server` of our own on a free loopback port (killed on drop).
fn redis_server() -> Result<(String, Option<ReplicaProcess>), String> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Ok((url, None));
    }
    let port = StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("no REDIS_URL and cannot start redis-server ({e}): {INSTALL_HINT}"))?;
    let guard = ReplicaProcess(child);
    let url = format!("redis://127.0.0.1:{port}/");
    let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.get_connection().is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "redis-server did not start on port {port}: {INSTALL_HINT}"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok((url, Some(guard)))
}
