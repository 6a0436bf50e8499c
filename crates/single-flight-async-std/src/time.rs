//! The timeout all the helpers share, and its error (the core's `Elapsed`).

use std::future::Future;
use std::time::{Duration, Instant};

pub use single_flight::Elapsed;

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
                .map_err(|_| Elapsed::new(waited))
        }
        None => Ok(future.await),
    }
}
