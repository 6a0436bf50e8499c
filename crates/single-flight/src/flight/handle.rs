//! `Flight`: a handle on one flight, and everything a waiter, a detached task or the registry
//! does with it: take the value, drive the work or listen when polled (`poll_drive`,
//! `poll_work`), publish the end (`finish`), leave, and pass the work between the waiters, a
//! detached task and the registry (install, give back, claim, abandon).

use std::any::Any;
use std::future::Future;
use std::mem;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::inner::Inner;
#[cfg(loom)]
use super::inner::LoomWaker;
use super::state::{Change, PanicPublished, Phase, Published, Replaced};
use super::{drop_quietly, Carrier, Lifecycle, Sendable, Solo, Ticket, Work};
use crate::flight::reentrancy::{assert_not_reentrant, PollingScope};
use crate::panicked::Panicked;
use crate::sync::{lock, Arc};

/// What `poll_drive` tells its waiter.
pub(crate) enum Step<V> {
    /// The flight ended with this value, which went to this many callers.
    Value(V, usize),
    /// Someone else is in charge: listen on the event.
    Listen,
}

/// What a promoted flight's task gets when it asks for the work.
pub(crate) enum Claim<V, C: Carrier<V> = Sendable> {
    Work(Work<V, C>),
    /// The work is being made or polled; the task's waker is parked.
    Wait,
    /// The flight ended before the task claimed it.
    Ended,
}

/// A handle on one flight: a reference-counted pointer, the carrier's (`carrier.rs`): an
/// `Arc<Inner>` for `Sendable`, an `Rc` of the `Arc<Inner>` and the idle work for `Local`.
/// Recycled by the registry once nobody else holds it.
pub(crate) struct Flight<V, C: Carrier<V> = Sendable> {
    pub(super) handle: C::Handle,
}

impl<V, C: Carrier<V>> Flight<V, C> {
    pub(crate) fn new() -> Self {
        Self {
            handle: C::new_handle(Arc::new(Inner::new())),
        }
    }

    /// The flight's parts: its state, event and run, shared with its waker.
    pub(crate) fn inner(&self) -> &Inner<V, C> {
        C::arc(&self.handle)
    }

