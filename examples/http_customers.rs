//! An HTTP service that looks customers up in SQLite, with concurrent lookups of the same name
//! coalesced by a [`KeyedGroup`]: however many requests ask for `ada` at once, the database runs
//! one query and every request gets its answer.
//!
//! `GET /customers?name=ada` answers `{"name":"ada","id":1}` (200), an unknown name gets 404,
//! bad input (missing, empty, longer than 64 characters, control characters, invalid UTF-8)
//! gets 400 and a database failure gets 500. Add `&coalesce=false` to bypass the group. Every
//! answer says in the `x-single-flight-shared` header whether it went to more than one request.
//!
//! The database is a real SQLite (the `rusqlite` crate, SQLite compiled in), in memory, seeded at
//! start-up, behind a pool of connections. Each query deliberately takes 128 ms and the pool runs
//! at most 64 at once, like a busy database server.
//!
//! Run it from the workspace root:
//!
//! ```text
//! cargo run --release --example http_customers                  # built-in load test, then exit
//! cargo run --release --example http_customers -- --serve       # keep serving on 127.0.0.1:3000
//! cargo run --release --example http_customers -- --serve 127.0.0.1:8080
//! cargo run --release --example http_customers -- --requests 5000 --concurrency 400
//! ```
//!
//! Without `--serve`, it starts the server on a free localhost port, sends the same load twice
//! with an HTTP client (2,000 requests over ten names, two of them unknown, from 200 concurrent
//! connections), once coalesced and once with `coalesce=false`, prints the database queries
//! and latencies of both runs, and exits non-zero if the numbers are not what coalescing
//! promises. Each connection takes two file descriptors (client and server are one process): under
//! a low `ulimit -n` (macOS defaults to 256), pass `--concurrency 100`.
//!
//! `cargo test -p single-flight-examples --examples` runs the handler's tests.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::json;
use single_flight::KeyedGroup;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long one query takes (the `time.Sleep(128 * time.Millisecond)` of the Go original).
const QUERY_TIME: Duration = Duration::from_millis(128);
/// How many queries the database runs at once: the size of the connection pool.
const POOL_SIZE: usize = 64;
/// The longest name the service accepts, in characters.
const MAX_NAME_CHARS: usize = 64;
/// Customers seeded with well-known names (the ids are their row ids, 1 to 8).
const KNOWN: [&str; 8] = [
    "ada", "alan", "barbara", "donald", "edsger", "grace", "ken", "margaret",
];
/// Names the load asks for that are not in the database.
const UNKNOWN: [&str; 2] = ["mallory", "trudy"];
/// Filler customers, so that the table is not trivially small.
const FILLER: usize = 10_000;

/// What a lookup returns: the customer's id, `None` for an unknown name, or the database error.
/// The error is in an `Arc` because every request that shared the query gets a clone.
type Lookup = Result<Option<i64>, Arc<DbError>>;

/// A failed database query.
#[derive(Debug)]
enum DbError {
    /// SQLite reported an error.
    Sqlite(rusqlite::Error),
    /// The blocking task that ran the query panicked or was cancelled.
    Task(String),
    /// No connection was left in the pool (one was lost to a panic).
    PoolEmpty,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(e) => write!(f, "sqlite: {e}"),
            Self::Task(e) => write!(f, "query task failed: {e}"),
            Self::PoolEmpty => f.write_str("the connection pool is empty"),
        }
    }
}

impl std::error::Error for DbError {}

/// An in-memory SQLite database behind a small connection pool, counting the queries it runs.
#[derive(Debug)]
struct Database {
    /// Idle connections. A connection is taken only with a permit of `slots`, so there is one.
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection: waiting for a permit is waiting for a free connection.
    slots: Arc<Semaphore>,
    /// Queries executed, incremented where the query runs.
    queries: AtomicU64,
    /// The deliberate cost of one query.
    query_time: Duration,
}

