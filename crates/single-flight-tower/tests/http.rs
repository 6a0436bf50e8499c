//! The layer through a real hyper server on loopback, driven by a real HTTP client (hyper-util's
//! pooled client, or raw TCP where a client must vanish mid-request).
//!
//! "Semantics N" below cites the numbered semantics of the crate docs.
//!
//! Every test holds the upstream's answer until the requests it expects have reached the layer
//! (and, for the first one, joined or started their flight), so that "shared" and "not shared"
//! are decided by the layer and not by timing; then it asserts the number of upstream calls and
//! what each client got.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use single_flight_tower::{Coalesce, CoalesceLayer, SharedError};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::{Service, ServiceBuilder};

/// The role header every test turns on, to count who led, followed, fell back or passed.
const ROLE: HeaderName = HeaderName::from_static("x-coalesce-role");
/// How long the upstream waits for the expected requests before answering anyway (the test
/// then fails on its counts instead of hanging).
const GATE_LIMIT: Duration = Duration::from_secs(20);

type UpBody = BoxBody<Bytes, Infallible>;

/// What the server saw: requests that reached the layer, futures dropped before they finished.
#[derive(Clone)]
struct Events {
    arrived: watch::Sender<usize>,
    dropped: watch::Sender<usize>,
}

impl Events {
    fn new() -> Self {
        Self {
            arrived: watch::channel(0).0,
            dropped: watch::channel(0).0,
        }
    }

    /// Waits until `n` requests have reached the layer (bounded by [`GATE_LIMIT`]).
    async fn arrivals(&self, n: usize) {
        let mut rx = self.arrived.subscribe();
        let _ = tokio::time::timeout(GATE_LIMIT, rx.wait_for(|&seen| seen >= n)).await;
    }

    /// Waits until `n` response futures have been dropped unfinished.
    async fn drops(&self, n: usize) {
        let mut rx = self.dropped.subscribe();
        let _ = tokio::time::timeout(GATE_LIMIT, rx.wait_for(|&seen| seen >= n)).await;
    }
}

/// The outermost service: counts a request once the layer has taken it (its flight joined or
/// started: that happens inside `call`), notes futures dropped unfinished, and turns the layer's
/// errors into `502` responses whose body is the message, so that clients can see them.
#[derive(Clone)]
struct Outer<S> {
    inner: S,
    events: Events,
}

struct DropGuard(Option<Events>);

impl DropGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(events) = self.0.take() {
            events.dropped.send_modify(|n| *n += 1);
        }
    }
}

impl<S, B> Service<Request<Incoming>> for Outer<S>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = SharedError>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes, Error = Infallible> + Send + Sync + 'static,
{
    type Response = Response<UpBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<UpBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The upstreams of these tests are always ready.
        self.inner.poll_ready(cx).map(|ready| {
            ready.expect("always ready");
            Ok(())
        })
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let future = self.inner.call(request);
        self.events.arrived.send_modify(|n| *n += 1);
        let mut guard = DropGuard(Some(self.events.clone()));
        Box::pin(async move {
            let result = future.await;
            guard.disarm();
            Ok(match result {
                Ok(response) => response.map(BodyExt::boxed),
                Err(error) => Response::builder()
                    .status(StatusCode::BAD_GATEWAY)
                    .body(Full::new(Bytes::from(error.to_string())).boxed())
                    .unwrap(),
            })
        })
    }
}

/// Serves `layer` in front of `upstream` on `127.0.0.1:0`; returns the address and the events.
async fn serve<U>(layer: CoalesceLayer, upstream: U) -> (SocketAddr, Events, Coalesce<U>)
where
    U: Service<Request<Incoming>, Response = Response<UpBody>, Error = SharedError>
        + Clone
        + Send
        + Sync
        + 'static,
    U::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let events = Events::new();
    let coalesce = ServiceBuilder::new().layer(layer).service(upstream);
    let outer = Outer {
        inner: coalesce.clone(),
        events: events.clone(),
    };
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = TowerToHyperService::new(outer.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, events, coalesce)
}

