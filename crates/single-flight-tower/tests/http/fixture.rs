//! The server, the upstream and the client the tests share.

use super::*;

/// What the server saw: requests that reached the layer, futures dropped before they finished.
#[derive(Clone)]
pub(crate) struct Events {
    pub(crate) arrived: watch::Sender<usize>,
    pub(crate) dropped: watch::Sender<usize>,
}

impl Events {
    pub(crate) fn new() -> Self {
        Self {
            arrived: watch::channel(0).0,
            dropped: watch::channel(0).0,
        }
    }

    /// Waits until `n` requests have reached the layer (bounded by [`GATE_LIMIT`]).
    pub(crate) async fn arrivals(&self, n: usize) {
        let mut rx = self.arrived.subscribe();
        let _ = tokio::time::timeout(GATE_LIMIT, rx.wait_for(|&seen| seen >= n)).await;
    }

    /// Waits until `n` response futures have been dropped unfinished.
    pub(crate) async fn drops(&self, n: usize) {
        let mut rx = self.dropped.subscribe();
        let _ = tokio::time::timeout(GATE_LIMIT, rx.wait_for(|&seen| seen >= n)).await;
    }
}

/// The outermost service: counts a request once the layer has taken it (its flight joined or
/// started: that happens inside `call`), notes futures dropped unfinished, and turns the layer's
/// errors into `502` responses whose body is the message, so that clients can see them.
#[derive(Clone)]
pub(crate) struct Outer<S> {
    pub(crate) inner: S,
    pub(crate) events: Events,
}

pub(crate) struct DropGuard(Option<Events>);

impl DropGuard {
    pub(crate) fn disarm(&mut self) {
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
pub(crate) async fn serve<U>(layer: CoalesceLayer, upstream: U) -> (SocketAddr, Events, Coalesce<U>)
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
pub(crate) fn upstream<F>(
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
pub(crate) struct Fixture {
    pub(crate) addr: SocketAddr,
    pub(crate) events: Events,
    pub(crate) calls: Arc<AtomicUsize>,
    pub(crate) in_flight: Box<dyn Fn() -> usize + Send + Sync>,
}

/// Starts a server whose upstream waits for `gate` arrivals and answers with `respond`.
pub(crate) async fn start<F>(layer: CoalesceLayer, gate: usize, respond: F) -> Fixture
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
        events,
        calls,
        in_flight: Box::new(move || coalesce.in_flight()),
    }
}

impl Fixture {
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub(crate) fn in_flight(&self) -> usize {
        (self.in_flight)()
    }
}

pub(crate) fn text(body: &'static str) -> UpBody {
    Full::new(Bytes::from_static(body.as_bytes())).boxed()
}

pub(crate) fn ok(body: impl Into<Bytes>) -> Result<Response<UpBody>, SharedError> {
    Ok(Response::new(Full::new(body.into()).boxed()))
}

/// What a client got.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Got {
    pub(crate) fn role(&self) -> &str {
        self.headers
            .get(&ROLE)
            .map_or("none", |v| v.to_str().unwrap())
    }
}

pub(crate) type HttpClient =
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub(crate) fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub(crate) async fn send(client: &HttpClient, request: Request<Full<Bytes>>) -> Got {
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

pub(crate) fn get(addr: SocketAddr, path: &str) -> http::request::Builder {
    Request::get(format!("http://{addr}{path}"))
}

pub(crate) fn empty() -> Full<Bytes> {
    Full::new(Bytes::new())
}

/// Sends every request at once, each from its own task; returns what each got, in order.
pub(crate) async fn all_at_once(requests: Vec<Request<Full<Bytes>>>) -> Vec<Got> {
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

pub(crate) fn roles(got: &[Got]) -> [usize; 4] {
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

pub(crate) fn layer() -> CoalesceLayer {
    CoalesceLayer::new().role_header(ROLE)
}

/// The body of the `n`th call, so that a body from another call is caught.
pub(crate) fn numbered(n: usize) -> Result<Response<UpBody>, SharedError> {
    ok(format!("answer of call {n}"))
}

/// Waits until `condition` holds (bounded by [`GATE_LIMIT`]), for the states no event tells,
/// such as the layer's counters. It checks again every millisecond: what a test decides
/// rests on the condition, never on how long the wait took.
pub(crate) async fn until(condition: impl Fn() -> bool) {
    let wait = async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let _ = tokio::time::timeout(GATE_LIMIT, wait).await;
}
