//! The flight's work (the leader's inner call, then buffering) and what it hands each waiter.
//!
//! A flight's value must be `Clone`, and an `http::Response` is not. So the work turns the inner
//! service's answer into an [`Reply`], whose three kinds all clone cheaply:
//!
//! | inner answer                                  | `Reply` | the leader gets    | each follower           |
//! |-----------------------------------------------|-----------|--------------------|-------------------------|
//! | response, shareable, body within the cap      | `Shared`  | a rebuilt copy     | a rebuilt copy          |
//! | the same with `Vary`                          | `Shared`  | a rebuilt copy     | a copy if its values of the varied headers are the leader's, else regroups |
//! | response not shareable (head, or body > cap)  | `Own`     | the response itself| sends its own request   |
//! | error `E`                                     | `Failed`  | a clone of `E`     | a clone of `E`          |
//!
//! Invariants:
//!
//! 1. **A response that is not shareable reaches the request that produced it, and no other.**
//!    `Own` holds it in a slot that only the leader (the caller whose closure ran, as the core's
//!    `Role::Started` tells) takes from; a follower never looks inside. If the leader has gone
//!    (its client disconnected), the response is dropped with the last clone of the `Reply`.
//!    A shared response that varies goes to a follower only if [`Varied::matches`] its request.
//! 2. **The leader gets its body whole.** Whatever buffering read before the cap was crossed (or
//!    before the body failed) is handed back in front of the rest ([`ResponseBody::resumed`],
//!    [`ResponseBody::failed`]).
//! 3. **The value is not generic**, so that one `Coalesce<S>` serves every request body type `S`
//!    accepts. `Own` and `Failed` are type-erased; a waiter whose types do not match (possible
//!    only if one layer serves two request body types whose responses or errors differ) sends its
//!    own request, which is always correct.

use std::any::Any;
use std::fmt;
use std::future::{poll_fn, Future};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Buf, Bytes, BytesMut};
use http::{response, HeaderMap, HeaderName, Response};
use http_body::Body;

use crate::body::ResponseBody;
use crate::policy::{HeaderCopy, Policy, Varied, Verdict};

/// A shared response: its head and its body, buffered once, and the request headers it
/// varies on with the leader's values of them.
pub(crate) struct Buffered {
    head: response::Parts,
    data: Bytes,
    trailers: Option<HeaderMap>,
    varied: Varied,
}

impl Buffered {
    /// The response for one waiter: moved out if it is the last holder (a flight with a single
    /// request), else a copy whose head is cloned and whose body is not copied.
    fn response<B: Body>(this: Arc<Self>) -> Response<ResponseBody<B>> {
        match Arc::try_unwrap(this) {
            Ok(whole) => Response::from_parts(
                whole.head,
                ResponseBody::buffered(whole.data, whole.trailers),
            ),
            Err(shared) => Response::from_parts(
                shared.head.clone(),
                ResponseBody::buffered(shared.data.clone(), shared.trailers.clone()),
            ),
        }
    }
}

/// The value of a flight (see the table in the module docs).
#[derive(Clone)]
pub(crate) enum Reply {
    Shared(Arc<Buffered>),
    /// A `Mutex<Option<Response<ResponseBody<B>>>>`, for the leader alone (invariant 1).
    Own(Arc<dyn Any + Send + Sync>),
    /// The inner service's error `E`.
    Failed(Arc<dyn Any + Send + Sync>),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reply::Shared(_) => "Shared",
            Reply::Own(_) => "Own",
            Reply::Failed(_) => "Failed",
        })
    }
}

/// Who takes an outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Recipient<'a> {
    /// The request whose call made it (the core's `Role::Started`).
    Leader,
    /// A request that joined the flight, with its own request headers.
    Follower(&'a HeaderMap),
}

/// What one waiter does with the outcome of its flight.
// Returned once per request and matched at once: boxing the response would allocate for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Delivery<B: Body, E> {
    /// Return this response.
    Response(Response<ResponseBody<B>>),
    /// Return this error.
    Error(E),
    /// Send this waiter's own request to the inner service.
    SendOwn,
    /// The response varies on these request headers, and this waiter's values differ from the
    /// leader's: join or start the flight of the waiters with its values.
    Regroup(Vec<HeaderName>),
}