/// An upstream that counts its calls, waits until `gate` requests have reached the layer, and
/// answers with `respond(call number, request)`.
fn upstream<F>(
    events: &watch::Sender<Option<Events>>,
    calls: &Arc<AtomicUsize>,
    gate: usize,
    respond: F,
) -> impl Service<
    Request<Incoming>,
    Response = Response<UpBody>,
    Error = SharedError,
    Future = impl Future<Output = Result<Response<UpBody>, SharedError>> + Send,
> + Clone
       + Send
       + Sync
       + 'static
where
    F: Fn(usize, &Request<Incoming>) -> Result<Response<UpBody>, SharedError>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let events = events.subscribe();
    let calls = calls.clone();
    tower::service_fn(move |request: Request<Incoming>| {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        let answer = respond(call, &request);
        let events = events.borrow().clone().expect("the server is up");
        async move {
            events.arrivals(gate).await;
            answer
        }
    })
}

/// A test's server: its address, its upstream's call count, and the layer's count of keys in
/// flight.
struct Fixture {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    in_flight: Box<dyn Fn() -> usize + Send + Sync>,
}

/// Starts a server whose upstream waits for `gate` arrivals and answers with `respond`.
async fn start<F>(layer: CoalesceLayer, gate: usize, respond: F) -> Fixture
where
    F: Fn(usize, &Request<Incoming>) -> Result<Response<UpBody>, SharedError>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let slot = watch::channel(None).0;
    let calls = Arc::new(AtomicUsize::new(0));
    let up = upstream(&slot, &calls, gate, respond);
    let (addr, events, coalesce) = serve(layer, up).await;
    slot.send_replace(Some(events.clone()));
    Fixture {
        addr,
        calls,
        in_flight: Box::new(move || coalesce.in_flight()),
    }
}

impl Fixture {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn in_flight(&self) -> usize {
        (self.in_flight)()
    }
}

fn text(body: &'static str) -> UpBody {
    Full::new(Bytes::from_static(body.as_bytes())).boxed()
}

fn ok(body: impl Into<Bytes>) -> Result<Response<UpBody>, SharedError> {
    Ok(Response::new(Full::new(body.into()).boxed()))
}

/// What a client got.
#[derive(Debug, Clone)]
struct Got {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Got {
    fn role(&self) -> &str {
        self.headers
            .get(&ROLE)
            .map_or("none", |v| v.to_str().unwrap())
    }
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn send(client: &HttpClient, request: Request<Full<Bytes>>) -> Got {
    let response = client
        .request(request)
        .await
        .expect("the request went through");
    let (head, body) = response.into_parts();
    Got {
        status: head.status,
        headers: head.headers,
        body: body.collect().await.expect("the body arrived").to_bytes(),
    }
}

fn get(addr: SocketAddr, path: &str) -> http::request::Builder {
    Request::get(format!("http://{addr}{path}"))
}

fn empty() -> Full<Bytes> {
    Full::new(Bytes::new())
}

/// Sends every request at once, each from its own task; returns what each got, in order.
async fn all_at_once(requests: Vec<Request<Full<Bytes>>>) -> Vec<Got> {
    let client = client();
    let mut tasks = JoinSet::new();
    for (i, request) in requests.into_iter().enumerate() {
        let client = client.clone();
        tasks.spawn(async move { (i, send(&client, request).await) });
    }
    let mut got = tasks.join_all().await;
    got.sort_by_key(|(i, _)| *i);
    got.into_iter().map(|(_, got)| got).collect()
}

fn roles(got: &[Got]) -> [usize; 4] {
    let mut counts = [0; 4];
    for g in got {
        let i = ["leader", "follower", "fallback", "bypass"]
            .iter()
            .position(|r| *r == g.role())
            .unwrap_or_else(|| panic!("unexpected role {:?}", g.role()));
        counts[i] += 1;
    }
    counts
}

fn layer() -> CoalesceLayer {
    CoalesceLayer::new().role_header(ROLE)
}

/// The body of the `n`th call, so that a body from another call is caught.
fn numbered(n: usize) -> Result<Response<UpBody>, SharedError> {
    ok(format!("answer of call {n}"))
}

/// Semantics 1 and 2: one inner call, every client the same response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herd_of_200_identical_gets_makes_one_inner_call() {
    const N: usize = 200;
    let fx = start(layer(), N, |n, _| numbered(n)).await;
    let requests = (0..N)
        .map(|_| get(fx.addr, "/report?day=1").body(empty()).unwrap())
        .collect();
    let got = all_at_once(requests).await;

