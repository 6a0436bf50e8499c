//! The options of a [`RedisGroup`](crate::RedisGroup): lease, waits, result lifetime, size cap
//! and what to do when Redis is in trouble.

use std::time::Duration;

/// What a caller gets when Redis cannot do its part (unreachable, slow, or a value that cannot
/// cross the wire).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Run the work in this process, still coalesced with the other callers of this process
    /// (the default). Each fallback is counted ([`Stats::fallbacks`](crate::Stats::fallbacks))
    /// and logged with `tracing` at `warn` level.
    #[default]
    Fallback,
    /// Return an [`Error`](crate::Error) to the callers of this process instead.
    Strict,
}

/// The options of a [`RedisGroup`](crate::RedisGroup), built with chained setters.
///
/// Every duration is clamped when it is set, to what Redis (`PX` in milliseconds) and
/// `std::time::Instant` accept: at most [`Options::MAX_DURATION`] (a year, which is "forever"
/// for a flight), and at least the minimum each setter names. So `Duration::ZERO` and
/// `Duration::MAX` are valid everywhere; `Debug` shows the clamped values.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use single_flight_redis::{FailurePolicy, Options};
///
/// let options = Options::new()
///     .lease(Duration::from_secs(5))
///     .renew_every(Duration::from_secs(1))
///     .max_wait(Duration::from_secs(20))
///     .result_lifetime(Duration::from_secs(2))
///     .max_value_size(256 * 1024)
///     .failure_policy(FailurePolicy::Strict);
/// assert_eq!(options, options.clone().lease(Duration::from_secs(5)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub(crate) lease: Duration,
    pub(crate) renew_every: Option<Duration>,
    pub(crate) max_wait: Duration,
    pub(crate) result_lifetime: Duration,
    pub(crate) max_value_size: usize,
    pub(crate) failure_policy: FailurePolicy,
    pub(crate) redis_timeout: Duration,
    pub(crate) outage_backoff: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

impl Options {
    /// The longest duration any option takes (365 days); longer ones are clamped to it.
    pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

    /// The defaults: a 10 s lease renewed every third of it, a 60 s maximum wait, results kept
    /// 10 s, values up to 1 MiB, [`FailurePolicy::Fallback`], 1 s per Redis command and 1 s
    /// without Redis after a failure.
    pub const fn new() -> Self {
        Self {
            lease: Duration::from_secs(10),
            renew_every: None,
            max_wait: Duration::from_secs(60),
            result_lifetime: Duration::from_secs(10),
            max_value_size: 1024 * 1024,
            failure_policy: FailurePolicy::Fallback,
            redis_timeout: Duration::from_secs(1),
            outage_backoff: Duration::from_secs(1),
        }
    }

    /// How long a lease lasts unless its owner renews it: the longest time the other processes
    /// wait for an owner that died without a word (killed, partitioned). From 10 ms to
    /// [`MAX_DURATION`](Self::MAX_DURATION).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(Duration::from_millis(10), Self::MAX_DURATION);
        self
    }

    /// How often the owner renews its lease while the work runs (default: a third of the
    /// lease). Also how often a waiting process checks Redis when no message comes. Kept
    /// between 1 ms and 5 ms below the lease.
    pub fn renew_every(mut self, every: Duration) -> Self {
        self.renew_every = Some(every.min(Self::MAX_DURATION));
        self
    }

    /// The longest a caller waits for another process's flight, takeovers included; then the
    /// failure policy applies (run here, or an error). Zero: never wait for another process
    /// (a flight that finds the lease held applies the policy at once). At most
    /// [`MAX_DURATION`](Self::MAX_DURATION).
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait.min(Self::MAX_DURATION);
        self
    }

    /// How long a finished flight's result stays in Redis for the waiting processes that have
    /// not read it yet (its key's TTL; only flights that other processes wait for leave one).
    /// From 10 ms to [`MAX_DURATION`](Self::MAX_DURATION).
    pub fn result_lifetime(mut self, lifetime: Duration) -> Self {
        self.result_lifetime = lifetime.clamp(Duration::from_millis(10), Self::MAX_DURATION);
        self
    }

    /// The largest encoded value (bytes, envelope included) written to or read from Redis.
    /// A larger value reaches only the owner's own callers; the other processes get the failure
    /// policy. At least 64 bytes.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes.max(64);
        self
    }

    /// What callers get when Redis cannot do its part.
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.failure_policy = policy;
        self
    }

    /// How long one Redis command may take before it counts as a failure (default 1 s). From
    /// 1 ms to [`MAX_DURATION`](Self::MAX_DURATION).
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        self.redis_timeout = timeout.clamp(Duration::from_millis(1), Self::MAX_DURATION);
        self
    }

    /// After a Redis failure, how long flights skip Redis and go straight to the failure policy
    /// (default 1 s), so that an outage does not cost every call a timeout. Zero: no backoff.
    /// At most [`MAX_DURATION`](Self::MAX_DURATION).
    pub fn outage_backoff(mut self, backoff: Duration) -> Self {
        self.outage_backoff = backoff.min(Self::MAX_DURATION);
        self
    }

    /// The renewal interval in force: the one set, or a third of the lease, and always below
    /// the lease.
    pub(crate) fn renew_interval(&self) -> Duration {
        let third = self.lease / 3;
        self.renew_every
            .unwrap_or(third)
            .min(self.lease.saturating_sub(Duration::from_millis(5)))
            .max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_stays_below_the_lease() {
        let ms = Duration::from_millis;
        assert_eq!(Options::new().lease(ms(300)).renew_interval(), ms(100));
        assert_eq!(
            Options::new()
                .lease(ms(300))
                .renew_every(ms(900))
                .renew_interval(),
            ms(295)
        );
        assert_eq!(Options::new().lease(ms(1)).lease, ms(10));
    }

    #[test]
    fn every_duration_is_clamped_at_zero_one_ms_and_max() {
        let ms = Duration::from_millis;
        let max = Options::MAX_DURATION;
        let o = |f: fn(Options, Duration) -> Options, d| f(Options::new(), d);
        for (d, lease, wait, life, timeout, backoff) in [
            (Duration::ZERO, ms(10), ms(0), ms(10), ms(1), ms(0)),
            (ms(1), ms(10), ms(1), ms(10), ms(1), ms(1)),
            (Duration::MAX, max, max, max, max, max),
        ] {
            assert_eq!(o(Options::lease, d).lease, lease);
            assert_eq!(o(Options::max_wait, d).max_wait, wait);
            assert_eq!(o(Options::result_lifetime, d).result_lifetime, life);
            assert_eq!(o(Options::redis_timeout, d).redis_timeout, timeout);
            assert_eq!(o(Options::outage_backoff, d).outage_backoff, backoff);
            let renew = o(Options::renew_every, d).renew_interval();
            assert!(renew >= ms(1) && renew < Options::new().lease, "{renew:?}");
            // What the flights compute from them never overflows.
            let opts = Options::new()
                .lease(d)
                .max_wait(d)
                .result_lifetime(d)
                .outage_backoff(d);
            assert!(std::time::Instant::now()
                .checked_add(opts.max_wait)
                .is_some());
            assert!(opts.lease.as_millis() < i64::MAX as u128 / 2);
            assert!(opts.result_lifetime.as_millis() < i64::MAX as u128 / 2);
        }
        assert_eq!(
            Options::new()
                .lease(Duration::MAX)
                .renew_every(Duration::MAX)
                .renew_interval(),
            max - ms(5)
        );
    }
}
