//! What this adapter takes from smol: `async-io`'s timer, and its spawn (on smol's global
//! executor, or on a given one). Everything else is the core's `single_flight::adapter`, shared
//! by every runtime adapter.

use std::future::Future;
use std::time::Instant;

use async_executor::Executor;
use single_flight::Detached;

/// The system clock and `async-io`'s timer, which any executor can drive.
#[derive(Debug)]
pub(crate) struct Timer;

impl single_flight::adapter::Timer for Timer {
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        let timer = async_io::Timer::at(deadline);
        async move {
            timer.await;
        }
    }
}

/// Hands a detached flight to smol's global executor; dropping the task would cancel it, so it
/// is detached.
#[cfg(feature = "smol")]
pub(crate) fn spawn<V: Clone + Send + 'static>(task: Detached<V>) {
    smol::spawn(task).detach();
}

/// Hands a detached flight to `executor`.
pub(crate) fn spawn_on<V: Clone + Send + 'static>(executor: &Executor<'_>, task: Detached<V>) {
    executor.spawn(task).detach();
}
