//! `ResponseFuture`: what `Coalesce::call` returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use single_flight::{KeyedGroup, Role, WithRole};
use tower_service::Service;

use crate::body::ResponseBody;
use crate::policy::{self, HeaderCopy, Policy};
use crate::reply::{self, Delivery, Recipient, Reply};

/// How many times a request regroups (a response varied on a header whose value it does not
/// share with the leader) before it sends its own request. Each regrouping adds a varied header
/// to its key, so the count is bounded anyway by the headers the requests differ in; the cap
/// bounds it by a small number whatever the upstream's `Vary` says.
const MAX_REGROUPS: u8 = 4;

/// The part a request played, told by the optional role header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// Its call produced the response, which went to the requests that waited for it too.
    Leader,
    /// It got a copy of the response another request's call produced.
    Follower,
    /// It waited for a flight whose response could not be shared, then sent its own request.
    Fallback,
    /// It was never coalesced: its method is not configured, it has a body, it carries a header
    /// the key does not include, or the key function declined it.
    Bypass,
}

impl Part {
    fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Part::Leader => "leader",
            Part::Follower => "follower",
            Part::Fallback => "fallback",
            Part::Bypass => "bypass",
        })
    }
}

/// What a request that joined a flight keeps while it waits: its request and a clone of the
/// inner service, in case the response is not for it, and what it needs to regroup.
pub(crate) struct Own<S, ReqBody> {
    service: S,
    request: Request<ReqBody>,
    policy: Arc<Policy>,
    group: Arc<KeyedGroup<Bytes, Reply>>,
    /// The varied headers the key of its flight holds (none until it regroups).
    varied: Vec<HeaderName>,
    regroups: u8,
}

impl<S, ReqBody> Own<S, ReqBody> {
    pub(crate) fn new(
        service: S,
        request: Request<ReqBody>,
        policy: Arc<Policy>,
        group: Arc<KeyedGroup<Bytes, Reply>>,
    ) -> Self {
        Self {
            service,
            request,
            policy,
            group,
            varied: Vec::new(),
            regroups: 0,
        }
    }

    /// The key to regroup under after a response that varies on `names`, or `None` if this
    /// request has regrouped enough (or would no longer be admitted): it then sends its own.
    fn regroup_key(mut self, names: &[HeaderName]) -> (Self, Option<Bytes>) {
        if self.regroups >= MAX_REGROUPS {
            return (self, None);
        }
        self.regroups += 1;
        policy::union(&mut self.varied, names);
        // Taken apart and put back together: the key function takes the request's head.
        let (parts, body) = self.request.into_parts();
        let key = self.policy.regroup_key(&parts, &self.varied);
        self.request = Request::from_parts(parts, body);
        (self, key)
    }
}

pin_project! {
    /// The response future of [`Coalesce`](crate::Coalesce).
    ///
    /// It resolves to the inner service's response (or a shared copy of it) with a
    /// [`ResponseBody`], or to the inner service's error.
    ///
    /// # Cancel safety
    ///
    /// Dropping it (the client disconnected, a timeout fired) never cancels the request for
    /// other clients: if it was waiting for a flight, the other waiters go on with the same
    /// inner call, which nothing restarts. If it was the last waiter, the inner call's future
    /// is dropped, as it would be without the layer. A request that passed through, or that
    /// sends its own request after a flight whose response could not be shared, is dropped
    /// like the inner service's own future.
    ///
    /// # Panics
    ///
    /// If the inner call's future panics while another request's future polls it, that
    /// future unwinds with the original payload and every other request of the flight with a
    /// [`single_flight::Panicked`] carrying its message, as each would had it made the call
    /// itself. The key is freed for the next request.
    #[must_use = "futures do nothing unless you .await or poll them"]
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
        role_header: Option<HeaderName>,
    }
}

pin_project! {
    // Transitions: `Waiting` -> done (shared response, error, the leader's own response)
    //              `Waiting` -> `Fallback` -> `Called` (a follower of an unshareable response)
    //              `Waiting` -> `Regroup` -> `Waiting` (a follower of a response that varies on
    //                                       a header whose value it does not share)
    //              `Called` -> done
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        // The inner service was called for this request alone.
        Called { #[pin] future: S::Future, part: Part },
        // Waiting for a flight; `own` is what a follower keeps (`None` for the leader, whose
        // request went into the flight's work). The core's role tells which it is.
        Waiting { receiver: WithRole<Reply>, own: Option<Own<S, ReqBody>> },
        // A follower sends its own request, once the service is ready.
        Fallback { service: S, request: Option<Request<ReqBody>> },
        // A follower joins or starts the flight of `key`, once its service is ready (it may
        // lead, and a service is called only when ready).
        Regroup { own: Option<Own<S, ReqBody>>, key: Bytes },
    }
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn called(future: S::Future, role_header: Option<HeaderName>) -> Self {
        Self {
            state: State::Called {
                future,
                part: Part::Bypass,
            },
            role_header,
        }
    }

    pub(crate) fn waiting(
        receiver: WithRole<Reply>,
        own: Option<Own<S, ReqBody>>,
        role_header: Option<HeaderName>,
    ) -> Self {
        Self {
            state: State::Waiting { receiver, own },
            role_header,
        }
    }
}

