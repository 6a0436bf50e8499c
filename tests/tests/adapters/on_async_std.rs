//! The suite on async-std, and a spawned flight whose receivers wait on threads of their own.

use single_flight_async_std as adapter;

/// The adapter's runtime, for the core's `timeout` in the suite.
type Runtime = adapter::AsyncStd;

// The suite is compiled once per runtime, on purpose.
#[allow(clippy::duplicate_mod)]
#[path = "suite.rs"]
mod suite;

/// async-std's side of the suite.
mod rt {
    use std::future::Future;

    pub(super) use async_std::task::{block_on, sleep};
    pub(super) use std::time::Instant;

    /// Spawns `future` on async-std; the returned future waits for its output.
    pub(super) fn spawn<T: Send + 'static>(
        future: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> {
        async_std::task::spawn(future)
    }
}

#[test]
fn spawned_flight_shared_across_threads() {
    suite::spawned_flight_shared_across_threads();
}