    assert_eq!(fx.calls(), 1);
    assert_eq!(got.len(), N);
    for g in &got {
        assert_eq!(g.status, StatusCode::OK);
        assert_eq!(g.body, "answer of call 0");
    }
    assert_eq!(roles(&got), [1, N - 1, 0, 0]);
    assert_eq!(fx.in_flight(), 0);
}

/// Semantics 1: credentials pass through unless the key includes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_with_different_authorization_are_not_shared() {
    // By default a request with credentials passes through, equal or not.
    let echo = |_: usize, request: &Request<Incoming>| {
        let auth = request.headers().get(http::header::AUTHORIZATION).cloned();
        ok(auth.map_or_else(Bytes::new, |v| Bytes::copy_from_slice(v.as_bytes())))
    };
    let fx = start(layer(), 4, echo).await;
    let requests = ["alice", "bob", "alice", "bob"]
        .iter()
        .map(|user| {
            get(fx.addr, "/me")
                .header("authorization", format!("Bearer {user}"))
                .body(empty())
                .unwrap()
        })
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 4);
    for (g, user) in got.iter().zip(["alice", "bob", "alice", "bob"]) {
        assert_eq!(g.body, format!("Bearer {user}"));
        assert_eq!(g.role(), "bypass");
    }

    // With `Authorization` in the key, equal credentials share and different ones do not.
    let keyed = layer().key_headers([http::header::AUTHORIZATION]);
    let fx = start(keyed, 6, echo).await;
    let requests = ["alice", "bob", "alice", "bob", "alice", "bob"]
        .iter()
        .map(|user| {
            get(fx.addr, "/me")
                .header("authorization", format!("Bearer {user}"))
                .body(empty())
                .unwrap()
        })
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 2);
    for (g, user) in got
        .iter()
        .zip(["alice", "bob", "alice", "bob", "alice", "bob"])
    {
        assert_eq!(g.body, format!("Bearer {user}"));
    }
    assert_eq!(roles(&got), [2, 4, 0, 0]);

    // A cookie is a credential too.
    let fx = start(layer(), 3, |n, _| numbered(n)).await;
    let requests = (0..3)
        .map(|i| {
            get(fx.addr, "/me")
                .header("cookie", format!("session={i}"))
                .body(empty())
                .unwrap()
        })
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 3);
    assert_eq!(roles(&got), [0, 0, 0, 3]);
}

/// Semantics 2: a response that sets a cookie is its own request's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_cookie_response_gives_every_client_its_own_call_and_cookie() {
    const N: usize = 8;
    let fx = start(layer(), N, |n, _| {
        Ok(Response::builder()
            .header("set-cookie", format!("session={n}"))
            .body(text("welcome"))
            .unwrap())
    })
    .await;
    let requests = (0..N)
        .map(|_| get(fx.addr, "/login").body(empty()).unwrap())
        .collect();
    let got = all_at_once(requests).await;

    assert_eq!(fx.calls(), N);
    let mut cookies: Vec<String> = got
        .iter()
        .map(|g| {
            assert_eq!(g.status, StatusCode::OK);
            assert_eq!(g.body, "welcome");
            let cookies: Vec<_> = g.headers.get_all("set-cookie").iter().collect();
            assert_eq!(cookies.len(), 1, "one cookie per client");
            cookies[0].to_str().unwrap().to_owned()
        })
        .collect();
    cookies.sort();
    cookies.dedup();
    assert_eq!(cookies.len(), N, "every client its own cookie: {cookies:?}");
    // One request led; the others waited for it, saw the cookie, and sent their own.
    assert_eq!(roles(&got), [1, 0, N - 1, 0]);
    assert_eq!(fx.in_flight(), 0);
}

