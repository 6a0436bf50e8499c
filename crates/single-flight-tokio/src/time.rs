//! The error of a wait that timed out, and the timeout all the helpers share.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The error of a timed wait for a flight: this caller waited longer than it was allowed to.
///
/// Only the caller's wait ended; the flight itself goes on for its other waiters (or, when it
/// was spawned, to its end).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use single_flight::Group;
/// use single_flight_tokio::GroupExt;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let group: Group<u32> = Group::new();
/// let slow = || async { tokio::time::sleep(Duration::from_secs(60)).await; 1 };
/// let err = group.call_timeout(Duration::from_millis(10), slow).await.unwrap_err();
/// assert_eq!(err.waited(), Duration::from_millis(10));
/// assert_eq!(err.to_string(), "single-flight: waited longer than 10ms for the flight");
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    waited: Duration,
}

impl Elapsed {
    /// How long the caller was allowed to wait: the timeout, or for a deadline the time from
    /// the call to the deadline.
    ///
    /// # Examples
    ///
    /// See [`Elapsed`].
    pub fn waited(&self) -> Duration {
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

/// The deadline of a timeout that starts now; `None` if it is too far away to represent.
pub(crate) fn deadline_after(duration: Duration) -> Option<Instant> {
    Instant::now().checked_add(duration)
}

/// The time from now to `deadline`, for the error.
pub(crate) fn until(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Waits for `future` until `deadline` (forever if `None`). The sleep is created when this is
/// first polled, so the helpers can be called outside the runtime and awaited inside it.
pub(crate) async fn timeout<T>(
    deadline: Option<Instant>,
    waited: Duration,
    future: impl Future<Output = T>,
) -> Result<T, Elapsed> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future)
            .await
            .map_err(|_| Elapsed { waited }),
        None => Ok(future.await),
    }
}
