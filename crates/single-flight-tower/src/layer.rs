//! `CoalesceLayer`: the layer, and the builder of its configuration.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{request, HeaderName, Method};
use single_flight::KeyedGroup;
use tower_layer::Layer;

use crate::reply::Reply;

use crate::policy::Policy;
use crate::service::Coalesce;

/// A [`Layer`] that wraps a service in [`Coalesce`]: identical in-flight requests share one call
/// of the inner service.
///
/// The layer is its own builder: each method returns the layer with one setting changed. The
/// defaults are the safe ones:
///
/// | setting                                      | default                                      |
/// |----------------------------------------------|----------------------------------------------|
/// | [`methods`](Self::methods)                   | `GET`, `HEAD`                                |
/// | [`target_headers`](Self::target_headers)     | `X-Forwarded-` `Host`, `Proto`, `Scheme`, `Prefix`, `Port`, `Server`; `X-Host`; `Forwarded` without `for`; `X-Original-URL`, `X-Rewrite-URL`; `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` |
/// | [`key_headers`](Self::key_headers)           | `Accept`, `Accept-Encoding`                  |
/// | [`credential_headers`](Self::credential_headers) | `Authorization`, `Proxy-Authorization`, `Cookie` |
/// | [`max_body_bytes`](Self::max_body_bytes)     | 1 MiB                                        |
/// | [`role_header`](Self::role_header)           | none                                         |
/// | [`key_fn`](Self::key_fn)                     | none: method + target + key headers          |
///
/// # One layer, one set of flights
///
/// Every service built by one layer value and its clones shares one set of flights. Frameworks
/// rely on that without saying so: axum applies a router's layers to its handlers again for
/// each connection under `axum::serve` (and for each request when a `Router<()>` is called as
/// a service), and a herd arrives over many connections. A layer that builds the services of
/// two different upstreams behind the same paths (or of routers nested under different
/// prefixes, which see the path without its prefix) would let their requests share responses:
/// give each its own `CoalesceLayer::new()`. Every configuring method returns a layer with
/// flights of its own, so a configured layer never shares flights with the one it came from.
///
/// # Examples
///
/// With axum, in front of a router:
///
/// ```
/// use axum::{routing::get, Router};
/// use single_flight_tower::CoalesceLayer;
///
/// let app: Router = Router::new()
///     .route("/prices", get(|| async { "a slow page" }))
///     .layer(CoalesceLayer::new().key_headers([http::header::ACCEPT_LANGUAGE]));
/// # let _ = app;
/// ```
///
/// With `tower::ServiceBuilder`, in front of any `Service<http::Request<B>>`:
///
/// ```
/// use std::time::Duration;
/// use single_flight_tower::CoalesceLayer;
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let service = ServiceBuilder::new()
///     .layer(CoalesceLayer::new().role_header(http::HeaderName::from_static("x-coalesced")))
///     .service(service_fn(|_req: http::Request<String>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hi")))
///     }));
/// let response = service.oneshot(http::Request::new(String::new())).await.unwrap();
/// assert_eq!(response.headers()["x-coalesced"], "leader");
/// # }
/// ```
#[derive(Clone, Default)]
pub struct CoalesceLayer {
    policy: Arc<Policy>,
    group: Arc<KeyedGroup<Bytes, Reply>>,
    max_flight_age: Option<std::time::Duration>,
}

impl CoalesceLayer {
    /// A layer with the default configuration (see the table above).
    ///
    /// # Examples
    ///
    /// See [`CoalesceLayer`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The policy, to change: the layer then gets flights of its own.
    fn policy(&mut self) -> &mut Policy {
        self.renew_group();
        Arc::make_mut(&mut self.policy)
    }

    /// Gives the layer flights of its own, under its age limit.
    fn renew_group(&mut self) {
        let group = KeyedGroup::new();
        self.group = Arc::new(match self.max_flight_age {
            Some(age) => group.max_flight_age(age),
            None => group,
        });
    }

