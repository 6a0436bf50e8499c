//! `http_layer`: HTTP request coalescing measured end to end, through a real hyper server on
//! loopback driven by hyper-util's pooled client, in one process (`cargo xtask bench http`).
//!
//! The server runs the same upstream service (it counts its calls and answers a 1 KiB body,
//! after a delay or at once) behind three front ends:
//!
//! * `no layer`: the upstream alone;
//! * `single-flight-tower`: this workspace's `CoalesceLayer` (default configuration);
//! * `tower-resilience-coalesce`: the one other tower coalescing layer, keyed on method + URI
//!   (it needs `Response: Clone`, so the upstream's body is a `Full<Bytes>`, which is).
//!
//! Scenarios (`--quick` divides the request counts by four):
//!
//! * `herd`: 200 clients send 4,000 `GET`s of one URL, each client one after the other; the
//!   upstream answers after 20 ms and serves 16 calls at a time (a database's pool). Requests
//!   per second, upstream calls, and the process's CPU time per request (client and server
//!   together: a layer whose waiters poll in a loop shows here).
//! * `distinct`: the same with a URL of its own per request: nothing to share, so this is the
//!   layer's cost when it coalesces nothing.
//! * `overhead`: 16 clients, 20,000 requests, the upstream answers at once: wall time per request
//!   (the inverse of throughput: client, server and layer share the two cores) for `GET`s of
//!   distinct URLs and for `POST`s, best of five interleaved runs, and the difference to no
//!   layer; and the process's CPU time per request.
//! * `layer alone`: the same two request shapes sent to the service in a loop, no network: the
//!   layer's own cost per request in nanoseconds, without the noise of the rest of the stack
//!   (`--layer-alone` runs only this one, e.g. under `perf record`).
//! * `leader abort`: the leader's client disconnects mid-request while followers wait on it
//!   (see [`abort`]): what the followers got, and how often the upstream was called
//!   (`--leader-abort` runs only this one).
//!
//! A full run (or `--write`; not `--quick` nor `--no-write`) also writes the `http` block of
//! `BENCHMARKS.md`, the herd's and the leader abort's figures to `benches/results/http.json`, and
//! their charts to `benches/results/http-cpu.svg` and `benches/results/http-abort.svg`.

mod abort;
mod results;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use single_flight_benches::machine::Machine;
use single_flight_benches::markdown::Table;
use tokio::net::TcpListener;
use tower::{BoxError, Layer, Service};

use crate::abort::AbortRow;

/// What the run printed, for the `http` block of `BENCHMARKS.md`.
static REPORT: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// `println!` that also keeps the line for [`REPORT`].
macro_rules! out {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        println!("{line}");
        let mut report = REPORT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        report.push_str(&line);
        report.push('\n');
    }};
}

/// The upstream's body: 1 KiB.
const BODY: &[u8] = &[b'x'; 1024];

/// The front ends measured, in the order of the tables.
#[derive(Debug, Clone, Copy)]
enum Front {
    NoLayer,
    Tower,
    Peer,
}

impl Front {
    const ALL: [Front; 3] = [Front::NoLayer, Front::Tower, Front::Peer];

    fn name(self) -> &'static str {
        match self {
            Front::NoLayer => "no layer",
            Front::Tower => "single-flight-tower",
            Front::Peer => "tower-resilience-coalesce 0.14",
        }
    }
}

/// How many calls the upstream serves at once (a database's connection pool).
const UPSTREAM_SLOTS: usize = 16;

/// The upstream: counts its calls, waits `delay` (if any) in one of its [`UPSTREAM_SLOTS`],
/// answers 200 with [`BODY`].
fn upstream(
    calls: Arc<AtomicUsize>,
    delay: Duration,
) -> impl Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send,
> + Clone
       + Send
       + Sync
       + 'static {
    let slots = Arc::new(tokio::sync::Semaphore::new(UPSTREAM_SLOTS));
    tower::service_fn(move |_request: Request<Incoming>| {
        calls.fetch_add(1, Ordering::Relaxed);
        let slots = slots.clone();
        async move {
            if !delay.is_zero() {
                let _slot = slots.acquire().await.expect("never closed");
                tokio::time::sleep(delay).await;
            }
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
        }
    })
}