/// Marks the part a request played on its response, when the layer is configured to.
fn mark<B>(mut response: Response<B>, header: &Option<HeaderName>, part: Part) -> Response<B> {
    if let Some(name) = header {
        response
            .headers_mut()
            .insert(name.clone(), part.header_value());
    }
    response
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Clone + Send + Sync + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Error: Send,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future, part } => {
                    let response = ready!(future.poll(cx))?;
                    let response = response.map(ResponseBody::inner);
                    return Poll::Ready(Ok(mark(response, this.role_header, *part)));
                }
                StateProj::Waiting { receiver, own } => {
                    let flight = ready!(Pin::new(receiver).poll(cx));
                    let recipient = match flight.role {
                        Role::Started => Recipient::Leader,
                        Role::Joined => Recipient::Follower(
                            own.as_ref().expect(NO_OWN_REQUEST).request.headers(),
                        ),
                    };
                    match flight.value.deliver::<ResBody, S::Error>(recipient) {
                        Delivery::Response(response) => {
                            let part = match flight.role {
                                Role::Started => Part::Leader,
                                Role::Joined => Part::Follower,
                            };
                            return Poll::Ready(Ok(mark(response, this.role_header, part)));
                        }
                        Delivery::Error(error) => return Poll::Ready(Err(error)),
                        Delivery::Regroup(names) => {
                            let own = own.take().expect(NO_OWN_REQUEST);
                            match own.regroup_key(&names) {
                                (own, Some(key)) => this.state.set(State::Regroup {
                                    own: Some(own),
                                    key,
                                }),
                                (own, None) => this.state.set(State::Fallback {
                                    service: own.service,
                                    request: Some(own.request),
                                }),
                            }
                        }
                        Delivery::SendOwn => {
                            let own = own.take().expect(NO_OWN_REQUEST);
                            this.state.set(State::Fallback {
                                service: own.service,
                                request: Some(own.request),
                            });
                        }
                    }
                }
                StateProj::Regroup { own, key } => {
                    let service = &mut own.as_mut().expect(NO_OWN_REQUEST).service;
                    ready!(service.poll_ready(cx))?;
                    let own = own.take().expect(NO_OWN_REQUEST);
                    let key = std::mem::take(key);
                    let waiting = regroup(own, key);
                    this.state.set(waiting);
                }
                StateProj::Fallback { service, request } => {
                    ready!(service.poll_ready(cx))?;
                    let request = request.take().expect(NO_OWN_REQUEST);
                    let future = service.call(request);
                    this.state.set(State::Called {
                        future,
                        part: Part::Fallback,
                    });
                }
            }
        }
    }
}

/// Joins or starts the flight of `key` for a request whose service is ready: as in
/// `Coalesce::call`, the closure runs only if it starts the flight, and then takes the request.
fn regroup<S, ReqBody, ResBody>(own: Own<S, ReqBody>, key: Bytes) -> State<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + Sync + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Error: Send,
{
    let Own {
        mut service,
        request,
        policy,
        group,
        varied,
        regroups,
    } = own;
    let mut request = Some(request);
    let receiver = group.do_chan(key, |_key| {
        let request = request.take().expect("the closure runs once");
        let headers = HeaderCopy::new(request.headers());
        reply::lead(policy.clone(), headers, service.call(request))
    });
    let own = request.map(|request| Own {
        service,
        request,
        policy,
        group: group.clone(),
        varied,
        regroups,
    });
    State::Waiting {
        receiver: receiver.with_role(),
        own,
    }
}

/// Not reachable: only a follower sends its own request, once.
const NO_OWN_REQUEST: &str = "single-flight-tower: no request of its own to send";

impl<S, ReqBody> fmt::Debug for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { part, .. } => match part {
                Part::Fallback => "Fallback",
                _ => "Called",
            },
            State::Waiting { own: None, .. } => "Leading",
            State::Waiting { own: Some(_), .. } => "Following",
            State::Fallback { .. } => "Fallback",
            State::Regroup { .. } => "Regrouping",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regrouping_is_bounded() {
        let request = Request::get("/").body(()).unwrap();
        let mut own = Own::new((), request, Arc::default(), Arc::default());
        let names = [HeaderName::from_static("accept-language")];
        for _ in 0..MAX_REGROUPS {
            let (next, key) = own.regroup_key(&names);
            assert!(key.is_some_and(|key| key[0] == 0));
            own = next;
        }
        assert_eq!(own.varied, names);
        let (_, key) = own.regroup_key(&names);
        assert_eq!(key, None, "it sends its own request");
    }
}