    /// Limits how long one upstream call captures new requests: a request that finds the flight
    /// of its key running for `age` or longer does not wait for it but calls the inner service
    /// itself (and later requests join that new call), while the old flight's waiters keep it.
    /// One hung upstream call then holds only the requests of its first `age`. No limit by
    /// default. Counted in [`stats`](Self::stats) as `expired`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight_tower::CoalesceLayer;
    ///
    /// let layer = CoalesceLayer::new().max_flight_age(Duration::from_secs(5));
    /// # let _ = layer;
    /// ```
    pub fn max_flight_age(mut self, age: std::time::Duration) -> Self {
        self.max_flight_age = Some(age);
        self.renew_group();
        self
    }

    /// A snapshot of the counters of this layer's flights (shared by every service it made);
    /// see [`Coalesce::stats`].
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight_tower::CoalesceLayer;
    ///
    /// let layer = CoalesceLayer::new();
    /// assert_eq!(layer.stats().in_flight, 0);
    /// ```
    pub fn stats(&self) -> single_flight::GroupStats {
        self.group.stats()
    }

    /// The methods whose requests may be coalesced (replacing `GET` and `HEAD`).
    ///
    /// Requests with any other method pass through: the method check is all they cost. Only add
    /// a method whose requests the inner service treats as safe to answer once for everyone
    /// (a `POST` that only reads, like a search or a GraphQL query, is coalesced only if its
    /// body is empty: requests with a body always pass through).
    ///
    /// # Examples
    ///
    /// ```
    /// use http::Method;
    /// use single_flight_tower::CoalesceLayer;
    ///
    /// let get_only = CoalesceLayer::new().methods([Method::GET]);
    /// # let _ = get_only;
    /// ```
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.policy().methods = methods.into_iter().collect();
        self
    }

    /// The request headers that rewrite the target, part of the default key (replacing the
    /// list in the table above): headers that proxies set and frameworks read to build
    /// absolute links, redirects and routes (the host, scheme, port, path prefix, original
    /// URL or method the client asked for), the same for every ordinary request behind one
    /// proxy. A client that sets one of them itself gets a flight of its own, so that whatever
    /// the upstream builds from it reaches that client alone (see *What the key cannot see* in
    /// the crate docs).
    ///
    /// `Forwarded` (RFC 7239) is keyed without its `for` parameters, which name the client and
    /// differ for every request behind one proxy: its `host`, `proto`, `by` and other
    /// parameters, element by element. To key it whole, list it in
    /// [`key_headers`](Self::key_headers) instead. A header in this list and its values count
    /// exactly as a key header's do; the two lists are apart so that setting the
    /// representation headers (`Accept-Language`, say) cannot drop these by mistake.
    ///
    /// Remove a header only if neither the inner service nor anything between it and the
    /// layer reads it; add any other header your stack rewrites the target from. The default
    /// key always holds the URI's authority and `Host`; a [custom key](Self::key_fn) replaces
    /// all of it.
    ///
    /// # Examples
    ///
    /// Behind a proxy that sets `X-Forwarded-Host` and `X-Forwarded-Proto` (and a service that
    /// reads nothing else), with one more header of that proxy:
    ///
    /// ```
    /// use http::HeaderName;
    /// use single_flight_tower::CoalesceLayer;
    ///
    /// let layer = CoalesceLayer::new().target_headers([
    ///     HeaderName::from_static("x-forwarded-host"),
    ///     HeaderName::from_static("x-forwarded-proto"),
    ///     HeaderName::from_static("x-envoy-original-path"),
    /// ]);
    /// # let _ = layer;
    /// ```
    pub fn target_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.policy().target_headers = headers.into_iter().collect();
        self
    }

    /// The request headers that are part of the key (replacing `Accept` and
    /// `Accept-Encoding`): requests share a response only if these headers are equal (same
    /// values, same order; a missing header differs from an empty one).
    ///
    /// List the headers the inner service selects a representation by. A response whose
    /// `Vary` names a header that is not in this list is still shared, the way an HTTP cache
    /// does it: with the requests whose values of that header equal those of the request that
    /// produced it; the others regroup by their values. Listing a credential header
    /// (`Authorization`, `Cookie`) lets requests with equal credentials share: the key then
    /// separates users.
    ///
    /// # Examples
    ///
    /// ```
    /// use http::header::{ACCEPT, ACCEPT_ENCODING, ACCEPT_LANGUAGE};
    /// use single_flight_tower::CoalesceLayer;
    ///
    /// let layer = CoalesceLayer::new().key_headers([ACCEPT, ACCEPT_ENCODING, ACCEPT_LANGUAGE]);
    /// # let _ = layer;
    /// ```
    pub fn key_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.policy().key_headers = headers.into_iter().collect();
        self
    }

    /// The request headers that carry a client's credentials (replacing `Authorization`,
    /// `Proxy-Authorization` and `Cookie`): a request that carries one of them passes through
    /// unless the key includes it.
    ///
    /// Pass an empty list only when the inner service's responses never depend on who asks,
    /// or when a [custom key](Self::key_fn) separates users.
    ///
    /// # Examples
    ///
    /// ```
    /// use http::header::{AUTHORIZATION, COOKIE};
    /// use http::HeaderName;
    /// use single_flight_tower::CoalesceLayer;
    ///
    /// let layer = CoalesceLayer::new().credential_headers([
    ///     AUTHORIZATION,
    ///     COOKIE,
    ///     HeaderName::from_static("x-api-key"),
    /// ]);
    /// # let _ = layer;
    /// ```
    pub fn credential_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.policy().credential_headers = headers.into_iter().collect();
        self
    }

    /// The largest response body that is buffered and shared, in bytes (1 MiB by default).
    ///
    /// A response that declares a longer `Content-Length` is not buffered at all; one whose
    /// body turns out longer while it is read goes, whole, to the request that produced it, and
    /// the requests that waited send their own. Each shared response is held once, however many
    /// requests get it, until the last of them has been written out.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight_tower::CoalesceLayer;
    ///
    /// let layer = CoalesceLayer::new().max_body_bytes(256 * 1024);
    /// # let _ = layer;
    /// ```
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.policy().max_body = bytes;
        self
    }

    /// Adds a response header that tells the part each request played (off by default):
    ///
    /// * `leader`: its call of the inner service produced the response;
    /// * `follower`: it got a copy of the response another request's call produced;
    /// * `fallback`: it waited for a response that could not be shared, then sent its own;
    /// * `bypass`: it was not coalesced (method, body, credentials, a method override to a
    ///   method that is not coalesced, declined by the key function).
    ///
    /// A request that regrouped after a response with `Vary` is marked by its part in the flight
    /// it regrouped into: `leader` or `follower`.
    ///
    /// # Examples
    ///
    /// ```
    /// use http::HeaderName;
    /// use single_flight_tower::CoalesceLayer;
    ///
    /// let layer = CoalesceLayer::new().role_header(HeaderName::from_static("x-coalesced"));
    /// # let _ = layer;
    /// ```
    pub fn role_header(mut self, name: HeaderName) -> Self {
        self.policy().role_header = Some(name);
        self
    }

    /// Replaces the key's target and key headers with the bytes `key_fn` returns for a
    /// request's head; `None` lets the request pass through.
    ///
    /// The method stays in the key (`GET` and `HEAD` never mix), and requests carrying a
    /// [credential header](Self::credential_headers) that is not among the
    /// [key headers](Self::key_headers) still pass through: the layer cannot see what the
    /// function's key includes. The function runs for every request that could be coalesced;
    /// it must be cheap and must not block.
    ///
    /// # Examples
    ///
    /// Share a response per path, whatever the query string (here it only holds tracking
    /// parameters the service ignores), and never for `/live`:
    ///
    /// ```
    /// use single_flight_tower::CoalesceLayer;
    ///
    /// let layer = CoalesceLayer::new().key_fn(|head: &http::request::Parts| {
    ///     let path = head.uri.path();
    ///     (path != "/live").then(|| path.to_owned())
    /// });
    /// # let _ = layer;
    /// ```
    pub fn key_fn<F, K>(mut self, key_fn: F) -> Self
    where
        F: Fn(&request::Parts) -> Option<K> + Send + Sync + 'static,
        K: Into<Bytes>,
    {
        self.policy().key_fn = Some(Arc::new(move |head: &request::Parts| {
            key_fn(head).map(Into::into)
        }));
        self
    }
}

impl fmt::Debug for CoalesceLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalesceLayer")
            .field("policy", &self.policy)
            .field("in_flight", &self.group.in_flight())
            .finish()
    }
}

impl<S> Layer<S> for CoalesceLayer {
    type Service = Coalesce<S>;

    fn layer(&self, inner: S) -> Coalesce<S> {
        Coalesce::with_parts(inner, self.policy.clone(), self.group.clone())
    }
}
