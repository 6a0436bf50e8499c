//! [`RedisGroup`]: a local `KeyedGroup` whose one flight per key plays the protocol of
//! `protocol.rs` with the other processes.

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_lite::FutureExt as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use single_flight::{KeyedGroup, Panicked};

use crate::error::{Error, ErrorKind};
use crate::options::{FailurePolicy, Options};
use crate::protocol::{self, Acquire, DecodeError, FlightNames, Names, Next, Outcome};
use crate::wire::{Conn, Dispatcher, Runtime, Scripts, Watch};

/// How a caller got its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// This caller started its process's flight, and the work ran in this process under the
    /// lease (first, or after taking over from a process that died or left).
    Started,
    /// This caller started its process's flight and the work ran in this process without the
    /// lease, by the [`FailurePolicy::Fallback`] (Redis unreachable or slow, a value that could
    /// not cross the wire, or the maximum wait passed).
    StartedLocally,
    /// This caller joined a flight that another caller of this process had started (whatever
    /// that flight did).
    JoinedLocal,
    /// This caller started its process's flight, which joined another process's flight: the
    /// work ran there.
    JoinedRemote,
}

/// Where a local flight's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Owner,
    Fallback,
    Remote,
}

type Reply<V> = Result<(V, Source), Error>;

/// Counters of a group since it was built, read with [`RedisGroup::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Flights of this process that held the lease and ran the work (takeovers included).
    pub owned: u64,
    /// Flights of this process that got their value from another process.
    pub joined_remote: u64,
    /// Flights of this process that took the lease over from a flight that died or left.
    pub takeovers: u64,
    /// Flights that ran the work here without the lease, by the fallback policy.
    pub fallbacks: u64,
    /// Flights that returned an error, by the strict policy.
    pub errors: u64,
    /// Failed or timed-out Redis commands.
    pub redis_failures: u64,
    /// Envelopes read from Redis that were over the cap or did not decode.
    pub rejected_values: u64,
    /// Owned flights whose every local caller left, and whose lease was released early.
    pub abandoned: u64,
    /// Owners that found their lease taken by another flight when renewing or finishing.
    pub lost_leases: u64,
}

#[derive(Default)]
struct Counters {
    owned: AtomicU64,
    joined_remote: AtomicU64,
    takeovers: AtomicU64,
    fallbacks: AtomicU64,
    errors: AtomicU64,
    redis_failures: AtomicU64,
    rejected_values: AtomicU64,
    abandoned: AtomicU64,
    lost_leases: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What every flight of a group shares: the connection, scripts, options and counters.
struct Shared {
    conn: Conn,
    scripts: Scripts,
    names: Names,
    channel: String,
    dispatcher: Dispatcher,
    runtime: Runtime,
    options: Options,
    counters: Counters,
    /// Until when flights skip Redis after a failure.
    outage_until: Mutex<Option<Instant>>,
}

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
pub struct RedisGroup<K, V> {
    local: KeyedGroup<K, Reply<V>>,
    shared: Arc<Shared>,
}

impl<K, V> fmt::Debug for RedisGroup<K, V> {
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
    /// Connects to one Redis server (or Valkey) and subscribes to the namespace's channel.
    ///
    /// The group opens its own multiplexed connection from `client`, in RESP3 whatever the
    /// client asked for (its pub/sub messages arrive as pushes on the same connection), and
    /// reconnects on its own. Call it inside the runtime the group will run on (tokio with the
    /// `tokio` feature). Keep the group for the life of the process: each group has its own
    /// connection.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Namespace`] if `namespace` is empty or has a brace (the hash tag's
    /// delimiters); [`ErrorKind::Redis`] if the server cannot be reached or refuses to
    /// subscribe.
    ///
    /// # Panics
    ///
    /// With only the `tokio` feature, if called outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// See [`RedisGroup`].
    pub async fn connect(
        client: redis::Client,
        namespace: &str,
        options: Options,
    ) -> Result<Self, Error> {
        let names = names(namespace)?;
        let dispatcher = Dispatcher::new(&names.channel());
        let conn = Conn::single(client, dispatcher.clone(), options.redis_timeout)
            .await
            .map_err(|e| Error::redis("cannot connect to Redis", e))?;
        Self::start(conn, names, dispatcher, options).await
    }

