//! A client that disconnects mid-flight.

use super::*;

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
