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
    /// [`KeyedGroup::call`], giving up after `duration` with [`Elapsed`]. This is the one
    /// description of the timeouts: the adapters' `call_timeout` and `call_deadline` (their
    /// `KeyedGroupExt` and `GroupExt`), [`Group`]'s and the `local` groups' are this method on their
    /// runtime.
    ///
    /// The time counts from this call; the caller registers with the flight when the future is first
    /// polled. The value is polled before the timer: a value ready at the poll where the timer fires
    /// wins, whatever the duration. For the caller's [`Outcome`](crate::Outcome) as well, time the
    /// call's [`with_role`](crate::Call::with_role) with [`timeout`](crate::runtime::timeout):
    /// `timeout::<R, _>(duration, group.call(key, work).with_role())`.
    ///
    /// # Cancellation
    ///
    /// A timeout ends this caller's wait, not the flight: the caller's registration is dropped as if
    /// its future had been. If other callers wait for the flight, one of them goes on driving the same
    /// work (nothing runs twice); if this caller was the last one, the work is dropped and the key
    /// freed. To let the work finish whoever waits, spawn it:
    /// [`do_chan_spawned`](Self::do_chan_spawned)`(key, work)`, then
    /// [`recv_timeout`](On::recv_timeout) on its receiver.
    ///
    /// Dropping the returned future before it completes has the same effect as the timeout.
    ///
    /// # Panics
    ///
    /// A panic of the work reaches this caller as for [`KeyedGroup::call`] (see [`Call`](crate::Call)).
    /// Polling also panics if `R`'s timer does (tokio's, outside a runtime with a time driver).
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

    /// Like [`call_timeout`](Self::call_timeout), giving up at `deadline` on `R`'s clock;
    /// cancellation and panics as there.
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

    /// Like [`KeyedGroup::do_chan`], but a flight this call starts runs on its own task of `R`
    /// ([`Runtime::spawn`]): Go's `DoChan`. This is the one description of the spawned flights: the
    /// adapters' `do_chan_spawned` and [`Group`]'s are this method on their runtime.
    ///
    /// The work then runs to completion even if every receiver is dropped or times out, and callers
    /// arriving meanwhile join it. If a flight for `key` is running, this joins it; a flight that no
    /// task owns yet is promoted to one, as [`KeyedGroup::do_chan_detached`] describes. Combine with
    /// [`recv_timeout`](On::recv_timeout) to bound this caller's wait without cutting the work short.
    /// If the runtime drops the task before the work completes (it shuts down, say), the work goes back
    /// to the flight's waiters, which drive it themselves (see [`Detached`](crate::Detached)).
    ///
    /// # Panics
    ///
    /// Panics if [`Runtime::spawn`] panics (tokio's outside a runtime); the key is then freed. A panic
    /// of the work is caught in the task and reaches every receiver as a
    /// [`Panicked`](crate::Panicked); see [`KeyedGroup::do_chan_detached`].
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
    /// [`Group::call`], giving up after `duration`: [`On::call_timeout`] for the one key of a
    /// [`Group`], which describes it (cancellation and panics included).
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

    /// [`Group::call`], giving up at `deadline`: [`On::call_deadline`] for a [`Group`].
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

    /// [`Group::do_chan`] on a task of `R`: [`On::do_chan_spawned`] for a [`Group`].
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
    /// Waits for the receiver's value for at most `duration`, counted from this call. This is the
    /// one description of the receiver timeouts: the adapters' `ReceiverExt` and the `local`
    /// receiver's are this method on their runtime. A [`Receiver`] is also `Unpin`: a runtime's own
    /// `timeout(duration, &mut receiver)` keeps the receiver, and its place in the flight, after a
    /// timeout.
    ///
    /// # Cancellation
    ///
    /// On timeout the receiver is dropped: it leaves its flight, which goes on for its other waiters.
    /// A spawned flight ([`do_chan_spawned`](On::do_chan_spawned)) runs to completion anyway; a flight
    /// that only its waiters drive is dropped if this was the last one. Dropping the returned future
    /// has the same effect.
    ///
    /// # Panics
    ///
    /// As polling the [`Receiver`] does if the flight's work panicked, and if `R`'s timer panics.
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

    /// Like [`recv_timeout`](Self::recv_timeout), until `deadline`; cancellation and panics as
    /// there.
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