impl Database {
    /// Opens `pool_size` connections to a fresh in-memory database and seeds it.
    fn open(pool_size: usize, query_time: Duration) -> rusqlite::Result<Self> {
        // `memdb` with a name that starts with '/' is one in-memory database shared by every
        // connection of this process that opens the same name; the name is unique per `open`, so
        // tests running side by side get their own databases. It lives as long as a connection.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let uri = format!(
            "file:/customers-{}-{}?vfs=memdb",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut pool = Vec::with_capacity(pool_size);
        for _ in 0..pool_size.max(1) {
            let conn = Connection::open_with_flags(&uri, flags)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            pool.push(conn);
        }
        seed(&mut pool[0])?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(pool.len())),
            idle: Mutex::new(pool),
            queries: AtomicU64::new(0),
            query_time,
        })
    }

    /// Looks the customer up: waits for a free connection, then runs the (slow) query on a
    /// blocking thread.
    async fn customer_id(self: Arc<Self>, name: String) -> Lookup {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the pool's semaphore is never closed");
        let db = self.clone();
        // The permit moves into the blocking task: if this future is dropped, the connection is
        // still busy until the query ends, and nobody else may take it meanwhile.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = db
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
                .ok_or(DbError::PoolEmpty)?;
            let result = db.query(&conn, &name).map_err(DbError::Sqlite);
            db.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            result
        });
        match task.await {
            Ok(result) => result.map_err(Arc::new),
            Err(e) => Err(Arc::new(DbError::Task(e.to_string()))),
        }
    }

    /// Runs the query on `conn`. This is where queries are counted.
    fn query(&self, conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.query_time); // stands in for a query that takes its time
        conn.prepare_cached("SELECT id FROM customers WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()
    }

    /// Queries executed so far.
    fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Runs `sql` on one of the pool's connections, outside the counted queries (for tests).
    #[cfg(test)]
    fn execute_batch(&self, sql: &str) -> rusqlite::Result<()> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle[0].execute_batch(sql)
    }
}

/// Creates the table and inserts the customers.
fn seed(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);",
    )?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare("INSERT INTO customers (name) VALUES (?1)")?;
        for name in KNOWN {
            insert.execute([name])?;
        }
        for i in 0..FILLER {
            insert.execute([format!("customer-{i:05}")])?;
        }
    }
    tx.commit()
}

/// The handler's state: the database and the group that coalesces its lookups.
#[derive(Debug, Clone)]
struct AppState {
    db: Arc<Database>,
    group: Arc<KeyedGroup<String, Lookup>>,
}

/// The query string of `GET /customers`.
#[derive(Debug, Deserialize)]
struct Params {
    name: Option<String>,
    coalesce: Option<bool>,
}

/// The router: `GET /customers?name=..[&coalesce=false]`.
fn app(db: Arc<Database>) -> Router {
    let state = AppState {
        db,
        group: Arc::new(KeyedGroup::new()),
    };
    Router::new()
        .route("/customers", get(customer))
        .with_state(state)
}

/// `GET /customers`: the customer's id as JSON.
async fn customer(
    State(state): State<AppState>,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let name = match validate(params.name) {
        Ok(name) => name,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };

    let (lookup, shared) = if params.coalesce.unwrap_or(true) {
        let db = state.db.clone();
        // The closure runs only if this request starts the flight; the others join it.
        state
            .group
            .call_shared(name.clone(), move |name| db.customer_id(name))
            .await
    } else {
        (state.db.clone().customer_id(name.clone()).await, false)
    };

    let shared = [(
        "x-single-flight-shared",
        if shared { "true" } else { "false" },
    )];
    match lookup {
        Ok(Some(id)) => (shared, Json(Customer { name, id })).into_response(),
        Ok(None) => (
            shared,
            error(StatusCode::NOT_FOUND, format!("no customer named {name:?}")),
        )
            .into_response(),
        Err(e) => {
            eprintln!("GET /customers?name={name:?}: database failure: {e}");
            (
                shared,
                error(StatusCode::INTERNAL_SERVER_ERROR, "database failure"),
            )
                .into_response()
        }
    }
}

/// The body of a 200 answer.
#[derive(Debug, Serialize)]
struct Customer {
    name: String,
    id: i64,
}

/// Checks the `name` parameter.
fn validate(name: Option<String>) -> Result<String, String> {
    let name = name.ok_or("missing query parameter `name`")?;
    if name.is_empty() {
        return Err("`name` is empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("`name` is longer than {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("`name` contains non-printable characters".into());
    }
    // The query-string parser decodes invalid UTF-8 to U+FFFD instead of failing.
    if name.contains(char::REPLACEMENT_CHARACTER) {
        return Err("`name` is not valid UTF-8".into());
    }
    Ok(name)
}

/// A JSON error body: `{"error": message}`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Binds `addr` and serves the app in a background task; returns the bound address.
async fn start_server(addr: &str, db: Arc<Database>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app(db)).await {
            eprintln!("server stopped: {e}");
        }
    });
    Ok(local)
}

