//! `Coalesce`: the service the layer produces.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use single_flight::KeyedGroup;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::future::{Own, ResponseFuture};
use crate::policy::{Admission, HeaderCopy, Policy};
use crate::reply::{self, Reply};

/// Coalesces identical in-flight HTTP requests in front of an inner service: one inner call per
/// key at a time, its response buffered once and handed to every request that waited for it.
///
/// Built by [`CoalesceLayer`](crate::CoalesceLayer) (which also configures it) or [`Coalesce::new`] (the defaults).
/// Clones share their flights, as the per-connection clones that hyper and axum make must; so
/// do all the services one layer builds (see [`CoalesceLayer`](crate::CoalesceLayer), *One layer, one set of
/// flights*).
///
/// # Readiness
///
/// `poll_ready` is the inner service's. A request that starts a flight is sent to the inner
/// service this `Coalesce` made ready; a request that joins a flight leaves that readiness
/// unused (it is released when this clone is dropped, as hyper and axum do after each request)
/// and keeps a clone of the inner service in case it must send its own request, which then
/// waits for readiness again. So does a request that regroups after a response with `Vary`,
/// before it joins or starts the flight of its values (it may have to lead it).
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use single_flight_tower::Coalesce;
/// use tower::{service_fn, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let calls = Arc::new(AtomicUsize::new(0));
/// let counter = calls.clone();
/// let inner = service_fn(move |req: http::Request<String>| {
///     counter.fetch_add(1, Ordering::SeqCst);
///     async move {
///         tokio::task::yield_now().await; // the upstream takes its time
///         Ok::<_, Infallible>(http::Response::new(format!("page {}", req.uri().path())))
///     }
/// });
/// let service = Coalesce::new(inner);
///
/// let get = |path: &str| {
///     let request = http::Request::get(path).body(String::new()).unwrap();
///     service.clone().oneshot(request)
/// };
/// let (a, b) = tokio::join!(get("/home"), get("/home"));
/// assert_eq!(a.unwrap().status(), b.unwrap().status());
/// assert_eq!(calls.load(Ordering::SeqCst), 1); // one inner call for both
/// assert_eq!(service.in_flight(), 0);
/// # }
/// ```
pub struct Coalesce<S> {
    inner: S,
    policy: Arc<Policy>,
    group: Arc<KeyedGroup<Bytes, Reply>>,
}

impl<S> Coalesce<S> {
    /// Wraps `inner` with the default configuration (see [`CoalesceLayer`](crate::CoalesceLayer)).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight_tower::Coalesce;
    /// use tower::service_fn;
    ///
    /// let service = Coalesce::new(service_fn(|_req: http::Request<String>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// }));
    /// assert_eq!(service.in_flight(), 0);
    /// ```
    pub fn new(inner: S) -> Self {
        Self::with_parts(inner, Arc::default(), Arc::default())
    }

    pub(crate) fn with_parts(
        inner: S,
        policy: Arc<Policy>,
        group: Arc<KeyedGroup<Bytes, Reply>>,
    ) -> Self {
        Self {
            inner,
            policy,
            group,
        }
    }

    /// The number of keys with a request in flight: requests arriving for them now would wait
    /// for it instead of calling the inner service.
    ///
    /// # Examples
    ///
    /// See [`Coalesce`].
    pub fn in_flight(&self) -> usize {
        self.group.in_flight()
    }

    /// A snapshot of the counters of the flights this service (and every service made by the
    /// same layer) ran: flights started, requests that joined one, flights abandoned, panicked
    /// and expired by age. `joined` counts the times a request waited for another request's
    /// call: the inner calls the layer saved, less the requests that then sent their own (after
    /// a response that could not be shared) or regrouped (after a `Vary`; a request that
    /// regroups and joins again counts twice).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight_tower::Coalesce;
    ///
    /// let service = Coalesce::new(tower::service_fn(|_req: http::Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// }));
    /// assert_eq!(service.stats().started, 0);
    /// ```
    pub fn stats(&self) -> single_flight::GroupStats {
        self.group.stats()
    }

    /// The inner service.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight_tower::Coalesce;
    ///
    /// let service = Coalesce::new(42);
    /// assert_eq!(*service.get_ref(), 42);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight_tower::Coalesce;
    ///
    /// let mut service = Coalesce::new(41);
    /// *service.get_mut() += 1;
    /// assert_eq!(service.into_inner(), 42);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    ///
    /// # Examples
    ///
    /// See [`get_mut`](Self::get_mut).
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for Coalesce<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            policy: self.policy.clone(),
            group: self.group.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Coalesce<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalesce")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .field("in_flight", &self.group.in_flight())
            .finish()
    }
}

/// Whether a request body is known to be empty without reading it.
fn has_no_body<B: Body>(body: &B) -> bool {
    body.is_end_stream() || body.size_hint().exact() == Some(0)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Coalesce<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Future: Send + 'static,
    S::Error: Clone + Send + Sync + 'static,
    ReqBody: Body,
    ResBody: Body + Send + 'static,
    ResBody::Error: Send,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let role_header = self.policy.role_header.clone();
        if !self.policy.coalesces(request.method()) || !has_no_body(request.body()) {
            return ResponseFuture::called(self.inner.call(request), role_header);
        }
        let (parts, body) = request.into_parts();
        let admission = self.policy.admit(&parts);
        let request = Request::from_parts(parts, body);
        let key = match admission {
            Admission::Share(key) => key,
            Admission::Pass(_) => {
                return ResponseFuture::called(self.inner.call(request), role_header)
            }
        };

        // The closure runs only if this request starts the flight: it then takes the request
        // and sends it with the service that `poll_ready` made ready. A request that joins
        // keeps its request (`Some` below), for the case where the response is not shareable.
        let mut request = Some(request);
        let (inner, policy) = (&mut self.inner, &self.policy);
        let receiver = self.group.do_chan(key, |_key| {
            let request = request.take().expect("the closure runs once");
            // The leader's request headers, for the followers to compare theirs with if the
            // response varies (its `Vary`); dropped once the response's head is read.
            let headers = HeaderCopy::new(request.headers());
            reply::lead(policy.clone(), headers, inner.call(request))
        });
        let own = request.map(|request| {
            let (policy, group) = (self.policy.clone(), self.group.clone());
            Own::new(self.inner.clone(), request, policy, group)
        });
        ResponseFuture::waiting(receiver.with_role(), own, role_header)
    }
}
