//! The wire: the connection (one server or a cluster), the server-side scripts, the wake-ups
//! that pub/sub messages deliver, and the runtime's timer and spawn.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use event_listener::{Event, EventListener};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, PushInfo, PushKind, RedisFuture, RedisResult, Script, Value};

use crate::protocol::{Acquire, Check};

#[cfg(not(any(feature = "tokio", feature = "smol")))]
compile_error!("single-flight-redis needs a runtime: enable the feature `tokio` or `smol`");

/// The shared, multiplexed connection: one server (reconnecting) or a cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// Connects to one server over RESP3 (whatever protocol `client` asked for), with the
    /// dispatcher receiving the pushes and subscriptions renewed after each reconnect.
    pub(crate) async fn single(
        client: redis::Client,
        dispatcher: Dispatcher,
        timeout: Duration,
    ) -> RedisResult<Self> {
        let info = client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let config = ConnectionManagerConfig::new()
            .set_push_sender(dispatcher)
            .set_automatic_resubscription()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        Ok(Conn::Single(
            ConnectionManager::new_with_config(client, config).await?,
        ))
    }

    /// Connects to a cluster over RESP3, with the dispatcher receiving the pushes.
    pub(crate) async fn cluster(
        builder: redis::cluster::ClusterClientBuilder,
        dispatcher: Dispatcher,
        timeout: Duration,
    ) -> RedisResult<Self> {
        let client = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(dispatcher)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .build()?;
        Ok(Conn::Cluster(client.get_async_connection().await?))
    }

    pub(crate) async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Conn::Single(c) => c.subscribe(channel).await,
            Conn::Cluster(c) => c.subscribe(channel).await,
        }
    }
}

/// The scripts of the protocol (see `protocol.rs`). `KEYS[1]` is always the lease key, so that
/// a cluster routes each script to the slot of the flight's hash tag.
pub(crate) struct Scripts {
    acquire: Script,
    check: Script,
    renew: Script,
    finish: Script,
    abandon: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            // ARGV: token, lease ms. Answers {} when acquired, {holder, pttl} otherwise.
            acquire: Script::new(
                r"local holder = redis.call('GET', KEYS[1])
if holder then return {holder, redis.call('PTTL', KEYS[1])} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {}",
            ),
            // KEYS[2]: the awaited flight's result. Answers {result or '', holder or '', pttl}.
            check: Script::new(
                r"local result = redis.call('GET', KEYS[2])
local holder = redis.call('GET', KEYS[1])
return {result or '', holder or '', redis.call('PTTL', KEYS[1])}",
            ),
            // ARGV: token, lease ms. Extends the lease only while it holds the token.
            renew: Script::new(
                r"if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0",
            ),
            // KEYS[2]: this flight's result. ARGV: token, envelope, result ms, channel, message,
            // '1' to append the envelope to the message. Deletes the lease only while it holds
            // the token.
            finish: Script::new(
                r"redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local held = redis.call('GET', KEYS[1]) == ARGV[1]
if held then redis.call('DEL', KEYS[1]) end
local message = ARGV[5]
if ARGV[6] == '1' then message = message .. ARGV[2] end
redis.call('PUBLISH', ARGV[4], message)
if held then return 1 end
return 0",
            ),
            // ARGV: token, channel, tag. Deletes the lease only while it holds the token.
            abandon: Script::new(
                r"if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0",
            ),
        }
    }

    pub(crate) async fn acquire(
        &self,
        conn: &mut Conn,
        lease: &str,
        token: &str,
        lease_ms: u64,
    ) -> RedisResult<Acquire> {
        let answer: Vec<Value> = self
            .acquire
            .key(lease)
            .arg(token)
            .arg(lease_ms)
            .invoke_async(conn)
            .await?;
        if answer.is_empty() {
            return Ok(Acquire::Acquired);
        }
        let (owner, pttl_ms): (String, i64) = redis::from_redis_value(Value::Array(answer))?;
        Ok(Acquire::Held { owner, pttl_ms })
    }

    pub(crate) async fn check(
        &self,
        conn: &mut Conn,
        lease: &str,
        result: &str,
    ) -> RedisResult<Check> {
        let (result, holder, pttl_ms): (Vec<u8>, String, i64) =
            self.check.key(lease).key(result).invoke_async(conn).await?;
        Ok(Check {
            result: (!result.is_empty()).then_some(result),
            holder: (!holder.is_empty()).then_some(holder),
            pttl_ms,
        })
    }

    /// Whether the lease was still this flight's (and is now extended).
    pub(crate) async fn renew(
        &self,
        conn: &mut Conn,
        lease: &str,
        token: &str,
        lease_ms: u64,
    ) -> RedisResult<bool> {
        let renewed: i64 = self
            .renew
            .key(lease)
            .arg(token)
            .arg(lease_ms)
            .invoke_async(conn)
            .await?;
        Ok(renewed == 1)
    }

    /// Whether the lease was still this flight's when it finished.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn finish(
        &self,
        conn: &mut Conn,
        lease: &str,
        result: &str,
        token: &str,
        envelope: &[u8],
        result_ms: u64,
        channel: &str,
        tag: &str,
    ) -> RedisResult<bool> {
        let inline = envelope.len() <= INLINE_MAX;
        let message = format!("{tag}|{token}|");
        let held: i64 = self
            .finish
            .key(lease)
            .key(result)
            .arg(token)
            .arg(envelope)
            .arg(result_ms)
            .arg(channel)
            .arg(message)
            .arg(if inline { "1" } else { "0" })
            .invoke_async(conn)
            .await?;
        Ok(held == 1)
    }

    /// Whether the lease was still this flight's (and is now gone).
    pub(crate) async fn abandon(
        &self,
        conn: &mut Conn,
        lease: &str,
        token: &str,
        channel: &str,
        tag: &str,
    ) -> RedisResult<bool> {
        let released: i64 = self
            .abandon
            .key(lease)
            .arg(token)
            .arg(channel)
            .arg(tag)
            .invoke_async(conn)
            .await?;
        Ok(released == 1)
    }
}