type Slot<B> = Mutex<Option<Response<ResponseBody<B>>>>;

impl Reply {
    fn own<B>(response: Response<ResponseBody<B>>) -> Self
    where
        B: Body + Send + 'static,
        B::Error: Send,
    {
        let slot: Slot<B> = Mutex::new(Some(response));
        Reply::Own(Arc::new(slot))
    }

    /// Decides what a waiter gets.
    pub(crate) fn deliver<B, E>(self, to: Recipient<'_>) -> Delivery<B, E>
    where
        B: Body + Send + 'static,
        B::Error: Send,
        E: Clone + Send + Sync + 'static,
    {
        match (self, to) {
            (Reply::Shared(buffered), Recipient::Follower(request))
                if !buffered.varied.matches(request) =>
            {
                Delivery::Regroup(buffered.varied.names().to_vec())
            }
            (Reply::Shared(buffered), _) => Delivery::Response(Buffered::response(buffered)),
            (Reply::Failed(error), _) => match error.downcast_ref::<E>() {
                Some(error) => Delivery::Error(error.clone()),
                None => Delivery::SendOwn,
            },
            (Reply::Own(_), Recipient::Follower(_)) => Delivery::SendOwn,
            (Reply::Own(slot), Recipient::Leader) => {
                let taken = slot
                    .downcast_ref::<Slot<B>>()
                    .and_then(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).take());
                match taken {
                    Some(response) => Delivery::Response(response),
                    // Not reachable: one flight has one leader, and its types are the leader's.
                    None => Delivery::SendOwn,
                }
            }
        }
    }
}

/// The work of a flight: awaits the leader's inner call, then decides and buffers.
/// `request` is the leader's request headers, whose values of the headers a response varies on
/// are kept for the followers to compare with theirs.
pub(crate) async fn lead<F, B, E>(policy: Arc<Policy>, request: HeaderCopy, call: F) -> Reply
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body + Send + 'static,
    B::Error: Send,
    E: Send + Sync + 'static,
{
    let response = match call.await {
        Ok(response) => response,
        Err(error) => return Reply::Failed(Arc::new(error)),
    };
    let (head, body) = response.into_parts();
    let varied = match policy.verdict(head.status, &head.headers) {
        Verdict::Share(names) if names.is_empty() => Varied::default(),
        Verdict::Share(names) => Varied::new(names, &request),
        Verdict::Keep(_) => {
            return Reply::own(Response::from_parts(head, ResponseBody::inner(body)));
        }
    };
    drop(request);
    match buffer(body, policy.max_body).await {
        Buffering::Whole { data, trailers } => Reply::Shared(Arc::new(Buffered {
            head,
            data,
            trailers,
            varied,
        })),
        Buffering::OverCap { prefix, rest } => Reply::own(Response::from_parts(
            head,
            ResponseBody::resumed(prefix, rest),
        )),
        Buffering::Failed { prefix, error } => Reply::own(Response::from_parts(
            head,
            ResponseBody::<B>::failed(prefix, error),
        )),
    }
}

/// How reading a body up to the cap ended.
enum Buffering<B: Body> {
    /// The whole body fitted.
    Whole {
        data: Bytes,
        trailers: Option<HeaderMap>,
    },
    /// It crossed the cap: what was read so far, and the body to read the rest from.
    OverCap {
        prefix: Vec<Bytes>,
        rest: std::pin::Pin<Box<B>>,
    },
    /// It failed: what was read before, and the error.
    Failed { prefix: Vec<Bytes>, error: B::Error },
}

/// The chunks read so far. The first is kept apart, so that a body of one chunk (a `Full`, a
/// small response) is shared as it came, without a copy or an allocation.
#[derive(Default)]
struct Buffer {
    first: Option<Bytes>,
    more: Vec<Bytes>,
    len: usize,
}

impl Buffer {
    fn push(&mut self, chunk: Bytes) {
        self.len = self.len.saturating_add(chunk.len());
        match self.first {
            None => self.first = Some(chunk),
            Some(_) => self.more.push(chunk),
        }
    }

    fn into_chunks(self) -> Vec<Bytes> {
        self.first.into_iter().chain(self.more).collect()
    }

