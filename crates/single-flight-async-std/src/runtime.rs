//! What this adapter takes from async-std: its timer, and its spawn. Everything else is the
//! core's `single_flight::runtime`, written once for every runtime.

use std::future::Future;
use std::time::Instant;

use single_flight::runtime::Runtime;

/// async-std as a [`Runtime`]: the system clock, async-std's sleep and its spawn. (Its local
/// tasks are behind its `unstable` feature: [`local`](single_flight::local) groups take a
/// spawner of your choice through `do_chan_detached`.)
///
/// ```
/// use std::time::Duration;
/// use single_flight::runtime::Runtime;
/// use single_flight::Group;
/// use single_flight_async_std::AsyncStd;
///
/// # async_std::task::block_on(async {
/// let group: Group<u8> = Group::new();
/// let rx = AsyncStd::on(&group).do_chan_spawned(|| async { 3 });
/// assert_eq!(AsyncStd::on(rx).recv_timeout(Duration::from_secs(1)).await, Ok(3));
/// # });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AsyncStd;

impl Runtime for AsyncStd {
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        async_std::task::sleep(deadline.saturating_duration_since(Instant::now()))
    }

    /// `async_std::task::spawn`; dropping the handle detaches the task.
    fn spawn<F: Future<Output = ()> + Send + 'static>(task: F) {
        drop(async_std::task::spawn(task));
    }
}
