//! The payload the followers of a panicked flight unwind with.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// The panic payload of a waiter whose flight's work panicked while another waiter was polling it.
///
/// When the work of a flight panics, the waiter that was polling it unwinds with the original
/// payload. Every other waiter of that flight unwinds with a `Panicked`, which carries the original
/// message, so that a supervisor (`tokio::task::JoinError::into_panic`, `std::panic::catch_unwind`)
/// can tell what happened.
///
/// # Examples
///
/// ```
/// use std::panic::{catch_unwind, AssertUnwindSafe};
/// use single_flight::{KeyedGroup, Panicked};
///
/// let group: KeyedGroup<u32, u32> = KeyedGroup::new();
/// // The receiver registers at once; the work is polled by whoever polls first.
/// let follower = group.do_chan(7, |_| async { panic!("database is on fire") });
/// let leader = group.do_chan(7, |_| async { 0 });
///
/// let first = catch_unwind(AssertUnwindSafe(|| futures_lite::future::block_on(follower)));
/// let second = catch_unwind(AssertUnwindSafe(|| futures_lite::future::block_on(leader)));
///
/// // The one that polled the work got the original payload ...
/// assert_eq!(*first.unwrap_err().downcast::<&str>().unwrap(), "database is on fire");
/// // ... the other one a `Panicked` that carries the message.
/// let payload = second.unwrap_err().downcast::<Panicked>().unwrap();
/// assert_eq!(payload.message(), "database is on fire");
/// assert_eq!(group.in_flight(), 0);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Panicked {
    message: Arc<str>,
}

impl Panicked {
    /// Builds the followers' payload from the payload the work panicked with.
    #[cold]
    pub(crate) fn from_payload(payload: &(dyn Any + Send)) -> Self {
        let message: Arc<str> = if let Some(s) = payload.downcast_ref::<&'static str>() {
            Arc::from(*s)
        } else if let Some(s) = payload.downcast_ref::<String>() {
            Arc::from(s.as_str())
        } else if let Some(p) = payload.downcast_ref::<Panicked>() {
            // The work awaited another flight that panicked: keep the root message.
            p.message.clone()
        } else {
            Arc::from("<non-string panic payload>")
        };
        Self { message }
    }

    /// A payload carrying `message`, for code that runs a flight's work elsewhere and hands its
    /// panic on: the Redis crate builds one for the callers of a process whose flight's owner,
    /// in another process, panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::Panicked;
    ///
    /// let payload = Panicked::new("database is on fire");
    /// assert_eq!(payload.message(), "database is on fire");
    /// assert_eq!(
    ///     payload.to_string(),
    ///     "the shared work of this flight panicked: database is on fire"
    /// );
    /// ```
    pub fn new(message: impl Into<Arc<str>>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message of the original panic (`"<non-string panic payload>"` if it had none).
    ///
    /// # Examples
    ///
    /// See [`Panicked`].
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panicked")
            .field("message", &self.message())
            .finish()
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the shared work of this flight panicked: {}",
            self.message
        )
    }
}

impl std::error::Error for Panicked {}
