//! `Detached`: a flight's work handed to a runtime, the hook under the adapters' spawned flights.

use std::fmt;
use std::future::Future;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::flight::reentrancy::PollingScope;
use crate::flight::{drop_quietly, Carrier, Claim, Flight, Lifecycle, Sendable, Work};

/// The work of a detached flight, to be spawned on a runtime; see
/// [`KeyedGroup::do_chan_detached`](crate::KeyedGroup::do_chan_detached).
///
/// Polling it runs the work to completion and publishes the value (or the panic) to the flight's
/// waiters; it completes with `()` and never panics itself. While it lives, the flight runs even
/// if every waiter has left, and new callers join it.
///
/// # Cancel safety
///
/// Dropping it before it completes (say the runtime shuts down) hands the work, as it stands,
/// back to the flight's waiters, which drive it from then on; with no waiter left, the work is
/// dropped and the key freed.
///
/// # Examples
///
/// ```
/// use single_flight::{Detached, Group};
///
/// let group: Group<u32> = Group::new();
/// let mut task: Option<Detached<u32>> = None;
/// let rx = group.do_chan_detached(|| async { 5 }, |t| task = Some(t));
/// drop(rx); // every waiter left, the detached work still runs:
/// futures_lite::future::block_on(task.unwrap());
/// assert_eq!(group.in_flight(), 0);
/// ```
#[must_use = "futures do nothing unless you .await or poll them"]
pub struct Detached<V>(pub(crate) DetachedFlight<V, Sendable, Arc<dyn Lifecycle<V> + Send + Sync>>);

/// The detached task of a flight, for either carrier: `Detached` (`Send` work) and
/// `local::Detached` differ only in `C` and in the auto traits of the registry they hold.
pub(crate) struct DetachedFlight<V, C: Carrier<V>, R: LifecycleRef<V, C>> {
    flight: Flight<V, C>,
    registry: R,
    task: Task<V, C>,
    /// Whether the flight's gate was found open once (it never closes again).
    gate_open: bool,
    /// The flight was promoted to detached while it ran: its work may hold the flight's waker,
    /// which then reaches this task through the flight.
    promoted: bool,
}

enum Task<V, C: Carrier<V>> {
    /// A promoted flight's task that has yet to take the work from its waiters.
    Claiming,
    Running(Work<V, C>),
    Finished,
}

/// A shared handle on a registry, as a detached task keeps it: `Send + Sync` for `Detached`.
pub(crate) trait LifecycleRef<V, C: Carrier<V>> {
    fn lifecycle(&self) -> &dyn Lifecycle<V, C>;
}

impl<V> LifecycleRef<V, Sendable> for Arc<dyn Lifecycle<V> + Send + Sync> {
    fn lifecycle(&self) -> &dyn Lifecycle<V> {
        &**self
    }
}

impl<V, C, R> DetachedFlight<V, C, R>
where
    V: Clone + Send + 'static,
    C: Carrier<V>,
    R: LifecycleRef<V, C>,
{
    pub(crate) fn new(flight: Flight<V, C>, registry: R, work: Work<V, C>) -> Self {
        Self {
            flight,
            registry,
            task: Task::Running(work),
            gate_open: false,
            promoted: false,
        }
    }

    /// The task of a running flight promoted to detached: it claims the work once the waiter
    /// polling it lets go.
    pub(crate) fn claiming(flight: Flight<V, C>, registry: R) -> Self {
        Self {
            flight,
            registry,
            task: Task::Claiming,
            gate_open: false,
            promoted: true,
        }
    }
}

impl<V: Clone + Send + 'static> Future for Detached<V> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.poll_task(cx)
    }
}

impl<V, C, R> DetachedFlight<V, C, R>
where
    V: Clone + Send + 'static,
    C: Carrier<V>,
    R: LifecycleRef<V, C>,
{
    /// Runs the work to its end and publishes it; see [`Detached`].
    pub(crate) fn poll_task(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let this = self;
        if let Task::Claiming = this.task {
            match this.flight.claim(cx.waker()) {
                Claim::Work(work) => this.task = Task::Running(work),
                Claim::Wait => return Poll::Pending,
                Claim::Ended => {
                    this.task = Task::Finished;
                    return Poll::Ready(());
                }
            }
        }
        let Task::Running(work) = &mut this.task else {
            return Poll::Ready(());
        };
        if !this.gate_open {
            // Never poll the work while an abandoned flight of the same key still drops its own.
            if !this.flight.inner().detached_gate_open(cx.waker()) {
                return Poll::Pending;
            }
            this.gate_open = true;
        }
        let polled = {
            let _scope = PollingScope::enter(this.flight.id());
            catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *work).poll(cx)))
        };
        match polled {
            Ok(Poll::Pending) => {
                if this.promoted {
                    this.flight.inner().park_task(cx.waker());
                }
                Poll::Pending
            }
            Ok(Poll::Ready(value)) => {
                drop_quietly(mem::replace(&mut this.task, Task::Finished));
                this.flight
                    .finish(this.registry.lifecycle(), None, value, false);
                Poll::Ready(())
            }
            Err(payload) => {
                drop_quietly(mem::replace(&mut this.task, Task::Finished));
                this.flight
                    .finish_panicked(this.registry.lifecycle(), &*payload);
                // The payload's drop is user code too; this future never panics.
                drop_quietly(payload);
                Poll::Ready(())
            }
        }
    }
}

impl<V, C: Carrier<V>, R: LifecycleRef<V, C>> Drop for DetachedFlight<V, C, R> {
    fn drop(&mut self) {
        match mem::replace(&mut self.task, Task::Finished) {
            Task::Running(work) => self.flight.give_back(self.registry.lifecycle(), work),
            Task::Claiming => self.flight.release_claim(self.registry.lifecycle()),
            Task::Finished => {}
        }
    }
}

impl<V, C: Carrier<V>, R: LifecycleRef<V, C>> DetachedFlight<V, C, R> {
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.task, Task::Finished)
    }
}

impl<V> fmt::Debug for Detached<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detached")
            .field("finished", &self.0.is_finished())
            .finish()
    }
}
