//! `Call`, the future `call` and `call_ref` return: register on the first poll, then wait.
//!
//! Hand-written rather than `async fn`s so that what is needed only until the first poll (the
//! group, the key and the closure) shares its space with the wait that follows: an `async fn`
//! keeps its arguments for its whole life, and one `async fn` awaiting another adds a layer of
//! state. Every task that awaits a call carries this future, so its size shows up in every
//! spawn-heavy workload.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::outcome::Outcome;

/// What a call's registration came to.
pub(crate) enum Registered<Wait, T> {
    /// The call started the flight and its work was ready at its first poll.
    Done(T),
    /// The call drives the flight, whose work has been polled once: wait, starting next poll.
    Driving(Wait),
    /// The call joined the flight (or started one it may not poll yet): wait, starting now.
    Waiting(Wait),
}

pin_project! {
    /// A call's registration and wait: `register` joins or starts the flight (on the first
    /// poll, as the API promises), polls the work of a flight it started, and returns the wait
    /// for its value.
    #[must_use = "futures do nothing unless you .await or poll them"]
    pub(crate) struct Registration<Register, Wait> {
        #[pin]
        state: CallState<Register, Wait>,
    }
}

pin_project! {
    #[project = CallStateProj]
    #[project_replace = CallStateReplace]
    enum CallState<Register, Wait> {
        Unregistered { register: Register },
        // Between taking `register` out and storing its wait (or for good, if it panicked).
        Registering,
        Waiting {
            #[pin]
            wait: Wait,
        },
        // Returned its value at registration.
        Finished,
    }
}

impl<Register, Wait> Registration<Register, Wait>
where
    Register: FnOnce(&mut Context<'_>) -> Registered<Wait, Wait::Output>,
    Wait: Future,
{
    pub(crate) fn new(register: Register) -> Self {
        Self {
            state: CallState::Unregistered { register },
        }
    }
}

impl<Register, Wait> Future for Registration<Register, Wait>
where
    Register: FnOnce(&mut Context<'_>) -> Registered<Wait, Wait::Output>,
    Wait: Future,
{
    type Output = Wait::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Wait::Output> {
        let mut state = self.project().state;
        if let CallStateProj::Unregistered { .. } = state.as_mut().project() {
            let CallStateReplace::Unregistered { register } =
                state.as_mut().project_replace(CallState::Registering)
            else {
                unreachable!("the state was just seen unregistered")
            };
            match register(cx) {
                Registered::Done(output) => {
                    state.set(CallState::Finished);
                    return Poll::Ready(output);
                }
                Registered::Driving(wait) => {
                    state.set(CallState::Waiting { wait });
                    return Poll::Pending;
                }
                Registered::Waiting(wait) => state.set(CallState::Waiting { wait }),
            }
        }
        match state.project() {
            CallStateProj::Waiting { wait } => wait.poll(cx),
            CallStateProj::Finished => panic!("single-flight: a call polled after it returned"),
            _ => panic!("single-flight: a call polled again after its registration panicked"),
        }
    }
}

pin_project! {
    /// The future returned by [`KeyedGroup::call`], [`KeyedGroup::call_ref`], [`Group::call`]
    /// and their [`local`](crate::local) forms: it resolves to the flight's value, or, through
    /// [`with_role`](Self::with_role), to this caller's whole [`Outcome`].
    ///
    /// The caller registers with the flight when this future is first polled.
    ///
    /// # Cancel safety
    ///
    /// Dropping it never cancels the work for others: if other callers wait for the same
    /// flight, one of them goes on polling the same work future (nothing is run twice). If this
    /// was the last caller, the work future is dropped at once and the key is free; a call
    /// arriving meanwhile starts a new flight, whose work is not polled before the abandoned one
    /// has finished dropping.
    ///
    /// # Panics
    ///
    /// If the work (the closure or its future) panics, the flight ends and every waiter panics:
    /// the one that was polling the work with the original payload, the others with a
    /// [`Panicked`] carrying its message. The key is freed and the group stays usable.
    ///
    /// Panics with a clear message, instead of waiting forever, if it is awaited from inside the
    /// work of the very flight it would join (directly, or through other flights polled on the
    /// same thread). A same-key call that the work hands to another task cannot be detected and
    /// deadlocks, as it would in any call-sharing scheme.
    ///
    /// [`KeyedGroup::call`]: crate::KeyedGroup::call
    /// [`KeyedGroup::call_ref`]: crate::KeyedGroup::call_ref
    /// [`Group::call`]: crate::Group::call
    /// [`Panicked`]: crate::Panicked
    #[must_use = "futures do nothing unless you .await or poll them"]
    pub struct Call<Fut> {
        #[pin]
        registration: Fut,
    }
}

impl<Fut> Call<Fut> {
    pub(crate) fn new(registration: Fut) -> Self {
        Self { registration }
    }

    /// This call as a future of its whole [`Outcome`]: the value, whether this caller started
    /// the flight or joined it, and how many callers the value went to (Go's `shared` flag is
    /// [`Outcome::shared`]). The call, its registration and its costs are the same.
    ///
    /// # Examples
    ///
    /// ```
    /// use single_flight::{KeyedGroup, Role};
    ///
    /// # futures_lite::future::block_on(async {
    /// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
    /// let outcome = group.call(1, |k| async move { k + 1 }).with_role().await;
    /// assert_eq!(outcome.value, 2);
    /// assert_eq!(outcome.role, Role::Started);
    /// assert!(!outcome.shared());
    /// # });
    /// ```
    pub fn with_role(self) -> Fut {
        self.registration
    }
}

impl<Fut, V> Future for Call<Fut>
where
    Fut: Future<Output = Outcome<V>>,
{
    type Output = V;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<V> {
        self.project()
            .registration
            .poll(cx)
            .map(|outcome| outcome.value)
    }
}

impl<Fut> std::fmt::Debug for Call<Fut> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call").finish_non_exhaustive()
    }
}
