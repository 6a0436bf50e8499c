//! `KeyedGroupExt`: timeouts and spawned flights for `KeyedGroup`, on async-std.
//!
//! Each method is `AsyncStd::on(self).method(..)`; the docs live on [`On`].

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;
use std::time::Instant;

use single_flight::runtime::Runtime;
use single_flight::{Elapsed, KeyedGroup, Receiver};

use crate::runtime::AsyncStd;
use crate::sealed::Sealed;
// Only the docs' links name it.
#[cfg(doc)]
use single_flight::runtime::On;

/// Timeouts and spawned (detached) flights for [`KeyedGroup`], on async-std: the methods of
/// [`On`] for [`AsyncStd`], which documents them.
///
/// Implemented for [`KeyedGroup`] only (the trait is sealed).
pub trait KeyedGroupExt<K, V>: Sealed {
    /// [`On::call_timeout`] on async-std's timer: [`KeyedGroup::call`], giving up after
    /// `duration` with [`Elapsed`]. Cancellation and panics: see there.
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

    /// [`On::call_deadline`]: gives up at `deadline`.
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

    /// [`On::do_chan_spawned`] with [`async_std::task::spawn`] (detached): a flight this call
    /// starts runs on its own task to its end, whoever waits (Go's `DoChan`).
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
