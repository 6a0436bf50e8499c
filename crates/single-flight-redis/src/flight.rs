//! One process's flight of a key: contend for the lease, own it (run, renew, release, finish
//! or abandon) or wait for its holder, and apply the failure policy. Decisions come from
//! `protocol/`, commands from `wire/`.

use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_lite::FutureExt as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use single_flight::runtime::{timeout, Runtime};
use single_flight::Panicked;

use crate::error::{Error, ErrorKind};
use crate::options::{FailurePolicy, Options};
use crate::protocol::{
    self, Acquire, DecodeError, Envelope, FlightNames, LeaseLeft, Names, Next, Release,
};
use crate::stats::{bump, Counters};
use crate::wire::{hand_over, sleep, Conn, Dispatcher, Job, Jobs, Scripts, Watch};

/// Where a local flight's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Owner,
    Fallback,
    Remote,
}

pub(crate) type Reply<V> = Result<(V, Source), Error>;

/// What every flight of a group shares: the connection, scripts, options and counters.
pub(crate) struct Shared {
    pub(crate) conn: Conn,
    pub(crate) scripts: Scripts,
    pub(crate) names: Names,
    pub(crate) dispatcher: Dispatcher,
    /// Lent (weakly) to the dispatcher, to undo subscriptions nobody wants: kept alive here.
    #[allow(dead_code)]
    pub(crate) link: Arc<crate::wire::Link>,
    /// The background task's queue, for what a `Drop` cannot do itself (see [`background`]).
    pub(crate) jobs: Jobs,
    pub(crate) options: Options,
    pub(crate) counters: Counters,
    /// Until when flights skip Redis after a failure.
    pub(crate) outage_until: Mutex<Option<Instant>>,
    /// Whether a lease without TTL was logged already (it is logged once per group).
    pub(crate) warned_no_ttl: AtomicBool,
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

/// The local flight of one key: plays the protocol for this process, on runtime `R`.
pub(crate) async fn flight<K, V, F, Fut, R>(shared: Arc<Shared>, key: K, work: F) -> Reply<V>
where
    R: Runtime,
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
    match coordinate::<V, R>(&shared, &names).await {
        Ok(Coordinated::Own { token, takeover }) => {
            own::<K, V, F, Fut, R>(&shared, names, token, takeover, pending).await
        }
        Ok(Coordinated::Done(Envelope::Value(value))) => {
            bump(&shared.counters.joined_remote);
            Ok((value, Source::Remote))
        }
        Ok(Coordinated::Done(Envelope::Panicked(message))) => {
            bump(&shared.counters.joined_remote);
            resume_unwind(Box::new(panicked(message)))
        }
        Ok(Coordinated::Done(Envelope::Oversize(size))) => {
            bump(&shared.counters.rejected_values);
            let trouble = Trouble::Rejected(DecodeError::Oversize(size));
            fallback(&shared, pending, trouble).await
        }
        Ok(Coordinated::Done(Envelope::Unencodable(message))) => {
            bump(&shared.counters.rejected_values);
            let trouble = Trouble::Rejected(DecodeError::Unencodable(message));
            fallback(&shared, pending, trouble).await
        }
        Err(trouble) => fallback(&shared, pending, trouble).await,
    }
}

enum Coordinated<V> {
    /// This flight holds the lease under `token`.
    Own { token: String, takeover: bool },
    /// Another process's flight ended with this.
    Done(Envelope<V>),
}

