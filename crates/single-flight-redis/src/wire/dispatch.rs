//! Pub/sub dispatch: which channels this process listens on, and the routing of each message
//! to the flights that wait for it.
//!
//! A flight that waits for another process's flight takes a [`Watch`] on that flight's
//! channel. The first watch of a channel subscribes, the last one to go unsubscribes, so a
//! process listens exactly while one of its flights waits (protocol invariant 5), and Redis
//! delivers a flight's end only to the processes that wait for it.
//!
//! # Invariants
//!
//! 1. A `Channel` (one pub/sub channel's state) is in the map while a watch holds it or its
//!    subscription is not known to be undone; `holders` changes only under the map's lock.
//! 2. Subscribing and unsubscribing a channel take turns (`Channel::turn`): each turn compares
//!    what is wanted (`holders > 0`) with what is done (`subscribed`) and sends at most one
//!    command. So an unsubscription still on its way never undoes a newer watch's
//!    subscription: that watch's turn comes after it, sees `subscribed == false`, and
//!    subscribes again.
//! 3. The push sender runs on the connection's task: it only looks the channel up, keeps the
//!    envelope, bumps a counter and notifies, or hands an unsubscription to the group's
//!    background task (invariant 4). It never blocks or awaits.
//! 4. A subscription the server confirms for a channel that no watch holds is undone: the
//!    connection renews after a reconnection the subscriptions it knew of when it lost the
//!    server, which may include a channel whose watch has gone since (its unsubscription
//!    during the outage then undid nothing that lasts).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use event_listener::{Event, EventListener};
use redis::{PushInfo, PushKind, RedisResult, Value};

use single_flight::runtime::{timeout, Runtime};

use super::{hand_over, sleep, Conn, Job, Jobs};
use crate::protocol;

/// Routes the messages of the flights' channels to the flights of this process that wait on
/// them. It is the connection's push sender.
#[derive(Clone, Default)]
pub(crate) struct Dispatcher {
    slots: Arc<Mutex<HashMap<String, Arc<Channel>>>>,
    /// The connection and background task to undo unwanted subscriptions with (invariant 4),
    /// once the group is built. Weak: the connection holds the dispatcher.
    link: Arc<OnceLock<Weak<Link>>>,
}

/// The connection and the background task's queue, as the dispatcher borrows them from its
/// group.
pub(crate) struct Link {
    pub(crate) conn: Conn,
    pub(crate) jobs: Jobs,
}

/// The wake-up state of one channel in this process.
#[derive(Default)]
struct Channel {
    /// Bumped by every message on the channel (and by every disconnection).
    generation: AtomicU64,
    event: Event,
    /// The last finished flight's token and envelope, from its message.
    finished: Mutex<Option<(String, Vec<u8>)>>,
    /// How many watches hold the slot (changed under the map's lock: invariant 1).
    holders: AtomicUsize,
    /// Whether the channel is subscribed (changed in a turn only: invariant 2).
    subscribed: AtomicBool,
    /// Whether a turn is being taken, and the event of those waiting for theirs.
    busy: AtomicBool,
    turn_done: Event,
}

impl Channel {
    /// Takes this channel's turn to (un)subscribe (invariant 2): a small async lock.
    async fn turn(&self) -> Turn<'_> {
        loop {
            if !self.busy.swap(true, Ordering::AcqRel) {
                return Turn(self);
            }
            let listener = self.turn_done.listen();
            if !self.busy.swap(true, Ordering::AcqRel) {
                return Turn(self);
            }
            listener.await;
        }
    }

    /// Subscribes or unsubscribes, so that the subscription matches the watches.
    async fn reconcile(&self, conn: &mut Conn, channel: &str) -> RedisResult<()> {
        let _turn = self.turn().await;
        let wanted = self.holders.load(Ordering::Acquire) > 0;
        if wanted != self.subscribed.load(Ordering::Acquire) {
            if wanted {
                conn.listen(channel).await?;
            } else {
                conn.unlisten(channel).await?;
            }
            self.subscribed.store(wanted, Ordering::Release);
        }
        Ok(())
    }

    fn wake(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }
}

struct Turn<'a>(&'a Channel);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
        self.0.turn_done.notify(1);
    }
}

impl Dispatcher {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Lends the dispatcher its group's connection and background task (invariant 4).
    pub(crate) fn link(&self, link: &Arc<Link>) {
        let _ = self.link.set(Arc::downgrade(link));
    }

