//! `KeyedGroup::call` and its forms: register on the first poll, then wait.

use std::borrow::Borrow;
use std::future::Future;
use std::hash::{BuildHasher, Hash};

use super::KeyedGroup;
use crate::call::{value, value_and_shared, Call, MapOutcome};
use crate::outcome::Outcome;
use crate::registry::Owned;

impl<K, V, S> KeyedGroup<K, V, S>
where
    K: Hash + Eq + Clone + Send,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    /// Runs `work` for `key`, or joins the flight already running for it, and returns its value.
    ///
    /// `work` receives the key and is called only if this call starts the flight; a call that
    /// joins never runs its closure. The caller registers with the flight when the returned
    /// future is first polled.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future never cancels the work for others: if other callers wait
    /// for the same flight, one of them goes on polling the same work future (nothing is run
    /// twice). If this was the last caller, the work future is dropped at once and the key is
    /// free; a call arriving meanwhile starts a new flight, whose work is not polled before the
    /// abandoned one has finished dropping.
    ///
    /// # Panics
    ///
    /// If `work` (the closure or its future) panics, the flight ends and every waiter panics: the
    /// one that was polling the work with the original payload, the others with a [`Panicked`]
    /// carrying its message. The key is freed and the group stays usable.
    ///
    /// Panics with a clear message, instead of waiting forever, if it is awaited from inside the
    /// work of the very flight it would join (directly, or through other flights polled on the
    /// same thread). A same-key call that the work hands to another task cannot be detected and
    /// deadlocks, as it would in any call-sharing scheme.
    ///
    /// [`Panicked`]: crate::Panicked
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<String, usize> = KeyedGroup::new();
    /// let len = group.call("ada".to_owned(), |name| async move { name.len() }).await;
    /// assert_eq!(len, 3);
    /// # });
    /// ```
    pub fn call<'a, F, Fut>(
        &'a self,
        key: K,
        work: F,
    ) -> impl Future<Output = V> + use<'a, K, V, S, F, Fut>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        MapOutcome::new(self.call_with_role(key, work), value)
    }

    /// Like [`call`](Self::call), and also says whether the value went to more than one caller
    /// (Go's `shared`; the starter counts, so a herd of `n` callers reports `true` `n` times for
    /// one execution: count [`Role::Joined`](crate::Role::Joined) from
    /// [`call_with_role`](Self::call_with_role) to know what sharing saved).
    ///
    /// # Cancel safety
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Panics
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
    /// let (value, shared) = group.call_shared(1, |k| async move { k + 1 }).await;
    /// assert_eq!((value, shared), (2, false));
    /// # });
    /// ```
    pub fn call_shared<'a, F, Fut>(
        &'a self,
        key: K,
        work: F,
    ) -> impl Future<Output = (V, bool)> + use<'a, K, V, S, F, Fut>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        MapOutcome::new(self.call_with_role(key, work), value_and_shared)
    }

    /// Like [`call`](Self::call), and also tells this caller's [`Role`](crate::Role) (it started the flight
    /// or joined it) and how many callers the value went to: an [`Outcome`].
    ///
    /// # Cancel safety
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Panics
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::{KeyedGroup, Role};
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
    /// let outcome = group.call_with_role(1, |k| async move { k + 1 }).await;
    /// assert_eq!((outcome.value, outcome.role, outcome.callers), (2, Role::Started, 1));
    /// # });
    /// ```
    pub fn call_with_role<'a, F, Fut>(
        &'a self,
        key: K,
        work: F,
    ) -> impl Future<Output = Outcome<V>> + use<'a, K, V, S, F, Fut>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        // Registration happens in the first poll, not here.
        Call::new(move |cx| {
            let hash = self.engine.hash_one(&key);
            self.engine.register(hash, Owned(key), work, cx)
        })
    }

    /// Like [`call`](Self::call), with a borrowed key: a caller that joins a running flight
    /// never makes an owned key, and one that starts a flight makes it from `key` (`&Q: Into<K>`,
    /// as for a `&str` and a `String` key). The key is compared through `K: Borrow<Q>`, so `Q`
    /// must hash and compare like `K` (the contract of [`Borrow`]).
    ///
    /// # Cancel safety
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Panics
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<String, usize> = KeyedGroup::new();
    /// let name: &str = "ada";
    /// // The closure gets an owned `String`, made only because this call starts the flight.
    /// let len = group.call_ref(name, |name: String| async move { name.len() }).await;
    /// assert_eq!(len, 3);
    /// # });
    /// ```
    pub fn call_ref<'a, 'q, Q, F, Fut>(
        &'a self,
        key: &'q Q,
        work: F,
    ) -> impl Future<Output = V> + use<'a, 'q, Q, K, V, S, F, Fut>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        &'q Q: Into<K>,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        MapOutcome::new(self.call_with_role_ref(key, work), value)
    }

    /// Like [`call_shared`](Self::call_shared), with a borrowed key as in
    /// [`call_ref`](Self::call_ref).
    ///
    /// # Cancel safety
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Panics
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::KeyedGroup;
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<String, usize> = KeyedGroup::new();
    /// let (len, shared) = group.call_shared_ref("ada", |name: String| async move { name.len() }).await;
    /// assert_eq!((len, shared), (3, false));
    /// # });
    /// ```
    pub fn call_shared_ref<'a, 'q, Q, F, Fut>(
        &'a self,
        key: &'q Q,
        work: F,
    ) -> impl Future<Output = (V, bool)> + use<'a, 'q, Q, K, V, S, F, Fut>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        &'q Q: Into<K>,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        MapOutcome::new(self.call_with_role_ref(key, work), value_and_shared)
    }

    /// Like [`call_with_role`](Self::call_with_role), with a borrowed key as in
    /// [`call_ref`](Self::call_ref).
    ///
    /// # Cancel safety
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Panics
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::{KeyedGroup, Role};
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<String, usize> = KeyedGroup::new();
    /// let outcome = group.call_with_role_ref("ada", |name: String| async move { name.len() }).await;
    /// assert_eq!((outcome.value, outcome.role), (3, Role::Started));
    /// # });
    /// ```
    pub fn call_with_role_ref<'a, 'q, Q, F, Fut>(
        &'a self,
        key: &'q Q,
        work: F,
    ) -> impl Future<Output = Outcome<V>> + use<'a, 'q, Q, K, V, S, F, Fut>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        &'q Q: Into<K>,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        Call::new(move |cx| {
            let hash = self.engine.hash_one(key);
            self.engine.register(hash, key, work, cx)
        })
    }
}
