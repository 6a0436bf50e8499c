//! [`RedisGroup`], the public face: a local `KeyedGroup` whose one flight per key plays the
//! protocol (`flight.rs`, decisions in `protocol/`) with the other processes.

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;
use single_flight::runtime::Runtime;
use single_flight::KeyedGroup;

use crate::call::{origin_of, Call, Origin};
use crate::error::{Error, ErrorKind};
use crate::flight::{background, flight, Reply, Shared};
use crate::namespace::names;
use crate::options::Options;
use crate::protocol::Names;
use crate::stats::{Counters, Stats};
use crate::wire::{Conn, Dispatcher, Link, Scripts};

/// Call sharing across processes: one execution per key among every process that shares a
/// Redis server (or cluster) and a namespace, and among the callers of each process.
///
/// Each process coalesces its own callers first (a [`KeyedGroup`] inside), so that one task
/// per process and key talks to Redis. That task contends for the key's lease; the winner runs
/// the work while the others wait for its result, which reaches every caller of every process.
/// See the crate docs for the guarantee, the faults, and the keys written.
///
/// # Examples
///
/// ```no_run
/// use single_flight_redis::{Options, RedisGroup};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), single_flight_redis::Error> {
/// let client = redis::Client::open("redis://127.0.0.1/").expect("a valid URL");
/// let group: RedisGroup<String, u64> =
///     RedisGroup::connect(client, "customer-ids", Options::new()).await?;
///
/// // Every replica that runs this for "ada" at the same time shares one query.
/// let id = group
///     .call("ada".to_owned(), |name| async move { name.len() as u64 })
///     .await?;
/// assert_eq!(id, 3);
/// # Ok(())
/// # }
/// ```
pub struct RedisGroup<K, V, R = DefaultRuntime> {
    local: KeyedGroup<K, Reply<V>>,
    shared: Arc<Shared>,
    /// The runtime is a type, not a value: `fn() -> R` keeps the group `Send` and `Sync`
    /// whatever `R` is.
    runtime: PhantomData<fn() -> R>,
}

/// The runtime of a [`RedisGroup`] that names none, which [`RedisGroup::connect`] and
/// [`RedisGroup::connect_cluster`] build: `single_flight_tokio::Tokio` with the feature `tokio`
/// (the default, and also when `smol` is on too), `single_flight_smol::Smol` with `smol` alone.
/// Any other runtime, `Smol` with both features included, is named with
/// [`RedisGroup::connect_on`].
///
/// # Examples
///
/// ```
/// use single_flight_redis::{DefaultRuntime, RedisGroup};
///
/// // One type, whether the default runtime is named or not.
/// fn same(group: RedisGroup<u64, String>) -> RedisGroup<u64, String, DefaultRuntime> {
///     group
/// }
/// ```
#[cfg(feature = "tokio")]
pub type DefaultRuntime = single_flight_tokio::Tokio;

/// The default runtime of a [`RedisGroup`] built with the feature `smol` alone (the rule is
/// in the crate's [Features](crate#features)).
#[cfg(all(feature = "smol", not(feature = "tokio")))]
pub type DefaultRuntime = single_flight_smol::Smol;

impl<K, V, R> Drop for RedisGroup<K, V, R> {
    fn drop(&mut self) {
        // The background task holds the group's shared state: closing its queue ends it once
        // the queued jobs are spawned. No flight outlives the group (its callers borrow it),
        // so no drop hands a job over after this.
        self.shared.jobs.close();
    }
}