/// The HTTP client of the load test and the tests.
type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `GET url` and returns the status, or a description of the transport failure.
async fn get_status(client: &HttpClient, url: &str) -> Result<StatusCode, String> {
    let uri = url.parse().map_err(|e| format!("bad url {url}: {e}"))?;
    let response = client.get(uri).await.map_err(|e| e.to_string())?;
    let status = response.status();
    // Read the body to the end so that the connection can be reused.
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(status)
}

/// What one load run measured.
#[derive(Debug)]
struct LoadReport {
    mode: &'static str,
    requests: usize,
    ok: usize,
    not_found: usize,
    /// Answers other than the expected 200 (known name) or 404 (unknown name), and transport
    /// failures.
    failed: usize,
    first_failure: Option<String>,
    queries: u64,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl LoadReport {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p / 100.0 * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}

/// Sends `requests` requests over the known and unknown names from `concurrency` connections.
async fn run_load(
    base: &str,
    db: &Database,
    coalesce: bool,
    requests: usize,
    concurrency: usize,
) -> LoadReport {
    let mode = if coalesce {
        "coalesced"
    } else {
        "not coalesced"
    };
    let names: Vec<(&str, bool)> = KNOWN
        .iter()
        .map(|&n| (n, true))
        .chain(UNKNOWN.iter().map(|&n| (n, false)))
        .collect();
    let flag = if coalesce { "" } else { "&coalesce=false" };
    let client = http_client();
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let queries_before = db.queries();
    let start = Instant::now();
    let progress = tokio::spawn(progress(mode, requests, done.clone()));

    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.clamp(1, requests.max(1)) {
        let (client, next, done, names) =
            (client.clone(), next.clone(), done.clone(), names.clone());
        let base = base.to_owned();
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return seen;
                }
                let (name, known) = names[i % names.len()];
                let url = format!("{base}/customers?name={name}{flag}");
                let sent = Instant::now();
                let status = get_status(&client, &url).await;
                seen.push((known, status, sent.elapsed()));
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let mut report = LoadReport {
        mode,
        requests,
        ok: 0,
        not_found: 0,
        failed: 0,
        first_failure: None,
        queries: 0,
        latencies: Vec::with_capacity(requests),
        elapsed: Duration::ZERO,
    };
    for worker in workers {
        let seen = worker.await.expect("a load worker panicked");
        for (known, status, latency) in seen {
            report.latencies.push(latency);
            match (known, status) {
                (true, Ok(StatusCode::OK)) => report.ok += 1,
                (false, Ok(StatusCode::NOT_FOUND)) => report.not_found += 1,
                (_, other) => {
                    report.failed += 1;
                    report.first_failure.get_or_insert_with(|| match other {
                        Ok(status) => format!("HTTP {status}"),
                        Err(e) => e,
                    });
                }
            }
        }
    }
    report.elapsed = start.elapsed();
    progress.abort();
    let _ = progress.await;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K"); // clear the progress line
    }
    report.queries = db.queries() - queries_before;
    report.latencies.sort_unstable();
    report
}

/// Shows the progress of a load run once it has taken more than a second: a line updated every
/// 250 ms on a terminal, otherwise a line per second.
async fn progress(mode: &'static str, total: usize, done: Arc<AtomicUsize>) {
    let terminal = std::io::stderr().is_terminal();
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut ticks = 0u64;
    loop {
        tick.tick().await;
        ticks += 1;
        if start.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let done = done.load(Ordering::Relaxed);
        if terminal {
            eprint!("\r  {mode}: {done}/{total} requests answered");
            let _ = std::io::stderr().flush();
        } else if ticks.is_multiple_of(4) {
            eprintln!("  {mode}: {done}/{total} requests answered");
        }
    }
}