/// Serves `service` on `127.0.0.1:0` until the process ends.
async fn serve<S, B>(service: S) -> SocketAddr
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Serves `up` behind `front` on `127.0.0.1:0`.
async fn serve_behind<S>(front: Front, up: S) -> SocketAddr
where
    S: Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    match front {
        Front::NoLayer => serve(up).await,
        Front::Tower => serve(single_flight_tower::CoalesceLayer::new().layer(up)).await,
        Front::Peer => {
            let layer =
                tower_resilience_coalesce::CoalesceLayer::new(|request: &Request<Incoming>| {
                    (request.method().clone(), request.uri().clone())
                });
            serve(layer.layer(up)).await
        }
    }
}

/// Starts a server with `front` before a fresh upstream; returns its address and call counter.
async fn start(front: Front, delay: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = serve_behind(front, upstream(calls.clone(), delay)).await;
    (addr, calls)
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Builds the `i`th request of a load for the server at an address.
type MakeRequest = fn(SocketAddr, usize) -> Request<Full<Bytes>>;

/// Builds the `i`th request of an in-process run.
type MakeLocal = fn(usize) -> Request<Full<Bytes>>;

/// CPU time of this process so far (user + system), from `/proc/self/stat` (Linux; `None`
/// elsewhere). Its resolution is the kernel's clock tick, usually 10 ms.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// What one load run measured.
struct Load {
    elapsed: Duration,
    cpu: Option<Duration>,
    requests: usize,
    failed: usize,
    upstream_calls: usize,
}

/// Sends `requests` requests from `clients` clients (each one after the other), the `i`th
/// built by `make(addr, i)`.
async fn load(
    addr: SocketAddr,
    calls: &AtomicUsize,
    requests: usize,
    clients: usize,
    make: MakeRequest,
) -> Load {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(clients)
        .build_http();
    let before = calls.load(Ordering::Relaxed);
    let cpu_before = cpu_time();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..clients {
        let client = client.clone();
        tasks.spawn(async move {
            let mut failed = 0;
            for i in (worker..requests).step_by(clients) {
                let ok = match client.request(make(addr, i)).await {
                    Ok(response) => {
                        let status = response.status();
                        let body = response.into_body().collect().await;
                        status == StatusCode::OK && body.is_ok_and(|b| b.to_bytes() == BODY)
                    }
                    Err(_) => false,
                };
                failed += usize::from(!ok);
            }
            failed
        });
    }
    let failed = tasks.join_all().await.into_iter().sum();
    let elapsed = start.elapsed();
    Load {
        elapsed,
        cpu: cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before)),
        requests,
        failed,
        upstream_calls: calls.load(Ordering::Relaxed) - before,
    }
}

fn same_url(addr: SocketAddr, _i: usize) -> Request<Full<Bytes>> {
    Request::get(format!("http://{addr}/report"))
        .body(Full::default())
        .expect("a request")
}

fn distinct_url(addr: SocketAddr, i: usize) -> Request<Full<Bytes>> {
    Request::get(format!("http://{addr}/item/{i}"))
        .body(Full::default())
        .expect("a request")
}

fn post(addr: SocketAddr, i: usize) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}/item/{i}"))
        .body(Full::new(Bytes::from_static(b"{\"q\":1}")))
        .expect("a request")
}

fn per_second(load: &Load) -> f64 {
    load.requests as f64 / load.elapsed.as_secs_f64()
}

fn micros_per_request(load: &Load) -> f64 {
    load.elapsed.as_secs_f64() * 1e6 / load.requests as f64
}

/// One front end's row of a `herd` or `distinct` table.
struct Row {
    front: Front,
    per_second: f64,
    upstream_calls: usize,
    cpu_micros: Option<f64>,
    failed: usize,
}

