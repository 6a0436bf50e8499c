//! `Elapsed`: the error every runtime adapter's timeouts report.

use std::fmt;
use std::time::Duration;

/// The error of a timed wait for a flight: this caller waited longer than it was allowed to.
///
/// Only the caller's wait ended; the flight itself goes on for its other waiters (or, when it
/// was spawned, to its end). The core has no timers; the runtime adapters (`single-flight-tokio`,
/// `-smol`, `-async-std`) return this type from their timeouts, so code that handles it does not
/// change with the runtime.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use single_flight::Elapsed;
///
/// let err = Elapsed::new(Duration::from_millis(10));
/// assert_eq!(err.waited(), Duration::from_millis(10));
/// assert_eq!(err.to_string(), "single-flight: waited longer than 10ms for the flight");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    waited: Duration,
}

impl Elapsed {
    /// The error of a wait that was allowed `waited`; for the adapters' timeouts.
    ///
    /// # Examples
    ///
    /// See [`Elapsed`].
    pub const fn new(waited: Duration) -> Self {
        Self { waited }
    }

    /// How long the caller was allowed to wait: the timeout, or for a deadline the time from
    /// the call to the deadline.
    ///
    /// # Examples
    ///
    /// See [`Elapsed`].
    pub const fn waited(&self) -> Duration {
        self.waited
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "single-flight: waited longer than {:?} for the flight",
            self.waited
        )
    }
}

impl std::error::Error for Elapsed {}
