//! `GroupExt`: timeouts and spawned flights for `Group`.

use std::future::Future;
use std::time::Duration;
use std::time::Instant;

use single_flight::runtime::Runtime;
use single_flight::{Elapsed, Group, Receiver};

use crate::runtime::{spawn_on, Smol};
use crate::sealed::Sealed;

/// Timeouts and spawned (detached) flights for [`Group`], on smol; see [`KeyedGroupExt`],
/// whose documentation of cancellation and panics holds here.
///
/// Implemented for [`Group`] only (the trait is sealed).
///
/// [`KeyedGroupExt`]: crate::KeyedGroupExt
pub trait GroupExt<V>: Sealed {
    /// Like [`Group::call`], but gives up after `duration` with [`Elapsed`]; see
    /// [`KeyedGroupExt::call_timeout`](crate::KeyedGroupExt::call_timeout).
    ///
    /// # Cancellation
    ///
    /// A timeout ends this caller's wait: another waiter goes on with the same work, or, if this
    /// was the last one, the work is dropped. Dropping the future has the same effect.
    ///
    /// # Panics
    ///
    /// A panic of the work reaches this caller as for [`Group::call`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::Group;
    /// use single_flight_smol::GroupExt;
    ///
    /// # smol::block_on(async {
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

    /// Like [`call_timeout`](Self::call_timeout), but gives up at `deadline`.
    ///
    /// # Cancellation
    ///
    /// As for [`call_timeout`](Self::call_timeout).
    ///
    /// # Panics
    ///
    /// As for [`call_timeout`](Self::call_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use single_flight::Group;
    /// use single_flight_smol::GroupExt;
    ///
    /// # smol::block_on(async {
    /// let group: Group<u8> = Group::new();
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// let late = group.call_deadline(deadline, futures_lite::future::pending);
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

    /// Like [`do_chan_spawned_on`](Self::do_chan_spawned_on), on smol's global executor
    /// (`smol::spawn`). Needs the `smol` feature (on by default).
    ///
    /// # Panics
    ///
    /// A panic of the work reaches every receiver.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::Group;
    /// use single_flight_smol::{GroupExt, ReceiverExt};
    ///
    /// # smol::block_on(async {
    /// let group: Group<u32> = Group::new();
    /// let (open, gate) = smol::channel::bounded::<()>(1);
    /// let refresh = || async move { let _ = gate.recv().await; 7 };
    /// // Wait at most 10 ms; the refresh itself runs to its end on smol's executor.
    /// assert!(group.do_chan_spawned(refresh).recv_timeout(Duration::from_millis(10)).await.is_err());
    /// assert_eq!(group.in_flight(), 1);
    /// let joined = group.do_chan_spawned(|| async { 0 }); // joins the running refresh
    /// open.close();
    /// assert_eq!(joined.await, 7);
    /// # });
    /// ```
    #[cfg(feature = "smol")]
    fn do_chan_spawned<F, Fut>(&self, work: F) -> Receiver<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static;

    /// Like [`Group::do_chan`], but a flight this call starts runs on its own task on
    /// `executor`; see
    /// [`KeyedGroupExt::do_chan_spawned_on`](crate::KeyedGroupExt::do_chan_spawned_on).
    ///
    /// # Panics
    ///
    /// A panic of the work reaches every receiver.
    ///
    /// # Examples
    ///
    /// ```
    /// use async_executor::Executor;
    /// use single_flight::Group;
    /// use single_flight_smol::GroupExt;
    ///
    /// let executor = Executor::new();
    /// let group: Group<u32> = Group::new();
    /// let rx = group.do_chan_spawned_on(&executor, || async { 7 });
    /// assert_eq!(futures_lite::future::block_on(executor.run(rx)), 7);
    /// ```
    fn do_chan_spawned_on<F, Fut>(
        &self,
        executor: &async_executor::Executor<'_>,
        work: F,
    ) -> Receiver<V>
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
        Smol::on(self).call_timeout(duration, work)
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
        Smol::on(self).call_deadline(deadline, work)
    }

    #[cfg(feature = "smol")]
    fn do_chan_spawned<F, Fut>(&self, work: F) -> Receiver<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        Smol::on(self).do_chan_spawned(work)
    }

    fn do_chan_spawned_on<F, Fut>(
        &self,
        executor: &async_executor::Executor<'_>,
        work: F,
    ) -> Receiver<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        self.do_chan_detached(work, |task| spawn_on(executor, task))
    }
}