/// Contends for the lease and, while another flight holds it, waits for that flight's end.
/// Listens on the flight's channel only once it waits (an owner never does); the watch is
/// dropped, and the channel given up, when this returns.
async fn coordinate<V: DeserializeOwned, R: Runtime>(
    shared: &Shared,
    names: &FlightNames,
) -> Result<Coordinated<V>, Trouble> {
    let options = &shared.options;
    let deadline = Instant::now().checked_add(options.max_wait);
    let token = protocol::token();
    let mut conn = shared.conn.clone();
    let mut takeover = false;
    let mut watch: Option<Watch> = None;
    let mut backoff = protocol::NO_TTL_FIRST_WAIT;
    loop {
        let mut unanswered = UnansweredAcquire::armed(shared, names, &token);
        let acquired = shared
            .redis::<R, _>("acquire", async {
                let answer = shared
                    .scripts
                    .acquire(&mut conn, &names.lease, &token, millis(options.lease))
                    .await;
                unanswered.answered(&answer);
                answer
            })
            .await?;
        drop(unanswered); // answered, so disarmed: it frees `token` for the owner
        let mut awaited = match acquired {
            Acquire::Acquired => return Ok(Coordinated::Own { token, takeover }),
            // Counted in the holder's lease now (invariant 2): it will leave us its value.
            Acquire::Held { owner } => owner,
        };
        let watch = match &mut watch {
            Some(watch) => watch,
            empty => {
                let new = shared
                    .dispatcher
                    .watch(&names.channel, &shared.conn, &shared.jobs);
                // Invariant 2: listening before the first check.
                shared.redis::<R, _>("subscribe", new.listen()).await?;
                empty.insert(new)
            }
        };
        // Wait for `awaited` (protocol step 3): check first, then wait for a message.
        loop {
            let seen = watch.generation();
            if let Some(bytes) = watch.finished(&awaited) {
                bump(&shared.counters.ends_by_message);
                return decoded(shared, &bytes);
            }
            let check = shared
                .redis::<R, _>("check", async {
                    let result = names.result(&awaited);
                    let lease = &names.lease;
                    shared
                        .scripts
                        .check(&mut conn, lease, &result, &awaited)
                        .await
                })
                .await?;
            bump(&shared.counters.checks);
            let lease = match protocol::after_check(check) {
                Next::Decode(bytes) => return decoded(shared, &bytes),
                Next::Wait(lease) => lease,
                Next::Follow { owner, lease } => {
                    awaited = owner;
                    lease
                }
                Next::Contend => {
                    takeover = true;
                    break;
                }
            };
            if lease == LeaseLeft::Never {
                shared.lease_without_ttl(names);
            }
            let left = deadline.map_or(options.max_wait, |d| {
                d.saturating_duration_since(Instant::now())
            });
            let poll = options.renew_interval();
            let Some(wait) = protocol::next_wait(lease, &mut backoff, poll, left) else {
                return Err(Trouble::Timeout);
            };
            watch.wait::<R>(seen, wait).await;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
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

/// Runs the work under the lease, renewing it meanwhile, then releases it; only if other
/// processes wait does the value go to Redis. Releases the lease at once if every local caller
/// leaves first.
async fn own<K, V, F, Fut, R: Runtime>(
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
    let outcome = work
        .or(renew::<_, R>(shared, &release.names, &release.token))
        .await;
    let options = &shared.options;
    let (names, token) = (&release.names, &release.token);
    let mut conn = shared.conn.clone();
    let released = shared
        .redis::<R, _>("release", async {
            shared.scripts.release(&mut conn, &names.lease, token).await
        })
        .await;
    let finish = match released {
        Ok(Release::Unshared) => {
            bump(&shared.counters.unshared);
            false
        }
        Ok(Release::Shared(_)) => true,
        Ok(Release::Lost) => {
            bump(&shared.counters.lost_leases);
            tracing::warn!(tag = %names.tag, "single-flight-redis: the lease had expired before the work finished");
            true
        }
        // The local callers have their value; the waiters elsewhere take over or fall back.
        Err(_) => false,
    };
    if finish {
        let envelope = match &outcome {
            Ok(value) => protocol::encode(&Envelope::Value(value), options.max_value_size),
            Err(payload) => protocol::encode::<V>(
                &Envelope::Panicked(protocol::panic_message(&**payload)),
                options.max_value_size,
            ),
        };
        let result_ms = millis(options.result_lifetime);
        let _ = shared
            .redis::<R, _>("finish", async {
                let scripts = &shared.scripts;
                scripts
                    .finish(&mut conn, names, token, &envelope, result_ms)
                    .await
            })
            .await;
    }
    // Dropped before this, the guard released the lease (a no-op once released).
    release.armed = false;
    match outcome {
        Ok(value) => Ok((value, Source::Owner)),
        Err(payload) => resume_unwind(payload),
    }
}

/// Renews the lease every renewal interval; never returns (the work wins the race).
async fn renew<T, R: Runtime>(shared: &Shared, names: &FlightNames, token: &str) -> T {
    let options = &shared.options;
    let mut conn = shared.conn.clone();
    let mut lost = false;
    loop {
        sleep::<R>(options.renew_interval()).await;
        if lost {
            continue;
        }
        let renewed = shared
            .redis::<R, _>("renew", async {
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

/// Releases the lease that an ACQUIRE may have taken for us when its answer never reached us:
/// every local caller left while the command was out, or it timed out, or the connection
/// failed after Redis may have run it. Without this, a lease granted to a flight that no
/// longer exists would hold every other process until it expired. Redis may also never have
/// run the command: ABANDON compares the token, so it then changes nothing (a command wasted,
/// only on this rare path). An error *reply* (say `NOPERM`) is an answer: Redis ran nothing.
struct UnansweredAcquire<'a> {
    shared: &'a Shared,
    names: &'a FlightNames,
    token: &'a str,
    armed: bool,
}

impl<'a> UnansweredAcquire<'a> {
    fn armed(shared: &'a Shared, names: &'a FlightNames, token: &'a str) -> Self {
        let armed = true;
        UnansweredAcquire {
            shared,
            names,
            token,
            armed,
        }
    }

    /// Disarms once Redis has answered, with the lease, its holder or an error reply; stays
    /// armed for what leaves the command's fate unknown (I/O, a dropped connection).
    fn answered<T>(&mut self, answer: &redis::RedisResult<T>) {
        let replied = match answer {
            Ok(_) => true,
            Err(error) => matches!(
                error.kind(),
                redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
            ),
        };
        if replied {
            self.armed = false;
        }
    }
}

impl Drop for UnansweredAcquire<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        abandon_later(self.shared, self.names.clone(), self.token.to_owned());
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
        abandon_later(
            &self.shared,
            self.names.clone(),
            std::mem::take(&mut self.token),
        );
    }
}

/// Releases the lease held under `token` through the group's background task, not spawned
/// here: the guards that call this run in a `Drop`, by whichever caller leaves last, on any
/// thread, possibly outside the runtime (where a static spawn such as `tokio::spawn` panics).
fn abandon_later(shared: &Shared, names: FlightNames, token: String) {
    hand_over(&shared.jobs, Job::Abandon { names, token });
}

/// The group's background task, spawned on `R` when the group is built: runs what drops hand
/// over (an owner's abandoned lease, the unsubscription of a channel nobody watches), each as
/// a task of its own spawned from here, inside the runtime. It ends when the group is dropped
/// (which closes the queue) and the queue is empty.
pub(crate) async fn background<R: Runtime>(
    shared: Arc<Shared>,
    jobs: async_channel::Receiver<Job>,
) {
    while let Ok(job) = jobs.recv().await {
        match job {
            Job::Abandon { names, token } => {
                let shared = shared.clone();
                R::spawn(async move {
                    let mut conn = shared.conn.clone();
                    let _ = shared
                        .redis::<R, _>("abandon", async {
                            shared.scripts.abandon(&mut conn, &names, &token).await
                        })
                        .await;
                });
            }
            Job::Unlisten(unlisten) => R::spawn(unlisten.run::<R>()),
        }
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
        Trouble::Rejected(DecodeError::Unencodable(message)) => Error::new(
            ErrorKind::Encode,
            format!("the owner's value does not serialize: {message}"),
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
    async fn redis<R: Runtime, T>(
        &self,
        what: &'static str,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Trouble> {
        let error = match timeout::<R, _>(self.options.redis_timeout, command).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(error)) => Error::redis(what, error),
            Err(_elapsed) => Error::new(
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
                Instant::now().checked_add(self.options.outage_backoff);
        }
        Err(Trouble::Redis(error))
    }

    /// Counts a check that found a lease without TTL, and logs the first one of the group.
    #[cold]
    fn lease_without_ttl(&self, names: &FlightNames) {
        bump(&self.counters.leases_without_ttl);
        if !self
            .warned_no_ttl
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                lease = %names.lease,
                "single-flight-redis: a lease key has no TTL (written by something else): \
                 waiting processes check it with a bounded back-off until it goes or the \
                 maximum wait ends (logged once per group)"
            );
        }
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
/// panicked.
#[cold]
fn panicked(message: String) -> Panicked {
    Panicked::new(message)
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