    /// The identity the re-entrancy check uses.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(C::arc(&self.handle)) as *const () as usize
    }

    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(C::arc(&self.handle), C::arc(&other.handle))
    }

    /// Whether another handle on this flight exists (a waiter's, a detached task's, a waker's).
    pub(crate) fn is_shared(&self) -> bool {
        C::is_shared(&self.handle)
    }

    /// The flight's parts, if nobody else holds it (a recycled flight being reset).
    pub(crate) fn get_mut(&mut self) -> Option<&mut Inner<V, C>> {
        C::get_mut(&mut self.handle)
    }

    /// Parks idle work where this flight's carrier keeps it (for `Phase::Idle`).
    pub(crate) fn park(&self, work: Work<V, C>) -> C::Parked {
        C::park(&self.handle, work)
    }

    /// Takes back work parked by [`park`](Self::park).
    pub(crate) fn unpark(&self, parked: C::Parked) -> Work<V, C> {
        C::unpark(&self.handle, parked)
    }

    /// The waker the work is polled with: it reaches the flight, not one waiter. Borrowed from
    /// the flight's `Arc`, so a poll costs no reference-count traffic; the work clones it only if
    /// it keeps it.
    #[cfg(not(loom))]
    fn waker(&self) -> futures_task::WakerRef<'_>
    where
        V: Send + 'static,
    {
        futures_task::waker_ref(C::arc(&self.handle))
    }

    #[cfg(loom)]
    fn waker(&self) -> std::task::Waker
    where
        V: Send + 'static,
    {
        // loom's `Arc` keeps the flight's drop modelled; the waker wraps it in a std `Arc`.
        std::task::Waker::from(std::sync::Arc::new(LoomWaker(C::arc(&self.handle).clone())))
    }

    /// A promoted flight's task asks for the work: it gets it if the work is idle (the waiter
    /// that drove it is woken to listen instead); otherwise its waker is parked until the work
    /// is idle.
    #[cold]
    pub(crate) fn claim(&self, waker: &Waker) -> Claim<V, C> {
        let mut state = lock(&self.inner().state);
        match state.phase {
            Phase::Idle { .. } => {
                let Phase::Idle { work, .. } = mem::replace(&mut state.phase, Phase::Detached)
                else {
                    unreachable!()
                };
                let work = self.unpark(work);
                let former = state.clear_driver();
                let replaced = state.task_waker.replace(waker.clone());
                drop(state);
                drop(replaced);
                if let Some(former) = former {
                    former.wake();
                }
                Claim::Work(work)
            }
            Phase::Starting | Phase::Polling { .. } => {
                let replaced = state.task_waker.replace(waker.clone());
                drop(state);
                drop(replaced);
                Claim::Wait
            }
            Phase::Done { .. } | Phase::Panicked(_) | Phase::Abandoned => Claim::Ended,
            Phase::Detached => unreachable!("a flight has one task"),
        }
    }

    /// The last waiter left while the work was idle: drop the work, unlocked.
    #[cold]
    pub(crate) fn abandon(&self, registry: &dyn Lifecycle<V, C>) {
        if let Some(work) = registry.begin_abandon(self) {
            #[cfg(feature = "tracing")]
            if let Some(trace) = lock(&self.inner().state).trace.take() {
                trace.end(crate::trace::Ending::Abandoned);
            }
            drop_quietly(work);
            // Flights of this hash started meanwhile may poll their work now (invariant 6).
            for successor in registry.end_abandon(self) {
                successor.inner().ungate();
            }
        }
    }

    /// Installs the work made by a starter that does not poll it now (`do_chan`, or a detached
    /// task giving its work back to the waiters).
    pub(crate) fn install(&self, registry: &dyn Lifecycle<V, C>, work: Work<V, C>) {
        let mut state = lock(&self.inner().state);
        state.phase = Phase::Idle {
            work: self.park(work),
            woken: true,
        };
        if state.waiters == 0 {
            // Nobody is left to poll it.
            drop(state);
            self.abandon(registry);
            return;
        }
        let wake = state.nudge(Change::Installed);
        drop(state);
        self.inner().wake(wake);
    }

    /// A detached task dropped before completion gives its work back to the waiters.
    #[cold]
    pub(crate) fn give_back(&self, registry: &dyn Lifecycle<V, C>, work: Work<V, C>) {
        let parked = {
            let mut state = lock(&self.inner().state);
            state.waiters -= 1;
            state.task = false;
            state.task_waker.take()
        };
        drop(parked);
        self.install(registry, work);
    }

    /// A promoted flight's task dropped before it claimed the work: it counts itself out like
    /// a waiter that leaves.
    #[cold]
    pub(crate) fn release_claim(&self, registry: &dyn Lifecycle<V, C>) {
        let mut state = lock(&self.inner().state);
        if !state.task || matches!(state.phase, Phase::Detached) {
            // The flight ended (and counted the task out) or the claim succeeded meanwhile.
            return;
        }
        state.task = false;
        state.waiters -= 1;
        let parked = state.task_waker.take();
        if state.waiters == 0 && matches!(state.phase, Phase::Idle { .. }) {
            drop(state);
            drop(parked);
            self.abandon(registry);
            return;
        }
        let wake = state.nudge(Change::Left { was_driver: false });
        drop(state);
        drop(parked);
        self.inner().wake(wake);
    }
}

impl<V, C: Carrier<V>> Clone for Flight<V, C> {
    fn clone(&self) -> Self {
        Self {
            handle: self.handle.clone(),
        }
    }
}

