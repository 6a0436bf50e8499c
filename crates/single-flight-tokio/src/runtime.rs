//! What this adapter takes from tokio: its clock and timer, and its spawns. Everything else is
//! the core's `single_flight::runtime`, written once for every runtime.

use std::future::Future;
use std::time::Instant;

use single_flight::runtime::Runtime;

/// tokio as a [`Runtime`]: its clock (which tests may pause), its timer, `tokio::spawn`, and
/// `tokio::task::spawn_local` for the flights of [`local`](single_flight::local) groups (inside a `LocalSet`).
///
/// The extension traits of this crate name its methods; use it directly for what they do not
/// cover, such as the [`local`](single_flight::local) groups:
///
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
/// use single_flight::local::KeyedGroup;
/// use single_flight::runtime::Runtime;
/// use single_flight_tokio::Tokio;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// tokio::task::LocalSet::new()
///     .run_until(async {
///         let group: KeyedGroup<u8, u8> = KeyedGroup::new();
///         let two = Rc::new(2); // not `Send`
///         let rx = Tokio::on(&group).do_chan_spawned(1, move |k| async move { k * *two });
///         assert_eq!(Tokio::on(rx).recv_timeout(Duration::from_secs(1)).await, Ok(2));
///     })
///     .await;
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

impl Runtime for Tokio {
    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        tokio::time::sleep_until(deadline.into())
    }

    /// `tokio::spawn`; the task's handle is not needed. Panics outside a tokio runtime's
    /// context.
    fn spawn<F: Future<Output = ()> + Send + 'static>(task: F) {
        drop(tokio::spawn(task));
    }

    /// `tokio::task::spawn_local`. Panics outside a `LocalSet`.
    fn spawn_local<F: Future<Output = ()> + 'static>(task: F) {
        drop(tokio::task::spawn_local(task));
    }
}
