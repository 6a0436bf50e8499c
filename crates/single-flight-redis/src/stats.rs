//! The group's counters: each one is named and documented once, in [`counters!`]; the atomic
//! counters the flights bump and the public snapshot [`Stats`] are both generated from it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Declares every counter once: the public [`Stats`] field and its doc, and the `Counters`
/// atomic that flights bump.
macro_rules! counters {
    ($( $(#[doc = $doc:literal])+ $name:ident, )+) => {
        /// Counters of a group since it was built, read with
        /// [`RedisGroup::stats`](crate::RedisGroup::stats).
        ///
        /// # Examples
        ///
        /// ```
        /// let stats = single_flight_redis::Stats::default();
        /// assert_eq!(stats.owned, 0);
        /// ```
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $( $(#[doc = $doc])+ pub $name: u64, )+
        }

        /// The live counters behind [`Stats`].
        #[derive(Default)]
        pub(crate) struct Counters {
            $( pub(crate) $name: AtomicU64, )+
        }

        impl Counters {
            /// The counters now.
            pub(crate) fn snapshot(&self) -> Stats {
                Stats { $( $name: self.$name.load(Ordering::Relaxed), )+ }
            }
        }
    };
}

counters! {
    /// Flights of this process that held the lease and ran the work (takeovers included).
    owned,
    /// Owned flights that no other process waited for: they ended with one small command, and
    /// their value never went to Redis.
    unshared,
    /// Flights of this process that got their value from another process.
    joined_remote,
    /// Flights of this process that took the lease over from a flight that died or left.
    takeovers,
    /// Flights that ran the work here without the lease, by the fallback policy.
    fallbacks,
    /// Flights that returned an error, by the strict policy.
    errors,
    /// Failed or timed-out Redis commands.
    redis_failures,
    /// Values that could not cross the wire: over the cap, not serializable in the owner's
    /// process, or not decodable here.
    rejected_values,
    /// Owned flights whose every local caller left, and whose lease was released early.
    abandoned,
    /// Owners that found their lease taken by another flight when renewing or finishing.
    lost_leases,
    /// `CHECK`s sent by waiting flights (each after listening on the flight's channel): one
    /// per wait, plus one per poll interval, lease expiry, abandon message or reconnection.
    checks,
    /// Waits that ended by the awaited flight's end message (the others that ended with a
    /// value ended by a `CHECK`: the flight had ended before this process listened, or the
    /// message was lost in a reconnection).
    ends_by_message,
    /// Checks that found the lease without a TTL (written by something else): the waiter then
    /// backs off (bounded) instead of checking every few milliseconds.
    leases_without_ttl,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
