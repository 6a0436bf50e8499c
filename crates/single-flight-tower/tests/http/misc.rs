//! Requests that pass through, custom keys, errors, trailers, and axum.

use super::*;

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
