//! `On`'s timeouts and spawned flights for the groups of `single_flight::local`.

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use super::On;
use crate::runtime::timeout::timeout;
use crate::runtime::Runtime;
#[cfg(doc)]
use crate::Receiver;
use crate::{local, Elapsed};

impl<'a, K, V, S, R> On<&'a local::KeyedGroup<K, V, S>, R>
where
    K: Hash + Eq + Clone,
    V: Clone + Send + 'static,
    S: BuildHasher,
    R: Runtime,
{
    /// [`local::KeyedGroup::call`], giving up after `duration`: the `Send` group's
    /// [`On::call_timeout`], which describes it (cancellation and panics included), for work that is
    /// not `Send` and stays on its thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use std::rc::Rc;
    /// use single_flight::local::KeyedGroup;
    /// use single_flight::runtime::Runtime;
    /// # struct Rt;
    /// # impl single_flight::runtime::Runtime for Rt {
    /// #     fn sleep_until(at: std::time::Instant) -> impl std::future::Future<Output = ()> + Send {
    /// #         async move { async_io::Timer::at(at).await; }
    /// #     }
    /// #     fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(task: F) {
    /// #         std::thread::spawn(move || futures_lite::future::block_on(task));
    /// #     }
    /// #     fn spawn_local<F: std::future::Future<Output = ()> + 'static>(task: F) {
    /// #         futures_lite::future::block_on(task); // runs it to its end at once
    /// #     }
    /// # }
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
    /// let one = Rc::new(1);
    /// let value = Rt::on(&group).call_timeout(1, Duration::from_secs(5), move |_| async move { *one });
    /// assert_eq!(value.await, Ok(1));
    /// # });
    /// ```
    pub fn call_timeout<F, Fut>(
        self,
        key: K,
        duration: Duration,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + use<'a, K, V, S, R, F, Fut>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + 'static,
    {
        timeout::<R, V>(duration, self.target.call(key, work))
    }

    /// [`local::KeyedGroup::do_chan_detached`] with [`Runtime::spawn_local`]: the `Send` group's
    /// [`On::do_chan_spawned`] on a local task of `R`.
    ///
    /// # Panics
    ///
    /// As [`On::do_chan_spawned`], and if [`Runtime::spawn_local`] panics (a runtime without local
    /// tasks, or outside its local executor).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use std::rc::Rc;
    /// use single_flight::local::KeyedGroup;
    /// use single_flight::runtime::Runtime;
    /// # struct Rt;
    /// # impl single_flight::runtime::Runtime for Rt {
    /// #     fn sleep_until(at: std::time::Instant) -> impl std::future::Future<Output = ()> + Send {
    /// #         async move { async_io::Timer::at(at).await; }
    /// #     }
    /// #     fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(task: F) {
    /// #         std::thread::spawn(move || futures_lite::future::block_on(task));
    /// #     }
    /// #     fn spawn_local<F: std::future::Future<Output = ()> + 'static>(task: F) {
    /// #         futures_lite::future::block_on(task); // runs it to its end at once
    /// #     }
    /// # }
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
    /// let two = Rc::new(2);
    /// let rx = Rt::on(&group).do_chan_spawned(1, move |k| async move { k * *two });
    /// assert_eq!(rx.await, 2);
    /// # });
    /// ```
    pub fn do_chan_spawned<F, Fut>(self, key: K, work: F) -> local::Receiver<V>
    where
        K: 'static,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + 'static,
    {
        self.target.do_chan_detached(key, work, R::spawn_local)
    }
}

impl<'a, V, R> On<&'a local::Group<V>, R>
where
    V: Clone + Send + 'static,
    R: Runtime,
{
    /// [`local::Group::call`], giving up after `duration`: [`On::call_timeout`] for a local
    /// [`Group`](local::Group).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::local::Group;
    /// use single_flight::runtime::Runtime;
    /// # struct Rt;
    /// # impl single_flight::runtime::Runtime for Rt {
    /// #     fn sleep_until(at: std::time::Instant) -> impl std::future::Future<Output = ()> + Send {
    /// #         async move { async_io::Timer::at(at).await; }
    /// #     }
    /// #     fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(task: F) {
    /// #         std::thread::spawn(move || futures_lite::future::block_on(task));
    /// #     }
    /// #     fn spawn_local<F: std::future::Future<Output = ()> + 'static>(task: F) {
    /// #         futures_lite::future::block_on(task); // runs it to its end at once
    /// #     }
    /// # }
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: Group<u8> = Group::new();
    /// assert_eq!(Rt::on(&group).call_timeout(Duration::from_secs(5), || async { 1 }).await, Ok(1));
    /// # });
    /// ```
    pub fn call_timeout<F, Fut>(
        self,
        duration: Duration,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + use<'a, V, R, F, Fut>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + 'static,
    {
        timeout::<R, V>(duration, self.target.call(work))
    }

    /// [`local::Group::do_chan_detached`] with [`Runtime::spawn_local`]: as for a local
    /// [`KeyedGroup`](local::KeyedGroup).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::local::Group;
    /// use single_flight::runtime::Runtime;
    /// # struct Rt;
    /// # impl single_flight::runtime::Runtime for Rt {
    /// #     fn sleep_until(at: std::time::Instant) -> impl std::future::Future<Output = ()> + Send {
    /// #         async move { async_io::Timer::at(at).await; }
    /// #     }
    /// #     fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(task: F) {
    /// #         std::thread::spawn(move || futures_lite::future::block_on(task));
    /// #     }
    /// #     fn spawn_local<F: std::future::Future<Output = ()> + 'static>(task: F) {
    /// #         futures_lite::future::block_on(task); // runs it to its end at once
    /// #     }
    /// # }
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: Group<u8> = Group::new();
    /// assert_eq!(Rt::on(&group).do_chan_spawned(|| async { 5 }).await, 5);
    /// # });
    /// ```
    pub fn do_chan_spawned<F, Fut>(self, work: F) -> local::Receiver<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + 'static,
    {
        self.target.do_chan_detached(work, R::spawn_local)
    }
}

impl<V: Clone + Send + 'static, R: Runtime> On<local::Receiver<V>, R> {
    /// Waits for the local receiver's value for at most `duration`: a [`Receiver`]'s
    /// [`On::recv_timeout`], which describes it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::local::Group;
    /// use single_flight::runtime::Runtime;
    /// # struct Rt;
    /// # impl single_flight::runtime::Runtime for Rt {
    /// #     fn sleep_until(at: std::time::Instant) -> impl std::future::Future<Output = ()> + Send {
    /// #         async move { async_io::Timer::at(at).await; }
    /// #     }
    /// #     fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(task: F) {
    /// #         std::thread::spawn(move || futures_lite::future::block_on(task));
    /// #     }
    /// #     fn spawn_local<F: std::future::Future<Output = ()> + 'static>(task: F) {
    /// #         futures_lite::future::block_on(task); // runs it to its end at once
    /// #     }
    /// # }
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: Group<u8> = Group::new();
    /// let rx = group.do_chan(|| async { 1 });
    /// assert_eq!(Rt::on(rx).recv_timeout(Duration::from_secs(5)).await, Ok(1));
    /// # });
    /// ```
    pub fn recv_timeout(
        self,
        duration: Duration,
    ) -> impl Future<Output = Result<V, Elapsed>> + use<V, R> {
        timeout::<R, V>(duration, self.target)
    }
}
