//! Unkeyed inputs (semantics 1, "What the key cannot see"): web cache poisoning moved into the
//! coalescing window. A client that leads a flight with a proxy header of its own choosing must
//! get its response alone; the ordinary requests behind one proxy still share theirs.

use super::*;

/// Ordinary clients that arrive while the attacker's flight runs.
const CLIENTS: usize = 50;

/// The headers a reverse proxy in front of the service sets on client `i`'s request: the same
/// target for everyone, and what differs per client.
fn behind_proxy(i: usize) -> Vec<(&'static str, String)> {
    vec![
        ("host", "shop.example".into()),
        ("x-forwarded-host", "shop.example".into()),
        ("x-forwarded-proto", "https".into()),
        ("x-forwarded-for", format!("198.51.100.{i}")),
        ("forwarded", format!("for=198.51.100.{i}")),
        ("user-agent", format!("browser/{i}")),
        ("referer", format!("https://shop.example/from/{i}")),
        ("x-request-id", format!("request-{i}")),
    ]
}

/// What an ordinary client must get: the link the upstream builds from the proxy's headers.
const ORDINARY: &str = "GET https://shop.example/catalog";

/// An upstream that builds an absolute link the way web frameworks do: host, scheme, prefix,
/// path and method from the proxy headers when present (the first of each list that is set).
fn absolute_link(n: usize, request: &Request<Incoming>) -> Result<Response<UpBody>, SharedError> {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    // A lenient reader of `Forwarded`: any element's parameter, any case, quotes removed.
    let forwarded = |param: &str| {
        let value = header("forwarded")?;
        value.split([',', ';']).find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case(param)
                .then(|| value.trim().trim_matches('"').to_owned())
        })
    };
    let host = forwarded("host")
        .or_else(|| header("x-forwarded-host"))
        .or_else(|| header("host"))
        .unwrap_or_default();
    let scheme = forwarded("proto")
        .or_else(|| header("x-forwarded-scheme"))
        .or_else(|| header("x-forwarded-proto"))
        .unwrap_or_else(|| "http".into());
    let prefix = header("x-forwarded-prefix").unwrap_or_default();
    let path = header("x-original-url")
        .or_else(|| header("x-rewrite-url"))
        .unwrap_or_else(|| request.uri().path().to_owned());
    let method = header("x-http-method-override").unwrap_or_else(|| request.method().to_string());
    Ok(Response::builder()
        .header("x-call", n)
        .body(
            Full::new(Bytes::from(format!(
                "{method} {scheme}://{host}{prefix}{path}"
            )))
            .boxed(),
        )
        .unwrap())
}

fn request(addr: SocketAddr, headers: &[(&'static str, String)]) -> Request<Full<Bytes>> {
    let mut builder = get(addr, "/catalog");
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    builder.body(empty()).unwrap()
}

/// What the attacker and the ordinary clients got.
struct Attack {
    attacker: Got,
    clients: Vec<Got>,
    calls: usize,
}

/// The attacker's request (the proxy's headers for client 0, with `attack` set or replacing one)
/// starts its flight first; then `CLIENTS` ordinary requests arrive, and only then does any
/// upstream call answer.
async fn play(layer: CoalesceLayer, attack: (&'static str, &'static str)) -> Attack {
    let fx = start(layer, 1 + CLIENTS, absolute_link).await;
    let mut headers = behind_proxy(0);
    headers.retain(|(name, _)| *name != attack.0);
    headers.push((attack.0, attack.1.to_owned()));
    let attacker = request(fx.addr, &headers);
    let attacker = tokio::spawn(async move { send(&client(), attacker).await });
    fx.events.arrivals(1).await;
    let requests = (1..=CLIENTS)
        .map(|i| request(fx.addr, &behind_proxy(i)))
        .collect();
    let clients = all_at_once(requests).await;
    let attacker = attacker.await.unwrap();
    assert_eq!(fx.in_flight(), 0);
    Attack {
        attacker,
        clients,
        calls: fx.calls(),
    }
}

/// The proxy headers an attacker could lead with, each read by the upstream above.
const ATTACKS: [(&str, &str); 9] = [
    ("x-forwarded-host", "evil.example"),
    ("forwarded", "for=203.0.113.9;host=evil.example"),
    ("forwarded", "For=203.0.113.9;HOST=\"evil.example\""),
    ("x-forwarded-proto", "http"),
    ("x-forwarded-scheme", "http"),
    ("x-forwarded-prefix", "//evil.example"),
    ("x-original-url", "/evil.example/catalog"),
    ("x-rewrite-url", "/evil.example/catalog"),
    ("x-http-method-override", "HEAD"),
];

/// Semantics 1: none of the 50 clients that arrive during an attacker's flight gets what the
/// upstream built from the attacker's header, and they still share one upstream call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attacker_leading_with_proxy_headers_poisons_nobody() {
    for attack in ATTACKS {
        let seen = play(layer(), attack).await;
        assert_ne!(
            seen.attacker.body, ORDINARY,
            "{attack:?}: the upstream read it"
        );
        assert_eq!(seen.attacker.role(), "leader", "{attack:?}");
        for got in &seen.clients {
            assert_eq!(got.status, StatusCode::OK, "{attack:?}");
            assert_eq!(
                got.body, ORDINARY,
                "{attack:?}: a client got the attacker's page"
            );
        }
        assert_eq!(
            seen.calls, 2,
            "{attack:?}: one call each for the attacker and the rest"
        );
        assert_eq!(roles(&seen.clients), [1, CLIENTS - 1, 0, 0], "{attack:?}");
    }
}

/// The attack above is real: with the target headers taken out of the key, every client that
/// arrives during the attacker's flight gets the attacker's page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_target_headers_in_the_key_the_attack_works() {
    let seen = play(layer().target_headers([]), ATTACKS[0]).await;
    assert_eq!(seen.calls, 1);
    assert_eq!(seen.attacker.body, "GET https://evil.example/catalog");
    for got in &seen.clients {
        assert_eq!(got.body, seen.attacker.body);
    }
}

/// Semantics 1: what differs per client behind one proxy (`X-Forwarded-For`, `Forwarded:
/// for=`, `User-Agent`, `Referer`, `X-Request-Id`) is not in the key, so those requests share;
/// whatever the upstream echoes of them is the leader's (the docs say so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_requests_behind_one_proxy_still_share() {
    let fx = start(layer(), CLIENTS, |n, request| {
        let id = request.headers()["x-request-id"].clone();
        Ok(Response::builder()
            .header("x-request-id", id)
            .body(Full::new(Bytes::from(format!("catalog {n}"))).boxed())
            .unwrap())
    })
    .await;
    let requests = (1..=CLIENTS)
        .map(|i| request(fx.addr, &behind_proxy(i)))
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 1);
    assert_eq!(roles(&got), [1, CLIENTS - 1, 0, 0]);
    let leader = got.iter().find(|g| g.role() == "leader").unwrap();
    for g in &got {
        assert_eq!(g.body, "catalog 0");
        assert_eq!(g.headers["x-request-id"], leader.headers["x-request-id"]);
    }
}

/// Semantics 1: a `GET` that asks the upstream to run another method (`DELETE` here) is that
/// method's request, and is not coalesced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_override_to_delete_passes_through() {
    let fx = start(layer(), 3, |n, _| numbered(n)).await;
    let requests = (0..3)
        .map(|_| {
            get(fx.addr, "/item/7")
                .header("x-http-method-override", "DELETE")
                .body(empty())
                .unwrap()
        })
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 3);
    assert_eq!(roles(&got), [0, 0, 0, 3]);
}