/// Semantics 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_no_store_and_foreign_vary_are_not_shared() {
    for (name, value) in [
        ("cache-control", "private, max-age=60"),
        ("cache-control", "no-store"),
        ("vary", "Origin"),
    ] {
        let fx = start(layer(), 3, move |n, _| {
            Ok(Response::builder()
                .header(name, value)
                .body(Full::new(Bytes::from(format!("call {n}"))).boxed())
                .unwrap())
        })
        .await;
        let requests = (0..3)
            .map(|_| get(fx.addr, "/x").body(empty()).unwrap())
            .collect();
        let got = all_at_once(requests).await;
        assert_eq!(fx.calls(), 3, "{name}: {value}");
        assert_eq!(roles(&got), [1, 0, 2, 0], "{name}: {value}");
        let mut bodies: Vec<_> = got.iter().map(|g| g.body.clone()).collect();
        bodies.sort();
        assert_eq!(bodies, ["call 0", "call 1", "call 2"], "{name}: {value}");
    }
}

/// Semantics 1 and 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_is_never_shared() {
    const N: usize = 6;
    let fx = start(layer(), N, |n, _| numbered(n)).await;
    let requests = (0..N)
        .map(|i| {
            let body = if i % 2 == 0 {
                empty()
            } else {
                Full::new(Bytes::from_static(b"{\"q\":1}"))
            };
            Request::post(format!("http://{}/search", fx.addr))
                .body(body)
                .unwrap()
        })
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), N);
    assert_eq!(roles(&got), [0, 0, 0, N]);
    let mut bodies: Vec<_> = got.iter().map(|g| g.body.clone()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), N);
}

/// Semantics 1 and 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_with_a_body_passes_through() {
    let fx = start(layer(), 3, |n, _| numbered(n)).await;
    let requests = (0..3)
        .map(|_| {
            get(fx.addr, "/odd")
                .body(Full::new(Bytes::from_static(b"payload")))
                .unwrap()
        })
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 3);
    assert_eq!(roles(&got), [0, 0, 0, 3]);
}

/// Semantics 1: the method is part of the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_get_are_never_mixed() {
    let fx = start(layer(), 4, |n, request| {
        let body = format!("page from call {n}");
        Ok(Response::builder()
            .header("content-length", body.len())
            .header("x-method", request.method().as_str())
            .body(if request.method() == Method::HEAD {
                text("")
            } else {
                Full::new(Bytes::from(body)).boxed()
            })
            .unwrap())
    })
    .await;
    let requests = [Method::GET, Method::HEAD, Method::GET, Method::HEAD]
        .into_iter()
        .map(|method| {
            Request::builder()
                .method(method)
                .uri(format!("http://{}/page", fx.addr))
                .body(empty())
                .unwrap()
        })
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 2, "one GET flight and one HEAD flight");
    assert_eq!(roles(&got), [2, 2, 0, 0]);
    let get_body = &got[0].body;
    assert!(get_body.starts_with(b"page from call"), "{get_body:?}");
    for get in [&got[0], &got[2]] {
        assert_eq!(get.headers["x-method"], "GET");
        assert_eq!(&get.body, get_body);
    }
    for head in [&got[1], &got[3]] {
        assert_eq!(head.headers["x-method"], "HEAD");
        assert!(head.body.is_empty());
        assert_eq!(
            head.headers["content-length"].to_str().unwrap(),
            get_body.len().to_string(),
        );
    }
}

/// A body of `len` bytes (`i % 251` at offset `i`, shifted by `seed`), in chunks of `chunk`
/// bytes, that yields to the executor between chunks: a large body streamed by the upstream.
struct Pattern {
    seed: usize,
    sent: usize,
    len: usize,
    chunk: usize,
    yielded: bool,
}

fn pattern_byte(seed: usize, i: usize) -> u8 {
    ((i + seed) % 251) as u8
}

impl Body for Pattern {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent == self.len {
            return Poll::Ready(None);
        }
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        let end = (self.sent + self.chunk).min(self.len);
        let chunk: Vec<u8> = (self.sent..end)
            .map(|i| pattern_byte(self.seed, i))
            .collect();
        self.sent = end;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }
}

