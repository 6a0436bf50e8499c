//! What this adapter takes from smol: `async-io`'s timer, and its spawn (on smol's global
//! executor, or on a given one). Everything else is the core's `single_flight::runtime`,
//! written once for every runtime.

use std::future::Future;
use std::time::Instant;

use async_executor::Executor;
use single_flight::runtime::Runtime;
use single_flight::Detached;

/// smol as a [`Runtime`]: the system clock, `async-io`'s timer (which any executor can drive)
/// and `smol::spawn`. smol has no ambient local executor: hand the flights of
/// [`local`](single_flight::local) groups to your `LocalExecutor` with their
/// `do_chan_detached`.
///
/// ```
/// use std::time::Duration;
/// use single_flight::runtime::Runtime;
/// use single_flight::local::KeyedGroup;
/// use single_flight_smol::Smol;
///
/// # smol::block_on(async {
/// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
/// let value = Smol::on(&group).call_timeout(1, Duration::from_secs(1), |k| async move { k });
/// assert_eq!(value.await, Ok(1));
/// # });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Smol;

impl Runtime for Smol {
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        let timer = async_io::Timer::at(deadline);
        async move {
            timer.await;
        }
    }

    /// `smol::spawn`, detached. Without the `smol` feature there is no global executor: this
    /// panics, and `do_chan_spawned_on` takes yours.
    fn spawn<F: Future<Output = ()> + Send + 'static>(task: F) {
        #[cfg(feature = "smol")]
        smol::spawn(task).detach();
        #[cfg(not(feature = "smol"))]
        {
            drop(task);
            panic!(
                "single-flight-smol: spawning on smol's global executor needs the `smol` feature"
            );
        }
    }
}

/// Hands a detached flight to `executor`; dropping the task would cancel it, so it is detached.
pub(crate) fn spawn_on<V: Clone + Send + 'static>(executor: &Executor<'_>, task: Detached<V>) {
    executor.spawn(task).detach();
}
