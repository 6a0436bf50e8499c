//! The timeout all the helpers share, and its error (the core's `Elapsed`).

use std::future::Future;
use std::time::{Duration, Instant};

use async_io::Timer;

pub use single_flight::Elapsed;

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
        Err(Elapsed::new(waited))
    };
    futures_lite::future::or(value, elapsed).await
}
