//! The policy's decisions on requests and responses: admission, keys, method overrides,
//! verdicts.

use super::*;
use http::{HeaderValue, Request};

fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> request::Parts {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn key(policy: &Policy, p: &request::Parts) -> Bytes {
    match policy.admit(p) {
        Admission::Share(key) => key,
        Admission::Pass(why) => panic!("expected a key, passed through: {why:?}"),
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[test]
fn only_configured_methods_coalesce() {
    let policy = Policy::default();
    assert!(policy.coalesces(&Method::GET));
    assert!(policy.coalesces(&Method::HEAD));
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        assert!(!policy.coalesces(&method), "{method}");
    }
    let policy = Policy {
        methods: vec![Method::POST],
        ..Policy::default()
    };
    assert!(policy.coalesces(&Method::POST));
    assert!(!policy.coalesces(&Method::GET));
}

#[test]
fn key_separates_method_target_host_and_key_headers() {
    let policy = Policy::default();
    let get = key(&policy, &parts(Method::GET, "/a?x=1", &[("host", "h")]));
    assert_eq!(
        get,
        key(&policy, &parts(Method::GET, "/a?x=1", &[("host", "h")]))
    );
    let others = [
        parts(Method::HEAD, "/a?x=1", &[("host", "h")]),
        parts(Method::GET, "/a?x=2", &[("host", "h")]),
        parts(Method::GET, "/a", &[("host", "h")]),
        parts(Method::GET, "/a?x=1", &[("host", "other")]),
        parts(Method::GET, "/a?x=1", &[]),
        parts(
            Method::GET,
            "/a?x=1",
            &[("host", "h"), ("accept", "text/html")],
        ),
        parts(
            Method::GET,
            "/a?x=1",
            &[("host", "h"), ("accept-encoding", "gzip")],
        ),
        parts(Method::GET, "/a?x=1", &[("host", "h"), ("accept", "")]),
    ];
    for other in &others {
        assert_ne!(get, key(&policy, other), "{other:?}");
    }
    // Headers outside the key do not split it.
    let with_agent = parts(Method::GET, "/a?x=1", &[("host", "h"), ("user-agent", "x")]);
    assert_eq!(get, key(&policy, &with_agent));
}

#[test]
fn target_headers_split_the_key_and_per_client_headers_do_not() {
    let policy = Policy::default();
    let proxy = [
        ("host", "shop.example"),
        ("x-forwarded-host", "shop.example"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=192.0.2.1;host=shop.example;proto=https"),
    ];
    let ordinary = key(&policy, &parts(Method::GET, "/a", &proxy));
    // What differs per client behind one proxy stays out of the key.
    let mut client = proxy.to_vec();
    client[3] = ("forwarded", "for=192.0.2.2;host=shop.example;proto=https");
    client.extend([
        ("x-forwarded-for", "192.0.2.2"),
        ("user-agent", "curl/8"),
        ("referer", "https://shop.example/b"),
        ("x-request-id", "42"),
    ]);
    assert_eq!(ordinary, key(&policy, &parts(Method::GET, "/a", &client)));
    // Each target header set by a client splits it.
    for name in DEFAULT_TARGET_HEADERS {
        let mut attack = proxy.to_vec();
        let value = match name.as_str() {
            "forwarded" => "for=192.0.2.1;host=evil.example;proto=https",
            // A method override to a coalesced method is admitted, and keyed apart.
            "x-http-method-override" | "x-http-method" | "x-method-override" => "HEAD",
            _ => "evil.example",
        };
        attack.retain(|(n, _)| *n != name.as_str());
        attack.push((name.as_str(), value));
        assert_ne!(
            ordinary,
            key(&policy, &parts(Method::GET, "/a", &attack)),
            "{name}"
        );
    }
    // Configurable: without target headers, `X-Forwarded-Host` is unkeyed again.
    let bare = Policy {
        target_headers: Vec::new(),
        ..Policy::default()
    };
    let evil = [
        ("host", "shop.example"),
        ("x-forwarded-host", "evil.example"),
    ];
    assert_eq!(
        key(&bare, &parts(Method::GET, "/a", &proxy[..1])),
        key(&bare, &parts(Method::GET, "/a", &evil))
    );
}

#[test]
fn a_method_override_to_an_uncoalesced_method_passes_through() {
    let policy = Policy::default();
    for (name, value) in [
        ("x-http-method-override", "DELETE"),
        ("x-http-method", "put"),
        ("x-method-override", " POST "),
    ] {
        assert_eq!(
            policy.admit(&parts(Method::GET, "/", &[(name, value)])),
            Admission::Pass(Pass::MethodOverride),
            "{name}: {value}"
        );
    }
    key(
        &policy,
        &parts(Method::GET, "/", &[("x-http-method-override", "head")]),
    );
}

#[test]
fn a_regroup_key_extends_the_requests_own_key() {
    let policy = Policy::default();
    let lang = [HeaderName::from_static("accept-language")];
    let de = parts(Method::GET, "/a", &[("accept-language", "de")]);
    let fr = parts(Method::GET, "/a", &[("accept-language", "fr")]);
    let de_b = parts(Method::GET, "/b", &[("accept-language", "de")]);
    let keys = [&de, &fr, &de_b].map(|p| policy.regroup_key(p, &lang).unwrap());
    assert_eq!(keys[0], policy.regroup_key(&de, &lang).unwrap());
    assert_ne!(keys[0], keys[1]);
    assert_ne!(keys[0], keys[2]);
    assert_ne!(keys[0], key(&policy, &de));
    let cookie = parts(Method::GET, "/a", &[("cookie", "c")]);
    assert_eq!(policy.regroup_key(&cookie, &lang), None);
}

#[test]
fn key_encoding_is_unambiguous() {
    let policy = Policy::default();
    // One `Accept` value "a" and an `Accept-Encoding` "b" is not two `Accept` values.
    let split = parts(
        Method::GET,
        "/",
        &[("accept", "a"), ("accept-encoding", "b")],
    );
    let two = parts(Method::GET, "/", &[("accept", "a"), ("accept", "b")]);
    let empty = parts(Method::GET, "/", &[("accept", "")]);
    let missing = parts(Method::GET, "/", &[]);
    let keys = [&split, &two, &empty, &missing].map(|p| key(&policy, p));
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // An absolute-form target keeps its scheme and authority.
    let http = key(&policy, &parts(Method::GET, "http://h/a", &[]));
    let https = key(&policy, &parts(Method::GET, "https://h/a", &[]));
    assert_ne!(http, https);
}

#[test]
fn credentials_pass_through_unless_keyed() {
    let policy = Policy::default();
    for name in ["authorization", "cookie", "proxy-authorization"] {
        let p = parts(Method::GET, "/", &[(name, "secret")]);
        assert_eq!(
            policy.admit(&p),
            Admission::Pass(Pass::Header(HeaderName::from_static(name)))
        );
    }
    let keyed = Policy {
        key_headers: vec![header::AUTHORIZATION],
        ..Policy::default()
    };
    let alice = key(&keyed, &parts(Method::GET, "/", &[("authorization", "a")]));
    let bob = key(&keyed, &parts(Method::GET, "/", &[("authorization", "b")]));
    assert_ne!(alice, bob);
    // A cookie is still a credential that the key does not include.
    let p = parts(Method::GET, "/", &[("authorization", "a"), ("cookie", "c")]);
    assert!(matches!(keyed.admit(&p), Admission::Pass(_)));
    // No credential headers at all: everything shares.
    let trusting = Policy {
        credential_headers: Vec::new(),
        ..Policy::default()
    };
    key(&trusting, &parts(Method::GET, "/", &[("cookie", "c")]));
}

#[test]
fn conditional_range_and_upgrade_requests_pass_through() {
    let policy = Policy::default();
    for name in [
        "if-none-match",
        "if-modified-since",
        "if-match",
        "if-unmodified-since",
        "if-range",
        "range",
        "upgrade",
    ] {
        let p = parts(Method::GET, "/", &[(name, "x")]);
        assert!(matches!(policy.admit(&p), Admission::Pass(_)), "{name}");
    }
    let keyed = Policy {
        key_headers: vec![header::IF_NONE_MATCH],
        ..Policy::default()
    };
    key(
        &keyed,
        &parts(Method::GET, "/", &[("if-none-match", "\"v1\"")]),
    );
}

#[test]
fn custom_key_keeps_the_method_and_may_refuse() {
    let policy = Policy {
        key_fn: Some(Arc::new(|parts: &request::Parts| {
            (parts.uri.path() != "/private").then(|| Bytes::from(parts.uri.path().to_owned()))
        })),
        ..Policy::default()
    };
    let get = key(&policy, &parts(Method::GET, "/a?x=1", &[]));
    assert_eq!(get, key(&policy, &parts(Method::GET, "/a?x=2", &[])));
    assert_ne!(get, key(&policy, &parts(Method::HEAD, "/a", &[])));
    assert_eq!(
        policy.admit(&parts(Method::GET, "/private", &[])),
        Admission::Pass(Pass::NoKey)
    );
    // The credential rule still holds.
    let p = parts(Method::GET, "/a", &[("authorization", "x")]);
    assert!(matches!(policy.admit(&p), Admission::Pass(Pass::Header(_))));
}

#[test]
fn verdicts() {
    let policy = Policy {
        max_body: 10,
        ..Policy::default()
    };
    let ok = StatusCode::OK;
    let share = Verdict::Share(Vec::new());
    let vary = |names: &[&'static str]| {
        Verdict::Share(names.iter().map(|n| HeaderName::from_static(n)).collect())
    };
    let cases: &[(&[(&str, &str)], Verdict)] = &[
        (&[], share.clone()),
        (&[("content-length", "10")], share.clone()),
        (&[("cache-control", "public, max-age=60")], share.clone()),
        (&[("cache-control", "no-cache")], share.clone()),
        (&[("vary", "Accept-Encoding")], vary(&["accept-encoding"])),
        (
            &[("vary", "accept, accept-encoding"), ("vary", "Origin")],
            vary(&["accept", "accept-encoding", "origin"]),
        ),
        (
            &[("content-type", "text/html; charset=utf-8")],
            share.clone(),
        ),
        (
            &[("set-cookie", "id=1")],
            Verdict::Keep(Unshareable::SetCookie),
        ),
        (
            &[("cache-control", "max-age=0, Private")],
            Verdict::Keep(Unshareable::Private),
        ),
        (
            &[("cache-control", "private=\"set-cookie\"")],
            Verdict::Keep(Unshareable::Private),
        ),
        (
            &[("cache-control", "public"), ("cache-control", "no-store")],
            Verdict::Keep(Unshareable::NoStore),
        ),
        (&[("vary", "*")], Verdict::Keep(Unshareable::Vary)),
        (
            &[("vary", "accept-encoding, *")],
            Verdict::Keep(Unshareable::Vary),
        ),
        (
            &[("vary", "accept-encoding, a b")],
            Verdict::Keep(Unshareable::Vary),
        ),
        (
            &[("content-type", "Text/Event-Stream ; charset=utf-8")],
            Verdict::Keep(Unshareable::EventStream),
        ),
        (
            &[("content-length", "11")],
            Verdict::Keep(Unshareable::TooLarge),
        ),
    ];
    for (pairs, expected) in cases {
        assert_eq!(policy.verdict(ok, &headers(pairs)), *expected, "{pairs:?}");
    }
    assert_eq!(
        policy.verdict(StatusCode::SWITCHING_PROTOCOLS, &HeaderMap::new()),
        Verdict::Keep(Unshareable::SwitchingProtocols)
    );
    // Errors from upstream are shared like any other status.
    assert_eq!(
        policy.verdict(StatusCode::BAD_GATEWAY, &HeaderMap::new()),
        share
    );
}

#[test]
fn trims_list_elements() {
    assert_eq!(trim(b"  a b\t"), b"a b");
    assert_eq!(trim(b"   "), b"");
    let list: Vec<&[u8]> = comma_list(b" a, ,b ,").collect();
    assert_eq!(list, [&b"a"[..], b"b"]);
}
