//! Call sharing across processes through Redis: one execution per key for a whole fleet of
//! processes, on top of [`single_flight`].
//!
//! A service runs as many replicas; each one can coalesce its own herd with a
//! [`single_flight::KeyedGroup`], and the database still sees one query per replica per key at
//! exactly the moment it is busiest. A [`RedisGroup`] coalesces across every process that shares
//! a Redis (or Valkey) server or cluster and a namespace: one process runs the work, every caller
//! of every process gets its value (or its panic).
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use single_flight_redis::{Options, RedisGroup};
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct Customer { id: u64, name: String }
//!
//! async fn load_customer(id: u64) -> Result<Customer, String> {
//!     // the expensive query that every replica needs at once
//!     Ok(Customer { id, name: "Ada".into() })
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), single_flight_redis::Error> {
//! let client = redis::Client::open("redis://127.0.0.1/").expect("a valid URL");
//! let options = Options::new().lease(Duration::from_secs(5));
//! let customers: RedisGroup<u64, Result<Customer, String>> =
//!     RedisGroup::connect(client, "customers", options).await?;
//!
//! // In every replica: one query for customer 7 across the fleet.
//! let customer = customers.call(7, load_customer).await?;
//! # let _ = customer;
//! # Ok(())
//! # }
//! ```
//!
//! # Semantics
//!
//! These continue the core crate's semantics (1–9).
//!
//! 10. **Two levels.** A local [`KeyedGroup`](single_flight::KeyedGroup) first, so one task per
//!     process per key talks to Redis. Across processes, while the owner of a key's lease is
//!     alive and reachable, no second process runs the work; everyone gets the owner's value
//!     (or its error, since errors are values: make `V` a `Result`), or a
//!     [`Panicked`](single_flight::Panicked) carrying its panic message.
//! 11. **Lease, not lock.** A flight contends for the key's lease with a random token (`SET` if
//!     absent, with a TTL, in a script). The owner renews the lease while the work runs; renewal
//!     and release compare the token on the server, so an owner paused past its lease never
//!     deletes or extends its successor's lease. Every key written has a TTL (table below).
//! 12. **No lost wake-ups, no stampede on owner death.** A process that finds the lease held is
//!     counted in it by the same script (so the owner knows to leave its value), then listens on
//!     the flight's own channel (sharded pub/sub in a cluster) *before* it re-checks the lease
//!     and the result, and stops listening when its flight ends; processes that do not wait
//!     for a flight receive nothing of it. After a reconnection, the channels of live waits are
//!     subscribed again before any command, and every wait re-checks. If the owner dies, its lease expires and exactly one waiting process takes over
//!     (they all contend again with `SET NX` semantics, one wins, the others follow it). If every
//!     caller of the owner's process leaves, the work is dropped and the lease released at once,
//!     so a waiting process takes over without waiting for the lease to expire. Waits are
//!     bounded by [`Options::max_wait`].
//! 13. **Redis trouble is a policy, not a hang.** A Redis command that fails or does not answer
//!     within [`Options::redis_timeout`] applies the [`FailurePolicy`]: by default the work runs
//!     in this process (still coalesced locally), counted in [`Stats::fallbacks`] and logged
//!     with `tracing`; [`FailurePolicy::Strict`] returns an [`Error`] instead. After a failure,
//!     flights skip Redis for [`Options::outage_backoff`].
//! 14. **Values cross the wire with serde** (the encoding below) under a size cap
//!     ([`Options::max_value_size`]). A value over the cap, or bytes that do not decode as `V`,
//!     never reach a caller as a value: the caller runs the work here or gets an error, per
//!     policy. Keys are namespaced and hash-tagged so that a flight's keys share a cluster slot.
//!
//! # The guarantee, in Kleppmann's terms
//!
//! This is an **efficiency** lock, not a correctness lock: it keeps the backend from doing the
//! same work once per replica, it does not promise mutual exclusion. A lease can expire under
//! an owner that is paused (a long GC-like stall, a frozen VM) or partitioned from Redis for
//! longer than the lease; another process then takes over and the work runs a second time.
//! There is no fencing token handed to the work. So the work must tolerate a rare second run:
//! reads, idempotent writes, or writes that the backend guards itself. Never use this to
//! protect a non-idempotent side effect.
//!
//! # What happens under each fault
//!
//! | fault | what callers see |
//! | --- | --- |
//! | the owner's process is killed (SIGKILL, power loss) | its lease expires within the lease length; exactly one waiting process takes over and runs the work; its callers and the other waiters get that value, within about one lease of the kill |
//! | every caller of the owner's process leaves (timeouts, cancellation) | the work is dropped, the lease is deleted and a message sent at once: one waiting process takes over promptly |
//! | the owner is paused or partitioned past its lease | another process takes over (a second run); the late owner's renewal and release find another token and leave the lease alone; its own callers still get its value |
//! | the work panics | the owner's callers panic as in the core; the other processes' callers panic with a `Panicked` carrying the message |
//! | Redis unreachable, or slower than the command timeout | default: the work runs in each process (coalesced locally), counted and logged; strict: `Err` with [`ErrorKind::Redis`]. An owner that loses Redis still serves its own callers |
//! | a message is lost (reconnect) | the channels are subscribed again and every waiter checks Redis at once; waiters also check at least every renewal interval and when the lease would expire |
//! | the Redis user lacks a right the group needs (ACL) | [`RedisGroup::connect`] fails with [`ErrorKind::Permission`], naming the commands; a right taken away later: each refused command is a logged failure (default: the work runs here) or [`ErrorKind::Permission`] (strict) |
//! | a lease key without TTL (written by something else) | waiters check it with a back-off doubling from 10 ms up to the renewal interval, counted in [`Stats::leases_without_ttl`] and logged once per group, until it goes or the maximum wait ends |
//! | another process's flight outlasts `max_wait` | default: the work runs here too; strict: `Err` with [`ErrorKind::Timeout`] |
//! | a value over the cap | the owner's callers get it; the others run the work here (default) or get [`ErrorKind::Oversize`] |
//! | a value whose `Serialize` fails | the owner's callers get it; the others run the work here (default) or get [`ErrorKind::Encode`] |
//! | bytes that do not decode as `V` (another version of the type) | run here (default) or [`ErrorKind::Decode`]; never a wrong value |
//!
//! # Keys
//!
//! A key `k` of namespace `ns` is serialized with MessagePack (as values are) and encoded in
//! URL-safe base64 without padding into the hash tag `t`. Every name of its flight is
//! `ns:{t}...`, so a cluster keeps them, and the flight's channel, in one slot. The namespace
//! must not contain a brace. Two processes share flights if they use the same namespace and
//! their keys serialize to the same bytes (so the key's serialization must be deterministic: no
//! `HashMap` inside a key). Tokens are 64 random bits, 11 base64 characters.
//!
//! | name | kind | written by | TTL |
//! | --- | --- | --- | --- |
//! | `ns:{t}:lease` | hash: `t` the owner's token, `w` how many waiting processes registered | the owner (acquire, renew); waiting processes bump `w` | the lease length, renewed every renewal interval while the work runs; deleted when the flight ends or is abandoned |
//! | `ns:{t}:result:<token>` | string: the envelope | the owner, once, when the work ends, *only if processes wait* | the result lifetime |
//! | `ns:{t}` | pub/sub channel (not a key; sharded in a cluster): a message is `token\|envelope`, or `token\|` (abandoned) | the owner at the end or on abandon, only if processes wait | none (nothing stored) |
//!
//! `SCAN 0 MATCH ns:{*` (with `ns`'s glob characters escaped: [`RedisGroup::key_pattern`])
//! lists every key of a namespace; each one has a TTL.
//!
//! # Encoding
//!
//! An envelope is `sf`, a format version byte (`1`), a kind byte (value, panic message, "over
//! the cap", or "did not serialize" with the serializer's message), then the value in MessagePack (`rmp-serde`, structs as maps with field
//! names). MessagePack is compact, fast, and self-describing, so that every serde type works
//! (untagged enums, `serde_json::Value`), a struct whose fields moved between two versions of a
//! service still decodes by name, and a mismatched type fails to decode instead of being
//! misread; other languages can read it too. A value decodes only if every byte is consumed.
//! Errors cross the wire as part of `V` (e.g. `Result<T, String>`, or `Result<T, Arc<E>>` with
//! serde's `rc` feature).
//!
//! # Costs
//!
//! What a flight costs Redis follows its sharing. The owner pays two round trips: `ACQUIRE`,
//! and when the work ends `RELEASE`, which answers how many processes wait. If none does (the
//! common case in a fleet where each replica's keys differ), that was all: no value sent to
//! Redis, nothing stored, nothing published. If W processes wait, the owner sends `FINISH`
//! (one more round trip: the value once, stored for the result lifetime and published on the
//! flight's own channel), and Redis sends the value W times, once to each waiting process. A
//! waiting process pays `ACQUIRE`, a subscription to the flight's channel, one `CHECK`, the
//! message, and an unsubscription. Renewals cost one round trip per renewal interval of work.
//!
//! `cargo xtask bench redis fanout` (P real processes; 1 KiB values, 10-byte keys; loopback
//! `redis-server` 7.0; 2 shared CPUs), bytes per flight as `INFO stats` counts them:
//!
//! | processes, each on its own keys | Redis sent, before | Redis sent, now | Redis received, before | Redis received, now | keys stored, before | now |
//! | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
//! | 1 | 1,139 | 8 | 1,527 | 256 | 1 | 0 |
//! | 2 | 2,270 | 8 | 1,527 | 256 | 1 | 0 |
//! | 4 | 4,531 | 8 | 1,527 | 256 | 1 | 0 |
//! | 8 | 9,055 | 8 | 1,527 | 256 | 1 | 0 |
//! | 16 | 18,100 | 8 | 1,527 | 256 | 1 | 0 |
//!
//! With W processes waiting for one owner, Redis sends about W × (value + 205 B): the message
//! and the waiter's subscription, check and unsubscription answers. In a cluster, a flight's
//! commands and messages stay on the node that owns its slot. Latency: the owner's two round
//! trips, and for a remote joiner the end of the owner's work is followed by `RELEASE` (a
//! round trip) and `FINISH`'s message (about one more); see BENCHMARKS.md for the measured
//! ratios to a `PING`.
//!
//! # Features
//!
//! A group runs on any [`single_flight::runtime::Runtime`], the core's runtime trait: its
//! timer bounds every Redis command and wait, and its spawn runs the group's background task
//! (see [`RedisGroup::connect_on`]). The runtime features build redis-rs's async I/O and
//! choose the [`DefaultRuntime`], the one that [`RedisGroup::connect`] uses:
//!
//! * `tokio` (default): redis-rs's `tokio-comp`; the default runtime is
//!   `single_flight_tokio::Tokio`. Connect inside a tokio runtime.
//! * `smol`: redis-rs's `smol-comp`; the default runtime is `single_flight_smol::Smol` when
//!   `tokio` is off. **With both features the default stays `Tokio`**, so that turning `smol`
//!   on (say, through another crate of the build) never changes the runtime of code written
//!   against the default; run a group on smol by naming it:
//!   `RedisGroup::connect_on(single_flight_smol::Smol, client, namespace, options)`. redis-rs
//!   then does its I/O on tokio when connected inside a tokio runtime, on smol elsewhere.
//! * `tokio-rustls`, `smol-rustls`: TLS (`rediss://` URLs) on tokio or smol, through rustls
//!   (redis-rs's `tokio-rustls-comp`, `smol-rustls-comp`); see [TLS](#tls). redis-rs needs
//!   the TLS of every runtime it is built with: `smol-rustls` covers tokio too, so with both
//!   runtimes enable `smol-rustls` (`smol` with `tokio-rustls` alone does not build).
//!
//! # Least privilege
//!
//! A group needs, on one server, the keys and channels of its namespace and the commands below;
//! [`acl_rule`] writes the rule for a namespace. For namespace `customers`:
//!
//! ```text
//! ACL SETUSER customers-app on >password resetkeys ~customers:{* resetchannels &customers:{*
//!     -@all +evalsha +script|load +type +get +set +del +pttl +pexpire +hget +hset +hincrby
//!     +subscribe +unsubscribe +publish +ssubscribe +sunsubscribe +spublish
//! ```
//!
//! The group runs its scripts with `EVALSHA` (and `SCRIPT LOAD` when the server lost them); the
//! scripts call `TYPE`, `GET`, `SET`, `DEL`, `PTTL`, `PEXPIRE`, `HGET`, `HSET`, `HINCRBY` and
//! `PUBLISH` (`SPUBLISH` in a cluster) on the flight's names only; waiting processes
//! `SUBSCRIBE`/`UNSUBSCRIBE` (`SSUBSCRIBE`/`SUNSUBSCRIBE`) the flight's channel. A cluster
//! client also needs `+ping +cluster|slots +command|info`. Credentials go in the URL
//! (`redis://customers-app:password@host/`).
//!
//! [`RedisGroup::connect`] checks the rights: it runs a script that asks the server (Redis 7+,
//! `redis.acl_check_cmd`, which writes nothing) about every command the scripts run, then
//! subscribes to a channel of the namespace and unsubscribes. A missing right is an `Err` of
//! `connect` with [`ErrorKind::Permission`] naming the commands, not a fallback on every
//! call. If rights are taken away later, each refused command is a Redis failure: the work
//! runs here and a warning is logged (or, strict, [`ErrorKind::Permission`]).
//!
//! # TLS
//!
//! Managed Redis services speak TLS only. Enable the feature `tokio-rustls` (or `smol-rustls`
//! on smol), redis-rs's rustls support, and connect with a `rediss://` URL:
//!
//! ```no_run
//! # async fn demo() -> Result<(), single_flight_redis::Error> {
//! # use single_flight_redis::{Options, RedisGroup};
//! let client = redis::Client::open("rediss://customers-app:password@redis.example.com:6380/")
//!     .expect("a valid URL");
//! let group: RedisGroup<u64, String> =
//!     RedisGroup::connect(client, "customers", Options::new()).await?;
//! # let _ = group; Ok(())
//! # }
//! ```
//!
//! The server's certificate is checked against the system's roots; for a private CA, build the
//! client with `redis::Client::build_with_tls(url, redis::TlsCertificates { client_tls: None,
//! root_cert: Some(ca_pem) })` (`client_tls` for mutual TLS). rustls needs a crypto provider:
//! enable exactly one of rustls's `ring` or `aws-lc-rs` features in the application, or
//! install one with `rustls::crypto::CryptoProvider::install_default` before connecting.
//!
//! # When to use this instead of a lock or a cache
//!
//! * A distributed lock (Redlock and the like) serializes work; this shares one execution's
//!   result among everyone who asked while it ran, and keeps nothing afterwards.
//! * A shared cache (Redis itself) keeps values after they are computed; call sharing keeps
//!   nothing. They compose: coalesce the misses of a cache with a `RedisGroup`.
//! * Within one process, use [`single_flight::KeyedGroup`] alone: no Redis round trip.
//!
//! The Redis server must support Lua scripts and RESP3 (Redis 6 or later, or Valkey). A
//! cluster must also have sharded pub/sub (Redis 7 or later, or Valkey):
//! [`RedisGroup::connect_cluster`] refuses a Redis 6 cluster with [`ErrorKind::Unsupported`]
//! rather than broadcast every flight's end over the cluster bus.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod acl;
mod call;
mod error;
mod flight;
mod group;
mod namespace;
mod options;
mod protocol;
mod stats;
mod wire;

pub use crate::acl::acl_rule;
pub use crate::call::{Call, Origin};
pub use crate::error::{Error, ErrorKind};
pub use crate::group::{DefaultRuntime, RedisGroup};
pub use crate::options::{FailurePolicy, Options};
pub use crate::stats::Stats;

// The README's example is compiled as a doctest, so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