/// Prints the reports as an aligned table.
fn print_table(reports: &[LoadReport]) {
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    let header = [
        "mode",
        "requests",
        "200 OK",
        "404",
        "db queries",
        "p50",
        "p99",
        "failed",
        "took",
    ];
    let rows: Vec<[String; 9]> = reports
        .iter()
        .map(|r| {
            [
                r.mode.to_owned(),
                r.requests.to_string(),
                r.ok.to_string(),
                r.not_found.to_string(),
                r.queries.to_string(),
                ms(r.percentile(50.0)),
                ms(r.percentile(99.0)),
                r.failed.to_string(),
                format!("{:.2} s", r.elapsed.as_secs_f64()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i == 0 {
                out += &format!("{cell:<width$}");
            } else {
                out += &format!("  {cell:>width$}");
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Command-line options.
#[derive(Debug)]
struct Options {
    serve: Option<String>,
    requests: usize,
    concurrency: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        serve: None,
        requests: 2_000,
        concurrency: 200,
    };
    let mut args = std::env::args().skip(1).peekable();
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> Result<usize, String> {
            args.next()
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .ok_or(format!("{what} needs a positive number"))
        };
        match arg.as_str() {
            "--serve" => {
                let addr = match args.peek() {
                    Some(next) if !next.starts_with("--") => args.next(),
                    _ => None,
                };
                options.serve = Some(addr.unwrap_or_else(|| "127.0.0.1:3000".into()));
            }
            "--requests" => options.requests = number("--requests")?,
            "--concurrency" => options.concurrency = number("--concurrency")?,
            "-h" | "--help" => {
                println!("usage: http_customers [--serve [ADDR]] [--requests N] [--concurrency N]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("http_customers: FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let options = parse_args()?;
    let db = Arc::new(
        Database::open(POOL_SIZE, QUERY_TIME).map_err(|e| format!("cannot open SQLite: {e}"))?,
    );
    let listen = options.serve.as_deref().unwrap_or("127.0.0.1:0");
    let addr = start_server(listen, db.clone())
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let base = format!("http://{addr}");
    println!(
        "SQLite in memory: {} customers; each query takes {} ms, at most {POOL_SIZE} at once",
        KNOWN.len() + FILLER,
        QUERY_TIME.as_millis()
    );
    println!("listening on {base}");

    if options.serve.is_some() {
        println!();
        println!("try:");
        println!("  curl -i '{base}/customers?name=ada'");
        println!("  curl -i '{base}/customers?name=mallory'               # 404");
        println!("  curl -i '{base}/customers?name='                      # 400");
        println!("  curl -i '{base}/customers?name=ada&coalesce=false'    # bypass the group");
        println!(
            "  for i in $(seq 50); do curl -s -w '\\n' '{base}/customers?name=grace' & done; wait"
        );
        println!("press Ctrl-C to stop");
        let counter = db.clone();
        tokio::spawn(async move {
            let mut shown = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let queries = counter.queries();
                if queries != shown {
                    println!("database queries so far: {queries}");
                    shown = queries;
                }
            }
        });
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
        println!("\n{} database queries in total", db.queries());
        return Ok(());
    }

    println!(
        "load: {} requests over {} names ({} unknown) from {} concurrent connections, twice",
        options.requests,
        KNOWN.len() + UNKNOWN.len(),
        UNKNOWN.len(),
        options.concurrency
    );
    println!();
    let mut reports = Vec::new();
    for coalesce in [true, false] {
        reports.push(run_load(&base, &db, coalesce, options.requests, options.concurrency).await);
    }
    print_table(&reports);
    println!();

    let (with, without) = (&reports[0], &reports[1]);
    for report in &reports {
        if report.failed > 0 {
            return Err(format!(
                "{} of {} requests failed ({} mode), the first with: {}",
                report.failed,
                report.requests,
                report.mode,
                report.first_failure.as_deref().unwrap_or("?")
            ));
        }
    }
    if without.queries != without.requests as u64 {
        return Err(format!(
            "without coalescing, {} requests should run as many queries, not {}",
            without.requests, without.queries
        ));
    }
    if with.queries * 2 > with.requests as u64 {
        return Err(format!(
            "with coalescing, {} requests ran {} queries: expected far fewer",
            with.requests, with.queries
        ));
    }
    println!(
        "coalescing answered {} requests with {} queries ({:.0}x fewer) and no errors",
        with.requests,
        with.queries,
        with.requests as f64 / with.queries.max(1) as f64
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on a free port with its own database; queries take `query_time`.
    async fn server(query_time: Duration) -> (String, Arc<Database>) {
        let db = Arc::new(Database::open(8, query_time).unwrap());
        let addr = start_server("127.0.0.1:0", db.clone()).await.unwrap();
        (format!("http://{addr}"), db)
    }

    /// `GET url`: the status, the shared header and the JSON body.
    async fn get(url: &str) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = http_client().get(url.parse().unwrap()).await.unwrap();
        let status = response.status();
        let shared = response
            .headers()
            .get("x-single-flight-shared")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{url}: body {body:?} is not JSON: {e}"));
        (status, shared, json)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn known_name_gets_its_id() {
        let (base, db) = server(Duration::ZERO).await;
        let (status, shared, body) = get(&format!("{base}/customers?name=grace")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({ "name": "grace", "id": 6 }));
        assert_eq!(shared.as_deref(), Some("false"));
        let (status, _, body) = get(&format!("{base}/customers?name=customer-00041")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["id"], KNOWN.len() + 42);
        assert_eq!(db.queries(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_name_is_404() {
        let (base, db) = server(Duration::ZERO).await;
        for flag in ["", "&coalesce=false"] {
            let (status, _, body) = get(&format!("{base}/customers?name=mallory{flag}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert_eq!(body, json!({ "error": "no customer named \"mallory\"" }));
        }
        assert_eq!(db.queries(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_input_is_400_and_never_reaches_the_database() {
        let (base, db) = server(Duration::ZERO).await;
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        let cases = [
            ("", "missing query parameter `name`"),
            ("?coalesce=false", "missing query parameter `name`"),
            ("?name=", "`name` is empty"),
            (
                &format!("?name={long}"),
                "`name` is longer than 64 characters",
            ),
            ("?name=ada%00", "`name` contains non-printable characters"),
            ("?name=%07bell", "`name` contains non-printable characters"),
            ("?name=a%0Ab", "`name` contains non-printable characters"),
            ("?name=%FF%FE", "`name` is not valid UTF-8"),
        ];
        for (query, message) in cases {
            let (status, _, body) = get(&format!("{base}/customers{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(body, json!({ "error": message }), "{query}");
        }
        // Rejected by the query-string parser: a flag that is not a bool.
        let (status, _, body) = get(&format!("{base}/customers?name=ada&coalesce=maybe")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"].as_str().unwrap().contains("coalesce"),
            "{body}"
        );
        // Exactly 64 characters, including non-ASCII ones, is fine (and unknown).
        let edge = "é".repeat(MAX_NAME_CHARS);
        let (status, _, _) = get(&format!("{base}/customers?name={}", encode(&edge))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(db.queries(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn database_failure_is_500() {
        let (base, db) = server(Duration::ZERO).await;
        db.execute_batch("DROP TABLE customers").unwrap();
        for flag in ["", "&coalesce=false"] {
            let (status, _, body) = get(&format!("{base}/customers?name=ada{flag}")).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(body, json!({ "error": "database failure" }));
        }
        assert_eq!(db.queries(), 2);
    }

    /// Sends `n` concurrent requests for `query`; returns the statuses and shared headers.
    async fn herd(base: &str, query: &str, n: usize) -> Vec<(StatusCode, Option<String>)> {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let url = format!("{base}/customers{query}");
                tokio::spawn(async move {
                    let (status, shared, _) = get(&url).await;
                    (status, shared)
                })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_one_query() {
        // The query is slow enough that all 20 requests arrive while it runs.
        let (base, db) = server(Duration::from_millis(750)).await;
        let answers = herd(&base, "?name=ada", 20).await;
        assert!(answers
            .iter()
            .all(|a| *a == (StatusCode::OK, Some("true".into()))));
        assert_eq!(db.queries(), 1);

        // A herd that bypasses the group: one query per request.
        let answers = herd(&base, "?name=ada&coalesce=false", 8).await;
        assert!(answers
            .iter()
            .all(|a| *a == (StatusCode::OK, Some("false".into()))));
        assert_eq!(db.queries(), 9);

        // A failure is shared too, and the next flight sees the database again.
        db.execute_batch("ALTER TABLE customers RENAME TO gone")
            .unwrap();
        let answers = herd(&base, "?name=ken", 10).await;
        assert!(answers
            .iter()
            .all(|a| a.0 == StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(db.queries(), 10);
        db.execute_batch("ALTER TABLE gone RENAME TO customers")
            .unwrap();
        let (status, _, body) = get(&format!("{base}/customers?name=ken")).await;
        assert_eq!((status, body["id"].as_i64()), (StatusCode::OK, Some(7)));
    }

    #[test]
    fn percentiles() {
        let report = LoadReport {
            mode: "test",
            requests: 100,
            ok: 100,
            not_found: 0,
            failed: 0,
            first_failure: None,
            queries: 1,
            latencies: (1..=100).map(Duration::from_millis).collect(),
            elapsed: Duration::ZERO,
        };
        assert_eq!(report.percentile(50.0), Duration::from_millis(50));
        assert_eq!(report.percentile(99.0), Duration::from_millis(99));
        assert_eq!(report.percentile(100.0), Duration::from_millis(100));
    }

    /// Percent-encodes every byte (enough for a test).
    fn encode(s: &str) -> String {
        s.bytes().map(|b| format!("%{b:02X}")).collect()
    }
}
