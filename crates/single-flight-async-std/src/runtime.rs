//! What this adapter takes from async-std: its timer, and its spawn. Everything else is the
//! core's `single_flight::adapter`, shared by every runtime adapter.

use std::future::Future;
use std::time::Instant;

use single_flight::Detached;

/// The system clock and async-std's sleep.
#[derive(Debug)]
pub(crate) struct Timer;

impl single_flight::adapter::Timer for Timer {
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        async_std::task::sleep(deadline.saturating_duration_since(Instant::now()))
    }
}

/// Hands a detached flight to async-std; dropping the task's handle detaches it.
pub(crate) fn spawn<V: Clone + Send + 'static>(task: Detached<V>) {
    drop(async_std::task::spawn(task));
}
