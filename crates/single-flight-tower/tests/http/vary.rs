//! `Vary` handled like an HTTP cache (semantics 2): a response that varies on a request header
//! outside the key goes to the waiters whose values of it equal the leader's; the others regroup,
//! one flight per distinct value.

use super::*;

const LANGUAGES: [&str; 3] = ["de", "fr", "en"];

/// An upstream that answers in the request's language (`Vary: Accept-Language`). Its first call
/// waits until `first` requests have reached the layer; each later call (a regrouped flight)
/// waits until the layer counts `joined` requests joined, so that every regrouping request has
/// found its flight before that flight ends.
async fn localised(first: usize, joined: u64) -> (Fixture, CoalesceLayer) {
    let layer = layer();
    let counters = layer.clone();
    let slot = watch::channel(None::<Events>).0;
    let calls = Arc::new(AtomicUsize::new(0));
    let up = {
        let (events, calls) = (slot.subscribe(), calls.clone());
        tower::service_fn(move |request: Request<Incoming>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let events = events.borrow().clone().expect("the server is up");
            let counters = counters.clone();
            let language = request.headers().get("accept-language").cloned();
            let language = language.unwrap_or(http::HeaderValue::from_static("none"));
            async move {
                if n == 0 {
                    events.arrivals(first).await;
                } else {
                    until(|| counters.stats().joined >= joined).await;
                }
                let body = format!("{} (call {n})", language.to_str().unwrap());
                Ok::<_, SharedError>(
                    Response::builder()
                        .header("vary", "Accept-Language")
                        .header("content-language", language)
                        .body(Full::new(Bytes::from(body)).boxed())
                        .unwrap(),
                )
            }
        })
    };
    let (addr, events, coalesce) = serve(layer.clone(), up).await;
    slot.send_replace(Some(events.clone()));
    let fx = Fixture {
        addr,
        events,
        calls,
        in_flight: Box::new(move || coalesce.in_flight()),
    };
    (fx, layer)
}

fn in_language(addr: SocketAddr, language: &str, client: usize) -> Request<Full<Bytes>> {
    get(addr, "/welcome")
        .header("accept-language", language)
        .header("user-agent", format!("browser/{client}"))
        .body(empty())
        .unwrap()
}

/// 9 clients, 3 values of `Accept-Language`: 3 upstream calls (the first flight, and one
/// regrouped flight for each other value), not 9; each client gets its language.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_clients_in_three_languages_cost_three_calls() {
    const N: usize = 9;
    // The first flight is joined by 8; each regrouped flight by 2 (its starter aside).
    let (fx, layer) = localised(N, 8 + 2 + 2).await;
    let requests = (0..N)
        .map(|i| in_language(fx.addr, LANGUAGES[i % 3], i))
        .collect();
    let got = all_at_once(requests).await;

    assert_eq!(fx.calls(), 3);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.status, StatusCode::OK);
        let language = LANGUAGES[i % 3];
        assert_eq!(g.headers["content-language"], language);
        assert!(g.body.starts_with(language.as_bytes()), "{i}: {:?}", g.body);
    }
    // One leader per language; the others of each language got its response.
    assert_eq!(roles(&got), [3, 6, 0, 0]);
    for language in LANGUAGES {
        let mut bodies: Vec<_> = got
            .iter()
            .filter(|g| g.headers["content-language"] == language)
            .map(|g| g.body.clone())
            .collect();
        bodies.dedup();
        assert_eq!(bodies.len(), 1, "{language}: one response for all three");
    }
    let stats = layer.stats();
    assert_eq!((stats.started, stats.joined, stats.in_flight), (3, 12, 0));
    assert_eq!(fx.in_flight(), 0);
}

/// Waiters that share the leader's values get its response at once, without regrouping; a
/// waiter with no `Accept-Language` differs from one with any value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_values_share_and_a_missing_header_is_a_value_of_its_own() {
    // The first flight is joined by 3; the regrouped flight of the request without the header
    // has nobody to wait for.
    let (fx, _layer) = localised(4, 3).await;
    let leader = in_language(fx.addr, "de", 0);
    let leader = tokio::spawn(async move { send(&client(), leader).await });
    fx.events.arrivals(1).await;
    let mut requests: Vec<_> = (1..3).map(|i| in_language(fx.addr, "de", i)).collect();
    requests.push(get(fx.addr, "/welcome").body(empty()).unwrap());
    let got = all_at_once(requests).await;
    let leader = leader.await.unwrap();
    assert_eq!(leader.role(), "leader");
    assert_eq!(leader.body, "de (call 0)");
    for g in &got[..2] {
        assert_eq!((g.role(), &g.body[..]), ("follower", &b"de (call 0)"[..]));
    }
    // Not "de": it led a flight of its own.
    assert_eq!(got[2].role(), "leader");
    assert_eq!(got[2].body, "none (call 1)");
    assert_eq!(fx.calls(), 2);
}
