//! The protocol's decisions, with no I/O: key names, tokens, the value envelope, and what a
//! process does next after each answer from Redis. Everything here is tested without a server.
//!
//! # The protocol of one flight (one key, many processes)
//!
//! Every process first coalesces its own callers in a local group; the one local flight of a
//! key then plays the protocol below. `T` is the flight's random token.
//!
//! 1. **Contend.** `ACQUIRE` (a script): if the lease key holds a token `O`, answer `O` and its
//!    remaining time; otherwise `SET lease T PX lease` and answer "acquired".
//! 2. **Own.** The owner runs the work, renews the lease with `RENEW` (extends it only while it
//!    still holds `T`) every renewal interval, then `FINISH`: writes the envelope under the
//!    flight's result key `result:T` with the result lifetime, deletes the lease only if it still
//!    holds `T`, and publishes `<tag>|T|` followed by the envelope if it is small (see
//!    `wire::INLINE_MAX`). If every local caller leaves first, `ABANDON`
//!    deletes the lease (only if it holds `T`) and publishes the tag, so that a waiter takes over
//!    at once.
//! 3. **Wait.** A process that got `O` waits for a message naming its tag, or for the lease's
//!    remaining time, or for the poll interval, whichever comes first. If the message carried
//!    `O`'s envelope, that is the end; otherwise it `CHECK`s: the
//!    result of `O`, the current lease holder and its remaining time. [`after_check`] decides.
//!    The wait is registered *before* the process contends, so a message sent between the answer
//!    and the wait is never lost (invariant 2 below).
//! 4. **Take over.** When the lease is gone and `O` left no result, the process contends again
//!    (step 1): `SET NX` lets exactly one process win, every other one learns the new holder.
//!
//! # Transitions of one process's flight
//!
//! | state | answer | next |
//! | --- | --- | --- |
//! | contend | `ACQUIRE`: acquired | own |
//! | contend | `ACQUIRE`: held by `O` | wait for `O` |
//! | wait for `O` | woken by a message carrying `O`'s envelope, or `CHECK`: result of `O` | decode: a value or a panic ends the flight; oversize or undecodable: failure policy |
//! | wait for `O` | `CHECK`: lease still `O` | wait for `O` |
//! | wait for `O` | `CHECK`: lease held by `N` | wait for `N` |
//! | wait for `O` | `CHECK`: no lease, no result | contend (a takeover if won) |
//! | wait for `O` | the maximum wait is over | failure policy |
//! | any | a Redis command fails or times out | failure policy (and the outage backoff) |
//! | own | the work ends (value or panic) | `FINISH`, then the value to the local callers |
//! | own | every local caller left | `ABANDON` (spawned), the work dropped |
//!
//! # Invariants
//!
//! 1. Every key written has a TTL: the lease its lease length (renewed by its holder only), the
//!    result its result lifetime. Nothing else is written (the channel is not a key).
//! 2. A waiter's wake-up registration exists before its first read of the lease, and the group's
//!    subscription exists before any flight starts; a publication after that read wakes it.
//! 3. Only the holder of token `T` deletes or extends the lease (`RENEW`, `FINISH`, `ABANDON`
//!    compare tokens on the server).
//! 4. A result is read only under its flight's own key `result:O`, or from a message naming
//!    `O`, so a waiter never gets another flight's value; a value is handed out only if its
//!    envelope decodes completely.

use std::fmt::Write as _;
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

    /// The one pub/sub channel of the namespace: `<namespace>:flights`.
    pub(crate) fn channel(&self) -> String {
        format!("{}:flights", self.namespace)
    }

    /// The names of one key's flight, from the key's encoding.
    pub(crate) fn flight(&self, key_bytes: &[u8]) -> FlightNames {
        let tag = hex(key_bytes);
        FlightNames {
            lease: format!("{}:{{{tag}}}:lease", self.namespace),
            result_prefix: format!("{}:{{{tag}}}:result:", self.namespace),
            tag,
        }
    }

    /// The `SCAN` pattern that matches every key the namespace may hold.
    pub(crate) fn pattern(&self) -> String {
        format!("{}:{{*", self.namespace)
    }
}

/// The Redis names of one key: they share the hash tag, so a cluster keeps them in one slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FlightNames {
    /// The hex encoding of the key, between braces in every key name; also the message payload.
    pub(crate) tag: String,
    /// `<namespace>:{<tag>}:lease`, holding the owner's token.
    pub(crate) lease: String,
    result_prefix: String,
}

impl FlightNames {
    /// `<namespace>:{<tag>}:result:<token>`, the result of the flight with `token`.
    pub(crate) fn result(&self, token: &str) -> String {
        format!("{}{token}", self.result_prefix)
    }
}

/// Lower-case hex, two digits per byte.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A flight's random token: 128 bits as 32 hex digits, mixed with the process id so that two
/// processes seeded alike still differ.
pub(crate) fn token() -> String {
    let high = fastrand::u64(..) ^ u64::from(std::process::id()).rotate_left(32);
    let low = fastrand::u64(..);
    format!("{high:016x}{low:016x}")
}