    fn into_bytes(self) -> Bytes {
        match self.first {
            None => Bytes::new(),
            Some(first) if self.more.is_empty() => first,
            Some(first) => {
                let mut whole = BytesMut::with_capacity(self.len);
                whole.extend_from_slice(&first);
                for chunk in &self.more {
                    whole.extend_from_slice(chunk);
                }
                whole.freeze()
            }
        }
    }
}

/// Reads `body` until it ends, fails, or holds more than `cap` bytes.
async fn buffer<B: Body>(body: B, cap: usize) -> Buffering<B> {
    // Boxed so that an over-cap body can be handed on after it has been polled (the inner body
    // need not be `Unpin`); one allocation per shared response, none per waiter.
    let mut body = Box::pin(body);
    let mut buffer = Buffer::default();
    let mut trailers: Option<HeaderMap> = None;
    loop {
        let frame = match poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(error)) => {
                return Buffering::Failed {
                    prefix: buffer.into_chunks(),
                    error,
                }
            }
        };
        match frame.into_data() {
            Ok(mut data) => {
                let chunk = data.copy_to_bytes(data.remaining());
                if chunk.is_empty() {
                    continue;
                }
                buffer.push(chunk);
                if buffer.len > cap {
                    return Buffering::OverCap {
                        prefix: buffer.into_chunks(),
                        rest: body,
                    };
                }
            }
            Err(frame) => {
                if let Ok(more) = frame.into_trailers() {
                    match &mut trailers {
                        Some(trailers) => trailers.extend(more),
                        None => trailers = Some(more),
                    }
                }
            }
        }
    }
    Buffering::Whole {
        data: buffer.into_bytes(),
        trailers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll, Wake, Waker};

    use http::StatusCode;
    use http_body::Frame;

    struct NoopWaker;

    impl Wake for NoopWaker {
        fn wake(self: Arc<Self>) {}
    }

    /// Polls a future that never waits.
    fn now<F: Future>(future: F) -> F::Output {
        let waker = Waker::from(Arc::new(NoopWaker));
        let mut cx = Context::from_waker(&waker);
        match Box::pin(future).as_mut().poll(&mut cx) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the test future waited"),
        }
    }

    #[derive(Debug)]
    struct Chunks(VecDeque<&'static str>, Option<&'static str>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = &'static str;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
            Poll::Ready(match self.0.pop_front() {
                Some(c) => Some(Ok(Frame::data(Bytes::from_static(c.as_bytes())))),
                None => self.1.take().map(Err),
            })
        }
    }

    fn body_of(chunks: &[&'static str]) -> Chunks {
        Chunks(chunks.iter().copied().collect(), None)
    }

    fn collect(body: ResponseBody<Chunks>) -> (Vec<u8>, Option<&'static str>) {
        let mut body = Box::pin(body);
        let (mut data, mut error) = (Vec::new(), None);
        while let Some(frame) = now(poll_fn(|cx| body.as_mut().poll_frame(cx))) {
            match frame {
                Ok(frame) => data.extend_from_slice(&frame.into_data().unwrap()),
                Err(e) => error = Some(e),
            }
        }
        (data, error)
    }

    static NO_HEADERS: std::sync::LazyLock<HeaderMap> = std::sync::LazyLock::new(HeaderMap::new);

    fn follower() -> Recipient<'static> {
        Recipient::Follower(&NO_HEADERS)
    }

    fn who(leader: bool) -> Recipient<'static> {
        if leader {
            Recipient::Leader
        } else {
            follower()
        }
    }

    fn policy(max_body: usize) -> Arc<Policy> {
        Arc::new(Policy {
            max_body,
            ..Policy::default()
        })
    }

    fn ok(body: Chunks) -> std::future::Ready<Result<Response<Chunks>, String>> {
        std::future::ready(Ok(Response::new(body)))
    }

    #[test]
    fn a_shareable_response_reaches_everyone() {
        let outcome = now(lead(
            policy(10),
            HeaderCopy::default(),
            ok(body_of(&["ab", "cd"])),
        ));
        assert!(matches!(outcome, Reply::Shared(_)));
        for leader in [true, false, false] {
            match outcome.clone().deliver::<Chunks, String>(who(leader)) {
                Delivery::Response(response) => {
                    assert_eq!(response.status(), StatusCode::OK);
                    assert_eq!(collect(response.into_body()), (b"abcd".to_vec(), None));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_varied_response_reaches_the_followers_with_the_leaders_values() {
        let call = std::future::ready(Ok::<_, String>(
            Response::builder()
                .header("vary", "accept-language")
                .body(body_of(&["hallo"]))
                .unwrap(),
        ));
        let mut leader = HeaderMap::new();
        leader.insert("accept-language", "de".parse().unwrap());
        leader.insert("user-agent", "a".parse().unwrap());
        let outcome = now(lead(policy(10), HeaderCopy::new(&leader), call));
        let mut same = HeaderMap::new();
        same.insert("accept-language", "de".parse().unwrap());
        let mut other = HeaderMap::new();
        other.insert("accept-language", "fr".parse().unwrap());
        for to in [Recipient::Leader, Recipient::Follower(&same)] {
            match outcome.clone().deliver::<Chunks, String>(to) {
                Delivery::Response(response) => {
                    assert_eq!(collect(response.into_body()), (b"hallo".to_vec(), None));
                }
                other => panic!("{other:?}"),
            }
        }
        for to in [Recipient::Follower(&other), follower()] {
            match outcome.clone().deliver::<Chunks, String>(to) {
                Delivery::Regroup(names) => assert_eq!(names, ["accept-language"]),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_unshareable_response_goes_to_the_leader_alone() {
        let call = std::future::ready(Ok::<_, String>(
            Response::builder()
                .header("set-cookie", "id=1")
                .body(body_of(&["mine"]))
                .unwrap(),
        ));
        let outcome = now(lead(policy(10), HeaderCopy::default(), call));
        assert!(matches!(
            outcome.clone().deliver::<Chunks, String>(follower()),
            Delivery::SendOwn
        ));
        match outcome.clone().deliver::<Chunks, String>(Recipient::Leader) {
            Delivery::Response(response) => {
                assert_eq!(response.headers()["set-cookie"], "id=1");
                assert_eq!(collect(response.into_body()), (b"mine".to_vec(), None));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn over_the_cap_the_leader_gets_every_byte() {
        let outcome = now(lead(
            policy(3),
            HeaderCopy::default(),
            ok(body_of(&["ab", "cd", "ef"])),
        ));
        assert!(matches!(outcome, Reply::Own(_)));
        assert!(matches!(
            outcome.clone().deliver::<Chunks, String>(follower()),
            Delivery::SendOwn
        ));
        match outcome.deliver::<Chunks, String>(Recipient::Leader) {
            Delivery::Response(response) => {
                assert_eq!(collect(response.into_body()), (b"abcdef".to_vec(), None));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failing_body_is_not_shared_and_the_leader_sees_the_failure() {
        let body = Chunks(["ab"].into_iter().collect(), Some("reset"));
        let outcome = now(lead(policy(10), HeaderCopy::default(), ok(body)));
        assert!(matches!(
            outcome.clone().deliver::<Chunks, String>(follower()),
            Delivery::SendOwn
        ));
        match outcome.deliver::<Chunks, String>(Recipient::Leader) {
            Delivery::Response(response) => {
                assert_eq!(
                    collect(response.into_body()),
                    (b"ab".to_vec(), Some("reset"))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_reach_everyone_and_mismatched_types_send_their_own() {
        let call = std::future::ready(Err::<Response<Chunks>, _>("down".to_owned()));
        let outcome = now(lead(policy(10), HeaderCopy::default(), call));
        for leader in [true, false] {
            match outcome.clone().deliver::<Chunks, String>(who(leader)) {
                Delivery::Error(error) => assert_eq!(error, "down"),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            outcome.deliver::<Chunks, u8>(follower()),
            Delivery::SendOwn
        ));
    }

    #[test]
    fn buffering_joins_chunks_and_stops_over_the_cap() {
        assert!(matches!(
            now(buffer(body_of(&[]), 0)),
            Buffering::Whole { data, trailers: None } if data.is_empty()
        ));
        assert!(matches!(
            now(buffer(body_of(&["a", "", "b"]), 2)),
            Buffering::Whole { data, .. } if data == "ab"
        ));
        assert!(matches!(
            now(buffer(body_of(&["abc"]), 2)),
            Buffering::OverCap { prefix, .. } if prefix == ["abc"]
        ));
    }
}
