//! A registered waiter and the loop that waits for (and, when its turn comes, drives) its flight.

use std::future::Future;
use std::mem;
use std::ops::Deref;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use event_listener::listener;
use futures_lite::future::poll_fn;

use crate::flight::reentrancy::PollingScope;
use crate::flight::{Boxes, Carrier, Flight, Lifecycle, Sendable, Step, Ticket, Work};
use crate::outcome::{Outcome, Role};

/// A waiter registered with a flight. Dropping it before it has its value (cancellation, timeout,
/// unwinding) counts it out of the flight: see `Flight::leave`.
pub(crate) struct Waiter<V, R, C = Sendable>
where
    V: Clone + Send + 'static,
    C: Carrier<V>,
    R: Deref,
    R::Target: Lifecycle<V, C> + Sized,
{
    pub(crate) flight: Flight<V, C>,
    pub(crate) registry: R,
    pub(crate) ticket: Ticket,
    registered: bool,
    /// Listen before the first look at the flight: another waiter is known to be in charge.
    listen: bool,
}

impl<V, R, C> Waiter<V, R, C>
where
    V: Clone + Send + 'static,
    C: Carrier<V>,
    R: Deref,
    R::Target: Lifecycle<V, C> + Sized,
{
    pub(crate) fn new(flight: Flight<V, C>, registry: R, ticket: Ticket) -> Self {
        Self {
            flight,
            registry,
            ticket,
            registered: true,
            listen: false,
        }
    }

    /// A waiter that joined a flight someone else is in charge of: it registers its listener
    /// before it first looks at the flight (the check after registering still covers every
    /// state change).
    pub(crate) fn joined(flight: Flight<V, C>, registry: R, ticket: Ticket, listen: bool) -> Self {
        let mut waiter = Self::new(flight, registry, ticket);
        waiter.listen = listen;
        waiter
    }

    fn lifecycle(&self) -> &dyn Lifecycle<V, C> {
        &*self.registry
    }

    /// Runs the starter's closure. A panic in it ends the flight like a panic in the work would:
    /// this caller unwinds with the payload, the flight's other waiters with `Panicked`.
    pub(crate) fn make_work<Fut>(&self, make: impl FnOnce() -> Fut) -> Work<V, C>
    where
        Fut: Future<Output = V>,
        C: Boxes<Fut>,
    {
        self.make_work_in_scope(make).0
    }

    /// `make_work`, returning the re-entrancy scope the closure ran in still entered, for the
    /// first poll of the work to run in it too (one scope, not two, for a `call` starter).
    #[inline]
    fn make_work_in_scope<Fut>(&self, make: impl FnOnce() -> Fut) -> (Work<V, C>, PollingScope)
    where
        Fut: Future<Output = V>,
        C: Boxes<Fut>,
    {
        // The closure counts as the flight's work for the re-entrancy check: a call that
        // blocks on this flight from inside it would wait for itself.
        let scope = PollingScope::enter(self.flight.id());
        match catch_unwind(AssertUnwindSafe(|| C::boxed(make()))) {
            Ok(work) => (work, scope),
            Err(payload) => {
                drop(scope);
                self.flight.finish_panicked(self.lifecycle(), &*payload);
                resume_unwind(payload)
            }
        }
    }

    /// Installs the starter's work for whoever polls first (`do_chan`).
    pub(crate) fn install(&self, work: Work<V, C>) {
        self.flight.install(self.lifecycle(), work);
    }

    /// A `call` starter makes the work with `make` and polls it once, straight from
    /// registration: no trip through the flight's state and no wait future when the work is
    /// ready at once. `Pending` means this waiter now drives the work, its waker stored.
    /// (`#[inline]`: the solo path's poll; left out of line, it costs a call and spills.)
    #[inline]
    pub(crate) fn start<Fut>(
        &mut self,
        make: impl FnOnce() -> Fut,
        cx: &mut Context<'_>,
    ) -> Poll<Outcome<V>>
    where
        Fut: Future<Output = V>,
        C: Boxes<Fut>,
    {
        let (work, scope) = self.make_work_in_scope(make);
        let (flight, registry, ticket) = (&self.flight, self.lifecycle(), self.ticket);
        let polled = catch_unwind(AssertUnwindSafe(|| {
            flight.poll_work(registry, ticket, work, Some(scope), cx)
        }));
        match polled {
            Ok(Poll::Ready(Step::Value(value, callers))) => {
                self.registered = false;
                Poll::Ready(self.outcome(value, callers))
            }
            Ok(Poll::Ready(Step::Listen)) => {
                unreachable!("polling the work ends with its value or a pending poll")
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => self.unwind(payload),
        }
    }

    /// This waiter's share: ticket 0 is the starter's.
    fn outcome(&self, value: V, callers: usize) -> Outcome<V> {
        let role = if self.ticket == 0 {
            Role::Started
        } else {
            Role::Joined
        };
        Outcome {
            value,
            role,
            callers,
        }
    }

    /// Unwinds with `payload`. If the flight panicked, this waiter has nothing left to count
    /// out, so its guard must not take the flight's lock while the panic unwinds. (Other
    /// panics, a re-entrant wait or `V::clone`, still count it out.)
    #[cold]
    fn unwind(&mut self, payload: Box<dyn std::any::Any + Send>) -> ! {
        if self.flight.has_panicked() {
            self.registered = false;
        }
        resume_unwind(payload)
    }

    /// Waits for the flight's value, polling its work whenever this waiter's turn comes.
    pub(crate) async fn wait(mut self) -> Outcome<V> {
        let mut listen = self.listen;
        // The registry itself, not `&dyn Lifecycle`: it is held across `.await`, so the wait is
        // `Send + Sync` exactly when the registry is (a `Receiver` needs both).
        let (flight, registry, ticket) = (&self.flight, &*self.registry, self.ticket);
        loop {
            if !listen {
                let step = poll_fn(|cx| {
                    let poll =
                        catch_unwind(AssertUnwindSafe(|| flight.poll_drive(registry, ticket, cx)));
                    match poll {
                        Ok(Poll::Ready(step)) => Poll::Ready(Ok(step)),
                        Ok(Poll::Pending) => Poll::Pending,
                        Err(payload) => Poll::Ready(Err(payload)),
                    }
                })
                .await;
                match step {
                    Ok(Step::Value(value, callers)) => {
                        self.registered = false;
                        return self.outcome(value, callers);
                    }
                    Ok(Step::Listen) => {}
                    Err(payload) => self.unwind(payload),
                }
            }
            listen = false;
            // Check, listen, check again, wait: a notification sent between the first check and
            // the listener's registration is seen by the second check.
            listener!(flight.inner().event => listener);
            if flight.needs_poll(ticket) {
                continue;
            }
            // Wait for a notification, and look at the flight again whenever this waiter is
            // polled without one (a `select!`, a join, a spurious wakeup): a waiter that is
            // being polled takes up due work even if the notification went to a stalled
            // waiter (semantic 3).
            let mut registered = false;
            poll_fn(|cx| {
                if Pin::new(&mut listener).poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                if mem::replace(&mut registered, true) && flight.needs_poll(ticket) {
                    return Poll::Ready(());
                }
                Poll::Pending
            })
            .await;
        }
    }
}

impl<V, R, C> Drop for Waiter<V, R, C>
where
    V: Clone + Send + 'static,
    C: Carrier<V>,
    R: Deref,
    R::Target: Lifecycle<V, C> + Sized,
{
    fn drop(&mut self) {
        if self.registered {
            self.flight.leave(&*self.registry, self.ticket);
        }
    }
}