    /// The server confirmed a subscription to `channel`: undone if no watch holds the channel
    /// (invariant 4).
    fn confirmed(&self, channel: &str) {
        let Some(link) = self.link.get().and_then(Weak::upgrade) else {
            return; // still connecting: the rights check subscribes and unsubscribes itself
        };
        let unwanted = {
            let mut map = self.lock();
            let slot = map.entry(channel.to_owned()).or_default();
            let unwanted = slot.holders.load(Ordering::Acquire) == 0;
            if unwanted {
                slot.subscribed.store(true, Ordering::Release);
            }
            unwanted
        };
        if unwanted {
            // The last watch to go unsubscribes (in the background, taking its turn).
            drop(self.watch(channel, &link.conn, &link.jobs));
        }
    }

    /// Registers interest in `channel` (no I/O yet: see [`Watch::listen`]).
    pub(crate) fn watch(&self, channel: &str, conn: &Conn, jobs: &Jobs) -> Watch {
        let slot = {
            let mut map = self.lock();
            let slot = map.entry(channel.to_owned()).or_default().clone();
            slot.holders.fetch_add(1, Ordering::AcqRel);
            slot
        };
        Watch {
            dispatcher: self.clone(),
            channel: channel.to_owned(),
            slot,
            conn: conn.clone(),
            jobs: jobs.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Channel>>> {
        // The map holds only slots: a panic elsewhere cannot leave it half-updated.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes `slot` if no watch holds it and it is not subscribed (invariant 1).
    fn retire(&self, channel: &str, slot: &Arc<Channel>) {
        let mut map = self.lock();
        let idle =
            slot.holders.load(Ordering::Acquire) == 0 && !slot.subscribed.load(Ordering::Acquire);
        if idle && map.get(channel).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            map.remove(channel);
        }
    }

    /// The number of channels with a slot (for tests of the crate).
    #[cfg(test)]
    fn channels(&self) -> usize {
        self.lock().len()
    }
}

impl redis::aio::AsyncPushSender for Dispatcher {
    fn send(&self, info: PushInfo) -> Result<(), redis::aio::SendError> {
        match info.kind {
            PushKind::Message | PushKind::SMessage => {
                // data: [channel, payload]
                let [Value::BulkString(channel), Value::BulkString(payload)] = info.data.as_slice()
                else {
                    return Ok(());
                };
                let Ok(channel) = std::str::from_utf8(channel) else {
                    return Ok(());
                };
                let slot = self.lock().get(channel).cloned();
                let Some(slot) = slot else {
                    return Ok(());
                };
                if let Some((token, envelope)) = protocol::parse_message(payload) {
                    if !envelope.is_empty() {
                        *slot.finished.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some((token.to_owned(), envelope.to_vec()));
                    }
                }
                slot.wake();
            }
            PushKind::Subscribe | PushKind::SSubscribe => {
                // data: [channel, count]
                if let Some(Value::BulkString(channel)) = info.data.first() {
                    if let Ok(channel) = std::str::from_utf8(channel) {
                        self.confirmed(channel);
                    }
                }
            }
            PushKind::Disconnection => {
                // Messages may be lost while reconnecting: every waiter checks again (after
                // the reconnection subscribed its channel again: see `Conn::single`).
                let slots: Vec<Arc<Channel>> = self.lock().values().cloned().collect();
                for slot in &slots {
                    slot.wake();
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// One flight's interest in a channel. Dropping it gives the channel up (unsubscribing in the
/// background if it was the last).
pub(crate) struct Watch {
    dispatcher: Dispatcher,
    channel: String,
    slot: Arc<Channel>,
    conn: Conn,
    jobs: Jobs,
}

/// How many times a last watch tries to unsubscribe while Redis fails.
const UNLISTEN_ATTEMPTS: u32 = 10;

impl Watch {
    /// Listens on the channel; returns once the server confirmed (at once if another flight
    /// of this process already listens).
    pub(crate) async fn listen(&self) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        self.slot.reconcile(&mut conn, &self.channel).await
    }

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

    /// Waits until the generation differs from `seen`, or `timeout` passes on `R`'s timer.
    pub(crate) async fn wait<R: Runtime>(&self, seen: u64, timeout: Duration) {
        let listener: EventListener = self.slot.event.listen();
        if self.generation() != seen {
            return;
        }
        futures_lite::future::or(listener, sleep::<R>(timeout)).await;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let last = {
            let _map = self.dispatcher.lock();
            self.slot.holders.fetch_sub(1, Ordering::AcqRel) == 1
        };
        if !last {
            return;
        }
        // Handed over, not spawned: a flight's watch may be dropped on any thread.
        let unlisten = Unlisten {
            dispatcher: self.dispatcher.clone(),
            channel: std::mem::take(&mut self.channel),
            slot: self.slot.clone(),
            conn: self.conn.clone(),
        };
        hand_over(&self.jobs, Job::Unlisten(unlisten));
    }
}

/// The unsubscription of a channel whose last watch went, for the background task to run.
pub(crate) struct Unlisten {
    dispatcher: Dispatcher,
    channel: String,
    slot: Arc<Channel>,
    conn: Conn,
}

impl Unlisten {
    /// Takes the channel's turn to unsubscribe (invariant 2), retried while Redis fails: a
    /// subscription left behind would be renewed by every reconnection, and deliver every
    /// later flight of the key to this process. Then retires the slot.
    pub(crate) async fn run<R: Runtime>(self) {
        let Unlisten {
            dispatcher,
            channel,
            slot,
            mut conn,
        } = self;
        for attempt in 1..=UNLISTEN_ATTEMPTS {
            let done =
                timeout::<R, _>(Duration::from_secs(1), slot.reconcile(&mut conn, &channel)).await;
            if let Ok(Ok(())) = done {
                break;
            }
            if attempt == UNLISTEN_ATTEMPTS {
                tracing::warn!(%channel, "single-flight-redis: could not unsubscribe");
            }
            sleep::<R>(Duration::from_millis(100) * attempt).await;
        }
        dispatcher.retire(&channel, &slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::aio::AsyncPushSender;

    fn message(kind: PushKind, channel: &str, payload: &str) -> PushInfo {
        PushInfo {
            kind,
            data: vec![
                Value::BulkString(channel.as_bytes().to_vec()),
                Value::BulkString(payload.as_bytes().to_vec()),
            ],
        }
    }

    /// A slot as `watch` makes it, without a connection.
    fn hold(d: &Dispatcher, channel: &str) -> Arc<Channel> {
        let mut map = d.lock();
        let slot = map.entry(channel.to_owned()).or_default().clone();
        slot.holders.fetch_add(1, Ordering::AcqRel);
        slot
    }

    #[test]
    fn messages_carry_the_envelope_of_their_flight() {
        let d = Dispatcher::new();
        let a = hold(&d, "ns:{aa}");
        d.send(message(PushKind::Message, "ns:{aa}", "t1|sf\x01"))
            .unwrap();
        assert_eq!(
            a.finished.lock().unwrap().clone(),
            Some(("t1".into(), b"sf\x01".to_vec()))
        );
        // Sharded messages too; an abandoned flight's message wakes without an envelope.
        let g = a.generation.load(Ordering::SeqCst);
        d.send(message(PushKind::SMessage, "ns:{aa}", "t2|"))
            .unwrap();
        assert_eq!(a.generation.load(Ordering::SeqCst), g + 1);
        assert_eq!(a.finished.lock().unwrap().as_ref().unwrap().0, "t1");
    }

    #[test]
    fn messages_wake_the_watchers_of_their_channel_only() {
        let d = Dispatcher::new();
        let a = hold(&d, "ns:{aa}");
        let b = hold(&d, "ns:{bb}");
        let (ga, gb) = (
            a.generation.load(Ordering::SeqCst),
            b.generation.load(Ordering::SeqCst),
        );
        d.send(message(PushKind::Message, "ns:{aa}", "t|x"))
            .unwrap();
        d.send(message(PushKind::Message, "ns:{cc}", "t|x"))
            .unwrap();
        assert_ne!(a.generation.load(Ordering::SeqCst), ga);
        assert_eq!(b.generation.load(Ordering::SeqCst), gb);
        d.send(PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
        })
        .unwrap();
        assert_ne!(b.generation.load(Ordering::SeqCst), gb);
        assert_eq!(d.channels(), 2);
        // Retired only when nobody holds it and it is not subscribed.
        d.retire("ns:{aa}", &a);
        assert_eq!(d.channels(), 2);
        a.holders.fetch_sub(1, Ordering::AcqRel);
        d.retire("ns:{aa}", &a);
        assert_eq!(d.channels(), 1);
    }
}
