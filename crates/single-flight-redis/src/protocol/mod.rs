//! The protocol's decisions, with no I/O: key and channel names, tokens, the value envelope,
//! the end-of-flight message, and what a process does next after each answer from Redis.
//! Everything here is tested without a server.
//!
//! # The protocol of one flight (one key, many processes)
//!
//! Every process first coalesces its own callers in a local group; the one local flight of a
//! key then plays the protocol below. `T` is the flight's random token. The scripts are the
//! `.lua` files beside `wire/scripts.rs`.
//!
//! 1. **Contend.** `ACQUIRE`: if the lease (a hash `{t: token, w: waiters}`) is held by `O`,
//!    count one more waiting process in it (`w`) and answer `O`;
//!    otherwise write `{t: T}` with the lease's TTL and answer "acquired".
//! 2. **Own.** The owner runs the work and renews the lease (`RENEW`, only while it holds `T`)
//!    every renewal interval. When the work ends, `RELEASE` answers how many processes
//!    registered: none, and it has deleted the lease (the flight cost Redis nothing more: no
//!    value sent, nothing stored, nothing published); some, and the owner sends `FINISH`, which
//!    writes the envelope under `result:T` with the result lifetime, deletes the lease (only if
//!    it holds `T`) and publishes `T|envelope` on the flight's channel. If every local caller
//!    leaves first, `ABANDON` deletes the lease (only if it holds `T`) and, if processes wait,
//!    publishes `T|`, so that one of them takes over at once.
//! 3. **Wait.** A process that got `O` (and so is counted in `O`'s lease) listens on the
//!    flight's channel, *then* `CHECK`s: `O`'s result, the lease's holder and remaining time.
//!    [`after_check`] decides. While it waits, a message naming `O` ends the wait (its envelope
//!    is the value); otherwise it checks again when the lease would expire, or every poll
//!    interval, whichever comes first. It stops listening when its flight ends.
//! 4. **Take over.** When the lease is gone and `O` left no result, the process contends again
//!    (step 1): exactly one process creates the lease, every other one is counted in it.
//!
//! # Transitions of one process's flight
//!
//! | state | answer | next |
//! | --- | --- | --- |
//! | contend | `ACQUIRE`: acquired | own |
//! | contend | `ACQUIRE`: held by `O` (now counted in it) | listen, then check |
//! | wait for `O` | a message `O\|envelope`, or `CHECK`: result of `O` | decode: a value or a panic ends the flight; oversize, unencodable or undecodable: failure policy |
//! | wait for `O` | a message `O\|` (abandoned) | check |
//! | wait for `O` | `CHECK`: lease still `O` | wait for `O` |
//! | wait for `O` | `CHECK`: lease held by `N` (now counted in it) | wait for `N` |
//! | wait for `O` | `CHECK`: lease without TTL (written by something else) | check again after a bounded back-off |
//! | wait for `O` | `CHECK`: no lease, no result | contend (a takeover if won) |
//! | wait for `O` | the maximum wait is over | failure policy |
//! | any | a Redis command fails or times out | failure policy (and the outage backoff) |
//! | contend | `ACQUIRE` unanswered: every local caller left, or it failed or timed out | Redis may have granted it: `ABANDON` under its token (by the background task), and the failure policy if a caller is left |
//! | own | the work ends, `RELEASE`: no waiter | the value to the local callers |
//! | own | the work ends, `RELEASE`: waiters (or the lease lost) | `FINISH`, then the value to the local callers |
//! | own | every local caller left | `ABANDON` (by the group's background task), the work dropped |
//!
//! # Invariants
//!
//! 1. Every key written has a TTL: the lease its lease length (renewed by its holder only), the
//!    result its result lifetime. Nothing else is written (channels are not keys).
//! 2. A waiting process is counted in the lease it waits for (by the same script that told it
//!    the holder) before the holder can release it, and it listens on the flight's channel
//!    before its first `CHECK`. So either the holder sees the count and leaves its result and
//!    message, or the holder was already gone when the process contended; and a message sent
//!    after the `CHECK` reaches the process, one sent before it left the result the `CHECK`
//!    reads.
//! 3. Only the holder of token `T` deletes or extends the lease (`RENEW`, `RELEASE`, `FINISH`,
//!    `ABANDON` compare tokens on the server).
//! 4. A result is read only under its flight's own key `result:O`, or from a message naming
//!    `O`, so a waiter never gets another flight's value; a value is handed out only if its
//!    envelope decodes completely.
//! 5. A process listens on a channel while at least one of its flights waits on it, and not
//!    after: subscribing and unsubscribing a channel take turns (`wire/dispatch.rs`).

