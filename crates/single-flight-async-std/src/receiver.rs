//! `ReceiverExt`: waiting for a `Receiver` with a timeout.

use std::future::Future;
use std::time::Duration;
use std::time::Instant;

use single_flight::runtime::Runtime;
use single_flight::{Elapsed, Receiver};

use crate::runtime::AsyncStd;
use crate::sealed::Sealed;

/// Waiting for a [`Receiver`] with a timeout, on async-std.
///
/// Implemented for [`Receiver`] only (the trait is sealed). A [`Receiver`] is also `Unpin`, so
/// `async_std::future::timeout(duration, &mut receiver)` works too, for a caller that wants to
/// keep its place in the flight after a timeout.
pub trait ReceiverExt<V>: Sealed {
    /// Waits for the flight's value for at most `duration`, counted from this call.
    ///
    /// # Cancellation
    ///
    /// On timeout the receiver is dropped: it leaves its flight, and the flight goes on for
    /// its other waiters. A spawned flight ([`do_chan_spawned`]) runs to completion anyway; a
    /// flight that only its waiters drive is dropped if this was the last one. Dropping the
    /// returned future has the same effect.
    ///
    /// [`do_chan_spawned`]: crate::KeyedGroupExt::do_chan_spawned
    ///
    /// # Panics
    ///
    /// Polling panics if the flight's work panicked (see [`Receiver`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::KeyedGroup;
    /// use single_flight_async_std::ReceiverExt;
    ///
    /// # async_std::task::block_on(async {
    /// let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    /// let rx = group.do_chan("k", |_| async_std::future::pending());
    /// let err = rx.recv_timeout(Duration::from_millis(10)).await.unwrap_err();
    /// assert_eq!(err.waited(), Duration::from_millis(10));
    /// assert_eq!(group.in_flight(), 0); // the only waiter left: the work is gone
    /// # });
    /// ```
    fn recv_timeout(
        self,
        duration: Duration,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send + 'static;

    /// Waits for the flight's value until `deadline`.
    ///
    /// # Cancellation
    ///
    /// As for [`recv_timeout`](Self::recv_timeout).
    ///
    /// # Panics
    ///
    /// As for [`recv_timeout`](Self::recv_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use single_flight::Group;
    /// use single_flight_async_std::ReceiverExt;
    ///
    /// # async_std::task::block_on(async {
    /// let group: Group<u32> = Group::new();
    /// let rx = group.do_chan(|| async { 4 });
    /// let deadline = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(rx.recv_deadline(deadline).await, Ok(4));
    /// # });
    /// ```
    fn recv_deadline(
        self,
        deadline: Instant,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send + 'static;
}

impl<V: Clone + Send + 'static> ReceiverExt<V> for Receiver<V> {
    fn recv_timeout(
        self,
        duration: Duration,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send + 'static {
        AsyncStd::on(self).recv_timeout(duration)
    }

    fn recv_deadline(
        self,
        deadline: Instant,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send + 'static {
        AsyncStd::on(self).recv_deadline(deadline)
    }
}