    /// Connects to a Redis Cluster through `builder` (its nodes, credentials, ...), in RESP3.
    ///
    /// A flight's keys share one hash tag, so every script of a flight runs on one node; the
    /// namespace's channel is a classic (cluster-wide) pub/sub channel.
    ///
    /// # Errors
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
        let names = names(namespace)?;
        let dispatcher = Dispatcher::new(&names.channel());
        let conn = Conn::cluster(builder, dispatcher.clone(), options.redis_timeout)
            .await
            .map_err(|e| Error::redis("cannot connect to the Redis cluster", e))?;
        Self::start(conn, names, dispatcher, options).await
    }

    async fn start(
        mut conn: Conn,
        names: Names,
        dispatcher: Dispatcher,
        options: Options,
    ) -> Result<Self, Error> {
        let channel = names.channel();
        // Invariant 2: subscribed before any flight starts.
        conn.subscribe(&channel)
            .await
            .map_err(|e| Error::redis("cannot subscribe", e))?;
        Ok(Self {
            local: KeyedGroup::new(),
            shared: Arc::new(Shared {
                conn,
                scripts: Scripts::new(),
                names,
                channel,
                dispatcher,
                runtime: Runtime::current(),
                options,
                counters: Counters::default(),
                outage_until: Mutex::new(None),
            }),
        })
    }

    /// Runs `work` for `key` once among every process of the namespace, or joins the flight
    /// that runs it, and returns its value.
    ///
    /// `work` receives the key and runs only in the process that holds the key's lease, and
    /// there only for the caller that started that process's flight. Under the default policy
    /// this never fails: when Redis cannot do its part, the work runs here (coalesced with this
    /// process's other callers).
    ///
    /// # Errors
    ///
    /// Under [`FailurePolicy::Strict`] only: Redis failed or was slow ([`ErrorKind::Redis`]),
    /// another process's flight outlasted the maximum wait ([`ErrorKind::Timeout`]), its value
    /// was over the cap ([`ErrorKind::Oversize`]) or did not decode ([`ErrorKind::Decode`]),
    /// or the key does not serialize ([`ErrorKind::Key`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future leaves the flight to this process's other callers, as
    /// `KeyedGroup::call` does. If it was the last caller of this process: an owner's work is
    /// dropped and its lease released at once (another process takes over without waiting for
    /// the lease to expire); a waiting process stops waiting, and the owner elsewhere goes on.
    ///
    /// # Panics
    ///
    /// If the work panics, every caller of the owner's process panics as with `KeyedGroup`,
    /// and every caller of the other processes panics with a [`Panicked`] carrying the
    /// message. Also panics, instead of waiting for itself, if awaited from inside the work of
    /// its own flight.
    ///
    /// # Examples
    ///
    /// See [`RedisGroup`].
    pub async fn call<F, Fut>(&self, key: K, work: F) -> Result<V, Error>
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = V> + Send + 'static,
    {
        self.call_with_role(key, work).await.0
    }

    /// Like [`call`](Self::call) with a borrowed key, cloned into an owned one (`ToOwned`) for
    /// the group.
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
    /// let id = group.call_ref("ada", |name| async move { name.len() as u64 }).await?;
    /// # let _ = id; Ok(())
    /// # }
    /// ```
    pub async fn call_ref<Q, F, Fut>(&self, key: &Q, work: F) -> Result<V, Error>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + ?Sized,
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = V> + Send + 'static,
    {
        self.call(key.to_owned(), work).await
    }

    /// Like [`call`](Self::call), and also tells how this caller got its value.
    ///
    /// # Cancel safety, Panics
    ///
    /// As for [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use single_flight_redis::{Options, RedisGroup, Role};
    /// # async fn demo(group: RedisGroup<String, u64>) {
    /// let (id, role) = group
    ///     .call_with_role("ada".to_owned(), |name| async move { name.len() as u64 })
    ///     .await;
    /// if role == Role::JoinedRemote {
    ///     // another replica did the query
    /// }
    /// # let _ = id;
    /// # }
    /// ```
    pub async fn call_with_role<F, Fut>(&self, key: K, work: F) -> (Result<V, Error>, Role)
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = V> + Send + 'static,
    {
        let started = AtomicBool::new(false);
        let shared = self.shared.clone();
        let reply = self
            .local
            .call(key, |key| {
                started.store(true, Ordering::Relaxed);
                flight(shared, key, work)
            })
            .await;
        let started = started.load(Ordering::Relaxed);
        match reply {
            Ok((value, source)) => {
                let role = match (started, source) {
                    (false, _) => Role::JoinedLocal,
                    (true, Source::Owner) => Role::Started,
                    (true, Source::Fallback) => Role::StartedLocally,
                    (true, Source::Remote) => Role::JoinedRemote,
                };
                (Ok(value), role)
            }
            Err(error) => (
                Err(error),
                if started {
                    Role::StartedLocally
                } else {
                    Role::JoinedLocal
                },
            ),
        }
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
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            owned: get(&c.owned),
            joined_remote: get(&c.joined_remote),
            takeovers: get(&c.takeovers),
            fallbacks: get(&c.fallbacks),
            errors: get(&c.errors),
            redis_failures: get(&c.redis_failures),
            rejected_values: get(&c.rejected_values),
            abandoned: get(&c.abandoned),
            lost_leases: get(&c.lost_leases),
        }
    }

    /// The namespace, first part of every Redis name the group uses.
    pub fn namespace(&self) -> &str {
        self.shared.names.namespace()
    }

    /// The `SCAN` pattern matching every key the group's namespace can hold
    /// (`<namespace>:{*`).
    pub fn key_pattern(&self) -> String {
        self.shared.names.pattern()
    }
}

