//! `GroupExt`: timeouts and spawned flights for `Group`, on async-std.
//!
//! Each method is `AsyncStd::on(self).method(..)`; the docs live on [`On`].

use std::future::Future;
use std::time::Duration;
use std::time::Instant;

use single_flight::runtime::Runtime;
use single_flight::{Elapsed, Group, Receiver};

use crate::runtime::AsyncStd;
use crate::sealed::Sealed;
// Only the docs' links name it.
#[cfg(doc)]
use single_flight::runtime::On;

/// Timeouts and spawned (detached) flights for [`Group`], on async-std: the methods of [`On`]
/// for [`AsyncStd`](crate::AsyncStd), which documents them.
///
/// Implemented for [`Group`] only (the trait is sealed).
pub trait GroupExt<V>: Sealed {
    /// [`On::call_timeout`] for a [`Group`], on async-std's timer.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::Group;
    /// use single_flight_async_std::GroupExt;
    ///
    /// # async_std::task::block_on(async {
    /// static TOKEN: Group<String> = Group::new();
    /// let token = TOKEN.call_timeout(Duration::from_secs(1), || async { "t-1".to_owned() });
    /// assert_eq!(token.await.unwrap(), "t-1");
    /// # });
    /// ```
    fn call_timeout<F, Fut>(
        &self,
        duration: Duration,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = V> + Send + 'static;

    /// [`On::call_deadline`] for a [`Group`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use single_flight::Group;
    /// use single_flight_async_std::GroupExt;
    ///
    /// # async_std::task::block_on(async {
    /// let group: Group<u8> = Group::new();
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// let late = group.call_deadline(deadline, async_std::future::pending);
    /// assert!(late.await.is_err());
    /// # });
    /// ```
    fn call_deadline<F, Fut>(
        &self,
        deadline: Instant,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = V> + Send + 'static;

    /// [`On::do_chan_spawned`] for a [`Group`], with `async_std::task::spawn`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::Group;
    /// use single_flight_async_std::{GroupExt, ReceiverExt};
    ///
    /// # async_std::task::block_on(async {
    /// let group: Group<u32> = Group::new();
    /// let (open, gate) = async_std::channel::bounded::<()>(1);
    /// let refresh = || async move { let _ = gate.recv().await; 7 };
    /// // Wait at most 10 ms; the refresh itself runs to its end on its own task.
    /// assert!(group.do_chan_spawned(refresh).recv_timeout(Duration::from_millis(10)).await.is_err());
    /// assert_eq!(group.in_flight(), 1);
    /// let joined = group.do_chan_spawned(|| async { 0 }); // joins the running refresh
    /// open.close();
    /// assert_eq!(joined.await, 7);
    /// # });
    /// ```
    fn do_chan_spawned<F, Fut>(&self, work: F) -> Receiver<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static;
}

impl<V: Clone + Send + 'static> GroupExt<V> for Group<V> {
    fn call_timeout<F, Fut>(
        &self,
        duration: Duration,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = V> + Send + 'static,
    {
        AsyncStd::on(self).call_timeout(duration, work)
    }

    fn call_deadline<F, Fut>(
        &self,
        deadline: Instant,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = V> + Send + 'static,
    {
        AsyncStd::on(self).call_deadline(deadline, work)
    }

    fn do_chan_spawned<F, Fut>(&self, work: F) -> Receiver<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        AsyncStd::on(self).do_chan_spawned(work)
    }
}
