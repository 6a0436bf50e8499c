//! `GroupExt`: timeouts and spawned flights for `Group`, on tokio.
//!
//! Each method is `Tokio::on(self).method(..)`; the docs live on [`On`].

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use single_flight::runtime::Runtime;
use single_flight::{Elapsed, Group, Receiver};

use crate::runtime::Tokio;
use crate::sealed::Sealed;
// Only the docs' links name it.
#[cfg(doc)]
use single_flight::runtime::On;

/// Timeouts and spawned (detached) flights for [`Group`], on tokio: the methods of [`On`] for
/// [`Tokio`](crate::Tokio), which documents them; tokio's part as for
/// [`KeyedGroupExt`](crate::KeyedGroupExt).
///
/// Implemented for [`Group`] only (the trait is sealed).
pub trait GroupExt<V>: Sealed {
    /// [`On::call_timeout`] for a [`Group`], on tokio's clock; panics without a time driver, as
    /// [`KeyedGroupExt::call_timeout`](crate::KeyedGroupExt::call_timeout) says.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::Group;
    /// use single_flight_tokio::GroupExt;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// static TOKEN: Group<String> = Group::new();
    /// let token = TOKEN.call_timeout(Duration::from_secs(1), || async { "t-1".to_owned() });
    /// assert_eq!(token.await.unwrap(), "t-1");
    /// # }
    /// ```
    fn call_timeout<F, Fut>(
        &self,
        duration: Duration,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = V> + Send + 'static;

    /// [`On::call_deadline`] for a [`Group`], at a tokio [`Instant`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::Group;
    /// use single_flight_tokio::GroupExt;
    /// use tokio::time::{sleep, Instant};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let group: Group<u8> = Group::new();
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// let late = group.call_deadline(deadline, || async { sleep(Duration::from_secs(1)).await; 1 });
    /// assert!(late.await.is_err());
    /// # }
    /// ```
    fn call_deadline<F, Fut>(
        &self,
        deadline: Instant,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + Send
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = V> + Send + 'static;

    /// [`On::do_chan_spawned`] for a [`Group`], with `tokio::spawn`; panics outside a tokio
    /// runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::Group;
    /// use single_flight_tokio::{GroupExt, ReceiverExt};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let group: Group<u32> = Group::new();
    /// let refresh = || async { tokio::time::sleep(Duration::from_secs(1)).await; 7 };
    /// // Wait at most 10 ms; the refresh itself runs to its end on the runtime.
    /// assert!(group.do_chan_spawned(refresh).recv_timeout(Duration::from_millis(10)).await.is_err());
    /// assert_eq!(group.in_flight(), 1);
    /// assert_eq!(group.do_chan_spawned(|| async { 0 }).await, 7); // joins the running refresh
    /// # }
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
        Tokio::on(self).call_timeout(duration, work)
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
        Tokio::on(self).call_deadline(deadline.into_std(), work)
    }

    fn do_chan_spawned<F, Fut>(&self, work: F) -> Receiver<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        Tokio::on(self).do_chan_spawned(work)
    }
}
