//! `KeyedGroup::call` and `call_ref`: register on the first poll, then wait.

use std::borrow::Borrow;
use std::future::Future;
use std::hash::{BuildHasher, Hash};

use super::KeyedGroup;
use crate::call::{Call, Registration};
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
    /// joins never runs its closure. The returned [`Call`] resolves to the value; its
    /// [`with_role`](Call::with_role) resolves to the caller's [`Outcome`] (its role, how many
    /// callers shared the value, Go's `shared` flag). Cancel safety and panics: see [`Call`].
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
    ) -> Call<impl Future<Output = Outcome<V>> + use<'a, K, V, S, F, Fut>>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        // Registration happens in the first poll, not here.
        Call::new(Registration::new(move |cx| {
            let hash = self.engine.hash_one(&key);
            self.engine.register(hash, Owned(key), work, cx)
        }))
    }

    /// [`call`](Self::call) with a borrowed key: a caller that joins a running flight never
    /// makes an owned key, and one that starts a flight makes it from `key` (`&Q: Into<K>`, as
    /// for a `&str` and a `String` key). The key is compared through `K: Borrow<Q>`, so `Q` must
    /// hash and compare like `K` (the contract of [`Borrow`]).
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
    ) -> Call<impl Future<Output = Outcome<V>> + use<'a, 'q, Q, K, V, S, F, Fut>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        &'q Q: Into<K>,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        Call::new(Registration::new(move |cx| {
            let hash = self.engine.hash_one(key);
            self.engine.register(hash, key, work, cx)
        }))
    }
}
