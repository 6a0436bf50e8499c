//! What is shared and what is not: herds, credentials, cookies, private responses, methods.

use super::*;

/// Semantics 1 and 2: one inner call, every client the same response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herd_of_200_identical_gets_makes_one_inner_call() {
    const N: usize = 200;
    let layer = layer();
    let fx = start(layer.clone(), N, |n, _| numbered(n)).await;
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
    // The layer's counters: one flight, every other request joined it.
    let stats = layer.stats();
    assert_eq!(
        (stats.started, stats.joined, stats.in_flight),
        (1, N as u64 - 1, 0)
    );
}

/// An upstream call older than the layer's age limit captures no new request: with a limit
/// of zero, every request calls the inner service itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flight_past_the_age_limit_captures_no_request() {
    const N: usize = 5;
    let layer = layer().max_flight_age(Duration::ZERO);
    let fx = start(layer.clone(), N, |n, _| numbered(n)).await;
    let requests = (0..N)
        .map(|_| get(fx.addr, "/report?day=2").body(empty()).unwrap())
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), N);
    assert!(got.iter().all(|g| g.status == StatusCode::OK));
    let stats = layer.stats();
    assert_eq!((stats.started, stats.joined), (N as u64, 0));
    assert_eq!(stats.expired, N as u64 - 1);
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
async fn private_no_store_and_vary_star_are_not_shared() {
    for (name, value) in [
        ("cache-control", "private, max-age=60"),
        ("cache-control", "no-store"),
        ("vary", "*"),
        ("vary", "Accept-Language, *"),
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
