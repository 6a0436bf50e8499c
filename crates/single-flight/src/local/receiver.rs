//! `local::Receiver`: the owned handle that a local group's `do_chan` returns.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::FusedFuture;

use crate::flight::wait::Waiter;
use crate::flight::{Flight, Lifecycle, Local};
use crate::outcome::Outcome;

/// The wait of a local receiver: not `Send`, since the flight's work may be driven from it.
type Wait<V> = Pin<Box<dyn Future<Output = Outcome<V>> + 'static>>;

/// The value of a local group's flight, as a future that owns its place among the flight's
/// waiters: [`crate::Receiver`] for [`local`](crate::local) groups, `!Send`.
///
/// # Cancel safety
///
/// As for [`crate::Receiver`]: dropping it counts it out of its flight; the other waiters go on
/// with the same work, and if it was the last one, the work is dropped and the key freed.
///
/// # Panics
///
/// Polling it panics if the flight's work panicked, and if it is polled again after it returned
/// its value.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use single_flight::local::KeyedGroup;
///
/// # futures_lite::future::block_on(async {
/// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
/// let factor = Rc::new(3);
/// let rx = group.do_chan(2, move |k| async move { k * *factor });
/// assert!(!rx.is_finished());
/// assert_eq!(rx.await, 6);
/// # });
/// ```
#[must_use = "futures do nothing unless you .await or poll them"]
pub struct Receiver<V> {
    /// `None` once the value has been returned.
    wait: Option<Wait<V>>,
    flight: Flight<V, Local>,
}

impl<V: Clone + Send + 'static> Receiver<V> {
    pub(crate) fn new<R>(waiter: Waiter<V, R, Local>) -> Self
    where
        R: Deref + 'static,
        R::Target: Lifecycle<V, Local> + Sized,
    {
        // The waiter moves into the boxed wait now, so that dropping an unpolled receiver still
        // runs its guard.
        Self {
            flight: waiter.flight.clone(),
            wait: Some(Box::pin(waiter.wait())),
        }
    }

    /// Whether polling this receiver would return at once: its flight has ended, or it has
    /// returned its value already.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::local::Group;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: Group<u8> = Group::new();
    /// let first = group.do_chan(|| async { 7 });
    /// let second = group.do_chan(|| async { unreachable!("joins") });
    /// assert_eq!(first.await, 7);
    /// assert!(second.is_finished());
    /// # });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.wait.is_none() || self.flight.has_ended()
    }

    /// The whole [`Outcome`] instead of the value: this receiver's [`Role`](crate::Role) and
    /// how many callers the value went to.
    ///
    /// # Panics
    ///
    /// As for polling the receiver.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::{local::Group, Role};
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: Group<u8> = Group::new();
    /// let outcome = group.do_chan(|| async { 7 }).with_role().await;
    /// assert_eq!((outcome.value, outcome.role, outcome.callers), (7, Role::Started, 1));
    /// # });
    /// ```
    pub async fn with_role(mut self) -> Outcome<V> {
        std::future::poll_fn(|cx| self.poll_outcome(cx)).await
    }

    fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Outcome<V>> {
        let wait = self
            .wait
            .as_mut()
            .expect("single-flight: Receiver polled after it returned its value");
        let out = std::task::ready!(wait.as_mut().poll(cx));
        self.wait = None;
        Poll::Ready(out)
    }
}

impl<V: Clone + Send + 'static> Future for Receiver<V> {
    type Output = V;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<V> {
        self.get_mut().poll_outcome(cx).map(|outcome| outcome.value)
    }
}

/// A receiver is terminated once it has returned its value; `futures::select!` then skips it.
impl<V: Clone + Send + 'static> FusedFuture for Receiver<V> {
    fn is_terminated(&self) -> bool {
        self.wait.is_none()
    }
}

impl<V> fmt::Debug for Receiver<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("finished", &self.wait.is_none())
            .finish()
    }
}
