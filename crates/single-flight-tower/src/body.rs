//! `ResponseBody`: the body of every response the layer returns.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The body of a response returned by [`Coalesce`](crate::Coalesce): the inner service's own
    /// body, or a shared copy buffered once.
    ///
    /// It is one type for every path, so the service stays one type and needs no boxing:
    ///
    /// * a request that passed through, or that sent its own request after a flight whose
    ///   response could not be shared, gets the inner body as it is;
    /// * the request whose call produced a shared response, and every request that waited for it,
    ///   get the buffered body (one `Bytes`, cloned without copying) and its trailers;
    /// * the request whose call produced a response too large to share gets the part that was
    ///   buffered before the cap was crossed, then the rest of the inner body, streamed.
    ///
    /// Its data frames are [`Bytes`] (the inner body's data are converted with
    /// [`Buf::copy_to_bytes`], which copies nothing when they already are `Bytes`), and its error
    /// is the inner body's, so it fits axum's `Response` and hyper's server as it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_body_util::BodyExt;
    /// use single_flight_tower::CoalesceLayer;
    /// use tower::{service_fn, ServiceBuilder, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let service = ServiceBuilder::new().layer(CoalesceLayer::new()).service(service_fn(
    ///     |_req: http::Request<String>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
    ///     },
    /// ));
    /// let response = service.oneshot(http::Request::new(String::new())).await.unwrap();
    /// // `ResponseBody<String>`: collected like any other body.
    /// let body = response.into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(body, "hello");
    /// # }
    /// ```
    pub struct ResponseBody<B: Body> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B: Body> {
        // The inner service's body, untouched.
        Inner { #[pin] body: B },
        // A shared copy: the buffered data, then the trailers.
        Buffered { data: Option<Bytes>, trailers: Option<HeaderMap> },
        // The chunks read while buffering, then the rest of the body (over the cap).
        Resumed { prefix: VecDeque<Bytes>, rest: Pin<Box<B>> },
        // The chunks read while buffering, then the error the body failed with.
        Failed { prefix: VecDeque<Bytes>, error: Option<B::Error> },
    }
}

impl<B: Body> ResponseBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    pub(crate) fn buffered(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        Self {
            kind: Kind::Buffered {
                data: (!data.is_empty()).then_some(data),
                trailers,
            },
        }
    }

    pub(crate) fn resumed(prefix: Vec<Bytes>, rest: Pin<Box<B>>) -> Self {
        Self {
            kind: Kind::Resumed {
                prefix: prefix.into(),
                rest,
            },
        }
    }

    pub(crate) fn failed(prefix: Vec<Bytes>, error: B::Error) -> Self {
        Self {
            kind: Kind::Failed {
                prefix: prefix.into(),
                error: Some(error),
            },
        }
    }
}

fn to_bytes<D: Buf>(frame: Frame<D>) -> Frame<Bytes> {
    frame.map_data(|mut data| data.copy_to_bytes(data.remaining()))
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map(to_bytes))),
            KindProj::Buffered { data, trailers } => Poll::Ready(
                data.take()
                    .map(Frame::data)
                    .or_else(|| trailers.take().map(Frame::trailers))
                    .map(Ok),
            ),
            KindProj::Resumed { prefix, rest } => match prefix.pop_front() {
                Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                None => rest
                    .as_mut()
                    .poll_frame(cx)
                    .map(|frame| frame.map(|frame| frame.map(to_bytes))),
            },
            KindProj::Failed { prefix, error } => Poll::Ready(match prefix.pop_front() {
                Some(chunk) => Some(Ok(Frame::data(chunk))),
                None => error.take().map(Err),
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Buffered { data, trailers } => data.is_none() && trailers.is_none(),
            Kind::Resumed { prefix, rest } => prefix.is_empty() && rest.is_end_stream(),
            Kind::Failed { prefix, error } => prefix.is_empty() && error.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Buffered { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Resumed { prefix, rest } => {
                let buffered: u64 = prefix.iter().map(|c| c.len() as u64).sum();
                let rest = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(buffered));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(buffered));
                }
                hint
            }
            // Its length is not known: it ends in an error.
            Kind::Failed { .. } => SizeHint::new(),
        }
    }
}

impl<B: Body> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Inner { .. } => "Inner",
            Kind::Buffered { .. } => "Buffered",
            Kind::Resumed { .. } => "Resumed",
            Kind::Failed { .. } => "Failed",
        };
        f.debug_struct("ResponseBody")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of the given chunks, then optionally an error.
    struct Chunks {
        chunks: VecDeque<&'static str>,
        error: Option<&'static str>,
    }

    impl Body for Chunks {
        type Data = Bytes;
        type Error = &'static str;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
            Poll::Ready(match self.chunks.pop_front() {
                Some(chunk) => Some(Ok(Frame::data(Bytes::from_static(chunk.as_bytes())))),
                None => self.error.take().map(Err),
            })
        }

        fn is_end_stream(&self) -> bool {
            self.chunks.is_empty() && self.error.is_none()
        }
    }

    fn chunks(chunks: &[&'static str]) -> Chunks {
        Chunks {
            chunks: chunks.iter().copied().collect(),
            error: None,
        }
    }

    struct NoopWaker;

    impl std::task::Wake for NoopWaker {
        fn wake(self: std::sync::Arc<Self>) {}
    }

    /// Drains a body that is always ready: its data, its trailers, and the error it ended with.
    fn drain<B: Body<Data = Bytes, Error = &'static str>>(
        body: B,
    ) -> (Vec<u8>, Option<HeaderMap>, Option<&'static str>) {
        let mut body = Box::pin(body);
        let (mut data, mut trailers, mut error) = (Vec::new(), None, None);
        let waker = std::task::Waker::from(std::sync::Arc::new(NoopWaker));
        let mut cx = Context::from_waker(&waker);
        loop {
            let Poll::Ready(frame) = body.as_mut().poll_frame(&mut cx) else {
                panic!("test bodies are always ready");
            };
            match frame {
                None => break,
                Some(Err(e)) => error = Some(e),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(chunk) => data.extend_from_slice(&chunk),
                    Err(frame) => trailers = frame.into_trailers().ok(),
                },
            }
        }
        assert!(body.is_end_stream());
        (data, trailers, error)
    }

    #[test]
    fn inner_is_passed_on() {
        let body = ResponseBody::inner(chunks(&["ab", "c"]));
        assert!(!body.is_end_stream());
        assert_eq!(drain(body), (b"abc".to_vec(), None, None));
    }

    #[test]
    fn buffered_gives_data_then_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "6".parse().unwrap());
        let body = ResponseBody::<Chunks>::buffered(Bytes::from_static(b"abc"), Some(trailers));
        assert_eq!(body.size_hint().exact(), Some(3));
        let (data, got, error) = drain(body);
        assert_eq!(data, b"abc");
        assert_eq!(got.unwrap()["x-sum"], "6");
        assert_eq!(error, None);

        let empty = ResponseBody::<Chunks>::buffered(Bytes::new(), None);
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
    }

    #[test]
    fn resumed_gives_prefix_then_rest() {
        let body = ResponseBody::resumed(
            vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")],
            Box::pin(chunks(&["de", "f"])),
        );
        assert!(body.size_hint().lower() >= 3);
        assert_eq!(drain(body), (b"abcdef".to_vec(), None, None));
    }

    #[test]
    fn failed_gives_prefix_then_error() {
        let body = ResponseBody::<Chunks>::failed(vec![Bytes::from_static(b"ab")], "reset");
        assert_eq!(drain(body), (b"ab".to_vec(), None, Some("reset")));
    }
}
