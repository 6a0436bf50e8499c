//! The error callers get when Redis cannot do its part and the policy is strict.

use std::fmt;
use std::sync::Arc;

/// What went wrong, without the details (see [`Error::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Redis failed or did not answer within the command timeout (or is in its outage backoff).
    Redis,
    /// Another process's flight did not end within the maximum wait.
    Timeout,
    /// The value's encoding is larger than the size cap (here or in the owner's process).
    Oversize,
    /// The bytes in Redis did not decode as a value of this type.
    Decode,
    /// The key could not be serialized into its Redis name.
    Key,
    /// The namespace is empty or contains a brace.
    Namespace,
    /// The owner's value did not serialize (its `Serialize` failed), so it could not cross
    /// the wire.
    Encode,
    /// The server lacks something the group needs (sharded pub/sub in a cluster: Redis 7+).
    Unsupported,
    /// The Redis user may not run a command the group needs on the namespace's keys or
    /// channels (an ACL refused it: `NOPERM`). [`acl_rule`](crate::acl_rule) gives the rule
    /// it needs.
    Permission,
}

/// The error of a [`RedisGroup`](crate::RedisGroup) call under
/// [`FailurePolicy::Strict`](crate::FailurePolicy::Strict) (under the default policy calls do not
/// fail: the work runs here instead), and of connecting.
///
/// It is cheap to clone, as every caller of a flight gets a copy.
///
/// # Examples
///
/// ```
/// use single_flight_redis::{Error, ErrorKind};
///
/// fn retryable(error: &Error) -> bool {
///     matches!(error.kind(), ErrorKind::Redis | ErrorKind::Timeout)
/// }
/// # let _ = retryable;
/// ```
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: Arc<str>,
    source: Option<Arc<redis::RedisError>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<Arc<str>>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A Redis client's error: [`ErrorKind::Permission`] if an ACL refused the command,
    /// else [`ErrorKind::Redis`].
    pub(crate) fn redis(context: &str, error: redis::RedisError) -> Self {
        let refused = error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm)
            || error.code() == Some("NOPERM");
        Self {
            kind: if refused {
                ErrorKind::Permission
            } else {
                ErrorKind::Redis
            },
            message: format!("{context}: {error}").into(),
            source: Some(Arc::new(error)),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The Redis client's error, when there was one.
    pub fn redis_error(&self) -> Option<&redis::RedisError> {
        self.source.as_deref()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &&*self.message)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "single-flight-redis: {}", self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
