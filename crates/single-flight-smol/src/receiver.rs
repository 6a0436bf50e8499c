//! `ReceiverExt`: waiting for a `Receiver` with a timeout, on smol.
//!
//! Each method is `Smol::on(self).method(..)`; the docs live on [`On`].

use std::future::Future;
use std::time::Duration;
use std::time::Instant;

use single_flight::runtime::Runtime;
use single_flight::{Elapsed, Receiver};

use crate::runtime::Smol;
use crate::sealed::Sealed;
// Only the docs' links name it.
#[cfg(doc)]
use single_flight::runtime::On;

/// Waiting for a [`Receiver`] with a timeout on `async-io`'s timer: the methods of [`On`] for
/// [`Smol`](crate::Smol), which documents them.
///
/// Implemented for [`Receiver`] only (the trait is sealed).
pub trait ReceiverExt<V>: Sealed {
    /// [`On::recv_timeout`]: waits for the flight's value for at most `duration`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::KeyedGroup;
    /// use single_flight_smol::ReceiverExt;
    ///
    /// # smol::block_on(async {
    /// let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    /// let rx = group.do_chan("k", |_| futures_lite::future::pending());
    /// let err = rx.recv_timeout(Duration::from_millis(10)).await.unwrap_err();
    /// assert_eq!(err.waited(), Duration::from_millis(10));
    /// assert_eq!(group.in_flight(), 0); // the only waiter left: the work is gone
    /// # });
    /// ```
    fn recv_timeout(
        self,
        duration: Duration,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send + 'static;

    /// [`On::recv_deadline`]: waits until `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use single_flight::Group;
    /// use single_flight_smol::ReceiverExt;
    ///
    /// # smol::block_on(async {
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
        Smol::on(self).recv_timeout(duration)
    }

    fn recv_deadline(
        self,
        deadline: Instant,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send + 'static {
        Smol::on(self).recv_deadline(deadline)
    }
}
