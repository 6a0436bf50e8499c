//! The timeout all the helpers share, and its error (the core's `Elapsed`).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

pub use single_flight::Elapsed;

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
            .map_err(|_| Elapsed::new(waited)),
        None => Ok(future.await),
    }
}