/// `herd` or `distinct`: one run per front end, after a warm-up.
async fn throughput(title: &str, requests: usize, make: MakeRequest) -> Vec<Row> {
    const CLIENTS: usize = 200;
    const DELAY: Duration = Duration::from_millis(20);
    out!(
        "### {title}: {CLIENTS} clients, {requests} requests, the upstream answers after 20 ms, \
         {UPSTREAM_SLOTS} at a time\n"
    );
    let mut table = Table::figures(
        "front end",
        &[
            "requests/s",
            "upstream calls",
            "CPU µs per request",
            "failed",
        ],
    );
    let mut rows = Vec::new();
    for front in Front::ALL {
        let (addr, calls) = start(front, DELAY).await;
        load(addr, &calls, CLIENTS, CLIENTS, make).await; // warm-up: open the connections
        let run = load(addr, &calls, requests, CLIENTS, make).await;
        let row = Row {
            front,
            per_second: per_second(&run),
            upstream_calls: run.upstream_calls,
            cpu_micros: run
                .cpu
                .map(|cpu| cpu.as_secs_f64() * 1e6 / run.requests as f64),
            failed: run.failed,
        };
        table.row([
            front.name().to_owned(),
            format!("{:.0}", row.per_second),
            row.upstream_calls.to_string(),
            row.cpu_micros
                .map_or("n/a".into(), |cpu| format!("{cpu:.0}")),
            row.failed.to_string(),
        ]);
        rows.push(row);
    }
    out!("{}", table.finish());
    rows
}

/// `overhead`: wall time per request with an upstream that answers at once.
async fn overhead(requests: usize) -> usize {
    const CLIENTS: usize = 16;
    const ROUNDS: usize = 5;
    out!(
        "### overhead: {CLIENTS} clients, {requests} requests, upstream answers at once \
         (µs of wall time per request, best of {ROUNDS})\n"
    );
    let mut failed = 0;
    let shapes: [(&str, MakeRequest); 2] = [("GET, distinct URLs", distinct_url), ("POST", post)];
    let mut servers = Vec::new();
    for front in Front::ALL {
        servers.push((front, start(front, Duration::ZERO).await));
    }
    let mut best = vec![[f64::INFINITY; 2]; servers.len()];
    let mut best_cpu = vec![[f64::INFINITY; 2]; servers.len()];
    for (shape, (_, make)) in shapes.iter().enumerate() {
        for (_, (addr, calls)) in &servers {
            load(*addr, calls, 2_000, CLIENTS, *make).await; // warm-up
        }
        for _ in 0..ROUNDS {
            for (i, (_, (addr, calls))) in servers.iter().enumerate() {
                let run = load(*addr, calls, requests, CLIENTS, *make).await;
                failed += run.failed;
                best[i][shape] = best[i][shape].min(micros_per_request(&run));
                if let Some(cpu) = run.cpu {
                    let cpu = cpu.as_secs_f64() * 1e6 / run.requests as f64;
                    best_cpu[i][shape] = best_cpu[i][shape].min(cpu);
                }
            }
        }
    }
    let base = best[0];
    let mut table = Table::figures(
        "front end",
        &[
            "GET, distinct URLs",
            "vs no layer",
            "CPU µs",
            "POST",
            "vs no layer",
            "CPU µs",
        ],
    );
    for (i, (front, _)) in servers.iter().enumerate() {
        table.row([
            front.name().to_owned(),
            format!("{:.1}", best[i][0]),
            format!("{:+.1}", best[i][0] - base[0]),
            format!("{:.1}", best_cpu[i][0]),
            format!("{:.1}", best[i][1]),
            format!("{:+.1}", best[i][1] - base[1]),
            format!("{:.1}", best_cpu[i][1]),
        ]);
    }
    out!("{}", table.finish());
    failed
}

