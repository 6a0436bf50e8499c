//! `Call`, the future `RedisGroup::call` and `call_ref` return, and [`Origin`], what its
//! `with_origin()` tells: where this caller's value came from.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::error::Error;
use crate::flight::{Reply, Source};

/// Where a caller's value came from, across both levels of a [`RedisGroup`](crate::RedisGroup):
/// this process's flight (the core's [`Role`](single_flight::Role): started or joined) and, for
/// the caller that started it, where that flight got its value (the work ran here under the
/// lease, here without it, or in another process).
///
/// Not the core's `Role`, which says only whether a caller started its flight: a caller that
/// started this process's flight may still have got another process's value.
///
/// # Examples
///
/// ```no_run
/// # use single_flight_redis::{Origin, RedisGroup};
/// # async fn demo(group: RedisGroup<String, u64>) {
/// let (id, origin) = group
///     .call("ada".to_owned(), |name| async move { name.len() as u64 })
///     .with_origin()
///     .await;
/// if origin == Origin::JoinedRemote {
///     // another replica did the query
/// }
/// # let _ = id;
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// This caller started its process's flight, which held the lease: the work ran in this
    /// process (first, or after taking over from a process that died or left).
    Owner,
    /// This caller started its process's flight and the work ran in this process without the
    /// lease, by the [`FailurePolicy::Fallback`](crate::FailurePolicy::Fallback) (Redis
    /// unreachable or slow, a value that could not cross the wire, or the maximum wait
    /// passed); also a caller that started its flight and got an [`Error`].
    Fallback,
    /// This caller joined a flight that another caller of this process had started (whatever
    /// that flight did).
    JoinedLocal,
    /// This caller started its process's flight, which joined another process's flight: the
    /// work ran there.
    JoinedRemote,
}

/// This caller's value and origin, from its local flight's outcome: whether it started the
/// local flight (the core's role) and where that flight's value came from.
pub(crate) fn origin_of<V>(
    outcome: single_flight::Outcome<Reply<V>>,
) -> (Result<V, Error>, Origin) {
    let started = outcome.role == single_flight::Role::Started;
    match outcome.value {
        Ok((value, source)) => {
            let origin = match (started, source) {
                (false, _) => Origin::JoinedLocal,
                (true, Source::Owner) => Origin::Owner,
                (true, Source::Fallback) => Origin::Fallback,
                (true, Source::Remote) => Origin::JoinedRemote,
            };
            (Ok(value), origin)
        }
        Err(error) => (
            Err(error),
            if started {
                Origin::Fallback
            } else {
                Origin::JoinedLocal
            },
        ),
    }
}

pin_project! {
    /// The future returned by [`RedisGroup::call`](crate::RedisGroup::call) and
    /// [`call_ref`](crate::RedisGroup::call_ref): it resolves to the value (or an [`Error`]
    /// under the strict policy), or, through [`with_origin`](Self::with_origin), to the value
    /// and its [`Origin`], as the core's `Call::with_role` does for its `Outcome`.
    ///
    /// The caller joins this process's flight when this future is first polled.
    ///
    /// # Cancel safety
    ///
    /// Dropping it leaves the flight to this process's other callers, as the core's `Call`
    /// does. If it was the last caller of this process: an owner's work is dropped and its
    /// lease released at once (another process takes over without waiting for the lease to
    /// expire); a waiting process stops waiting, and the owner elsewhere goes on.
    ///
    /// # Panics
    ///
    /// If the work panics, every caller of the owner's process panics as with the core's
    /// groups, and every caller of the other processes panics with a
    /// [`Panicked`](single_flight::Panicked) carrying the message. Also panics, instead of
    /// waiting for itself, if awaited from inside the work of its own flight.
    #[must_use = "futures do nothing unless you .await or poll them"]
    pub struct Call<Fut> {
        #[pin]
        inner: Fut,
    }
}

impl<Fut> Call<Fut> {
    pub(crate) fn new(inner: Fut) -> Self {
        Self { inner }
    }

    /// This call as a future of its value and its [`Origin`]. The call and its costs are the
    /// same.
    ///
    /// # Examples
    ///
    /// See [`Origin`].
    pub fn with_origin(self) -> Fut {
        self.inner
    }
}

impl<Fut, V> Future for Call<Fut>
where
    Fut: Future<Output = (Result<V, Error>, Origin)>,
{
    type Output = Result<V, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<V, Error>> {
        self.project().inner.poll(cx).map(|(value, _)| value)
    }
}

impl<Fut> std::fmt::Debug for Call<Fut> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use single_flight::{Outcome, Role};

    fn outcome(role: Role, value: Reply<u8>) -> Outcome<Reply<u8>> {
        Outcome {
            value,
            role,
            callers: 1,
        }
    }

    #[test]
    fn a_joined_caller_is_local_whatever_its_flight_did() {
        for source in [Source::Owner, Source::Fallback, Source::Remote] {
            let (_, origin) = origin_of(outcome(Role::Joined, Ok((1, source))));
            assert_eq!(origin, Origin::JoinedLocal);
        }
    }

    #[test]
    fn a_starter_learns_where_its_flight_got_the_value() {
        let cases = [
            (Source::Owner, Origin::Owner),
            (Source::Fallback, Origin::Fallback),
            (Source::Remote, Origin::JoinedRemote),
        ];
        for (source, origin) in cases {
            assert_eq!(origin_of(outcome(Role::Started, Ok((1, source)))).1, origin);
        }
        let error = Error::new(crate::ErrorKind::Timeout, "too long");
        assert_eq!(
            origin_of(outcome(Role::Started, Err(error))).1,
            Origin::Fallback
        );
    }
}
