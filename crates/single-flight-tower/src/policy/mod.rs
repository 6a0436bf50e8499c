//! What may be shared, and under which key: the layer's decisions, with no I/O.
//!
//! Two questions are answered here, each by a function that returns its decision:
//!
//! * [`Policy::admit`]: may this request join others? A request passes through (is sent to the
//!   inner service as it is, alone) unless its method is configured, it carries no body, and it
//!   carries no header that makes its response its own (credentials, conditions, a range, an
//!   upgrade) unless the key includes that header, nor a method override to a method that is
//!   not coalesced. An admitted request gets its key ([`key`] writes it).
//! * [`Policy::verdict`]: may this response go to the requests that waited for it? Not if it
//!   belongs to one client (`Set-Cookie`, `Cache-Control: private` or `no-store`), varies on
//!   everything (`Vary: *`), switches protocols, is an open-ended event stream, or declares a
//!   body over the cap. (A body over the cap that declares no length is found out while
//!   buffering, in `outcome.rs`.) A response with `Vary` on request headers goes only to the
//!   waiters whose values of them equal the leader's ([`Varied`]); the others regroup under
//!   [`key::regroup_key`].
//!
//! The rules rest on one invariant: **two requests share a response only if their keys are
//! equal (and their values of the headers the response varies on), and the key holds
//! everything the response may depend on that the layer can see and that is the same for the
//! ordinary requests behind one proxy**: the method, the target (scheme, authority, `Host`,
//! path and query), the target headers a proxy or framework rewrites the target with
//! (`X-Forwarded-Host`, `Forwarded` but its `for`, ...) and the configured key headers.
//! Whatever else a response depends on (a per-client header such as `X-Forwarded-For`, the
//! client address) must be put in the key by a custom key function, or the route kept out of
//! the layer.

mod key;
mod vary;

pub(crate) use vary::{union, HeaderCopy, Varied};

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{request, Method, StatusCode};

/// A custom key function, type-erased so that the layer stays one type.
pub(crate) type KeyFn = Arc<dyn Fn(&request::Parts) -> Option<Bytes> + Send + Sync>;

/// The buffering cap for shared responses when none is configured: 1 MiB.
pub(crate) const DEFAULT_MAX_BODY: usize = 1 << 20;

/// Request headers that carry a client's credentials: by default, a request that carries one
/// of them passes through unless the key includes it.
pub(crate) const DEFAULT_CREDENTIALS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

/// Request headers that change the target or the method an upstream sees, set by proxies and
/// read by frameworks to build absolute links and redirects, yet the same for every ordinary
/// request behind one proxy: part of the default key, so that a client that sets them itself
/// (the "unkeyed input" of web cache poisoning) gets a flight of its own. `Forwarded` is keyed
/// without its `for` parameters.
pub(crate) const DEFAULT_TARGET_HEADERS: [HeaderName; 13] = [
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-scheme"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-server"),
    HeaderName::from_static("x-host"),
    header::FORWARDED,
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// Request headers that ask the upstream to treat the request as another method. A request
/// that names a method which is not coalesced passes through: a `GET` that the upstream runs
/// as a `DELETE` must not be answered once for everyone. Not configurable.
pub(crate) const METHOD_OVERRIDES: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// Request headers that always make a response this request's own (a conditional request may get
/// `304 Not Modified`, a range request `206 Partial Content`, an upgrade `101`), unless the key
/// includes them. Not configurable: sharing them across requests that differ in them is never
/// right.
pub(crate) const PER_REQUEST: [HeaderName; 7] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
    header::UPGRADE,
];

/// The layer's configuration and the decisions made from it.
#[derive(Clone)]
pub(crate) struct Policy {
    /// Methods whose requests may be coalesced (`GET`, `HEAD` by default).
    pub(crate) methods: Vec<Method>,
    /// Request headers that rewrite the target, part of the default key
    /// ([`DEFAULT_TARGET_HEADERS`] by default).
    pub(crate) target_headers: Vec<HeaderName>,
    /// Request headers that are part of the key (`Accept`, `Accept-Encoding` by default).
    pub(crate) key_headers: Vec<HeaderName>,
    /// Request headers that carry credentials.
    pub(crate) credential_headers: Vec<HeaderName>,
    /// The largest response body that is buffered and shared, in bytes.
    pub(crate) max_body: usize,
    /// The response header that tells the role, if any.
    pub(crate) role_header: Option<HeaderName>,
    /// Replaces the target and key headers in the key, if set.
    pub(crate) key_fn: Option<KeyFn>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            methods: vec![Method::GET, Method::HEAD],
            target_headers: DEFAULT_TARGET_HEADERS.to_vec(),
            key_headers: vec![header::ACCEPT, header::ACCEPT_ENCODING],
            credential_headers: DEFAULT_CREDENTIALS.to_vec(),
            max_body: DEFAULT_MAX_BODY,
            role_header: None,
            key_fn: None,
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("methods", &self.methods)
            .field("target_headers", &self.target_headers)
            .field("key_headers", &self.key_headers)
            .field("credential_headers", &self.credential_headers)
            .field("max_body", &self.max_body)
            .field("role_header", &self.role_header)
            .field("key_fn", &self.key_fn.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

/// The decision on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Coalesce it with every other request of this key.
    Share(Bytes),
    /// Send it to the inner service alone.
    Pass(Pass),
}

/// Why a request passes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pass {
    /// It carries this header (credentials, a condition, a range, an upgrade) and the key does
    /// not include it.
    Header(HeaderName),
    /// It asks for another method (`X-HTTP-Method-Override` and the like) that is not
    /// coalesced.
    MethodOverride,
    /// The custom key function returned `None`.
    NoKey,
}

