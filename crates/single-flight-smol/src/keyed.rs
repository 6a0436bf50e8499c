//! `KeyedGroupExt`: timeouts and spawned flights for `KeyedGroup`, on smol.
//!
//! Each method is `Smol::on(self).method(..)`, and the docs live on [`On`]; only
//! `do_chan_spawned_on`, which takes an executor of yours, is smol's own:
//! `self.do_chan_detached(key, work, |task| spawn_on(executor, task))`.

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;
use std::time::Instant;

use single_flight::runtime::Runtime;
use single_flight::{Elapsed, KeyedGroup, Receiver};

use crate::runtime::{spawn_on, Smol};
use crate::sealed::Sealed;
// Only the docs' links name it.
#[cfg(doc)]
use single_flight::runtime::On;

/// Timeouts and spawned (detached) flights for [`KeyedGroup`], on smol: the methods of [`On`]
/// for [`Smol`], which documents them, and a spawn on an executor of yours.
///
/// Implemented for [`KeyedGroup`] only (the trait is sealed).
pub trait KeyedGroupExt<K, V>: Sealed {
    /// [`On::call_timeout`] on `async-io`'s timer, which needs no runtime: [`KeyedGroup::call`],
    /// giving up after `duration` with [`Elapsed`]. Cancellation and panics: see there.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::KeyedGroup;
    /// use single_flight_smol::KeyedGroupExt;
    ///
    /// # smol::block_on(async {
    /// let group: KeyedGroup<&str, u32> = KeyedGroup::new();
    /// let fast = group.call_timeout("a", Duration::from_secs(1), |_| async { 1 }).await;
    /// assert_eq!(fast, Ok(1));
    ///
    /// let slow = |_| futures_lite::future::pending();
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
    /// use single_flight_smol::KeyedGroupExt;
    ///
    /// # smol::block_on(async {
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

    /// [`On::do_chan_spawned`] on smol's global executor (`smol::spawn`), which runs on threads of
    /// its own: Go's `DoChan`. Needs the `smol` feature (on by default).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    /// use single_flight_smol::KeyedGroupExt;
    ///
    /// # smol::block_on(async {
    /// let group: KeyedGroup<u32, u32> = KeyedGroup::new();
    /// let (open, gate) = smol::channel::bounded::<()>(1);
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
    #[cfg(feature = "smol")]
    fn do_chan_spawned<F, Fut>(&self, key: K, work: F) -> Receiver<V>
    where
        K: 'static,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static;

    /// [`On::do_chan_spawned`] on `executor` instead: a flight this call starts runs on its own
    /// task there, to its end, whoever waits.
    ///
    /// The executor must be run ([`Executor::run`](async_executor::Executor::run)) for the work to
    /// make progress; the receivers only wait for it. If the executor is dropped before the work
    /// completes, the work goes back to the flight's waiters, which drive it themselves. A panic of
    /// the work reaches every receiver; the executor is not disturbed.
    ///
    /// # Examples
    ///
    /// ```
    /// use async_executor::Executor;
    /// use single_flight::KeyedGroup;
    /// use single_flight_smol::KeyedGroupExt;
    ///
    /// let executor = Executor::new();
    /// let group: KeyedGroup<u32, u32> = KeyedGroup::new();
    /// let rx = group.do_chan_spawned_on(&executor, 3, |k| async move { k * k });
    /// assert_eq!(futures_lite::future::block_on(executor.run(rx)), 9);
    /// ```
    fn do_chan_spawned_on<F, Fut>(
        &self,
        executor: &async_executor::Executor<'_>,
        key: K,
        work: F,
    ) -> Receiver<V>
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
        Smol::on(self).call_timeout(key, duration, work)
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
        Smol::on(self).call_deadline(key, deadline, work)
    }

    #[cfg(feature = "smol")]
    fn do_chan_spawned<F, Fut>(&self, key: K, work: F) -> Receiver<V>
    where
        K: 'static,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        Smol::on(self).do_chan_spawned(key, work)
    }

    fn do_chan_spawned_on<F, Fut>(
        &self,
        executor: &async_executor::Executor<'_>,
        key: K,
        work: F,
    ) -> Receiver<V>
    where
        K: 'static,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        self.do_chan_detached(key, work, |task| spawn_on(executor, task))
    }
}
