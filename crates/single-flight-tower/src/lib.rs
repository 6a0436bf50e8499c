//! Coalesce identical in-flight HTTP requests: a tower [`Layer`](tower_layer::Layer) that sends
//! one request per key to the service behind it and hands the response to every request that
//! arrived while it ran.
//!
//! Herds arrive as HTTP requests: a page that just went viral, a cache entry that expired under
//! load, a thousand clients polling the same status URL. [`CoalesceLayer`] puts call sharing
//! (Go's `singleflight`, the [`single_flight`] crate) in front of any
//! `Service<http::Request<B>>`: an axum router, a hyper service, a reverse proxy's client. The
//! first request for a key calls the inner service; identical requests that arrive while it runs
//! wait for it; its response is buffered once and each of them gets status, headers and body.
//! Nothing is kept afterwards: the next request starts a new call.
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use axum::{routing::get, Router};
//! use single_flight_tower::CoalesceLayer;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! static RENDERS: AtomicUsize = AtomicUsize::new(0);
//!
//! async fn report() -> String {
//!     RENDERS.fetch_add(1, Ordering::SeqCst);
//!     tokio::time::sleep(std::time::Duration::from_millis(50)).await; // an expensive page
//!     "the report".to_owned()
//! }
//!
//! let app = Router::new()
//!     .route("/report", get(report))
//!     .layer(CoalesceLayer::new());
//!
//! // Three identical requests at once: the handler runs once, all three get the page.
//! let get = || {
//!     let request = http::Request::get("/report").body(axum::body::Body::empty()).unwrap();
//!     app.clone().oneshot(request)
//! };
//! let (a, b, c) = tokio::join!(get(), get(), get());
//! for response in [a, b, c] {
//!     assert_eq!(response.unwrap().status(), 200);
//! }
//! assert_eq!(RENDERS.load(Ordering::SeqCst), 1);
//! # }
//! ```
//!
//! # Semantics
//!
//! 1. **Safe by default.** Only `GET` and `HEAD` requests without a body are coalesced, unless
//!    [configured](CoalesceLayer::methods). **The key** is the method, the target (scheme, the
//!    URI's authority, `Host`, path and query), the [target
//!    headers](CoalesceLayer::target_headers) that proxies rewrite the target with
//!    (`X-Forwarded-Host`, `X-Forwarded-Proto`, `X-Forwarded-Scheme`, `X-Forwarded-Prefix`,
//!    `Forwarded` without its `for`, `X-Original-URL`, `X-Rewrite-URL`,
//!    `X-HTTP-Method-Override`, ...) and the [key headers](CoalesceLayer::key_headers) that
//!    select a representation (`Accept`, `Accept-Encoding` by default); two requests share a
//!    response only if their keys are equal. A request that carries credentials
//!    (`Authorization`, `Proxy-Authorization`, `Cookie`), a condition (`If-None-Match`,
//!    `If-Modified-Since`, `If-Match`, `If-Unmodified-Since`, `If-Range`), a `Range` or an
//!    `Upgrade` passes through, unless the key includes that header; so does one whose method
//!    override (`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`) names a method
//!    that is not coalesced.
//! 2. **One user's response never reaches another.** A response is not shared if it has
//!    `Set-Cookie`, `Cache-Control: private` or `no-store`, `Vary: *`, status `101 Switching
//!    Protocols`, `Content-Type: text/event-stream` (an open-ended stream is never buffered),
//!    or a body over the [cap](CoalesceLayer::max_body_bytes). It then goes, whole and
//!    streamed, to the request that produced it alone, and each request that waited for it
//!    sends its own request: never an error. A shared response is buffered once
//!    ([`Bytes`](bytes::Bytes)) and every request gets its status, headers (extensions too)
//!    and body. **`Vary` is handled like an HTTP cache handles it**: a response that varies on
//!    request headers goes to the requests whose values of them (bytes, order, presence) equal
//!    those of the request that produced it; the others regroup, one new flight per distinct
//!    set of values (9 requests in 3 languages behind `Vary: Accept-Language` cost 3 inner
//!    calls, not 9), and regroup again, a few times at most, if that response varies on more.
//! 3. **The first client may disconnect.** The inner call belongs to the flight, not to the
//!    request that started it: if that request's future is dropped, the call goes on for the
//!    others, and nobody gets a "leader cancelled" error. Only when every request of a flight
//!    has gone is the inner call's future dropped.
//! 4. **Errors are shared.** An error of the inner service reaches every request of the flight
//!    (a clone: the inner error type must be `Clone`; see [`SharedError`]). A response body that
//!    fails while it is buffered is not shared: its request gets the bytes read so far, then the
//!    error; the others send their own request.
//! 5. **Pass-through is cheap.** A request whose method is not configured costs one method
//!    check; one with a body, a check of its size hint too. It is sent to the inner service
//!    at once, its response returned as it is (its body wrapped in [`ResponseBody`], with no
//!    allocation).
//!
//! A panic of the inner call reaches every request of the flight (see [`ResponseFuture`]).
//!
//! # What the key cannot see
//!
//! A response is handed to every request whose key equals that of the request that produced
//! it. Whatever the response depends on outside the key is an *unkeyed input*, and a client
//! that controls one can have its own response served to others: this is **web cache
//! poisoning** moved into the coalescing window. An attacker that keeps leading flights with
//! `X-Forwarded-Host: evil.example`, in front of a service that builds absolute links or
//! redirects from that header, would have its page, with links to its host, handed to every
//! request that arrived meanwhile. That is why the default key holds the
//! [target headers](CoalesceLayer::target_headers): a client that sets one gets a flight of its
//! own and poisons nobody, while the ordinary requests behind one proxy, which all carry the
//! same values, still share. The real fix for forged proxy headers is at the edge (a proxy
//! that overwrites them); the key keeps a forged one from reaching anyone else.
//!
//! What differs per client behind one proxy stays out of the default key, or nothing would
//! ever be shared there: `X-Forwarded-For`, the `for` of `Forwarded`, `User-Agent`,
//! `Referer`, `X-Request-Id`, the client's address, and anything an outer middleware put in
//! the request's extensions. The inner service sees the leader's values of them, and whatever
//! it builds from them (an echoed request id, a page localised by client address, a page for
//! one browser) goes to every request of the flight. Those stay yours to handle:
//!
//! * put what the response depends on in the key ([`key_headers`](CoalesceLayer::key_headers),
//!   [`key_fn`](CoalesceLayer::key_fn)), or have the service say it with `Vary`, which the
//!   layer honours;
//! * set per-request headers *outside* the layer (a request-id middleware wrapped around it
//!   writes each response's own id after the layer has handed it out);
//! * keep the route out of the layer (axum: `Router::route_layer` on the routes that are the
//!   same for everyone).
//!
//! # Timeouts and hung upstreams
//!
//! A flight lasts as long as the inner call. To bound it, put a timeout *inside* the layer,
//! between it and the service: a hung call then fails its whole flight at once (every request
//! that waited gets the error), and the next request starts a new flight. A timeout *outside*
//! the layer bounds each client's wait instead: a client that gives up leaves, and the call goes
//! on for the others (semantics 3).
//!
//! ```
//! use std::time::Duration;
//! use single_flight_tower::{CoalesceLayer, SharedError};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let service = ServiceBuilder::new()
//!     .layer(CoalesceLayer::new())
//!     .map_err(SharedError::new) // tower's `Elapsed` arrives boxed: make it shareable
//!     .timeout(Duration::from_millis(20))
//!     .service(service_fn(|_req: http::Request<String>| async {
//!         tokio::time::sleep(Duration::from_secs(3600)).await; // a hung upstream
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//!     }));
//! let get = || service.clone().oneshot(http::Request::new(String::new()));
//! let (a, b) = tokio::join!(get(), get());
//! assert_eq!(a.unwrap_err().to_string(), "request timed out");
//! assert_eq!(b.unwrap_err().to_string(), "request timed out");
//! # }
//! ```
//!
//! # Costs
//!
//! A request that joins a flight builds its key (one allocation) and waits (the core's
//! `Receiver`: one allocation), then clones the shared header map (the body is not copied). A
//! flight adds its boxed work, the group's copy of the key, a copy of the leader's request
//! headers in one buffer until the response's head is read (for `Vary`), the boxed body while
//! it is buffered and the shared buffer (a body of one chunk is kept as it came, without a
//! copy). Requests that wait for a response that turns out unshareable pay one extra round
//! trip; so do those that regroup after a `Vary`, one round trip per group of equal values.
//! Measured through hyper on loopback (BENCHMARKS.md in the repository): under a herd, 21
//! upstream calls instead of 4,000 and half the CPU per request; a request that is coalescable
//! but finds nothing to share costs about 0.5 µs more than without the layer, one that passes
//! through tens of ns. Keying the [target headers](CoalesceLayer::target_headers) came after
//! those figures: looking for the 13 default names and copying the leader's headers add about
//! 4,000 instructions to a coalescable request with 9 headers (callgrind), a few hundred ns;
//! a shorter list costs less.
//!
//! # When to use this instead of a `KeyedGroup` in the handler, or an HTTP cache
//!
//! * **A [`KeyedGroup`](single_flight::KeyedGroup) in the handler** coalesces exactly the
//!   expensive part (a database query, an upstream fetch) under a key you choose, and shares a
//!   typed value that each request renders on its own (per-user headers and cookies stay
//!   correct). Prefer it when the handler is yours and the expensive part is one call. The
//!   layer is for what you cannot or do not want to change: a whole router, a reverse proxy,
//!   generated handlers, many routes at once.
//! * **An HTTP cache** (a CDN, Varnish, nginx's `proxy_cache`) keeps responses after they are
//!   made and serves them for their freshness lifetime; this layer keeps nothing. It closes the
//!   gap a cache leaves, the herd on a miss or an expiry (nginx's `proxy_cache_lock`), and it
//!   helps where nothing may be cached at all (`Cache-Control: no-cache`, `max-age=0`): it
//!   shares a response only among requests that were already waiting for it.
//!
//! # Features
//!
//! This crate has no optional features.

#![forbid(unsafe_code)]

mod body;
mod error;
mod future;
mod layer;
mod policy;
mod reply;
mod service;

pub use crate::body::ResponseBody;
pub use crate::error::SharedError;
pub use crate::future::ResponseFuture;
pub use crate::layer::CoalesceLayer;
pub use crate::service::Coalesce;

// The README's example is compiled and run as a doctest, so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