fn names(namespace: &str) -> Result<Names, Error> {
    Names::new(namespace).ok_or_else(|| {
        Error::new(
            ErrorKind::Namespace,
            format!("namespace {namespace:?} is empty or contains a brace"),
        )
    })
}

/// Why a flight could not go through Redis.
enum Trouble {
    Redis(Error),
    Timeout,
    Rejected(DecodeError),
}

/// The work, not yet run: run it at most once, here.
struct Pending<K, F> {
    key: K,
    work: F,
}

/// The local flight of one key: plays the protocol for this process.
async fn flight<K, V, F, Fut>(shared: Arc<Shared>, key: K, work: F) -> Reply<V>
where
    K: Serialize + Send + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    F: FnOnce(K) -> Fut + Send + 'static,
    Fut: Future<Output = V> + Send + 'static,
{
    let pending = Pending { key, work };
    let key_bytes = match rmp_serde::to_vec(&pending.key) {
        Ok(bytes) => bytes,
        Err(e) => {
            let error = Error::new(ErrorKind::Key, format!("the key does not serialize: {e}"));
            return fallback(&shared, pending, Trouble::Redis(error)).await;
        }
    };
    if shared.in_outage() {
        let error = Error::new(ErrorKind::Redis, "Redis failed recently (outage backoff)");
        return fallback(&shared, pending, Trouble::Redis(error)).await;
    }
    let names = shared.names.flight(&key_bytes);
    // Invariant 2: registered before the first read.
    let watch = shared.dispatcher.watch(&names.tag);
    match coordinate(&shared, &names, &watch).await {
        Ok(Coordinated::Own { token, takeover }) => {
            drop(watch);
            own(&shared, names, token, takeover, pending).await
        }
        Ok(Coordinated::Done(Outcome::Value(value))) => {
            bump(&shared.counters.joined_remote);
            Ok((value, Source::Remote))
        }
        Ok(Coordinated::Done(Outcome::Panicked(message))) => {
            bump(&shared.counters.joined_remote);
            resume_unwind(Box::new(panicked(message)))
        }
        Ok(Coordinated::Done(Outcome::Oversize(size))) => {
            bump(&shared.counters.rejected_values);
            fallback(
                &shared,
                pending,
                Trouble::Rejected(DecodeError::Oversize(size)),
            )
            .await
        }
        Err(trouble) => fallback(&shared, pending, trouble).await,
    }
}

enum Coordinated<V> {
    /// This flight holds the lease under `token`.
    Own { token: String, takeover: bool },
    /// Another process's flight ended with this.
    Done(Outcome<V>),
}