/// The first bytes of every envelope: magic `sf` and the format version.
const MAGIC: &[u8; 3] = b"sf\x01";

/// What a finished flight left for the other processes (the envelope's kind byte).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome<V> {
    /// The work's value.
    Value(V),
    /// The work panicked with this message.
    Panicked(String),
    /// The value's encoding was larger than the owner's cap (its size in bytes).
    Oversize(u64),
}

const KIND_VALUE: u8 = 0;
const KIND_PANICKED: u8 = 1;
const KIND_OVERSIZE: u8 = 2;

/// Why an envelope could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Not an envelope of this format version.
    Format,
    /// Larger than this process's cap (bytes).
    Oversize(u64),
    /// The value's bytes did not decode as `V` (the decoder's message).
    Value(String),
}

/// Encodes an outcome. A value whose envelope would exceed `cap` bytes is replaced by
/// `Oversize`, so that waiters learn at once that they will not get it.
pub(crate) fn encode<V: serde::Serialize>(outcome: &Outcome<V>, cap: usize) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    match outcome {
        Outcome::Value(value) => {
            out.push(KIND_VALUE);
            if let Err(error) = rmp_serde::encode::write_named(&mut out, value) {
                // A `Serialize` impl that fails: other processes cannot have the value.
                tracing::warn!(%error, "single-flight-redis: the value does not serialize");
                return encode::<V>(
                    &Outcome::Panicked(format!("value does not serialize: {error}")),
                    cap,
                );
            }
            if out.len() > cap {
                return encode::<V>(&Outcome::Oversize(out.len() as u64), cap);
            }
        }
        Outcome::Panicked(message) => {
            out.push(KIND_PANICKED);
            // A panic message is cut to the cap rather than lost (on a char boundary).
            let room = cap.saturating_sub(out.len());
            let mut end = message.len().min(room);
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            out.extend_from_slice(&message.as_bytes()[..end]);
        }
        Outcome::Oversize(size) => {
            out.push(KIND_OVERSIZE);
            out.extend_from_slice(&size.to_le_bytes());
        }
    }
    out
}

/// Decodes an envelope; never yields a value unless every byte of it decoded as `V`.
pub(crate) fn decode<V: serde::de::DeserializeOwned>(
    bytes: &[u8],
    cap: usize,
) -> Result<Outcome<V>, DecodeError> {
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
            Ok(Outcome::Value(value))
        }
        KIND_PANICKED => Ok(Outcome::Panicked(
            String::from_utf8_lossy(body).into_owned(),
        )),
        KIND_OVERSIZE => {
            let size: [u8; 8] = body.try_into().map_err(|_| DecodeError::Format)?;
            Ok(Outcome::Oversize(u64::from_le_bytes(size)))
        }
        _ => Err(DecodeError::Format),
    }
}

/// The answer of `ACQUIRE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Acquire {
    /// This process holds the lease now.
    Acquired,
    /// Another flight holds it: its token and the lease's remaining milliseconds.
    Held { owner: String, pttl_ms: i64 },
}

/// The answer of `CHECK` for the awaited flight `O`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Check {
    /// The envelope under `result:O`, if any.
    pub(crate) result: Option<Vec<u8>>,
    /// The token in the lease key, if any.
    pub(crate) holder: Option<String>,
    /// The lease's remaining milliseconds (negative when there is none).
    pub(crate) pttl_ms: i64,
}

/// What a waiting process does after a `CHECK`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// The awaited flight left its envelope: decode it.
    Decode(Vec<u8>),
    /// The awaited flight still holds the lease: wait (at most this long before checking again).
    Wait(Duration),
    /// Another flight took the lease over: wait for that one instead.
    Follow { owner: String, wait: Duration },
    /// Nobody holds the lease and the awaited flight left nothing (it died or was abandoned):
    /// contend for the lease again.
    Contend,
}

/// Decides the next step of a process waiting for flight `awaited` (protocol step 3).
pub(crate) fn after_check(awaited: &str, check: Check) -> Next {
    if let Some(result) = check.result {
        return Next::Decode(result);
    }
    match check.holder {
        Some(holder) if holder == awaited => Next::Wait(lease_left(check.pttl_ms)),
        Some(holder) => Next::Follow {
            owner: holder,
            wait: lease_left(check.pttl_ms),
        },
        None => Next::Contend,
    }
}

/// The remaining lease as a duration (a lease without expiry, impossible for ours, counts as 0).
fn lease_left(pttl_ms: i64) -> Duration {
    Duration::from_millis(pttl_ms.max(0) as u64)
}

/// A margin after a lease's expiry before checking, so that the check sees it expired.
pub(crate) const EXPIRY_MARGIN: Duration = Duration::from_millis(5);

