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
/// assert_eq!(options.get_lease(), Duration::from_secs(5));
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
    /// wait for an owner that died without a word (killed, partitioned). At least 10 ms.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(10));
        self
    }

    /// How often the owner renews its lease while the work runs (default: a third of the
    /// lease). Also how often a waiting process checks Redis when no message comes. Kept below
    /// the lease.
    pub fn renew_every(mut self, every: Duration) -> Self {
        self.renew_every = Some(every);
        self
    }

    /// The longest a caller waits for another process's flight, takeovers included; then the
    /// failure policy applies (run here, or an error).
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// How long a finished flight's result stays in Redis for the waiters that have not read it
    /// yet (its key's TTL). At least 10 ms.
    pub fn result_lifetime(mut self, lifetime: Duration) -> Self {
        self.result_lifetime = lifetime.max(Duration::from_millis(10));
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

    /// How long one Redis command may take before it counts as a failure (default 1 s).
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        self.redis_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// After a Redis failure, how long flights skip Redis and go straight to the failure policy
    /// (default 1 s), so that an outage does not cost every call a timeout.
    pub fn outage_backoff(mut self, backoff: Duration) -> Self {
        self.outage_backoff = backoff;
        self
    }

    /// The lease length.
    pub fn get_lease(&self) -> Duration {
        self.lease
    }

    /// The renewal interval in force: the one set, or a third of the lease, and always below
    /// the lease.
    pub fn get_renew_every(&self) -> Duration {
        let third = self.lease / 3;
        self.renew_every
            .unwrap_or(third)
            .min(self.lease.saturating_sub(Duration::from_millis(5)))
            .max(Duration::from_millis(1))
    }

    /// The maximum wait.
    pub fn get_max_wait(&self) -> Duration {
        self.max_wait
    }

    /// The result lifetime.
    pub fn get_result_lifetime(&self) -> Duration {
        self.result_lifetime
    }

    /// The value size cap in bytes.
    pub fn get_max_value_size(&self) -> usize {
        self.max_value_size
    }

    /// The failure policy.
    pub fn get_failure_policy(&self) -> FailurePolicy {
        self.failure_policy
    }

    /// The timeout of one Redis command.
    pub fn get_redis_timeout(&self) -> Duration {
        self.redis_timeout
    }

    /// The time flights skip Redis after a failure.
    pub fn get_outage_backoff(&self) -> Duration {
        self.outage_backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_stays_below_the_lease() {
        let ms = Duration::from_millis;
        assert_eq!(Options::new().lease(ms(300)).get_renew_every(), ms(100));
        assert_eq!(
            Options::new()
                .lease(ms(300))
                .renew_every(ms(900))
                .get_renew_every(),
            ms(295)
        );
        assert_eq!(Options::new().lease(ms(1)).get_lease(), ms(10));
    }
}
