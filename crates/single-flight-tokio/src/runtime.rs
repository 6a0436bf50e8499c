//! What this adapter takes from tokio: its clock and timer, and its spawn. Everything else is
//! the core's `single_flight::adapter`, shared by every runtime adapter.

use std::future::Future;
use std::time::Instant;

use single_flight::Detached;

/// tokio's clock (which tests may pause) and its timer.
#[derive(Debug)]
pub(crate) struct Timer;

impl single_flight::adapter::Timer for Timer {
    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        tokio::time::sleep_until(deadline.into())
    }
}

/// Hands a detached flight to the current runtime; the task's handle is not needed.
pub(crate) fn spawn<V: Clone + Send + 'static>(task: Detached<V>) {
    drop(tokio::spawn(task));
}