/// How long to wait before the next check: until the lease would expire (plus a margin), but
/// no longer than `poll` (lost messages while reconnecting) nor than what is `left` of the
/// caller's maximum wait. `None` when nothing is left: give up.
pub(crate) fn next_wait(lease_left: Duration, poll: Duration, left: Duration) -> Option<Duration> {
    if left.is_zero() {
        return None;
    }
    Some((lease_left + EXPIRY_MARGIN).min(poll).min(left))
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
mod tests {
    use super::*;

    #[test]
    fn names_share_one_hash_tag() {
        let names = Names::new("customers").unwrap();
        let key = rmp_serde::to_vec(&"ada").unwrap();
        let flight = names.flight(&key);
        assert_eq!(flight.tag, "a3616461");
        assert_eq!(flight.lease, "customers:{a3616461}:lease");
        assert_eq!(flight.result("t1"), "customers:{a3616461}:result:t1");
        assert_eq!(names.channel(), "customers:flights");
        assert_eq!(names.pattern(), "customers:{*");
    }

    #[test]
    fn namespaces_with_braces_are_refused() {
        assert!(Names::new("a{b").is_none());
        assert!(Names::new("a}b").is_none());
        assert!(Names::new("").is_none());
        assert!(Names::new("app:v2").is_some());
    }

    #[test]
    fn tokens_differ() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn envelopes_round_trip() {
        let v: Outcome<(u32, String)> = Outcome::Value((7, "seven".into()));
        assert_eq!(decode::<(u32, String)>(&encode(&v, 1024), 1024), Ok(v));
        let p: Outcome<u32> = Outcome::Panicked("boom".into());
        assert_eq!(decode::<u32>(&encode(&p, 1024), 1024), Ok(p));
        let o: Outcome<u32> = Outcome::Oversize(99);
        assert_eq!(decode::<u32>(&encode(&o, 1024), 1024), Ok(o));
    }

    #[test]
    fn oversize_values_become_a_marker() {
        let big: Outcome<String> = Outcome::Value("x".repeat(100));
        let bytes = encode(&big, 50);
        assert!(matches!(decode::<String>(&bytes, 50), Ok(Outcome::Oversize(n)) if n > 100));
        // The reader's own cap also refuses.
        let bytes = encode(&big, 1024);
        assert!(matches!(
            decode::<String>(&bytes, 50),
            Err(DecodeError::Oversize(_))
        ));
    }

    #[test]
    fn wrong_bytes_never_decode_as_a_value() {
        assert_eq!(decode::<u32>(b"", 64), Err(DecodeError::Format));
        assert_eq!(decode::<u32>(b"hello", 64), Err(DecodeError::Format));
        assert_eq!(
            decode::<u32>(b"sf\x02\x00\x07", 64),
            Err(DecodeError::Format)
        );
        assert_eq!(decode::<u32>(b"sf\x01\x09", 64), Err(DecodeError::Format));
        // A string where a number is expected.
        let s = encode(&Outcome::Value("seven".to_owned()), 64);
        assert!(matches!(decode::<u32>(&s, 64), Err(DecodeError::Value(_))));
        // A value followed by garbage.
        let mut t = encode(&Outcome::Value(7u32), 64);
        t.push(0);
        assert!(matches!(decode::<u32>(&t, 64), Err(DecodeError::Value(_))));
        // A truncated value.
        let u = encode(&Outcome::Value("seven".to_owned()), 64);
        assert!(matches!(
            decode::<String>(&u[..u.len() - 1], 64),
            Err(DecodeError::Value(_))
        ));
    }

    #[test]
    fn panic_messages_are_cut_to_the_cap_on_a_char_boundary() {
        let bytes = encode::<u32>(&Outcome::Panicked("ééé".into()), 7);
        assert_eq!(decode::<u32>(&bytes, 7), Ok(Outcome::Panicked("é".into())));
    }

    #[test]
    fn decisions_after_a_check() {
        let check = |result: Option<&[u8]>, holder: Option<&str>, pttl_ms| Check {
            result: result.map(<[u8]>::to_vec),
            holder: holder.map(str::to_owned),
            pttl_ms,
        };
        assert_eq!(
            after_check("o", check(Some(b"x"), Some("o"), 10)),
            Next::Decode(b"x".to_vec())
        );
        assert_eq!(
            after_check("o", check(None, Some("o"), 10)),
            Next::Wait(Duration::from_millis(10))
        );
        assert_eq!(
            after_check("o", check(None, Some("n"), 20)),
            Next::Follow {
                owner: "n".into(),
                wait: Duration::from_millis(20)
            }
        );
        assert_eq!(after_check("o", check(None, None, -2)), Next::Contend);
    }

    #[test]
    fn waits_are_bounded() {
        let ms = Duration::from_millis;
        assert_eq!(next_wait(ms(100), ms(1000), ms(5000)), Some(ms(105)));
        assert_eq!(next_wait(ms(10_000), ms(1000), ms(5000)), Some(ms(1000)));
        assert_eq!(next_wait(ms(10_000), ms(1000), ms(30)), Some(ms(30)));
        assert_eq!(next_wait(ms(10), ms(1000), Duration::ZERO), None);
    }

    #[test]
    fn panic_messages() {
        assert_eq!(panic_message(&"a"), "a");
        assert_eq!(panic_message(&String::from("b")), "b");
        assert_eq!(panic_message(&1u8), "<non-string panic payload>");
    }
}
