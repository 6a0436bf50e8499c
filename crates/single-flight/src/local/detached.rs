//! `local::Detached`: a local flight's work handed to a thread-local executor.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::flight::detached::{DetachedFlight, LifecycleRef};
use crate::flight::{Lifecycle, Local};

/// The registry as a local task keeps it: neither `Send` nor `Sync` asked.
pub(crate) type LocalLifecycle<V> = Arc<dyn Lifecycle<V, Local>>;

impl<V> LifecycleRef<V, Local> for LocalLifecycle<V> {
    fn lifecycle(&self) -> &dyn Lifecycle<V, Local> {
        &**self
    }
}

/// The work of a local detached flight, for a thread-local executor's `spawn_local`: the
/// `!Send` counterpart of [`crate::Detached`], with the same behaviour; see
/// [`local::KeyedGroup::do_chan_detached`](crate::local::KeyedGroup::do_chan_detached).
///
/// # Cancel safety
///
/// Dropping it before it completes hands the work back to the flight's waiters, which drive it
/// from then on; with no waiter left, the work is dropped and the key freed.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use single_flight::local::{Detached, Group};
///
/// let group: Group<u32> = Group::new();
/// let five = Rc::new(5);
/// let mut task: Option<Detached<u32>> = None;
/// let rx = group.do_chan_detached(move || async move { *five }, |t| task = Some(t));
/// drop(rx); // every waiter left, the detached work still runs:
/// futures_lite::future::block_on(task.unwrap());
/// assert_eq!(group.in_flight(), 0);
/// ```
#[must_use = "futures do nothing unless you .await or poll them"]
pub struct Detached<V>(pub(crate) DetachedFlight<V, Local, LocalLifecycle<V>>);

impl<V: Clone + Send + 'static> Future for Detached<V> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.poll_task(cx)
    }
}

impl<V> fmt::Debug for Detached<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detached")
            .field("finished", &self.0.is_finished())
            .finish()
    }
}
