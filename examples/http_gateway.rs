//! An axum gateway in front of a slow upstream, with identical in-flight requests coalesced by
//! `single_flight_tower::CoalesceLayer`: however many clients ask for the same quote at once,
//! the upstream answers it once and every client gets the answer.
//!
//! Both servers run in this process on free localhost ports: the upstream is an axum service
//! whose every answer takes 25 ms, 32 at a time at most (like a database behind its connection
//! pool); the gateway forwards `GET /quotes/{symbol}` to it with hyper-util's client. The program then load-tests the gateway twice with the same load
//! (2,000 requests for ten symbols from 200 concurrent clients), once through a gateway without
//! the layer and once through one with it, prints the upstream calls and latencies of each run,
//! and exits non-zero if a request failed or the layer saved nothing. Its last line is
//! `gateway: R requests, U upstream calls with the layer (N without)`.
//!
//! Run it from the workspace root:
//!
//! ```text
//! cargo run --release --example http_gateway
//! ```
//!
//! Each connection takes two file descriptors here (client and server are one process), four
//! for the gateway's own connections to the upstream: under a low `ulimit -n` (macOS defaults
//! to 256), lower `CONCURRENCY`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use single_flight_tower::CoalesceLayer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long the upstream takes to answer.
const UPSTREAM_TIME: Duration = Duration::from_millis(25);
/// How many requests the upstream serves at once; the others queue.
const UPSTREAM_SLOTS: usize = 32;
/// Requests per run.
const REQUESTS: usize = 2_000;
/// Clients sending at once (each sends its share one after the other).
const CONCURRENCY: usize = 200;
/// Distinct URLs the load asks for.
const SYMBOLS: [&str; 10] = [
    "ACME", "BOLT", "CRUX", "DYNA", "EPIC", "FLUX", "GRID", "HALO", "IONS", "JADE",
];

type HttpClient<B> = Client<HttpConnector, B>;

/// The upstream's state: its call counter and its slots.
#[derive(Clone)]
struct Backend {
    calls: Arc<AtomicUsize>,
    slots: Arc<Semaphore>,
}

/// The slow upstream: one call per request it receives, counted.
async fn quote(Path(symbol): Path<String>, State(backend): State<Backend>) -> Response {
    backend.calls.fetch_add(1, Ordering::Relaxed);
    let Ok(_slot) = backend.slots.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    tokio::time::sleep(UPSTREAM_TIME).await;
    let price = symbol.bytes().map(u64::from).sum::<u64>();
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"symbol\":\"{symbol}\",\"price\":{price}}}"),
    )
        .into_response()
}

/// What the gateway needs to forward a request.
#[derive(Clone)]
struct Upstream {
    addr: SocketAddr,
    client: HttpClient<Empty<Bytes>>,
}

/// The gateway's handler: forwards the request's path to the upstream, streams the answer back.
async fn forward(State(upstream): State<Upstream>, request: Request<Body>) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |target| target.as_str());
    let Ok(outgoing) = Request::get(format!("http://{}{path}", upstream.addr)).body(Empty::new())
    else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match upstream.client.request(outgoing).await {
        Ok(response) => response.map(Body::new),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

async fn spawn_server(app: Router) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// What one load run measured.
struct Run {
    ok: usize,
    failed: usize,
    upstream_calls: usize,
    latencies: Vec<Duration>,
}

impl Run {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[rank]
    }
}

/// Sends `REQUESTS` requests to `gateway` from `CONCURRENCY` clients, rotating over `SYMBOLS`.
async fn load(gateway: SocketAddr, calls: &AtomicUsize) -> Run {
    let client: HttpClient<Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let before = calls.load(Ordering::Relaxed);
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let client = client.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0;
            for i in (worker..REQUESTS).step_by(CONCURRENCY) {
                let symbol = SYMBOLS[i % SYMBOLS.len()];
                let request = Request::get(format!("http://{gateway}/quotes/{symbol}"))
                    .body(Empty::new())
                    .expect("a valid request");
                let start = Instant::now();
                let ok = match client.request(request).await {
                    Ok(response) => {
                        let status = response.status();
                        let body = response.into_body().collect().await;
                        status == StatusCode::OK
                            && body.is_ok_and(|b| b.to_bytes().starts_with(b"{\"symbol\""))
                    }
                    Err(_) => false,
                };
                latencies.push(start.elapsed());
                failed += usize::from(!ok);
            }
            (latencies, failed)
        });
    }
    let mut latencies = Vec::with_capacity(REQUESTS);
    let mut failed = 0;
    while let Some(joined) = workers.join_next().await {
        let (worker_latencies, worker_failed) = joined.expect("a load worker panicked");
        latencies.extend(worker_latencies);
        failed += worker_failed;
    }
    latencies.sort_unstable();
    Run {
        ok: latencies.len() - failed,
        failed,
        upstream_calls: calls.load(Ordering::Relaxed) - before,
        latencies,
    }
}

fn report(label: &str, run: &Run) {
    println!(
        "{label:<18} {:>5} requests ({} failed), {:>5} upstream calls, p50 {:>6.1} ms, p99 {:>6.1} ms",
        run.ok + run.failed,
        run.failed,
        run.upstream_calls,
        run.percentile(0.50).as_secs_f64() * 1e3,
        run.percentile(0.99).as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() -> ExitCode {
    let calls = Arc::new(AtomicUsize::new(0));
    let backend = Backend {
        calls: calls.clone(),
        slots: Arc::new(Semaphore::new(UPSTREAM_SLOTS)),
    };
    let upstream_app = Router::new()
        .route("/quotes/{symbol}", get(quote))
        .with_state(backend);
    let upstream = Upstream {
        addr: spawn_server(upstream_app).await.expect("bind the upstream"),
        client: Client::builder(TokioExecutor::new()).build_http(),
    };

    let gateway = Router::new()
        .route("/quotes/{symbol}", get(forward))
        .with_state(upstream);
    let plain = spawn_server(gateway.clone()).await.expect("bind a gateway");
    let coalescing = spawn_server(gateway.layer(CoalesceLayer::new()))
        .await
        .expect("bind a gateway");

    println!(
        "gateway: the upstream answers in {} ms, {UPSTREAM_SLOTS} at a time; {REQUESTS} requests \
         from {CONCURRENCY} concurrent clients over {} URLs",
        UPSTREAM_TIME.as_millis(),
        SYMBOLS.len(),
    );
    let without = load(plain, &calls).await;
    report("without the layer:", &without);
    let with = load(coalescing, &calls).await;
    report("with the layer:", &with);

    let mut verdict = ExitCode::SUCCESS;
    if without.failed + with.failed > 0 {
        eprintln!("FAILED: some requests did not get the upstream's answer");
        verdict = ExitCode::FAILURE;
    }
    if with.upstream_calls >= without.upstream_calls {
        eprintln!("FAILED: the layer did not reduce the upstream calls");
        verdict = ExitCode::FAILURE;
    }
    println!(
        "gateway: {} requests, {} upstream calls with the layer ({} without)",
        with.ok + with.failed,
        with.upstream_calls,
        without.upstream_calls,
    );
    verdict
}
