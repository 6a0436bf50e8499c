//! The groups' code, written once over the carrier of the work (`flight/carrier.rs`):
//! [`KeyedGroup`](crate::KeyedGroup) runs it with `Sendable`, [`local::KeyedGroup`]
//! (crate::local::KeyedGroup) with `Local`. The public types only add their bounds (`Send` work
//! or not) and their docs; everything a call does is here.

use std::borrow::Borrow;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::call::{Call, Registered, Registration};
use crate::flight::detached::{DetachedFlight, LifecycleRef};
use crate::flight::wait::Waiter;
use crate::flight::{Boxes, Carrier, Start};
use crate::outcome::Outcome;
use crate::registry::{CallerKey, Entry, Owned, Registry};
use crate::stats::GroupStats;

/// A waiter of a group's flight, holding the group's registry.
pub(crate) type GroupWaiter<K, V, C> = Waiter<V, Arc<Registry<K, V, C>>, C>;

/// What `do_chan_detached` registered: the waiter for a receiver, and the task to spawn if
/// the call started the flight or promoted it.
pub(crate) struct Detaching<K, V, C, R>
where
    V: Clone + Send + 'static,
    C: Carrier<V>,
    R: LifecycleRef<V, C>,
{
    pub(crate) waiter: GroupWaiter<K, V, C>,
    pub(crate) task: Option<DetachedFlight<V, C, R>>,
}

/// A group: its registry (made on first use, so that `new` is `const`), its hasher and its
/// settings.
pub(crate) struct Engine<K, V, S, C: Carrier<V>> {
    registry: OnceLock<Arc<Registry<K, V, C>>>,
    hasher: HasherCell<S>,
    /// Set for `Group` (whose only key is `()`): one slot instead of a hash table.
    one_key: bool,
    /// Flights older than this are not joined (`KeyedGroup::max_flight_age`).
    pub(crate) max_flight_age: Option<Duration>,
    /// How a flight's span shows its key (`tracing` feature, groups built with `trace_keys`).
    #[cfg(feature = "tracing")]
    pub(crate) key_debug: Option<crate::trace::KeyDebug<K>>,
}

/// The group's hasher; the default one is seeded on first use so that `new` can be `const`.
pub(crate) enum HasherCell<S> {
    Lazy(OnceLock<S>, fn() -> S),
    Given(S),
}

impl<K, V, S, C: Carrier<V>> Engine<K, V, S, C> {
    pub(crate) const fn new(hasher: HasherCell<S>, one_key: bool) -> Self {
        Self {
            registry: OnceLock::new(),
            hasher,
            one_key,
            max_flight_age: None,
            #[cfg(feature = "tracing")]
            key_debug: None,
        }
    }

    fn registry(&self) -> &Arc<Registry<K, V, C>> {
        self.registry
            .get_or_init(|| Arc::new(Registry::new(self.one_key, self.max_flight_age)))
    }

    /// The hash of `key`: computed once per call.
    pub(crate) fn hash_one<Q: Hash + ?Sized>(&self, key: &Q) -> u64
    where
        S: BuildHasher,
    {
        self.hasher().hash_one(key)
    }

    fn hasher(&self) -> &S {
        match &self.hasher {
            HasherCell::Lazy(cell, make) => cell.get_or_init(*make),
            HasherCell::Given(hasher) => hasher,
        }
    }

    /// Opens the span of a flight this group starts for `key`.
    #[cfg(feature = "tracing")]
    fn start_trace(&self, flight: &crate::flight::Flight<V, C>, key: &K) {
        flight.inner().start_trace(key, self.key_debug);
    }

    pub(crate) fn stats(&self) -> GroupStats {
        self.registry
            .get()
            .map_or_else(GroupStats::default, |registry| registry.stats())
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.registry
            .get()
            .map_or(0, |registry| registry.in_flight())
    }
}

impl<K, V, S: BuildHasher, C: Carrier<V>> Engine<K, V, S, C> {
    pub(crate) fn forget<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.registry.get() {
            Some(registry) => registry.forget(self.hasher().hash_one(key), key),
            None => false,
        }
    }
}

