//! `KeyedGroupExt`: timeouts and spawned flights for `KeyedGroup`.

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;
use std::time::Instant;

use single_flight::runtime::Runtime;
use single_flight::{Elapsed, KeyedGroup, Receiver};

use crate::runtime::AsyncStd;
use crate::sealed::Sealed;

/// Timeouts and spawned (detached) flights for [`KeyedGroup`], on async-std.
///
/// Implemented for [`KeyedGroup`] only (the trait is sealed).
pub trait KeyedGroupExt<K, V>: Sealed {
    /// Like [`KeyedGroup::call`], but gives up after `duration` with [`Elapsed`].
    /// (For the caller's [`Outcome`](single_flight::Outcome) as well, time the call's
    /// [`with_role`](single_flight::Call::with_role) with
    /// [`timeout`](single_flight::runtime::timeout)`::<AsyncStd, _>`.)
    ///
    /// The time counts from this call; the caller registers with the flight when the future is
    /// first polled. If the value and the timer are ready at the same poll, the value wins.
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
    /// A panic of the work reaches this caller as for [`KeyedGroup::call`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::KeyedGroup;
    /// use single_flight_async_std::KeyedGroupExt;
    ///
    /// # async_std::task::block_on(async {
    /// let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    /// let fast = group.call_timeout("a", Duration::from_secs(1), |_| async { 1 }).await;
    /// assert_eq!(fast, Ok(1));
    ///
    /// let slow = |_| async_std::future::pending();
    /// let late = group.call_timeout("b", Duration::from_millis(10), slow).await;
    /// assert!(late.is_err());
    /// assert_eq!(group.in_flight(), 0); // it was the only caller: the work is gone
    /// # });
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
    /// use std::time::{Duration, Instant};
    /// use single_flight::KeyedGroup;
    /// use single_flight_async_std::KeyedGroupExt;
    ///
    /// # async_std::task::block_on(async {
    /// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
    /// let deadline = Instant::now() + Duration::from_secs(1);
    /// let value = group.call_deadline(1, deadline, |k| async move { k * 2 }).await;
    /// assert_eq!(value, Ok(2));
    /// # });
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

    /// Like [`KeyedGroup::do_chan`], but a flight this call starts runs on its own task
    /// ([`async_std::task::spawn`], detached): Go's `DoChan`.
    ///
    /// The work then runs to completion even if every receiver is dropped or times out, and
    /// callers arriving meanwhile join it. If a flight for `key` is running, this joins it and
    /// spawns nothing. Combine with [`recv_timeout`](crate::ReceiverExt::recv_timeout) to bound
    /// this caller's wait without cutting the work short.
    ///
    /// # Panics
    ///
    /// A panic of the work is caught in the task and reaches every receiver as a
    /// [`Panicked`](single_flight::Panicked).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    /// use single_flight_async_std::KeyedGroupExt;
    ///
    /// # async_std::task::block_on(async {
    /// let group: KeyedGroup<u32, u32> = KeyedGroup::new();
    /// let (open, gate) = async_std::channel::bounded::<()>(1);
    /// let rx = group.do_chan_spawned(3, |k| async move {
    ///     let _ = gate.recv().await; // waits until the gate is closed
    ///     k * k
    /// });
    /// drop(rx); // nobody waits: the work runs on anyway, and a new caller joins it
    /// assert_eq!(group.in_flight(), 1);
    /// let joined = group.do_chan(3, |_| async { unreachable!() });
    /// open.close();
    /// assert_eq!(joined.await, 9);
    /// # });
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
        AsyncStd::on(self).call_timeout(key, duration, work)
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
        AsyncStd::on(self).call_deadline(key, deadline, work)
    }

    fn do_chan_spawned<F, Fut>(&self, key: K, work: F) -> Receiver<V>
    where
        K: 'static,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        AsyncStd::on(self).do_chan_spawned(key, work)
    }
}