/// The decision on a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Buffer it (up to the cap) and hand it to the waiters whose values of these request
    /// headers (its `Vary`, none for most responses) equal the leader's.
    Share(Vec<HeaderName>),
    /// It goes to the request that produced it alone; the other waiters send their own request.
    Keep(Unshareable),
}

/// Why a response is not shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unshareable {
    /// It sets a cookie.
    SetCookie,
    /// `Cache-Control: private` (with or without a field list).
    Private,
    /// `Cache-Control: no-store`.
    NoStore,
    /// `Vary: *` (or a `Vary` element that is not a header name): it depends on more than
    /// the request's head.
    Vary,
    /// `101 Switching Protocols`: the connection itself belongs to the request.
    SwitchingProtocols,
    /// `Content-Type: text/event-stream`: an open-ended stream, never buffered.
    EventStream,
    /// Its `Content-Length` (or its body, while buffering) is over the cap.
    TooLarge,
}

impl Policy {
    /// Whether requests with this method may be coalesced: the one check every request pays.
    #[inline]
    pub(crate) fn coalesces(&self, method: &Method) -> bool {
        self.methods.contains(method)
    }

    /// Decides whether a request that has a configured method and no body may share a flight,
    /// and under which key.
    pub(crate) fn admit(&self, parts: &request::Parts) -> Admission {
        // A header that makes the response this request's own, unless the key includes it. With
        // a custom key function the layer cannot see what the key includes: only the key
        // headers count (clear `credential_headers` when the function separates users).
        let own = self.credential_headers.iter().chain(PER_REQUEST.iter());
        for name in own {
            if parts.headers.contains_key(name) && !self.key_headers.contains(name) {
                return Admission::Pass(Pass::Header(name.clone()));
            }
        }
        for name in &METHOD_OVERRIDES {
            for value in parts.headers.get_all(name) {
                let coalesced = self.methods.iter().any(|method| {
                    method
                        .as_str()
                        .as_bytes()
                        .eq_ignore_ascii_case(trim(value.as_bytes()))
                });
                if !coalesced {
                    return Admission::Pass(Pass::MethodOverride);
                }
            }
        }
        match &self.key_fn {
            None => Admission::Share(key::default_key(
                parts,
                &self.target_headers,
                &self.key_headers,
            )),
            Some(key_fn) => match key_fn(parts) {
                Some(custom) => Admission::Share(key::custom_key(&parts.method, &custom)),
                None => Admission::Pass(Pass::NoKey),
            },
        }
    }

    /// The key of the flight a waiter regroups into when the response it waited for varies on
    /// `varied` and its values differ from the leader's: its own key, extended by its values of
    /// `varied`. Waiters with equal values get equal keys. `None` if the request would not be
    /// admitted now (a custom key function that changed its mind).
    pub(crate) fn regroup_key(
        &self,
        parts: &request::Parts,
        varied: &[HeaderName],
    ) -> Option<Bytes> {
        match self.admit(parts) {
            Admission::Share(base) => Some(key::regroup_key(&base, varied, &parts.headers)),
            Admission::Pass(_) => None,
        }
    }

    /// Decides whether a response may go to the waiters of its flight, from its head alone.
    pub(crate) fn verdict(&self, status: StatusCode, headers: &HeaderMap) -> Verdict {
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Verdict::Keep(Unshareable::SwitchingProtocols);
        }
        if headers.contains_key(header::SET_COOKIE) {
            return Verdict::Keep(Unshareable::SetCookie);
        }
        for value in headers.get_all(header::CACHE_CONTROL) {
            for directive in comma_list(value.as_bytes()) {
                let name = directive.split(|&b| b == b'=').next().unwrap_or(&[]);
                if name.eq_ignore_ascii_case(b"private") {
                    return Verdict::Keep(Unshareable::Private);
                }
                if name.eq_ignore_ascii_case(b"no-store") {
                    return Verdict::Keep(Unshareable::NoStore);
                }
            }
        }
        // Every varied header is compared, key headers too: with a custom key function the
        // key may not hold them, and comparing equal values costs next to nothing.
        let mut varied = Vec::new();
        for value in headers.get_all(header::VARY) {
            for field in comma_list(value.as_bytes()) {
                match HeaderName::from_bytes(field) {
                    Ok(name) if field != b"*" => varied.push(name),
                    _ => return Verdict::Keep(Unshareable::Vary),
                }
            }
        }
        if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
            let essence = content_type.as_bytes().split(|&b| b == b';').next();
            if essence.is_some_and(|e| trim(e).eq_ignore_ascii_case(b"text/event-stream")) {
                return Verdict::Keep(Unshareable::EventStream);
            }
        }
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_body as u64) {
            return Verdict::Keep(Unshareable::TooLarge);
        }
        Verdict::Share(varied)
    }
}

/// The non-empty, trimmed elements of an HTTP comma-separated list.
fn comma_list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|e| !e.is_empty())
}

fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
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
}
