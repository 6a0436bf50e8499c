//! `KeyedGroupExt`: timeouts and spawned flights for `KeyedGroup`, on tokio.
//!
//! Each method is `Tokio::on(self).method(..)`; the docs live on [`On`], and only what tokio
//! adds (its `Instant`, its time driver, `tokio::spawn`) is said here.

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use tokio::time::Instant;

use single_flight::runtime::Runtime;
use single_flight::{Elapsed, KeyedGroup, Receiver};

use crate::runtime::Tokio;
use crate::sealed::Sealed;
// Only the docs' links name it.
#[cfg(doc)]
use single_flight::runtime::On;

/// Timeouts and spawned (detached) flights for [`KeyedGroup`], on tokio: the methods of
/// [`On`] for [`Tokio`], which documents them.
///
/// Implemented for [`KeyedGroup`] only (the trait is sealed).
pub trait KeyedGroupExt<K, V>: Sealed {
    /// [`On::call_timeout`] on tokio's clock: [`KeyedGroup::call`], giving up after `duration`
    /// with [`Elapsed`]. Cancellation and panics: see there.
    ///
    /// # Panics
    ///
    /// Polling panics outside a tokio runtime, or in one without a time driver
    /// ([`Builder::enable_time`]).
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
    /// let slow = |_| async { tokio::time::sleep(Duration::from_secs(60)).await; 2 };
    /// assert!(group.call_timeout("b", Duration::from_millis(10), slow).await.is_err());
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

    /// [`On::call_deadline`] at a tokio [`Instant`] (paused time included); panics as
    /// [`call_timeout`](Self::call_timeout) does.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// use single_flight_tokio::KeyedGroupExt;
    /// use tokio::time::Instant;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let group = single_flight::KeyedGroup::<u8, u8>::new();
    /// let deadline = Instant::now() + Duration::from_millis(100);
    /// assert_eq!(group.call_deadline(1, deadline, |k| async move { k * 2 }).await, Ok(2));
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

    /// [`On::do_chan_spawned`] with `tokio::spawn`: a flight this call starts runs on its own
    /// tokio task to its end, whoever waits (Go's `DoChan`).
    ///
    /// # Panics
    ///
    /// Panics outside a tokio runtime, like [`tokio::spawn`] (enter one with
    /// [`Handle::enter`](tokio::runtime::Handle::enter) first); the key is then freed.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    /// use single_flight_tokio::KeyedGroupExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let group: KeyedGroup<u32, u32> = KeyedGroup::new();
    /// drop(group.do_chan_spawned(3, |k| async move { k * k })); // runs on, unwaited for
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