use std::time::Duration;

/// Builds the Redis names of one namespace (the rule is documented in the crate docs, "Keys").
#[derive(Clone, Debug)]
pub(crate) struct Names {
    namespace: String,
}

impl Names {
    /// `None` if the namespace contains a brace (which would move the hash tag) or is empty.
    pub(crate) fn new(namespace: &str) -> Option<Self> {
        if namespace.is_empty() || namespace.contains(['{', '}']) {
            return None;
        }
        Some(Self {
            namespace: namespace.to_owned(),
        })
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The names of one key's flight, from the key's encoding.
    pub(crate) fn flight(&self, key_bytes: &[u8]) -> FlightNames {
        let tag = base64(key_bytes);
        let channel = format!("{}:{{{tag}}}", self.namespace);
        FlightNames {
            lease: format!("{channel}:lease"),
            result_prefix: format!("{channel}:result:"),
            channel,
            tag,
        }
    }

    /// The names of a flight of no key: its tag `!` is outside the alphabet of [`base64`].
    /// The rights check at connect uses them.
    pub(crate) fn probe(&self) -> FlightNames {
        let channel = format!("{}:{{!}}", self.namespace);
        FlightNames {
            lease: format!("{channel}:lease"),
            result_prefix: format!("{channel}:result:"),
            channel,
            tag: "!".to_owned(),
        }
    }

    /// The `SCAN` pattern that matches every key the namespace may hold, and no other
    /// namespace's: the namespace's glob characters are escaped.
    pub(crate) fn pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.namespace.len() + 4);
        for c in self.namespace.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str(":{*");
        pattern
    }
}

/// The Redis names of one key: they share the hash tag, so a cluster keeps them (and the
/// channel, for sharded pub/sub) in one slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FlightNames {
    /// The hex encoding of the key, between braces in every name.
    pub(crate) tag: String,
    /// `<namespace>:{<tag>}`: the flight's pub/sub channel (not a key).
    pub(crate) channel: String,
    /// `<namespace>:{<tag>}:lease`, a hash holding the owner's token and the waiter count.
    pub(crate) lease: String,
    result_prefix: String,
}

impl FlightNames {
    /// `<namespace>:{<tag>}:result:<token>`, the result of the flight with `token`.
    pub(crate) fn result(&self, token: &str) -> String {
        format!("{}{token}", self.result_prefix)
    }
}

/// The alphabet of [`base64`]: URL-safe base64, which has no brace (the hash tag's
/// delimiters), no glob character and no `:` or `|` (the separators of names and messages).
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// URL-safe base64 without padding: 4 characters per 3 bytes. A key's tag and a token travel
/// in almost every command and message of a flight, so their length is most of what a flight
/// costs besides its value (hex would take 2 characters per byte).
pub(crate) fn base64(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            s.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    s
}

/// A flight's random token: 64 bits as 11 base64 characters, mixed with the process id so that two
/// processes seeded alike still differ. It only tells apart the flights of one key that are
/// alive at once (a lease and the results of the last result lifetime), and it travels in
/// every command of a flight: 64 bits are plenty and cost half the bytes of 128.
pub(crate) fn token() -> String {
    let token = fastrand::u64(..) ^ u64::from(std::process::id()).rotate_left(32);
    base64(&token.to_be_bytes())
}

/// The end-of-flight message on a flight's channel: `<token>|<envelope>`, or `<token>|` when
/// the flight was abandoned (no value: a waiter takes over). Built by the scripts `finish.lua`
/// and `abandon.lua`; read here. `None` if the payload is not a message of this protocol.
pub(crate) fn parse_message(payload: &[u8]) -> Option<(&str, &[u8])> {
    let at = payload.iter().position(|&b| b == b'|')?;
    let token = std::str::from_utf8(&payload[..at]).ok()?;
    Some((token, &payload[at + 1..]))
}

/// The first bytes of every envelope: magic `sf` and the format version.
const MAGIC: &[u8; 3] = b"sf\x01";

