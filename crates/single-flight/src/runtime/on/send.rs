//! `On`'s timeouts and spawned flights for `KeyedGroup`, `Group` and `Receiver`.

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::time::{Duration, Instant};

use super::On;
use crate::runtime::timeout::{timeout, timeout_at};
use crate::runtime::Runtime;
use crate::{Elapsed, Group, KeyedGroup, Receiver};

impl<'a, K, V, S, R> On<&'a KeyedGroup<K, V, S>, R>
where
    K: Hash + Eq + Clone + Send,
    V: Clone + Send + 'static,
    S: BuildHasher,
    R: Runtime,
{
    /// [`KeyedGroup::call`], giving up after `duration` with [`Elapsed`]: the time counts from
    /// this call, and a value ready at the same poll as the timer wins. For the caller's
    /// [`Outcome`](crate::Outcome), time the call's [`with_role`](crate::Call::with_role) with
    /// [`timeout`](crate::runtime::timeout):
    /// `timeout::<R, _>(duration, group.call(key, work).with_role())`.
    ///
    /// # Cancellation
    ///
    /// A timeout ends this caller's wait, not the flight: another waiter goes on with the same
    /// work; if this caller was the last, the work is dropped and the key freed. Dropping the
    /// future has the same effect.
    ///
    /// # Panics
    ///
    /// As for [`KeyedGroup::call`], and if `R`'s timer panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::KeyedGroup;
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
    /// let late = Rt::on(&group).call_timeout(1, Duration::from_millis(1), |_| std::future::pending());
    /// assert!(late.await.is_err());
    /// assert_eq!(group.in_flight(), 0); // it was the only caller: the work is gone
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
        Fut: Future<Output = V> + Send + 'static,
    {
        timeout::<R, V>(duration, self.target.call(key, work))
    }

    /// Like [`call_timeout`](Self::call_timeout), giving up at `deadline` on `R`'s clock.
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
    /// let deadline = std::time::Instant::now() + Duration::from_secs(5);
    /// assert_eq!(Rt::on(&group).call_deadline(1, deadline, |k| async move { k }).await, Ok(1));
    /// # });
    /// ```
    pub fn call_deadline<F, Fut>(
        self,
        key: K,
        deadline: Instant,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + use<'a, K, V, S, R, F, Fut>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        timeout_at::<R, V>(deadline, self.target.call(key, work))
    }

    /// [`KeyedGroup::do_chan_detached`] with [`Runtime::spawn`]: a flight this call starts runs
    /// on its own task of `R` to its end, whoever waits (Go's `DoChan`).
    ///
    /// # Panics
    ///
    /// As for [`KeyedGroup::do_chan_detached`], and if [`Runtime::spawn`] panics (outside its
    /// runtime, say).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::KeyedGroup;
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
    /// let rx = Rt::on(&group).do_chan_spawned(2, |k| async move { k * 2 });
    /// assert_eq!(rx.await, 4);
    /// # });
    /// ```
    pub fn do_chan_spawned<F, Fut>(self, key: K, work: F) -> Receiver<V>
    where
        K: 'static,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        self.target.do_chan_detached(key, work, R::spawn)
    }
}

impl<'a, V, R> On<&'a Group<V>, R>
where
    V: Clone + Send + 'static,
    R: Runtime,
{
    /// [`Group::call`], giving up after `duration`; see [`On::call_timeout`] for a
    /// [`KeyedGroup`].
    ///
    /// # Cancellation
    ///
    /// As for a [`KeyedGroup`]'s.
    ///
    /// # Panics
    ///
    /// As for a [`KeyedGroup`]'s.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::Group;
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
        Fut: Future<Output = V> + Send + 'static,
    {
        timeout::<R, V>(duration, self.target.call(work))
    }

    /// Like [`call_timeout`](Self::call_timeout), giving up at `deadline`.
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
    /// use single_flight::Group;
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
    /// let past = std::time::Instant::now();
    /// assert!(Rt::on(&group).call_deadline(past, || std::future::pending()).await.is_err());
    /// # });
    /// ```
    pub fn call_deadline<F, Fut>(
        self,
        deadline: Instant,
        work: F,
    ) -> impl Future<Output = Result<V, Elapsed>> + use<'a, V, R, F, Fut>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        timeout_at::<R, V>(deadline, self.target.call(work))
    }

    /// [`Group::do_chan_detached`] with [`Runtime::spawn`].
    ///
    /// # Panics
    ///
    /// As for [`Group::do_chan_detached`], and if [`Runtime::spawn`] panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::Group;
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
    /// assert_eq!(Rt::on(&group).do_chan_spawned(|| async { 3 }).await, 3);
    /// # });
    /// ```
    pub fn do_chan_spawned<F, Fut>(self, work: F) -> Receiver<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        self.target.do_chan_detached(work, R::spawn)
    }
}

impl<V: Clone + Send + 'static, R: Runtime> On<Receiver<V>, R> {
    /// Waits for the receiver's value for at most `duration`, counted from this call.
    ///
    /// # Cancellation
    ///
    /// On timeout the receiver is dropped: it leaves its flight, which goes on for its other
    /// waiters (a spawned flight runs to its end anyway).
    ///
    /// # Panics
    ///
    /// As for polling the [`Receiver`], and if `R`'s timer panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::Group;
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
    /// let rx = group.do_chan(|| std::future::pending());
    /// assert!(Rt::on(rx).recv_timeout(Duration::from_millis(1)).await.is_err());
    /// assert_eq!(group.in_flight(), 0); // the last waiter left
    /// # });
    /// ```
    pub fn recv_timeout(
        self,
        duration: Duration,
    ) -> impl Future<Output = Result<V, Elapsed>> + use<V, R> {
        timeout::<R, V>(duration, self.target)
    }

    /// Like [`recv_timeout`](Self::recv_timeout), until `deadline`.
    ///
    /// # Cancellation
    ///
    /// As for [`recv_timeout`](Self::recv_timeout).
    ///
    /// # Panics
    ///
    /// As for [`recv_timeout`](Self::recv_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use single_flight::Group;
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
    /// let deadline = std::time::Instant::now() + Duration::from_secs(5);
    /// assert_eq!(Rt::on(group.do_chan(|| async { 1 })).recv_deadline(deadline).await, Ok(1));
    /// # });
    /// ```
    pub fn recv_deadline(
        self,
        deadline: Instant,
    ) -> impl Future<Output = Result<V, Elapsed>> + use<V, R> {
        timeout_at::<R, V>(deadline, self.target)
    }
}
