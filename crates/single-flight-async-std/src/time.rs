//! The error of a wait that timed out, and the timeout all the helpers share.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

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
/// use single_flight_async_std::GroupExt;
///
/// # async_std::task::block_on(async {
/// let group: Group<u32> = Group::new();
/// let slow = || async_std::future::pending();
/// let err = group.call_timeout(Duration::from_millis(10), slow).await.unwrap_err();
/// assert_eq!(err.waited(), Duration::from_millis(10));
/// assert_eq!(err.to_string(), "single-flight: waited longer than 10ms for the flight");
/// # });
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

/// The deadline of a timeout that starts now (`None` if too far away), and its duration.
pub(crate) fn after(duration: Duration) -> (Option<Instant>, Duration) {
    (Instant::now().checked_add(duration), duration)
}

/// A deadline, and the time from now to it.
pub(crate) fn at(deadline: Instant) -> (Option<Instant>, Duration) {
    let waited = deadline.saturating_duration_since(Instant::now());
    (Some(deadline), waited)
}

/// Waits for `future` until the deadline (forever if `None`). async-std's timer starts when it
/// is first polled, so what is left of the time is measured then.
pub(crate) async fn timeout<T>(
    (deadline, waited): (Option<Instant>, Duration),
    future: impl Future<Output = T>,
) -> Result<T, Elapsed> {
    match deadline {
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            async_std::future::timeout(left, future)
                .await
                .map_err(|_| Elapsed { waited })
        }
        None => Ok(future.await),
    }
}