impl<V: Clone + Send + 'static, C: Carrier<V>> Flight<V, C> {
    /// One poll of a registered waiter: take the value, drive the work, or report that this
    /// waiter must listen. `Pending` means this waiter is the driver and its waker is stored.
    pub(crate) fn poll_drive(
        &self,
        registry: &dyn Lifecycle<V, C>,
        ticket: Ticket,
        cx: &mut Context<'_>,
    ) -> Poll<Step<V>> {
        let mut state = lock(&self.inner().state);
        match &mut state.phase {
            Phase::Done { .. } => {
                let (value, callers) = state.take_value().expect("phase is Done");
                Poll::Ready(Step::Value(value, callers))
            }
            Phase::Panicked(panicked) => {
                let payload = Box::new(panicked.clone());
                drop(state);
                resume_unwind(payload)
            }
            Phase::Polling { .. } | Phase::Detached => {
                drop(state);
                assert_not_reentrant(self.id());
                Poll::Ready(Step::Listen)
            }
            Phase::Starting => {
                drop(state);
                // The closure that makes the work may be what is waiting here.
                assert_not_reentrant(self.id());
                Poll::Ready(Step::Listen)
            }
            Phase::Idle { woken, .. } => {
                let woken = *woken;
                if woken && state.dropping_predecessors == 0 {
                    let Phase::Idle { work, .. } =
                        mem::replace(&mut state.phase, Phase::Polling { woken: false })
                    else {
                        unreachable!()
                    };
                    let work = self.unpark(work);
                    let replaced = state.set_driver(ticket, cx.waker());
                    drop(state);
                    replaced.release();
                    return self.poll_work(registry, ticket, work, None, cx);
                }
                match state.driver {
                    Some(driver) if driver != ticket => Poll::Ready(Step::Listen),
                    // Nobody drives (the driver left): this waiter takes the role without a
                    // spurious poll; the flight's waker will reach it when the work wakes.
                    _ => {
                        let replaced = state.set_driver(ticket, cx.waker());
                        drop(state);
                        debug_assert!(!matches!(replaced, Replaced::FormerDriver(_)));
                        replaced.release();
                        Poll::Pending
                    }
                }
            }
            Phase::Abandoned => {
                unreachable!("a flight with a registered waiter is never abandoned")
            }
        }
    }

    /// Whether the flight has ended, with a value or a panic.
    pub(crate) fn has_ended(&self) -> bool {
        matches!(
            lock(&self.inner().state).phase,
            Phase::Done { .. } | Phase::Panicked(_)
        )
    }

    /// Whether the flight ended with a panic (its waiters are no longer counted).
    pub(crate) fn has_panicked(&self) -> bool {
        matches!(lock(&self.inner().state).phase, Phase::Panicked(_))
    }

    /// Whether a waiter that just registered its listener must poll again instead of waiting
    /// (the check after `listener!` that closes the lost-wakeup window).
    pub(crate) fn needs_poll(&self, ticket: Ticket) -> bool {
        let state = lock(&self.inner().state);
        match &state.phase {
            Phase::Done { .. } | Phase::Panicked(_) => true,
            Phase::Idle { woken, .. } => {
                (*woken && state.dropping_predecessors == 0)
                    || state.driver.is_none()
                    || state.driver == Some(ticket)
            }
            Phase::Starting | Phase::Polling { .. } | Phase::Detached => {
                drop(state);
                // About to wait for work (or the closure making it) that may be the very code
                // polling this waiter.
                assert_not_reentrant(self.id());
                false
            }
            Phase::Abandoned => true,
        }
    }

    /// Polls work that this waiter has moved out of the flight (`Phase::Polling`). `started` is
    /// the re-entrancy scope a starter made the work in, for its first poll of that work; other
    /// polls enter their own.
    pub(crate) fn poll_work(
        &self,
        registry: &dyn Lifecycle<V, C>,
        ticket: Ticket,
        mut work: Work<V, C>,
        started: Option<PollingScope>,
        cx: &mut Context<'_>,
    ) -> Poll<Step<V>> {
        let first_poll = started.is_some();
        let waker = self.waker();
        let polled = {
            let _scope = started.unwrap_or_else(|| PollingScope::enter(self.id()));
            catch_unwind(AssertUnwindSafe(|| {
                Pin::new(&mut work).poll(&mut Context::from_waker(&waker))
            }))
        };
        match polled {
            Ok(Poll::Ready(value)) => {
                drop_quietly(work);
                let (value, callers) = self.finish(registry, Some(ticket), value, first_poll);
                Poll::Ready(Step::Value(
                    value.expect("the finisher takes a share"),
                    callers,
                ))
            }
            Ok(Poll::Pending) => {
                let mut state = lock(&self.inner().state);
                let Phase::Polling { woken } = state.phase else {
                    unreachable!("only the poller leaves Phase::Polling")
                };
                state.phase = Phase::Idle {
                    work: self.park(work),
                    woken,
                };
                let replaced = state.set_driver(ticket, cx.waker());
                let claimant = state.claimant();
                drop(state);
                debug_assert!(!matches!(replaced, Replaced::FormerDriver(_)));
                replaced.release();
                if let Some(task) = claimant {
                    // The flight was promoted while this waiter polled: its task takes over.
                    task.wake();
                }
                if woken {
                    // Woken during its own poll: poll again soon, through this task (yielding to
                    // the executor) or, should it stop being polled, through a standby.
                    cx.waker().wake_by_ref();
                    self.inner().notify_standby();
                }
                Poll::Pending
            }
            Err(payload) => {
                drop_quietly(work);
                self.finish_panicked(registry, &*payload);
                resume_unwind(payload)
            }
        }
    }

    /// Publishes the value: unlinks the flight and hands the value to its waiters. `taker` is
    /// the ticket of the waiter that gets a share now (`None` for a detached task);
    /// `first_poll` says the work finished on the starter's first poll.
    pub(crate) fn finish(
        &self,
        registry: &dyn Lifecycle<V, C>,
        taker: Option<Ticket>,
        value: V,
        first_poll: bool,
    ) -> (Option<V>, usize) {
        // The solo case, without the flight's lock or a publication: the registry is locked
        // while it checks that nobody joined, so nobody can join. The starter is the only
        // waiter; no driver was recorded (that needs a pending poll) and nobody listens. The
        // state keeps its `Polling` phase until the next run resets it, and only a stale waker
        // of the work could still look at it, which a `Polling` phase tolerates. (A caller that
        // joined during that first poll costs one more trip through the registry lock.)
        if first_poll && registry.end_solo(self) == Solo::Ended {
            #[cfg(feature = "tracing")]
            if let Some(trace) = lock(&self.inner().state).trace.take() {
                trace.end(crate::trace::Ending::Value { callers: 1 });
            }
            return (Some(value), 1);
        }
        let Published {
            mine,
            unclaimed,
            others,
            callers,
            driver,
            task,
            #[cfg(feature = "tracing")]
            trace,
        } = registry.publish(self, taker, value);
        #[cfg(feature = "tracing")]
        if let Some(trace) = trace {
            trace.end(crate::trace::Ending::Value { callers });
        }
        if let Some(task) = task {
            task.wake();
        }
        // Nobody takes it (a detached flight whose waiters all left): its drop is user code,
        // run unlocked, and must not unwind through the task that published it.
        drop_quietly(unclaimed);
        // Wake the others before taking this waiter's own share: the share may run `V::clone`,
        // and a panic there must only unwind this waiter.
        if others > 0 {
            self.inner().notify_all();
        }
        if let Some(driver) = driver {
            driver.release();
        }
        match mine {
            Some(v) => (Some(v), callers),
            None if taker.is_some() => {
                let (v, callers) = lock(&self.inner().state)
                    .take_value()
                    .expect("phase is Done");
                (Some(v), callers)
            }
            None => (None, callers),
        }
    }

    /// Publishes a panic of the work (or of the closure that made it).
    #[cold]
    pub(crate) fn finish_panicked(
        &self,
        registry: &dyn Lifecycle<V, C>,
        payload: &(dyn Any + Send),
    ) {
        let panicked = Panicked::from_payload(payload);
        #[cfg(feature = "tracing")]
        let message = panicked.message().to_owned();
        let PanicPublished {
            driver,
            task,
            #[cfg(feature = "tracing")]
            trace,
        } = registry.publish_panic(self, panicked);
        #[cfg(feature = "tracing")]
        if let Some(trace) = trace {
            let message = &message;
            crate::trace::event(trace.span(), crate::trace::Event::Panicked { message });
            trace.end(crate::trace::Ending::Panicked);
        }
        if let Some(task) = task {
            task.wake();
        }
        self.inner().notify_all();
        // The driver waits on no listener: wake it to take its panic.
        if let Some(driver) = driver {
            driver.wake();
        }
    }

    /// A registered waiter goes away without having taken a value (dropped, timed out, or
    /// unwinding). Hands driving on if it was the driver; abandons the flight if it was the last.
    pub(crate) fn leave(&self, registry: &dyn Lifecycle<V, C>, ticket: Ticket) {
        let mut state = lock(&self.inner().state);
        match &mut state.phase {
            Phase::Done {
                value, remaining, ..
            } => {
                *remaining -= 1;
                if *remaining == 0 {
                    let value = value.take();
                    drop(state);
                    drop(value);
                }
            }
            Phase::Panicked(_) | Phase::Abandoned => {}
            Phase::Starting | Phase::Idle { .. } | Phase::Polling { .. } | Phase::Detached => {
                state.waiters -= 1;
                let was_driver = state.driver == Some(ticket);
                let old_waker = if was_driver {
                    state.clear_driver()
                } else {
                    None
                };
                if state.waiters == 0 && matches!(state.phase, Phase::Idle { .. }) {
                    drop(state);
                    drop(old_waker);
                    self.abandon(registry);
                    return;
                }
                // The driver waits on no listener, so its role is handed to a standby at once:
                // the standby makes the poll the driver would have made if the work is due, and
                // otherwise becomes the driver that the next inner wakeup reaches.
                let wake = state.nudge(Change::Left { was_driver });
                drop(state);
                #[cfg(feature = "tracing")]
                if was_driver {
                    self.inner().trace_event(crate::trace::Event::HandedOff);
                }
                drop(old_waker);
                self.inner().wake(wake);
            }
        }
    }
}
