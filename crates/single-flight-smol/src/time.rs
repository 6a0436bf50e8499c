//! The error of a wait that timed out, and the timeout all the helpers share.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use async_io::Timer;

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
/// use single_flight_smol::GroupExt;
///
/// # smol::block_on(async {
/// let group: Group<u32> = Group::new();
/// let slow = || async { futures_lite::future::pending().await };
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

/// A timer that fires `duration` from now, and the error it reports.
pub(crate) fn after(duration: Duration) -> (Timer, Duration) {
    (Timer::after(duration), duration)
}

/// A timer that fires at `deadline`, and the error it reports.
pub(crate) fn at(deadline: Instant) -> (Timer, Duration) {
    (
        Timer::at(deadline),
        deadline.saturating_duration_since(Instant::now()),
    )
}

/// Waits for `future` until `timer` fires; the value wins if both are ready.
pub(crate) async fn timeout<T>(
    (timer, waited): (Timer, Duration),
    future: impl Future<Output = T>,
) -> Result<T, Elapsed> {
    let value = async { Ok(future.await) };
    let elapsed = async {
        timer.await;
        Err(Elapsed { waited })
    };
    futures_lite::future::or(value, elapsed).await
}
