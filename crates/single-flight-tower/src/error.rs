//! `SharedError`: a `Clone` error for inner services whose own error is not `Clone`.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// A boxed error, as tower middleware returns it.
type BoxError = Box<dyn Error + Send + Sync>;

/// A cheaply cloned, type-erased error: what to map a non-`Clone` inner error to, so that
/// [`Coalesce`](crate::Coalesce) can hand it to every request that waited for the failed call.
///
/// `Coalesce` returns the inner service's own error type, and needs it to be `Clone`: the one
/// error of a flight goes to each of its requests. axum routers (`Infallible`) and most clients
/// with `Arc`-ed errors already are. For a `BoxError` or another non-`Clone` error, map it into a
/// `SharedError` inside the layer (`tower::ServiceBuilder::map_err(SharedError::new)`); it
/// converts back into a `BoxError` with `?` or [`Into`].
///
/// It displays as the error it wraps, and its [`source`](Error::source) is that error's source.
///
/// # Examples
///
/// ```
/// use single_flight_tower::{CoalesceLayer, SharedError};
/// use tower::{service_fn, BoxError, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let service = ServiceBuilder::new()
///     .layer(CoalesceLayer::new())
///     .map_err(SharedError::new)
///     .service(service_fn(|_req: http::Request<String>| async {
///         Err::<http::Response<String>, BoxError>("upstream refused the connection".into())
///     }));
/// let error = service.oneshot(http::Request::new(String::new())).await.unwrap_err();
/// assert_eq!(error.to_string(), "upstream refused the connection");
/// let boxed: BoxError = error.into();
/// # let _ = boxed;
/// # }
/// ```
#[derive(Clone)]
pub struct SharedError {
    inner: Arc<dyn Error + Send + Sync>,
}

impl SharedError {
    /// Wraps an error (anything that converts into a `BoxError`).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight_tower::SharedError;
    ///
    /// let error = SharedError::new(std::io::Error::other("reset"));
    /// let copy = error.clone();
    /// assert_eq!(copy.to_string(), "reset");
    /// assert!(copy.get_ref().is::<std::io::Error>());
    /// ```
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self {
            inner: Arc::from(error.into()),
        }
    }

    /// The wrapped error, to inspect or downcast.
    ///
    /// # Examples
    ///
    /// See [`new`](Self::new).
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.inner
    }
}

impl From<BoxError> for SharedError {
    fn from(error: BoxError) -> Self {
        Self::new(error)
    }
}

impl fmt::Debug for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.inner, f)
    }
}

impl Error for SharedError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.inner.source()
    }
}