impl<K, V, R> fmt::Debug for RedisGroup<K, V, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisGroup")
            .field("namespace", &self.shared.names.namespace())
            .field("in_flight", &self.local.in_flight())
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl<K, V> RedisGroup<K, V>
where
    K: Hash + Eq + Clone + Send + Serialize + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    /// Connects to one Redis server (or Valkey) and subscribes to the namespace's channel; the
    /// group runs on the [`DefaultRuntime`] (tokio with the feature `tokio`).
    ///
    /// The group opens its own multiplexed connection from `client`, in RESP3 whatever the
    /// client asked for (its pub/sub messages arrive as pushes on the same connection), and
    /// reconnects on its own. Await it inside the runtime the group will run on (for tokio,
    /// inside a tokio runtime): it spawns the group's background task there. Keep the group
    /// for the life of the process: each group has its own connection.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Namespace`] if `namespace` is empty or has a brace (the hash tag's
    /// delimiters); [`ErrorKind::Redis`] if the server cannot be reached or does not answer
    /// within [`Options::redis_timeout`]; [`ErrorKind::Permission`] if the connection's user
    /// lacks a right the group needs ([`acl_rule`](crate::acl_rule)): `connect` checks them
    /// (on Redis 7+ every command, on Redis 6 the scripts and the channels), so that a
    /// missing right is not a fallback on every call.
    ///
    /// # Panics
    ///
    /// With the feature `tokio`, if awaited outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// See [`RedisGroup`].
    pub async fn connect(
        client: redis::Client,
        namespace: &str,
        options: Options,
    ) -> Result<Self, Error> {
        Self::open(client, namespace, options).await
    }

    /// Connects to a Redis Cluster through `builder` (its nodes, credentials, ...), in RESP3;
    /// the group runs on the [`DefaultRuntime`].
    ///
    /// A flight's keys and its channel share one hash tag, so every script of a flight runs on
    /// the node that owns its slot, and its messages are sharded pub/sub (`SSUBSCRIBE`,
    /// `SPUBLISH`): they stay on that node instead of crossing the cluster bus to every node.
    /// That needs Redis 7 or later (or Valkey).
    ///
    /// # Errors
    ///
    /// As for [`connect`](Self::connect), and [`ErrorKind::Unsupported`] if the cluster does
    /// not know sharded pub/sub (Redis 6): a classic channel would send every flight's end to
    /// every node, which is what this crate is built to avoid, so it refuses instead.
    ///
    /// # Panics
    ///
    /// As for [`connect`](Self::connect).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use redis::cluster::ClusterClientBuilder;
    /// use single_flight_redis::{Options, RedisGroup};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), single_flight_redis::Error> {
    /// let nodes = ClusterClientBuilder::new(["redis://127.0.0.1:7000/", "redis://127.0.0.1:7001/"]);
    /// let group: RedisGroup<u64, String> =
    ///     RedisGroup::connect_cluster(nodes, "profiles", Options::new()).await?;
    /// # let _ = group;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_cluster(
        builder: redis::cluster::ClusterClientBuilder,
        namespace: &str,
        options: Options,
    ) -> Result<Self, Error> {
        Self::open_cluster(builder, namespace, options).await
    }
}