/// The largest envelope that rides in the end-of-flight message itself (bytes): a waiter then
/// needs no `CHECK`. Every process of the namespace receives the message, so larger envelopes
/// are only read from the result key by the processes that wait for them.
pub(crate) const INLINE_MAX: usize = 4096;

/// Routes the messages of the namespace's channel to the flights of this process that wait for
/// the tag they name. It is the connection's push sender: it runs on the connection's task and
/// only bumps a counter, keeps a small envelope, and notifies; it never blocks.
///
/// A message is `<tag>` (an abandoned flight), `<tag>|<token>|` (a finished flight whose
/// envelope is in its result key) or `<tag>|<token>|<envelope>`.
#[derive(Clone)]
pub(crate) struct Dispatcher {
    inner: Arc<DispatcherInner>,
}

struct DispatcherInner {
    channel: Vec<u8>,
    watches: Mutex<HashMap<String, Arc<Slot>>>,
}

/// The wake-up state of one tag in this process.
struct Slot {
    /// Bumped by every message naming the tag (and by every disconnection).
    generation: AtomicU64,
    event: Event,
    /// How many watches hold the slot (under the map's lock).
    holders: AtomicU64,
    /// The last finished flight's token and inline envelope, from its message.
    finished: Mutex<Option<(String, Vec<u8>)>>,
}