/// What a finished flight left for the other processes (the envelope's kind byte).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Envelope<V> {
    /// The work's value.
    Value(V),
    /// The work panicked with this message.
    Panicked(String),
    /// The value's encoding was larger than the owner's cap (its size in bytes).
    Oversize(u64),
    /// The value's `Serialize` failed in the owner's process (the serializer's message).
    Unencodable(String),
}

const KIND_VALUE: u8 = 0;
const KIND_PANICKED: u8 = 1;
const KIND_OVERSIZE: u8 = 2;
const KIND_UNENCODABLE: u8 = 3;

/// Why an envelope could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Not an envelope of this format version.
    Format,
    /// Larger than this process's cap (bytes).
    Oversize(u64),
    /// The value's bytes did not decode as `V` (the decoder's message).
    Value(String),
    /// The owner's value did not serialize (the serializer's message).
    Unencodable(String),
}

/// Encodes an outcome. A value whose envelope would exceed `cap` bytes is replaced by
/// `Oversize`, and one whose `Serialize` fails by `Unencodable`, so that waiters learn at once
/// that they will not get it (and apply their failure policy, as for any value that cannot
/// cross the wire).
pub(crate) fn encode<V: serde::Serialize>(outcome: &Envelope<V>, cap: usize) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    match outcome {
        Envelope::Value(value) => {
            out.push(KIND_VALUE);
            if let Err(error) = rmp_serde::encode::write_named(&mut out, value) {
                // A `Serialize` impl that fails: other processes cannot have the value.
                tracing::warn!(%error, "single-flight-redis: the value does not serialize");
                return encode::<V>(&Envelope::Unencodable(error.to_string()), cap);
            }
            if out.len() > cap {
                return encode::<V>(&Envelope::Oversize(out.len() as u64), cap);
            }
        }
        Envelope::Panicked(message) => {
            out.push(KIND_PANICKED);
            push_cut(&mut out, message, cap);
        }
        Envelope::Unencodable(message) => {
            out.push(KIND_UNENCODABLE);
            push_cut(&mut out, message, cap);
        }
        Envelope::Oversize(size) => {
            out.push(KIND_OVERSIZE);
            out.extend_from_slice(&size.to_le_bytes());
        }
    }
    out
}

/// Appends `message`, cut to what `cap` leaves (on a char boundary) rather than lost.
fn push_cut(out: &mut Vec<u8>, message: &str, cap: usize) {
    let room = cap.saturating_sub(out.len());
    let mut end = message.len().min(room);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&message.as_bytes()[..end]);
}

/// Decodes an envelope; never yields a value unless every byte of it decoded as `V`.
pub(crate) fn decode<V: serde::de::DeserializeOwned>(
    bytes: &[u8],
    cap: usize,
) -> Result<Envelope<V>, DecodeError> {
    if bytes.len() > cap {
        return Err(DecodeError::Oversize(bytes.len() as u64));
    }
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return Err(DecodeError::Format);
    };
    let Some((&kind, body)) = rest.split_first() else {
        return Err(DecodeError::Format);
    };
    match kind {
        KIND_VALUE => {
            let mut de = rmp_serde::Deserializer::new(body);
            let value: V = serde::Deserialize::deserialize(&mut de)
                .map_err(|e| DecodeError::Value(e.to_string()))?;
            // Trailing bytes mean the writer's `V` was not ours: refuse rather than guess.
            if !de.get_ref().is_empty() {
                return Err(DecodeError::Value("trailing bytes after the value".into()));
            }
            Ok(Envelope::Value(value))
        }
        KIND_PANICKED => Ok(Envelope::Panicked(
            String::from_utf8_lossy(body).into_owned(),
        )),
        KIND_OVERSIZE => {
            let size: [u8; 8] = body.try_into().map_err(|_| DecodeError::Format)?;
            Ok(Envelope::Oversize(u64::from_le_bytes(size)))
        }
        KIND_UNENCODABLE => Ok(Envelope::Unencodable(
            String::from_utf8_lossy(body).into_owned(),
        )),
        _ => Err(DecodeError::Format),
    }
}

/// The answer of `ACQUIRE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Acquire {
    /// This process holds the lease now.
    Acquired,
    /// Another flight holds it (and now counts this process among its waiters): its token.
    Held { owner: String },
}

