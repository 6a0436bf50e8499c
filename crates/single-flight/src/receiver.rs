//! `Receiver`: an owned handle on a flight, returned by `do_chan`.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::FusedFuture;

use crate::flight::wait::Waiter;
use crate::flight::{Flight, Lifecycle};
use crate::outcome::Outcome;

type Wait<V> = Pin<Box<dyn Future<Output = Outcome<V>> + Send + Sync + 'static>>;

/// The value of a flight, as a future that owns its place among the flight's waiters.
///
/// Returned by [`KeyedGroup::do_chan`](crate::KeyedGroup::do_chan) and
/// [`Group::do_chan`](crate::Group::do_chan). It is registered with its flight from the moment
/// it is created, is `'static`, `Send` and `Unpin`, and can be polled from any task: it drives
/// the flight's work when its turn comes, like a waiting `call`.
///
/// A receiver keeps one heap allocation: the state of its wait (listener included).
///
/// # Cancel safety
///
/// Dropping a receiver, polled or not, counts it out of its flight: the other waiters go on
/// with the same work; if it was the last one, the work is dropped and the key freed at once.
///
/// # Panics
///
/// Polling it panics if the flight's work panicked (see
/// [`KeyedGroup::call`](crate::KeyedGroup::call), section *Panics*), and if it is polled again after it
/// returned its value.
///
/// # Examples
///
/// ```
/// use single_flight::KeyedGroup;
///
/// # futures_lite::future::block_on(async {
/// let group: KeyedGroup<&str, u32> = KeyedGroup::new();
/// let rx = group.do_chan("answer", |_| async { 42 });
/// // Receivers are owned: send them to another task, select on them, ...
/// let value = std::thread::spawn(move || futures_lite::future::block_on(rx)).join().unwrap();
/// assert_eq!(value, 42);
/// # });
/// ```
#[must_use = "futures do nothing unless you .await or poll them"]
pub struct Receiver<V> {
    /// `None` once the value has been returned.
    wait: Option<Wait<V>>,
    flight: Flight<V>,
}

impl<V: Clone + Send + 'static> Receiver<V> {
    pub(crate) fn new<R>(waiter: Waiter<V, R>) -> Self
    where
        R: Deref + Send + Sync + 'static,
        R::Target: Lifecycle<V> + Sized + Sync,
    {
        // The waiter moves into the boxed wait now, so that dropping an unpolled receiver still
        // runs its guard.
        Self {
            flight: waiter.flight.clone(),
            wait: Some(Box::pin(waiter.wait())),
        }
    }

    /// Whether polling this receiver would return at once: its flight has ended (with a value
    /// or a panic), or it has returned its value already. Takes the flight's short lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
    /// let first = group.do_chan(1, |_| async { 7 });
    /// let second = group.do_chan(1, |_| async { unreachable!("joins") });
    /// assert!(!second.is_finished()); // nobody has polled the work yet
    /// assert_eq!(first.await, 7);
    /// assert!(second.is_finished());
    /// assert_eq!(second.await, 7);
    /// # });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.wait.is_none() || self.flight.has_ended()
    }

    /// Turns this receiver into a future of the whole [`Outcome`]: the value, this receiver's
    /// [`Role`](crate::Role) and how many callers the value went to.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::{KeyedGroup, Role};
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
    /// let a = group.do_chan(1, |_| async { 7 }).with_role();
    /// let b = group.do_chan(1, |_| async { 8 }).with_role();
    /// let (a, b) = futures_lite::future::zip(a, b).await;
    /// assert_eq!((a.role, b.role), (Role::Started, Role::Joined));
    /// assert_eq!((a.value, b.value, a.callers), (7, 7, 2));
    /// # });
    /// ```
    pub fn with_role(self) -> WithRole<V> {
        WithRole { receiver: self }
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

/// Future returned by [`Receiver::with_role`]: the flight's [`Outcome`] for this receiver.
///
/// # Cancel safety
///
/// As for [`Receiver`].
#[must_use = "futures do nothing unless you .await or poll them"]
pub struct WithRole<V> {
    receiver: Receiver<V>,
}

impl<V: Clone + Send + 'static> Future for WithRole<V> {
    type Output = Outcome<V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<V>> {
        self.get_mut().receiver.poll_outcome(cx)
    }
}

impl<V: Clone + Send + 'static> FusedFuture for WithRole<V> {
    fn is_terminated(&self) -> bool {
        self.receiver.is_terminated()
    }
}

impl<V> fmt::Debug for WithRole<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WithRole").field(&self.receiver).finish()
    }
}