fn pattern(seed: usize, len: usize) -> UpBody {
    Pattern {
        seed,
        sent: 0,
        len,
        chunk: 16 * 1024,
        yielded: false,
    }
    .boxed()
}

fn assert_pattern(body: &[u8], seed: usize, len: usize) {
    assert_eq!(body.len(), len);
    if let Some(i) = (0..len).find(|&i| body[i] != pattern_byte(seed, i)) {
        panic!("byte {i} of the body is wrong");
    }
}

/// Semantics 2: over the cap, the leader streams its whole body, the others send their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_cap_reaches_every_client_whole() {
    const N: usize = 5;
    const LEN: usize = 100_000;
    // No `Content-Length`: the cap is crossed while buffering.
    let fx = start(layer().max_body_bytes(10_000), N, |n, _| {
        Ok(Response::new(pattern(n, LEN)))
    })
    .await;
    let requests = (0..N)
        .map(|_| get(fx.addr, "/big").body(empty()).unwrap())
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), N);
    assert_eq!(roles(&got), [1, 0, N - 1, 0]);
    let mut seeds = Vec::new();
    for g in &got {
        // Each body is one call's, whole: find its seed from its first byte.
        let seed = g.body[0] as usize;
        assert_pattern(&g.body, seed, LEN);
        seeds.push(seed);
    }
    seeds.sort();
    assert_eq!(seeds, (0..N).collect::<Vec<_>>());

    // A declared `Content-Length` over the cap is not even buffered.
    let fx = start(layer().max_body_bytes(10_000), 3, |n, _| {
        Ok(Response::builder()
            .header("content-length", LEN)
            .body(pattern(n, LEN))
            .unwrap())
    })
    .await;
    let requests = (0..3)
        .map(|_| get(fx.addr, "/big").body(empty()).unwrap())
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 3);
    for g in &got {
        assert_pattern(&g.body, g.body[0] as usize, LEN);
    }
}

/// Semantics 2: a large body, shared under the cap and streamed through over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_streamed_body_arrives_intact() {
    const LEN: usize = 8 << 20;
    // Under the cap: buffered once, shared by all.
    let fx = start(layer().max_body_bytes(16 << 20), 4, |n, _| {
        Ok(Response::new(pattern(n, LEN)))
    })
    .await;
    let requests = (0..4)
        .map(|_| get(fx.addr, "/dump").body(empty()).unwrap())
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 1);
    assert_eq!(roles(&got), [1, 3, 0, 0]);
    for g in &got {
        assert_pattern(&g.body, 0, LEN);
    }

    // Over the default cap (1 MiB), alone: streamed through untouched.
    let fx = start(layer(), 1, |n, _| Ok(Response::new(pattern(n, LEN)))).await;
    let got = all_at_once(vec![get(fx.addr, "/dump").body(empty()).unwrap()]).await;
    assert_eq!(fx.calls(), 1);
    assert_eq!(got[0].role(), "leader");
    assert_pattern(&got[0].body, 0, LEN);
}

/// What [`first_client_disconnects`] saw.
struct Disconnect {
    /// Calls of the upstream.
    calls: usize,
    /// Calls that ran to their end.
    finished: usize,
    /// Response futures dropped unfinished.
    dropped: usize,
    /// What each of the other clients got.
    got: Vec<Got>,
    /// Keys in flight at the end.
    in_flight: usize,
}

const FOLLOWERS: usize = 3;