impl<K, V, S, C> Engine<K, V, S, C>
where
    K: Hash + Eq + Clone,
    V: Clone + Send + 'static,
    S: BuildHasher,
    C: Carrier<V>,
{
    /// `call` with an owned key: registers on the first poll.
    pub(crate) fn call<'a, F, Fut>(
        &'a self,
        key: K,
        work: F,
    ) -> Call<impl Future<Output = Outcome<V>> + use<'a, K, V, S, C, F, Fut>>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V>,
        C: Boxes<Fut>,
    {
        // Registration happens in the first poll, not here.
        Call::new(Registration::new(move |cx| {
            let hash = self.hasher().hash_one(&key);
            self.register(hash, Owned(key), work, cx)
        }))
    }

    /// `call` with a borrowed key, made owned only if the call starts the flight.
    pub(crate) fn call_ref<'a, 'q, Q, F, Fut>(
        &'a self,
        key: &'q Q,
        work: F,
    ) -> Call<impl Future<Output = Outcome<V>> + use<'a, 'q, Q, K, V, S, C, F, Fut>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        &'q Q: Into<K>,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V>,
        C: Boxes<Fut>,
    {
        Call::new(Registration::new(move |cx| {
            let hash = self.hasher().hash_one(key);
            self.register(hash, key, work, cx)
        }))
    }

    /// Joins or starts the flight for `key` (hashed `hash`) for a `call`, and polls the work
    /// of a flight it starts once. (The `Send` group calls it from a closure that borrows the
    /// group, not this engine, so that its call is `Send` wherever the group is `Sync`.)
    /// `#[inline]`, with `Waiter::start`: the solo path is this function and the work's poll.
    #[inline]
    pub(crate) fn register<'a, Q, F, Fut>(
        &'a self,
        hash: u64,
        key: Q,
        work: F,
        cx: &mut Context<'_>,
    ) -> Registered<impl Future<Output = Outcome<V>> + use<'a, Q, K, V, S, C, F, Fut>, Outcome<V>>
    where
        Q: CallerKey<K>,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V>,
        C: Boxes<Fut>,
    {
        let registry: &Registry<K, V, C> = self.registry();
        match registry.enter(hash, key, Start::Poll) {
            Entry::Joined {
                flight,
                ticket,
                key,
                listen,
                ..
            } => {
                let waiter = Waiter::joined(flight, registry, ticket, listen);
                // A caller that joins never runs its closure: release what it and the key
                // hold now, with the registration guarded should their `Drop` panic.
                drop(work);
                drop(key);
                Registered::Waiting(waiter.wait())
            }
            Entry::Started { flight, key, gated } => {
                #[cfg(feature = "tracing")]
                self.start_trace(&flight, &key);
                let mut waiter = Waiter::new(flight, registry, 0);
                if gated {
                    let work = waiter.make_work(move || work(key));
                    waiter.install(work);
                    return Registered::Waiting(waiter.wait());
                }
                match waiter.start(move || work(key), cx) {
                    Poll::Ready(output) => Registered::Done(output),
                    Poll::Pending => Registered::Driving(waiter.wait()),
                }
            }
        }
    }

    /// `do_chan`'s registration: joins or starts the flight now (calling `work` if it starts
    /// it) and returns the waiter for a receiver.
    pub(crate) fn do_chan<Q, F, Fut>(&self, hash: u64, key: Q, work: F) -> GroupWaiter<K, V, C>
    where
        Q: CallerKey<K>,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V>,
        C: Boxes<Fut>,
    {
        let registry = self.registry();
        match registry.enter(hash, key, Start::Install) {
            Entry::Joined {
                flight,
                ticket,
                key,
                listen,
                ..
            } => {
                let waiter = Waiter::joined(flight, registry.clone(), ticket, listen);
                drop(key);
                waiter
            }
            Entry::Started { flight, key, .. } => {
                #[cfg(feature = "tracing")]
                self.start_trace(&flight, &key);
                let waiter = Waiter::new(flight, registry.clone(), 0);
                let work = waiter.make_work(move || work(key));
                waiter.install(work);
                waiter
            }
        }
    }

    /// `do_chan_detached`'s registration: the waiter for a receiver, and the detached task to
    /// spawn if this call started the flight or promoted it. `erase` turns the registry into
    /// the handle a task keeps (with the auto traits of the public task type).
    pub(crate) fn do_chan_detached<F, Fut, R>(
        &self,
        key: K,
        work: F,
        erase: impl FnOnce(Arc<Registry<K, V, C>>) -> R,
    ) -> Detaching<K, V, C, R>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = V>,
        C: Boxes<Fut>,
        R: LifecycleRef<V, C>,
    {
        let registry = self.registry();
        let hash = self.hasher().hash_one(&key);
        match registry.enter(hash, Owned(key), Start::Detach) {
            Entry::Joined {
                flight,
                ticket,
                key,
                listen,
                promoted,
            } => {
                let task = promoted
                    .then(|| DetachedFlight::claiming(flight.clone(), erase(registry.clone())));
                let waiter = Waiter::joined(flight, registry.clone(), ticket, listen);
                drop(key);
                Detaching { waiter, task }
            }
            Entry::Started { flight, key, .. } => {
                #[cfg(feature = "tracing")]
                self.start_trace(&flight, &key);
                let task_flight = flight.clone();
                let waiter = Waiter::new(flight, registry.clone(), 0);
                let work = waiter.make_work(move || work(key));
                let task = DetachedFlight::new(task_flight, erase(registry.clone()), work);
                Detaching {
                    waiter,
                    task: Some(task),
                }
            }
        }
    }
}