/// Contends for the lease and, while another flight holds it, waits for that flight's end.
async fn coordinate<V: DeserializeOwned>(
    shared: &Shared,
    names: &FlightNames,
    watch: &Watch,
) -> Result<Coordinated<V>, Trouble> {
    let options = &shared.options;
    let deadline = Instant::now() + options.max_wait;
    let token = protocol::token();
    let mut conn = shared.conn.clone();
    let mut takeover = false;
    loop {
        let seen = watch.generation();
        let acquired = shared
            .redis("acquire", async {
                shared
                    .scripts
                    .acquire(&mut conn, &names.lease, &token, millis(options.lease))
                    .await
            })
            .await?;
        let (mut awaited, mut lease_left) = match acquired {
            Acquire::Acquired => return Ok(Coordinated::Own { token, takeover }),
            Acquire::Held { owner, pttl_ms } => {
                (owner, Duration::from_millis(pttl_ms.max(0) as u64))
            }
        };
        let mut seen = seen;
        // Wait for `awaited` (protocol step 3).
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(wait) = protocol::next_wait(lease_left, options.get_renew_every(), left)
            else {
                return Err(Trouble::Timeout);
            };
            watch.wait(seen, &shared.runtime, wait).await;
            seen = watch.generation();
            // The end-of-flight message may carry the envelope: no `CHECK` then.
            let inline = watch.finished(&awaited);
            if let Some(bytes) = inline {
                return decoded(shared, &bytes);
            }
            let check = shared
                .redis("check", async {
                    let result = names.result(&awaited);
                    shared.scripts.check(&mut conn, &names.lease, &result).await
                })
                .await?;
            match protocol::after_check(&awaited, check) {
                Next::Decode(bytes) => return decoded(shared, &bytes),
                Next::Wait(left) => lease_left = left,
                Next::Follow { owner, wait } => {
                    awaited = owner;
                    lease_left = wait;
                }
                Next::Contend => {
                    takeover = true;
                    break;
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(Trouble::Timeout);
        }
    }
}

/// The end of a waited-for flight, from its envelope (invariant 4: never a partial value).
fn decoded<V: DeserializeOwned>(shared: &Shared, bytes: &[u8]) -> Result<Coordinated<V>, Trouble> {
    match protocol::decode::<V>(bytes, shared.options.max_value_size) {
        Ok(outcome) => Ok(Coordinated::Done(outcome)),
        Err(error) => {
            bump(&shared.counters.rejected_values);
            Err(Trouble::Rejected(error))
        }
    }
}

/// Runs the work under the lease: renews it meanwhile, then leaves the outcome for the other
/// processes. Releases the lease at once if every local caller leaves first.
async fn own<K, V, F, Fut>(
    shared: &Arc<Shared>,
    names: FlightNames,
    token: String,
    takeover: bool,
    pending: Pending<K, F>,
) -> Reply<V>
where
    V: Serialize,
    F: FnOnce(K) -> Fut,
    Fut: Future<Output = V>,
{
    bump(&shared.counters.owned);
    if takeover {
        bump(&shared.counters.takeovers);
        tracing::debug!(tag = %names.tag, "single-flight-redis: took a flight over");
    }
    let mut release = ReleaseOnDrop {
        shared: shared.clone(),
        names,
        token,
        armed: true,
    };
    let work = AssertUnwindSafe((pending.work)(pending.key)).catch_unwind();
    let outcome = work.or(renew(shared, &release.names, &release.token)).await;
    let options = &shared.options;
    let envelope = match &outcome {
        Ok(value) => protocol::encode(&Outcome::Value(value), options.max_value_size),
        Err(payload) => protocol::encode::<V>(
            &Outcome::Panicked(protocol::panic_message(&**payload)),
            options.max_value_size,
        ),
    };
    let names = &release.names;
    let mut conn = shared.conn.clone();
    let finished = shared
        .redis("finish", async {
            shared
                .scripts
                .finish(
                    &mut conn,
                    &names.lease,
                    &names.result(&release.token),
                    &release.token,
                    &envelope,
                    millis(options.result_lifetime),
                    &shared.channel,
                    &names.tag,
                )
                .await
        })
        .await;
    // Dropped during `finish`, the guard released the lease (a no-op if `finish` had run).
    release.armed = false;
    match finished {
        Ok(true) => {}
        Ok(false) => {
            bump(&shared.counters.lost_leases);
            tracing::warn!(tag = %names.tag, "single-flight-redis: the lease had expired before the work finished");
        }
        // The local callers have their value; the waiters elsewhere take over or fall back.
        Err(_) => {}
    }
    match outcome {
        Ok(value) => Ok((value, Source::Owner)),
        Err(payload) => resume_unwind(payload),
    }
}

/// Renews the lease every renewal interval; never returns (the work wins the race).
async fn renew<T>(shared: &Shared, names: &FlightNames, token: &str) -> T {
    let options = &shared.options;
    let mut conn = shared.conn.clone();
    let mut lost = false;
    loop {
        shared.runtime.sleep(options.get_renew_every()).await;
        if lost {
            continue;
        }
        let renewed = shared
            .redis("renew", async {
                shared
                    .scripts
                    .renew(&mut conn, &names.lease, token, millis(options.lease))
                    .await
            })
            .await;
        if let Ok(false) = renewed {
            // Invariant 3: another flight holds the lease now; never touch it again.
            lost = true;
            bump(&shared.counters.lost_leases);
            tracing::warn!(tag = %names.tag, "single-flight-redis: lost the lease while the work ran (paused or partitioned past the lease)");
        }
    }
}

/// Releases an owner's lease when its work is dropped unfinished (every local caller left).
struct ReleaseOnDrop {
    shared: Arc<Shared>,
    names: FlightNames,
    token: String,
    armed: bool,
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        bump(&self.shared.counters.abandoned);
        let shared = self.shared.clone();
        let names = self.names.clone();
        let token = std::mem::take(&mut self.token);
        self.shared.runtime.clone().spawn(async move {
            let mut conn = shared.conn.clone();
            let _ = shared
                .redis("abandon", async {
                    shared
                        .scripts
                        .abandon(&mut conn, &names.lease, &token, &shared.channel, &names.tag)
                        .await
                })
                .await;
        });
    }
}