/// A first client (raw TCP, so that it can vanish mid-request) starts a flight, `FOLLOWERS`
/// clients join it, the first client disconnects, and only then does the upstream's first call
/// answer with `respond(0)`. Later calls answer `respond(n)` at once.
async fn first_client_disconnects(
    respond: fn(usize) -> Result<Response<UpBody>, SharedError>,
) -> Disconnect {
    let slot = watch::channel(None::<Events>).0;
    let calls = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let up = {
        let (events, calls, finished) = (slot.subscribe(), calls.clone(), finished.clone());
        tower::service_fn(move |_request: Request<Incoming>| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            let events = events.borrow().clone().expect("the server is up");
            let finished = finished.clone();
            async move {
                if call == 0 {
                    // Everyone has joined, and the first client has gone.
                    events.arrivals(1 + FOLLOWERS).await;
                    events.drops(1).await;
                }
                finished.fetch_add(1, Ordering::SeqCst);
                respond(call)
            }
        })
    };
    let (addr, events, coalesce) = serve(layer(), up).await;
    slot.send_replace(Some(events.clone()));

    let mut first = TcpStream::connect(addr).await.unwrap();
    first
        .write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    events.arrivals(1).await;
    assert_eq!(coalesce.in_flight(), 1);

    let client = client();
    let mut followers = JoinSet::new();
    for _ in 0..FOLLOWERS {
        let (client, request) = (
            client.clone(),
            Request::get(format!("http://{addr}/slow"))
                .header("host", "test")
                .body(empty())
                .unwrap(),
        );
        followers.spawn(async move { send(&client, request).await });
    }
    events.arrivals(1 + FOLLOWERS).await;
    // The first client disconnects; hyper drops its response future.
    drop(first);
    let got = followers.join_all().await;
    let dropped = *events.dropped.borrow();
    Disconnect {
        calls: calls.load(Ordering::SeqCst),
        finished: finished.load(Ordering::SeqCst),
        dropped,
        got,
        in_flight: coalesce.in_flight(),
    }
}

/// Semantics 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_client_disconnecting_does_not_stop_the_others() {
    let seen = first_client_disconnects(|_| ok("still here")).await;
    assert_eq!(seen.dropped, 1, "the first request was dropped");
    assert_eq!(seen.calls, 1, "the inner service ran once");
    assert_eq!(seen.finished, 1, "and ran to its end");
    assert_eq!(seen.got.len(), FOLLOWERS);
    for g in &seen.got {
        assert_eq!(g.status, StatusCode::OK);
        assert_eq!(g.body, "still here");
        assert_eq!(g.role(), "follower");
    }
    assert_eq!(seen.in_flight, 0);
}

/// Semantics 2 and 3.
/// The response the first client left behind sets a cookie: it must not go to anyone else, so
/// each of the others sends its own request and gets its own cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unshareable_response_left_behind_goes_to_nobody_else() {
    let seen = first_client_disconnects(|n| {
        Ok(Response::builder()
            .header("set-cookie", format!("session={n}"))
            .body(text("welcome"))
            .unwrap())
    })
    .await;
    assert_eq!(seen.dropped, 1);
    assert_eq!(seen.calls, 1 + FOLLOWERS);
    assert_eq!(seen.finished, 1 + FOLLOWERS);
    let mut cookies: Vec<_> = seen
        .got
        .iter()
        .map(|g| {
            assert_eq!(g.status, StatusCode::OK);
            assert_eq!(g.role(), "fallback");
            g.headers["set-cookie"].to_str().unwrap().to_owned()
        })
        .collect();
    cookies.sort();
    let expected: Vec<_> = (1..=FOLLOWERS).map(|n| format!("session={n}")).collect();
    assert_eq!(cookies, expected, "nobody got the first client's cookie");
    assert_eq!(seen.in_flight, 0);
}

/// Semantics 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_and_range_requests_pass_through() {
    let fx = start(layer(), 3, |n, _| numbered(n)).await;
    let requests = [
        ("if-none-match", "\"v1\""),
        ("range", "bytes=0-3"),
        ("if-modified-since", "Wed, 02 Dec 2026 09:00:00 GMT"),
    ]
    .iter()
    .map(|(name, value)| {
        get(fx.addr, "/doc")
            .header(*name, *value)
            .body(empty())
            .unwrap()
    })
    .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 3);
    assert_eq!(roles(&got), [0, 0, 0, 3]);
}