/// The answer of `CHECK` for the awaited flight `O`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// `O` left this envelope under `result:O`.
    Finished(Vec<u8>),
    /// `O` still holds the lease, with this many milliseconds left (negative: no TTL).
    Awaited { pttl_ms: i64 },
    /// Another flight holds the lease now (and counts this process among its waiters).
    Other { holder: String, pttl_ms: i64 },
    /// Nobody holds the lease.
    Free,
}

/// What is left of a lease, from its `PTTL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaseLeft {
    /// It expires in this long.
    Expires(Duration),
    /// It has no TTL: something else wrote it, and it may never go away on its own.
    Never,
}

impl LeaseLeft {
    pub(crate) fn from_pttl(pttl_ms: i64) -> Self {
        // -1: no TTL. (-2, no key, cannot come with a holder; count it as expired.)
        if pttl_ms == -1 {
            LeaseLeft::Never
        } else {
            LeaseLeft::Expires(Duration::from_millis(pttl_ms.max(0) as u64))
        }
    }
}

/// What a waiting process does after a `CHECK`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// The awaited flight left its envelope: decode it.
    Decode(Vec<u8>),
    /// The awaited flight still holds the lease: wait.
    Wait(LeaseLeft),
    /// Another flight took the lease over: wait for that one instead.
    Follow { owner: String, lease: LeaseLeft },
    /// Nobody holds the lease and the awaited flight left nothing (it died or was abandoned):
    /// contend for the lease again.
    Contend,
}

/// Decides the next step of a process waiting for a flight (protocol step 3).
pub(crate) fn after_check(check: Check) -> Next {
    match check {
        Check::Finished(envelope) => Next::Decode(envelope),
        Check::Awaited { pttl_ms } => Next::Wait(LeaseLeft::from_pttl(pttl_ms)),
        Check::Other { holder, pttl_ms } => Next::Follow {
            owner: holder,
            lease: LeaseLeft::from_pttl(pttl_ms),
        },
        Check::Free => Next::Contend,
    }
}

/// The answer of `RELEASE`, and what the owner does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Release {
    /// No other process waits: the lease is gone, the flight is over (nothing else to send).
    Unshared,
    /// This many processes wait: `FINISH` leaves them the value.
    Shared(u64),
    /// The lease is not ours any more (we were paused or partitioned past it): `FINISH` all the
    /// same, for the waiters that may still wait for us, without touching the lease.
    Lost,
}

impl Release {
    pub(crate) fn from_answer(answer: i64) -> Self {
        match answer {
            0 => Release::Unshared,
            n if n > 0 => Release::Shared(n as u64),
            _ => Release::Lost,
        }
    }
}

/// A margin after a lease's expiry before checking, so that the check sees it expired.
pub(crate) const EXPIRY_MARGIN: Duration = Duration::from_millis(5);

/// The first wait before checking a lease without TTL again; each one after doubles, up to
/// the poll interval.
pub(crate) const NO_TTL_FIRST_WAIT: Duration = Duration::from_millis(10);

/// How long to wait before the next check: until the lease would expire (plus a margin), but
/// no longer than `poll` (lost messages while reconnecting) nor than what is `left` of the
/// caller's maximum wait. A lease without TTL is checked after `backoff`, which doubles each
/// time up to `poll` (and starts again from [`NO_TTL_FIRST_WAIT`] once a lease has a TTL):
/// such a lease never expires, so only a bounded back-off keeps the waiter from asking Redis
/// hundreds of times a second. `None` when nothing is left: give up.
pub(crate) fn next_wait(
    lease: LeaseLeft,
    backoff: &mut Duration,
    poll: Duration,
    left: Duration,
) -> Option<Duration> {
    if left.is_zero() {
        return None;
    }
    let wait = match lease {
        LeaseLeft::Expires(d) => {
            *backoff = NO_TTL_FIRST_WAIT;
            (d + EXPIRY_MARGIN).min(poll)
        }
        LeaseLeft::Never => {
            let wait = (*backoff).min(poll);
            *backoff = (*backoff * 2).min(poll);
            wait
        }
    };
    Some(wait.min(left))
}

/// The message of a panic payload (as the core's `Panicked` does for local followers).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(p) = payload.downcast_ref::<single_flight::Panicked>() {
        p.message().to_owned()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

#[cfg(test)]
mod tests;
