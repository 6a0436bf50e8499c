//! `ReceiverExt`: waiting for a `Receiver` with a timeout, on tokio.
//!
//! Each method is `Tokio::on(self).method(..)`; the docs live on [`On`].

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use single_flight::runtime::Runtime;
use single_flight::{Elapsed, Receiver};

use crate::runtime::Tokio;
use crate::sealed::Sealed;
// Only the docs' links name it.
#[cfg(doc)]
use single_flight::runtime::On;

/// Waiting for a [`Receiver`] with a timeout, on tokio: the methods of [`On`] for
/// [`Tokio`](crate::Tokio), which documents them.
///
/// Implemented for [`Receiver`] only (the trait is sealed).
pub trait ReceiverExt<V>: Sealed {
    /// [`On::recv_timeout`] on tokio's clock: waits for the flight's value for at most
    /// `duration`. Polling panics outside a tokio runtime or without a time driver.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::KeyedGroup;
    /// use single_flight_tokio::{KeyedGroupExt, ReceiverExt};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    /// let rx = group.do_chan_spawned("k", |_| async {
    ///     tokio::time::sleep(Duration::from_secs(5)).await;
    ///     1
    /// });
    /// let err = rx.recv_timeout(Duration::from_secs(1)).await.unwrap_err();
    /// assert_eq!(err.waited(), Duration::from_secs(1));
    /// # }
    /// ```
    fn recv_timeout(
        self,
        duration: Duration,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send + 'static;

    /// [`On::recv_deadline`] at a tokio [`Instant`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::Group;
    /// use single_flight_tokio::ReceiverExt;
    /// use tokio::time::Instant;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let group: Group<u32> = Group::new();
    /// let rx = group.do_chan(|| async { 4 });
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// assert_eq!(rx.recv_deadline(deadline).await, Ok(4));
    /// # }
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
        Tokio::on(self).recv_timeout(duration)
    }

    fn recv_deadline(
        self,
        deadline: Instant,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send + 'static {
        Tokio::on(self).recv_deadline(deadline.into_std())
    }
}