/// Semantics 1 and 2, with a custom key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_key_and_a_vary_on_a_key_header() {
    // The key ignores the query string; `/live` is never coalesced.
    let keyed = layer().key_fn(|head: &http::request::Parts| {
        let path = head.uri.path();
        (path != "/live").then(|| path.to_owned())
    });
    let fx = start(keyed, 5, |n, _| {
        Ok(Response::builder()
            .header("vary", "Accept-Encoding")
            .body(Full::new(Bytes::from(format!("call {n}"))).boxed())
            .unwrap())
    })
    .await;
    let requests = ["/page?utm=a", "/page?utm=b", "/page", "/live", "/live"]
        .iter()
        .map(|path| get(fx.addr, path).body(empty()).unwrap())
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 3, "one flight for /page, two calls for /live");
    assert_eq!(roles(&got), [1, 2, 0, 2]);
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[1].body, got[2].body);
    assert_ne!(got[3].body, got[4].body);
}

/// Semantics 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inner_error_reaches_every_follower() {
    const N: usize = 10;
    let fx = start(layer(), N, |_, _| {
        Err(SharedError::new(std::io::Error::other(
            "upstream refused the connection",
        )))
    })
    .await;
    let requests = (0..N)
        .map(|_| get(fx.addr, "/flaky").body(empty()).unwrap())
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 1);
    for g in &got {
        assert_eq!(g.status, StatusCode::BAD_GATEWAY);
        assert_eq!(g.body, "upstream refused the connection");
    }
    assert_eq!(fx.in_flight(), 0);
}

/// Semantics 2: status, every header value, body and trailers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_copies_keep_status_headers_and_trailers() {
    let fx = start(layer(), 3, |_, _| {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "42".parse().unwrap());
        let body = Full::new(Bytes::from_static(b"not here"))
            .with_trailers(async move { Some(Ok(trailers)) })
            .boxed();
        Ok(Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header("x-upstream", "a")
            .header("x-upstream", "b")
            .body(body)
            .unwrap())
    })
    .await;
    let requests = (0..3)
        .map(|_| get(fx.addr, "/gone").body(empty()).unwrap())
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 1);
    for g in &got {
        assert_eq!(g.status, StatusCode::NOT_FOUND);
        let values: Vec<_> = g.headers.get_all("x-upstream").iter().collect();
        assert_eq!(values, ["a", "b"]);
        assert_eq!(g.body, "not here");
    }
}

/// Through axum: `axum::serve` re-applies the router's layers for each connection, so this
/// fails unless every service one layer builds shares its flights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fits_axum_router_layer_across_connections() {
    use axum::routing::get as route_get;

    const N: usize = 50;
    static RENDERS: AtomicUsize = AtomicUsize::new(0);
    let (arrived, _) = watch::channel(0usize);
    let arrived = Arc::new(arrived);
    let gate = arrived.clone();
    let app = axum::Router::new()
        .route(
            "/report",
            route_get(move || {
                let gate = gate.clone();
                async move {
                    let n = RENDERS.fetch_add(1, Ordering::SeqCst);
                    let mut rx = gate.subscribe();
                    let _ = tokio::time::timeout(GATE_LIMIT, rx.wait_for(|&seen| seen >= N)).await;
                    format!("report {n}")
                }
            }),
        )
        // Counts each request once the coalescing layer has taken it: directly around it, since
        // axum's own wrappers call the service they wrap only when first polled.
        .layer(
            ServiceBuilder::new()
                .layer(tower::layer::layer_fn(move |inner| Arrivals {
                    inner,
                    arrived: arrived.clone(),
                }))
                .layer(CoalesceLayer::new().role_header(ROLE)),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let requests = (0..N)
        .map(|_| get(addr, "/report").body(empty()).unwrap())
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(RENDERS.load(Ordering::SeqCst), 1);
    for g in &got {
        assert_eq!(g.status, StatusCode::OK);
        assert_eq!(g.body, "report 0");
    }
    assert_eq!(roles(&got), [1, N - 1, 0, 0]);
}

/// Counts requests after the inner service's `call` returned.
#[derive(Clone)]
struct Arrivals<S> {
    inner: S,
    arrived: Arc<watch::Sender<usize>>,
}

impl<S, R> Service<R> for Arrivals<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        let future = self.inner.call(request);
        self.arrived.send_modify(|n| *n += 1);
        future
    }
}
