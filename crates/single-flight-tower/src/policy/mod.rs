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
//!   buffering, in `reply.rs`.) A response with `Vary` on request headers goes only to the
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
mod tests;