impl Dispatcher {
    pub(crate) fn new(channel: &str) -> Self {
        Self {
            inner: Arc::new(DispatcherInner {
                channel: channel.as_bytes().to_vec(),
                watches: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Registers interest in `tag`, before the flight reads anything from Redis.
    pub(crate) fn watch(&self, tag: &str) -> Watch {
        let mut map = self.lock();
        let slot = map
            .entry(tag.to_owned())
            .or_insert_with(|| {
                Arc::new(Slot {
                    generation: AtomicU64::new(0),
                    event: Event::new(),
                    holders: AtomicU64::new(0),
                    finished: Mutex::new(None),
                })
            })
            .clone();
        slot.holders.fetch_add(1, Ordering::Relaxed);
        Watch {
            dispatcher: self.clone(),
            tag: tag.to_owned(),
            slot,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        // The map holds only counters: a panic elsewhere cannot leave it half-updated.
        self.inner
            .watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(slot: &Slot) {
        slot.generation.fetch_add(1, Ordering::SeqCst);
        slot.event.notify(usize::MAX);
    }

    /// The number of tags watched (for tests of the crate).
    #[cfg(test)]
    fn watched(&self) -> usize {
        self.lock().len()
    }
}

impl redis::aio::AsyncPushSender for Dispatcher {
    fn send(&self, info: PushInfo) -> Result<(), redis::aio::SendError> {
        match info.kind {
            PushKind::Message => {
                // data: [channel, payload]
                let [Value::BulkString(channel), Value::BulkString(payload)] = info.data.as_slice()
                else {
                    return Ok(());
                };
                if *channel != self.inner.channel {
                    return Ok(());
                }
                let mut parts = payload.splitn(3, |&b| b == b'|');
                let Some(Ok(tag)) = parts.next().map(std::str::from_utf8) else {
                    return Ok(());
                };
                let slot = self.lock().get(tag).cloned();
                let Some(slot) = slot else {
                    return Ok(());
                };
                if let (Some(Ok(token)), Some(envelope)) =
                    (parts.next().map(std::str::from_utf8), parts.next())
                {
                    if !envelope.is_empty() {
                        *slot.finished.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some((token.to_owned(), envelope.to_vec()));
                    }
                }
                Dispatcher::wake(&slot);
            }
            PushKind::Disconnection => {
                // Messages may be lost while reconnecting: every waiter checks again now.
                let slots: Vec<Arc<Slot>> = self.lock().values().cloned().collect();
                for slot in &slots {
                    Dispatcher::wake(slot);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// One flight's registration for wake-ups; unregisters on drop.
pub(crate) struct Watch {
    dispatcher: Dispatcher,
    tag: String,
    slot: Arc<Slot>,
}

impl Watch {
    /// The wake-up count now: read it before a Redis read, and wait only while it is unchanged.
    pub(crate) fn generation(&self) -> u64 {
        self.slot.generation.load(Ordering::SeqCst)
    }

    /// The envelope of flight `token`, if its end-of-flight message carried it.
    pub(crate) fn finished(&self, token: &str) -> Option<Vec<u8>> {
        let finished = self
            .slot
            .finished
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*finished {
            Some((t, envelope)) if t == token => Some(envelope.clone()),
            _ => None,
        }
    }

    /// Waits until the generation differs from `seen`, or `timeout` passes.
    pub(crate) async fn wait(&self, seen: u64, runtime: &Runtime, timeout: Duration) {
        let listener: EventListener = self.slot.event.listen();
        if self.generation() != seen {
            return;
        }
        futures_lite::future::or(listener, runtime.sleep(timeout)).await;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut map = self.dispatcher.lock();
        if self.slot.holders.fetch_sub(1, Ordering::Relaxed) == 1 {
            map.remove(&self.tag);
        }
    }
}

/// The runtime the group runs on: its timer and its spawn.
#[derive(Clone, Debug)]
pub(crate) enum Runtime {
    #[cfg(feature = "tokio")]
    Tokio(tokio::runtime::Handle),
    #[cfg(feature = "smol")]
    Smol,
}

impl Runtime {
    /// tokio when called inside a tokio runtime (and the feature is on), else smol.
    pub(crate) fn current() -> Self {
        #[cfg(feature = "tokio")]
        {
            #[cfg(feature = "smol")]
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                return Runtime::Tokio(handle);
            }
            #[cfg(not(feature = "smol"))]
            return Runtime::Tokio(tokio::runtime::Handle::current());
        }
        #[cfg(feature = "smol")]
        Runtime::Smol
    }

    pub(crate) async fn sleep(&self, duration: Duration) {
        match self {
            #[cfg(feature = "tokio")]
            Runtime::Tokio(_) => tokio::time::sleep(duration).await,
            #[cfg(feature = "smol")]
            Runtime::Smol => {
                smol::Timer::after(duration).await;
            }
        }
    }

    /// `None` if `future` did not finish within `duration`.
    pub(crate) async fn timeout<F: Future>(
        &self,
        duration: Duration,
        future: F,
    ) -> Option<F::Output> {
        futures_lite::future::or(async { Some(future.await) }, async {
            self.sleep(duration).await;
            None
        })
        .await
    }

    /// Runs `future` to completion on the runtime, detached.
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        match self {
            #[cfg(feature = "tokio")]
            Runtime::Tokio(handle) => drop(handle.spawn(future)),
            #[cfg(feature = "smol")]
            Runtime::Smol => smol::spawn(future).detach(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::aio::AsyncPushSender;

    fn message(channel: &str, payload: &str) -> PushInfo {
        PushInfo {
            kind: PushKind::Message,
            data: vec![
                Value::BulkString(channel.as_bytes().to_vec()),
                Value::BulkString(payload.as_bytes().to_vec()),
            ],
        }
    }

    #[test]
    fn messages_may_carry_the_envelope() {
        let d = Dispatcher::new("ns:flights");
        let w = d.watch("aa");
        d.send(message("ns:flights", "aa|t1|")).unwrap();
        assert_eq!(w.finished("t1"), None);
        d.send(message("ns:flights", "aa|t1|sf\x01")).unwrap();
        assert_eq!(w.finished("t1").as_deref(), Some(&b"sf\x01"[..]));
        assert_eq!(w.finished("t2"), None);
        // An envelope may contain the separator.
        d.send(message("ns:flights", "aa|t2|a|b")).unwrap();
        assert_eq!(w.finished("t2").as_deref(), Some(&b"a|b"[..]));
        // Messages for tags nobody here waits for are dropped.
        d.send(message("ns:flights", "bb|t3|x")).unwrap();
        assert_eq!(d.watched(), 1);
    }

    #[test]
    fn messages_wake_the_watchers_of_their_tag_only() {
        let d = Dispatcher::new("ns:flights");
        let a = d.watch("aa");
        let a2 = d.watch("aa");
        let b = d.watch("bb");
        let (ga, gb) = (a.generation(), b.generation());
        d.send(message("ns:flights", "aa")).unwrap();
        d.send(message("other:flights", "bb")).unwrap();
        assert_ne!(a.generation(), ga);
        assert_eq!(a2.generation(), a.generation());
        assert_eq!(b.generation(), gb);
        d.send(PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
        })
        .unwrap();
        assert_ne!(b.generation(), gb);
        drop(a);
        assert_eq!(d.watched(), 2);
        drop((a2, b));
        assert_eq!(d.watched(), 0);
    }
}
