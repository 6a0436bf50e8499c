//! The timeout of every runtime, written once over [`Runtime`]: the deadline arithmetic and the
//! race in which the value wins a tie.

use std::future::Future;
use std::time::{Duration, Instant};

use super::Runtime;
use crate::Elapsed;

/// When a timed wait ends (`None`: too far away to represent, so never) and how long it was
/// allowed, for the error.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Option<Instant>,
    waited: Duration,
}

impl Deadline {
    /// A wait of `duration` from now on `R`'s clock.
    fn after<R: Runtime>(duration: Duration) -> Self {
        Self {
            at: R::now().checked_add(duration),
            waited: duration,
        }
    }

    /// A wait until `deadline`; it was allowed the time from now to then.
    fn at<R: Runtime>(deadline: Instant) -> Self {
        Self {
            at: Some(deadline),
            waited: deadline.saturating_duration_since(R::now()),
        }
    }
}

/// Waits for `future` for at most `duration` on `R`'s clock, counted from this call; the value
/// wins if it is ready at the same poll as the timer. `Send` when `future` is.
///
/// # Cancellation
///
/// Dropping the returned future drops `future` (and the timer).
///
/// # Panics
///
/// If `future` panics, or `R`'s timer does (say it needs to run inside its runtime).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use single_flight::runtime::{timeout, Runtime};
/// # struct Rt;
/// # impl Runtime for Rt {
/// #     fn sleep_until(at: std::time::Instant) -> impl std::future::Future<Output = ()> + Send {
/// #         async move { async_io::Timer::at(at).await; }
/// #     }
/// #     fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(task: F) { drop(task) }
/// # }
///
/// # futures_lite::future::block_on(async {
/// let value = timeout::<Rt, _>(Duration::from_secs(1), async { 5 }).await;
/// assert_eq!(value, Ok(5));
/// # });
/// ```
pub fn timeout<R: Runtime, T>(
    duration: Duration,
    future: impl Future<Output = T>,
) -> impl Future<Output = Result<T, Elapsed>> {
    race::<R, T>(Deadline::after::<R>(duration), future)
}

/// Like [`timeout`], until `deadline` (an instant of `R`'s clock).
///
/// # Cancellation
///
/// As for [`timeout`].
///
/// # Panics
///
/// As for [`timeout`].
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use single_flight::runtime::{timeout_at, Runtime};
/// # struct Rt;
/// # impl Runtime for Rt {
/// #     fn sleep_until(at: std::time::Instant) -> impl std::future::Future<Output = ()> + Send {
/// #         async move { async_io::Timer::at(at).await; }
/// #     }
/// #     fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(task: F) { drop(task) }
/// # }
///
/// # futures_lite::future::block_on(async {
/// let deadline = Instant::now() + Duration::from_millis(1);
/// let late = timeout_at::<Rt, ()>(deadline, std::future::pending()).await;
/// assert!(late.is_err());
/// # });
/// ```
pub fn timeout_at<R: Runtime, T>(
    deadline: Instant,
    future: impl Future<Output = T>,
) -> impl Future<Output = Result<T, Elapsed>> {
    race::<R, T>(Deadline::at::<R>(deadline), future)
}

/// Races `future` against the deadline's timer, which is created at the first poll; the value
/// wins if both are ready.
async fn race<R: Runtime, T>(
    deadline: Deadline,
    future: impl Future<Output = T>,
) -> Result<T, Elapsed> {
    let Some(at) = deadline.at else {
        return Ok(future.await);
    };
    let value = async { Ok(future.await) };
    let elapsed = async {
        R::sleep_until(at).await;
        Err(Elapsed::new(deadline.waited))
    };
    futures_lite::future::or(value, elapsed).await
}
