//! `KeyedGroupExt`: timeouts and spawned flights for `KeyedGroup`.

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use tokio::time::Instant;

use single_flight::runtime::Runtime;
use single_flight::{Elapsed, KeyedGroup, Receiver};

use crate::runtime::Tokio;
use crate::sealed::Sealed;
// Only the docs' links name these.
#[cfg(doc)]
use single_flight::Detached;

/// Timeouts and spawned (detached) flights for [`KeyedGroup`], on tokio.
///
/// Implemented for [`KeyedGroup`] only (the trait is sealed).
pub trait KeyedGroupExt<K, V>: Sealed {
    /// Like [`KeyedGroup::call`], but gives up after `duration` with [`Elapsed`].
    /// (For the caller's [`Outcome`](single_flight::Outcome) as well, time the call's
    /// [`with_role`](single_flight::Call::with_role) with
    /// [`timeout`](single_flight::runtime::timeout)`::<Tokio, _>`.)
    ///
    /// The time counts from this call; the caller registers with the flight when the future is
    /// first polled. If the value is ready at that first poll, it is returned whatever the
    /// duration.
    ///
    /// # Cancellation
    ///
    /// A timeout ends this caller's wait, not the flight: the caller's registration is dropped
    /// as if its future had been. If other callers wait for the flight, one of them goes on
    /// driving the same work (nothing runs twice); if this caller was the last one, the work is
    /// dropped and the key freed. To let the work finish whoever waits, spawn it:
    /// [`do_chan_spawned`](Self::do_chan_spawned)`(key, work).`[`recv_timeout`](crate::ReceiverExt::recv_timeout)`(duration)`.
    ///
    /// Dropping the returned future before it completes has the same effect as the timeout.
    ///
    /// # Panics
    ///
    /// Polling panics if the runtime has no time driver ([`Builder::enable_time`]), or outside a
    /// tokio runtime. A panic of the work reaches this caller as for [`KeyedGroup::call`].
    ///
    /// [`Builder::enable_time`]: tokio::runtime::Builder::enable_time
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::KeyedGroup;
    /// use single_flight_tokio::KeyedGroupExt;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    /// let fast = group.call_timeout("a", Duration::from_secs(1), |_| async { 1 }).await;
    /// assert_eq!(fast, Ok(1));
    ///
    /// let slow = |_| async { tokio::time::sleep(Duration::from_secs(60)).await; 2 };
    /// let late = group.call_timeout("b", Duration::from_millis(10), slow).await;
    /// assert!(late.is_err());
    /// assert_eq!(group.in_flight(), 0); // it was the only caller: the work is gone
    /// # }
    /// ```
    fn call_timeout<F, Fut>(
        &self,
        key: K,
        duration: Duration,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send
    where
        Self: Sync,
        F: FnOnce(K) -> Fut + Send,
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
    /// use std::time::Duration;
    /// use single_flight::KeyedGroup;
    /// use single_flight_tokio::KeyedGroupExt;
    /// use tokio::time::Instant;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
    /// let deadline = Instant::now() + Duration::from_millis(100);
    /// let value = group.call_deadline(1, deadline, |k| async move { k * 2 }).await;
    /// assert_eq!(value, Ok(2));
    /// # }
    /// ```
    fn call_deadline<F, Fut>(
        &self,
        key: K,
        deadline: Instant,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send
    where
        Self: Sync,
        F: FnOnce(K) -> Fut + Send,
        Fut: Future<Output = V> + Send + 'static;

    /// Like [`KeyedGroup::do_chan`], but a flight this call starts runs on its own tokio task
    /// (`tokio::spawn`): Go's `DoChan`.
    ///
    /// The work then runs to completion even if every receiver is dropped or times out, and
    /// callers arriving meanwhile join it. If a flight for `key` is running, this joins it and
    /// spawns nothing. Combine with [`recv_timeout`](crate::ReceiverExt::recv_timeout) to bound
    /// this caller's wait without cutting the work short.
    ///
    /// If the runtime shuts down before the work completes, the work goes back to the flight's
    /// waiters, which drive it themselves (see [`Detached`]).
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime, like [`tokio::spawn`] (enter one with
    /// [`Handle::enter`](tokio::runtime::Handle::enter) first); the key is then freed. A panic
    /// of the work is caught in the task and reaches every receiver as a
    /// [`Panicked`](single_flight::Panicked).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::KeyedGroup;
    /// use single_flight_tokio::KeyedGroupExt;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let group: KeyedGroup<u32, u32> = KeyedGroup::new();
    /// let rx = group.do_chan_spawned(3, |k| async move {
    ///     tokio::time::sleep(Duration::from_millis(10)).await;
    ///     k * k
    /// });
    /// drop(rx); // nobody waits: the work runs on anyway, and a new caller joins it
    /// assert_eq!(group.in_flight(), 1);
    /// assert_eq!(group.call(3, |_| async { unreachable!() }).await, 9);
    /// # }
    /// ```
    fn do_chan_spawned<F, Fut>(&self, key: K, work: F) -> Receiver<V>
    where
        K: 'static,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static;
}

impl<K, V, S> KeyedGroupExt<K, V> for KeyedGroup<K, V, S>
where
    K: Hash + Eq + Clone + Send,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    fn call_timeout<F, Fut>(
        &self,
        key: K,
        duration: Duration,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send
    where
        Self: Sync,
        F: FnOnce(K) -> Fut + Send,
        Fut: Future<Output = V> + Send + 'static,
    {
        Tokio::on(self).call_timeout(key, duration, work)
    }

    fn call_deadline<F, Fut>(
        &self,
        key: K,
        deadline: Instant,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send
    where
        Self: Sync,
        F: FnOnce(K) -> Fut + Send,
        Fut: Future<Output = V> + Send + 'static,
    {
        Tokio::on(self).call_deadline(key, deadline.into_std(), work)
    }

    fn do_chan_spawned<F, Fut>(&self, key: K, work: F) -> Receiver<V>
    where
        K: 'static,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        Tokio::on(self).do_chan_spawned(key, work)
    }
}