/// Applies the failure policy: run the work here, or return the error.
#[cold]
async fn fallback<K, V, F, Fut>(
    shared: &Shared,
    pending: Pending<K, F>,
    trouble: Trouble,
) -> Reply<V>
where
    F: FnOnce(K) -> Fut,
    Fut: Future<Output = V>,
{
    let error = match trouble {
        Trouble::Redis(error) => error,
        Trouble::Timeout => Error::new(
            ErrorKind::Timeout,
            "another process's flight did not end within the maximum wait",
        ),
        Trouble::Rejected(DecodeError::Oversize(size)) => Error::new(
            ErrorKind::Oversize,
            format!(
                "the value takes {size} bytes, over the cap of {}",
                shared.options.max_value_size
            ),
        ),
        Trouble::Rejected(DecodeError::Format) => Error::new(
            ErrorKind::Decode,
            "the bytes in Redis are not a value envelope",
        ),
        Trouble::Rejected(DecodeError::Value(message)) => Error::new(
            ErrorKind::Decode,
            format!("the value in Redis does not decode: {message}"),
        ),
    };
    match shared.options.failure_policy {
        FailurePolicy::Strict => {
            bump(&shared.counters.errors);
            Err(error)
        }
        _ => {
            bump(&shared.counters.fallbacks);
            tracing::warn!(%error, "single-flight-redis: running the work in this process");
            Ok(((pending.work)(pending.key).await, Source::Fallback))
        }
    }
}

impl Shared {
    /// Runs one Redis command with the command timeout; a failure starts the outage backoff.
    async fn redis<T>(
        &self,
        what: &'static str,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Trouble> {
        let error = match self
            .runtime
            .timeout(self.options.redis_timeout, command)
            .await
        {
            Some(Ok(answer)) => return Ok(answer),
            Some(Err(error)) => Error::redis(what, error),
            None => Error::new(
                ErrorKind::Redis,
                format!("{what}: no answer within {:?}", self.options.redis_timeout),
            ),
        };
        bump(&self.counters.redis_failures);
        tracing::warn!(%error, "single-flight-redis: Redis command failed");
        if !self.options.outage_backoff.is_zero() {
            *self
                .outage_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner) =
                Some(Instant::now() + self.options.outage_backoff);
        }
        Err(Trouble::Redis(error))
    }

    fn in_outage(&self) -> bool {
        let mut until = self
            .outage_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A [`Panicked`] carrying `message`, as the core hands to the followers of a flight that
/// panicked. (The core does not construct one publicly: a throw-away flight that unwinds with
/// the message makes one, without running the panic hook.)
#[cold]
fn panicked(message: String) -> Panicked {
    let group: KeyedGroup<(), ()> = KeyedGroup::new();
    let first = group.do_chan((), move |()| async move {
        resume_unwind(Box::new(message));
    });
    let second = group.do_chan((), |()| async {});
    let _ = catch_unwind(AssertUnwindSafe(|| futures_lite::future::block_on(first)));
    match catch_unwind(AssertUnwindSafe(|| futures_lite::future::block_on(second))) {
        Err(payload) => match payload.downcast::<Panicked>() {
            Ok(panicked) => *panicked,
            Err(payload) => resume_unwind(payload),
        },
        Ok(()) => unreachable!("the follower of a panicked flight returned"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panicked_carries_the_message() {
        assert_eq!(
            panicked("database is on fire".into()).message(),
            "database is on fire"
        );
    }
}
