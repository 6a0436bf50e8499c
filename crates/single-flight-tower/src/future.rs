//! `ResponseFuture`: what `Coalesce::call` returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{HeaderName, HeaderValue, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use single_flight::Receiver;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::outcome::{Delivery, Outcome};

/// The part a request played, told by the optional role header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
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

impl Role {
    fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Fallback => "fallback",
            Role::Bypass => "bypass",
        })
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
    //              `Called` -> done
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        // The inner service was called for this request alone.
        Called { #[pin] future: S::Future, role: Role },
        // Waiting for a flight; `own` is the service and request of a follower (`None` for the
        // leader, whose request went into the flight's work).
        Waiting { receiver: Receiver<Outcome>, own: Option<(S, Request<ReqBody>)> },
        // A follower sends its own request, once the service is ready.
        Fallback { service: S, request: Option<Request<ReqBody>> },
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
                role: Role::Bypass,
            },
            role_header,
        }
    }

    pub(crate) fn waiting(
        receiver: Receiver<Outcome>,
        own: Option<(S, Request<ReqBody>)>,
        role_header: Option<HeaderName>,
    ) -> Self {
        Self {
            state: State::Waiting { receiver, own },
            role_header,
        }
    }
}

/// Marks the role on a response, when the layer is configured to.
fn mark<B>(mut response: Response<B>, header: &Option<HeaderName>, role: Role) -> Response<B> {
    if let Some(name) = header {
        response
            .headers_mut()
            .insert(name.clone(), role.header_value());
    }
    response
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Clone + Send + Sync + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Error: Send,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future, role } => {
                    let response = ready!(future.poll(cx))?;
                    let response = response.map(ResponseBody::inner);
                    return Poll::Ready(Ok(mark(response, this.role_header, *role)));
                }
                StateProj::Waiting { receiver, own } => {
                    let outcome = ready!(Pin::new(receiver).poll(cx));
                    let leader = own.is_none();
                    match outcome.deliver::<ResBody, S::Error>(leader) {
                        Delivery::Response(response) => {
                            let role = if leader { Role::Leader } else { Role::Follower };
                            return Poll::Ready(Ok(mark(response, this.role_header, role)));
                        }
                        Delivery::Error(error) => return Poll::Ready(Err(error)),
                        Delivery::SendOwn => {
                            let (service, request) = own.take().expect(NO_OWN_REQUEST);
                            this.state.set(State::Fallback {
                                service,
                                request: Some(request),
                            });
                        }
                    }
                }
                StateProj::Fallback { service, request } => {
                    ready!(service.poll_ready(cx))?;
                    let request = request.take().expect(NO_OWN_REQUEST);
                    let future = service.call(request);
                    this.state.set(State::Called {
                        future,
                        role: Role::Fallback,
                    });
                }
            }
        }
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
            State::Called { role, .. } => match role {
                Role::Fallback => "Fallback",
                _ => "Called",
            },
            State::Waiting { own: None, .. } => "Leading",
            State::Waiting { own: Some(_), .. } => "Following",
            State::Fallback { .. } => "Fallback",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
