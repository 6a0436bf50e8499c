//! The futures returned by `call` and its forms: register on the first poll, then wait.
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
    /// A call: `register` joins or starts the flight (on the first poll, as the API promises),
    /// polls the work of a flight it started, and returns the wait for its value.
    pub(crate) struct Call<Register, Wait> {
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

impl<Register, Wait> Call<Register, Wait>
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

impl<Register, Wait> Future for Call<Register, Wait>
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
    /// A call's future with its output mapped: `call` keeps the value only, `call_shared` adds
    /// Go's flag, `call_with_role` keeps the whole [`Outcome`].
    pub(crate) struct MapOutcome<Fut, Map> {
        #[pin]
        call: Fut,
        map: Map,
    }
}

impl<Fut, Map> MapOutcome<Fut, Map> {
    pub(crate) fn new(call: Fut, map: Map) -> Self {
        Self { call, map }
    }
}

impl<Fut, Map, T> Future for MapOutcome<Fut, Map>
where
    Fut: Future,
    Map: Fn(Fut::Output) -> T,
{
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.project();
        this.call.poll(cx).map(this.map)
    }
}

/// `call`'s output.
pub(crate) fn value<V>(outcome: Outcome<V>) -> V {
    outcome.value
}

/// `call_shared`'s output: the value and Go's `shared` flag.
pub(crate) fn value_and_shared<V>(outcome: Outcome<V>) -> (V, bool) {
    let shared = outcome.shared();
    (outcome.value, shared)
}