impl<K, V, R> RedisGroup<K, V, R>
where
    K: Hash + Eq + Clone + Send + Serialize + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    R: Runtime,
{
    /// Like [`connect`](RedisGroup::connect), for a group that runs on `runtime`: any
    /// [`Runtime`], whose timer bounds the group's Redis commands and waits and whose spawn
    /// runs its background task (releasing abandoned leases and unused subscriptions). The
    /// value only names the type, as the adapters' unit structs do (`Tokio`, `Smol`,
    /// `AsyncStd`).
    ///
    /// redis-rs does its I/O on the runtime its features build (`tokio` or `smol`, see
    /// [Features](crate#features)), whatever `R` is. With `smol`, async-io's reactor serves
    /// callers on any runtime or thread. With `tokio` alone, redis-rs's commands (and their
    /// own timeouts) need a tokio runtime's context: connect and call inside one.
    ///
    /// # Errors
    ///
    /// As for [`connect`](RedisGroup::connect).
    ///
    /// # Panics
    ///
    /// If `R::spawn` panics when called from the future that awaits this (say, tokio's outside
    /// a tokio runtime).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use single_flight_redis::{Options, RedisGroup};
    /// # struct MyRuntime;
    /// # impl single_flight::runtime::Runtime for MyRuntime {
    /// #     fn sleep_until(at: std::time::Instant) -> impl std::future::Future<Output = ()> + Send {
    /// #         async move { async_io::Timer::at(at).await; }
    /// #     }
    /// #     fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(task: F) {
    /// #         std::thread::spawn(move || futures_lite::future::block_on(task));
    /// #     }
    /// # }
    ///
    /// # async fn demo() -> Result<(), single_flight_redis::Error> {
    /// let client = redis::Client::open("redis://127.0.0.1/").expect("a valid URL");
    /// // `MyRuntime` implements `single_flight::runtime::Runtime`.
    /// let group: RedisGroup<u64, String, MyRuntime> =
    ///     RedisGroup::connect_on(MyRuntime, client, "profiles", Options::new()).await?;
    /// # let _ = group; Ok(())
    /// # }
    /// ```
    pub async fn connect_on(
        runtime: R,
        client: redis::Client,
        namespace: &str,
        options: Options,
    ) -> Result<Self, Error> {
        let _ = runtime;
        Self::open(client, namespace, options).await
    }

    /// Like [`connect_cluster`](RedisGroup::connect_cluster), for a group that runs on
    /// `runtime` (see [`connect_on`](Self::connect_on)).
    ///
    /// # Errors
    ///
    /// As for [`connect_cluster`](RedisGroup::connect_cluster).
    ///
    /// # Panics
    ///
    /// As for [`connect_on`](Self::connect_on).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use redis::cluster::ClusterClientBuilder;
    /// use single_flight_redis::{Options, RedisGroup};
    /// use single_flight_tokio::Tokio;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), single_flight_redis::Error> {
    /// let nodes = ClusterClientBuilder::new(["redis://127.0.0.1:7000/"]);
    /// let group: RedisGroup<u64, String, Tokio> =
    ///     RedisGroup::connect_cluster_on(Tokio, nodes, "profiles", Options::new()).await?;
    /// # let _ = group;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_cluster_on(
        runtime: R,
        builder: redis::cluster::ClusterClientBuilder,
        namespace: &str,
        options: Options,
    ) -> Result<Self, Error> {
        let _ = runtime;
        Self::open_cluster(builder, namespace, options).await
    }

    async fn open(client: redis::Client, namespace: &str, options: Options) -> Result<Self, Error> {
        let names = names(namespace)?;
        let dispatcher = Dispatcher::new();
        let mut conn = Conn::single(client, dispatcher.clone(), options.redis_timeout)
            .await
            .map_err(|e| Error::redis("cannot connect to Redis", e))?;
        let scripts = Scripts::new();
        crate::acl::check_rights(&mut conn, &scripts, &names).await?;
        Ok(Self::start(conn, scripts, names, dispatcher, options))
    }

    async fn open_cluster(
        builder: redis::cluster::ClusterClientBuilder,
        namespace: &str,
        options: Options,
    ) -> Result<Self, Error> {
        let names = names(namespace)?;
        let dispatcher = Dispatcher::new();
        let mut conn = Conn::cluster(builder, dispatcher.clone(), options.redis_timeout)
            .await
            .map_err(|e| Error::redis("cannot connect to the Redis cluster", e))?;
        let sharded = conn
            .has_sharded_pubsub()
            .await
            .map_err(|e| Error::redis("cannot ask the cluster for SPUBLISH", e))?;
        if !sharded {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the cluster has no sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7+): \
                 single-flight-redis needs it in a cluster",
            ));
        }
        let scripts = Scripts::new();
        crate::acl::check_rights(&mut conn, &scripts, &names).await?;
        Ok(Self::start(conn, scripts, names, dispatcher, options))
    }

    /// Builds the group and spawns its background task on `R` (from inside the future that
    /// connects, so in the runtime's context).
    fn start(
        conn: Conn,
        scripts: Scripts,
        names: Names,
        dispatcher: Dispatcher,
        options: Options,
    ) -> Self {
        let (jobs, queue) = async_channel::unbounded();
        let link = Arc::new(Link {
            conn: conn.clone(),
            jobs: jobs.clone(),
        });
        dispatcher.link(&link);
        let shared = Arc::new(Shared {
            conn,
            scripts,
            names,
            dispatcher,
            link,
            jobs,
            options,
            counters: Counters::default(),
            outage_until: Mutex::new(None),
            warned_no_ttl: AtomicBool::new(false),
        });
        R::spawn(background::<R>(shared.clone(), queue));
        Self {
            local: KeyedGroup::new(),
            shared,
            runtime: PhantomData,
        }
    }

    /// Runs `work` for `key` once among every process of the namespace, or joins the flight
    /// that runs it; the returned [`Call`] resolves to its value, and its
    /// [`with_origin`](Call::with_origin) to the value and where it came from ([`Origin`]).
    ///
    /// `work` receives the key and runs only in the process that holds the key's lease, and
    /// there only for the caller that started that process's flight. Under the default policy
    /// this never fails: when Redis cannot do its part, the work runs here (coalesced with this
    /// process's other callers).
    ///
    /// # Errors
    ///
    /// Under [`FailurePolicy::Strict`](crate::FailurePolicy::Strict) only: Redis failed or was
    /// slow ([`ErrorKind::Redis`]), another process's flight outlasted the maximum wait
    /// ([`ErrorKind::Timeout`]), its value was over the cap ([`ErrorKind::Oversize`]) or did
    /// not decode ([`ErrorKind::Decode`]), or the key does not serialize ([`ErrorKind::Key`]).
    ///
    /// # Cancel safety, Panics
    ///
    /// See [`Call`].
    ///
    /// # Examples
    ///
    /// See [`RedisGroup`], and [`Origin`] for `with_origin`.
    pub fn call<'a, F, Fut>(
        &'a self,
        key: K,
        work: F,
    ) -> Call<impl Future<Output = (Result<V, Error>, Origin)> + use<'a, K, V, R, F, Fut>>
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = V> + Send + 'static,
    {
        let shared = self.shared.clone();
        let call = self
            .local
            .call(key, move |key| flight::<_, _, _, _, R>(shared, key, work))
            .with_role();
        Call::new(async move { origin_of(call.await) })
    }

    /// Like [`call`](Self::call) with a borrowed key: a caller that joins this process's running
    /// flight makes no owned key; one that starts a flight makes it from `key` (`&Q: Into<K>`,
    /// as for a `&str` and a `String` key).
    ///
    /// # Errors, Cancel safety, Panics
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use single_flight_redis::{Options, RedisGroup};
    /// # async fn demo(group: RedisGroup<String, u64>) -> Result<(), single_flight_redis::Error> {
    /// let id = group.call_ref("ada", |name: String| async move { name.len() as u64 }).await?;
    /// # let _ = id; Ok(())
    /// # }
    /// ```
    pub fn call_ref<'a, 'q, Q, F, Fut>(
        &'a self,
        key: &'q Q,
        work: F,
    ) -> Call<impl Future<Output = (Result<V, Error>, Origin)> + use<'a, 'q, Q, K, V, R, F, Fut>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        &'q Q: Into<K>,
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = V> + Send + 'static,
    {
        let shared = self.shared.clone();
        let call = self
            .local
            .call_ref(key, move |key| flight::<_, _, _, _, R>(shared, key, work))
            .with_role();
        Call::new(async move { origin_of(call.await) })
    }

    /// Forgets this process's flight for `key`: the next call here starts a new local flight,
    /// which contends for the lease again (and joins the running one if another process, or
    /// the forgotten flight, still holds it). Returns whether a flight was forgotten.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use single_flight_redis::RedisGroup;
    /// # fn demo(group: RedisGroup<String, u64>) {
    /// assert!(!group.forget("ada"));
    /// # }
    /// ```
    pub fn forget<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.local.forget(key)
    }

    /// How many keys this process has a flight for (owned, waiting, or running locally).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use single_flight_redis::RedisGroup;
    /// # fn demo(group: RedisGroup<String, u64>) {
    /// assert_eq!(group.in_flight(), 0);
    /// # }
    /// ```
    pub fn in_flight(&self) -> usize {
        self.local.in_flight()
    }

    /// The group's counters so far.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use single_flight_redis::RedisGroup;
    /// # fn demo(group: RedisGroup<String, u64>) {
    /// let stats = group.stats();
    /// println!("{} fallbacks, {} flights joined elsewhere", stats.fallbacks, stats.joined_remote);
    /// # }
    /// ```
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// The namespace, first part of every Redis name the group uses.
    pub fn namespace(&self) -> &str {
        self.shared.names.namespace()
    }

    /// The `SCAN` pattern matching every key the group's namespace can hold, and only those:
    /// `<namespace>:{*`, with the namespace's glob characters (`*`, `?`, `[`, `]`, `\\`)
    /// escaped, so that namespace `p*` does not match namespace `px`'s keys.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use single_flight_redis::RedisGroup;
    /// # fn demo(group: RedisGroup<String, u64>) {
    /// // For a group of namespace "p*":
    /// assert_eq!(group.key_pattern(), "p\\*:{*");
    /// # }
    /// ```
    pub fn key_pattern(&self) -> String {
        self.shared.names.pattern()
    }
}