/// `layer alone`: the service called in a loop, no network: ns per request for the layer and
/// for the upstream alone, `GET`s of distinct URLs and `POST`s, best of five.
async fn in_process(requests: usize) {
    const ROUNDS: usize = 5;
    out!(
        "### layer alone, no network: {requests} sequential requests, the upstream answers at \
         once (ns per request, best of {ROUNDS})\n"
    );
    let inner = tower::service_fn(|_request: Request<Full<Bytes>>| {
        std::future::ready(Ok::<_, Infallible>(Response::new(Full::new(
            Bytes::from_static(BODY),
        ))))
    });
    let coalesce = single_flight_tower::CoalesceLayer::new().layer(inner);
    let peer = tower_resilience_coalesce::CoalesceLayer::new(|request: &Request<Full<Bytes>>| {
        (request.method().clone(), request.uri().clone())
    })
    .layer(inner);
    let shapes: [MakeLocal; 2] = [
        |i| {
            Request::get(format!("/item/{i}"))
                .body(Full::default())
                .expect("a request")
        },
        |i| {
            Request::post(format!("/item/{i}"))
                .body(Full::new(Bytes::from_static(b"{\"q\":1}")))
                .expect("a request")
        },
    ];
    async fn time<S, B>(mut service: S, requests: usize, make: MakeLocal) -> f64
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>>,
        S::Error: std::fmt::Debug,
        B: Body,
        B::Error: std::fmt::Debug,
    {
        use tower::ServiceExt;
        let start = Instant::now();
        for i in 0..requests {
            let response = service
                .ready()
                .await
                .expect("ready")
                .call(make(i))
                .await
                .expect("a response");
            std::hint::black_box(response.into_body().collect().await.expect("a body"));
        }
        start.elapsed().as_secs_f64() * 1e9 / requests as f64
    }
    let mut best = [[f64::INFINITY; 2]; 3];
    for (shape, make) in shapes.iter().enumerate() {
        for _ in 0..ROUNDS {
            best[0][shape] = best[0][shape].min(time(inner, requests, *make).await);
            best[1][shape] = best[1][shape].min(time(coalesce.clone(), requests, *make).await);
            best[2][shape] = best[2][shape].min(time(peer.clone(), requests, *make).await);
        }
    }
    let mut table = Table::figures(
        "front end",
        &["GET, distinct URLs", "vs no layer", "POST", "vs no layer"],
    );
    for (i, front) in Front::ALL.iter().enumerate() {
        table.row([
            front.name().to_owned(),
            format!("{:.0}", best[i][0]),
            format!("{:+.0}", best[i][0] - best[0][0]),
            format!("{:.0}", best[i][1]),
            format!("{:+.0}", best[i][1] - best[0][1]),
        ]);
    }
    out!("{}", table.finish());
}

/// `leader abort`: prints its table, returns its rows.
async fn leader_abort(rounds: usize) -> Vec<(Front, AbortRow)> {
    out!("{}", abort::title(rounds));
    let rows = abort::leader_abort(rounds).await;
    out!("{}", abort::table(&rows));
    rows
}

fn main() -> ExitCode {
    let flag = |name: &str| std::env::args().skip(1).any(|arg| arg == name);
    let quick = flag("--quick");
    // As `compare`: a full run writes its results, a quick one only with `--write`.
    let write = flag("--write") || !(quick || flag("--no-write"));
    let machine = Machine::probe();
    let scale = if quick { 4 } else { 1 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if flag("--layer-alone") {
        runtime.block_on(in_process(200_000 / scale));
        return ExitCode::SUCCESS;
    }
    if flag("--leader-abort") {
        runtime.block_on(leader_abort(40 / scale));
        return ExitCode::SUCCESS;
    }
    let (herd, abort, failed) = runtime.block_on(async {
        out!(
            "## HTTP: one process, hyper server and hyper-util client on loopback, tokio with 2 \
             workers\n"
        );
        let herd = throughput("herd, one URL", 4_000 / scale, same_url).await;
        let distinct = throughput("distinct URLs", 4_000 / scale, distinct_url).await;
        let mut failed: usize = herd.iter().chain(&distinct).map(|row| row.failed).sum();
        failed += overhead(20_000 / scale).await;
        in_process(200_000 / scale).await;
        let abort = leader_abort(40 / scale).await;
        (herd, abort, failed)
    });
    if write {
        if let Err(err) = results::write(&herd, &abort, &machine.line()) {
            eprintln!("http: {err}");
            return ExitCode::FAILURE;
        }
    }
    if failed > 0 {
        eprintln!("FAILED: {failed} requests did not get the upstream's answer");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
