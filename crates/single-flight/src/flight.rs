//! The flight: one execution of a piece of work, shared by every waiter that joined it.
//!
//! Both groups are thin fronts over this state machine; the registry (`registry.rs`) maps keys
//! to flights and this file decides everything that happens inside one flight.
//!
//! # Invariants
//!
//! * The work future is owned by the flight, never by a waiter. It sits in `Phase::Idle` between
//!   polls and is moved out (`Phase::Polling`) only by the one waiter that polls it, with no lock
//!   held; so it is polled by at most one thread at a time and exactly one execution exists.
//! * The work is polled with the flight's own waker (`ArcWake for Inner`), never a waiter's.
//!   An inner wakeup therefore reaches the flight whoever polled last: it marks the work `woken`
//!   and wakes the *driver* (the waiter that polled last, which waits on its stored waker and not
//!   on the event) plus *one standby* (`notify_additional(1)`), never every waiter. A stalled driver
//!   cannot hold the work hostage, and neither can a stalled standby: a notified listener that is
//!   never polled keeps its notification, so the next `notify_additional` skips it. A driver that
//!   leaves hands its role to a standby at once, for the same reason.
//! * A waiter that finds the work idle and due polls it; one that finds it idle with nobody
//!   driving becomes the driver without polling it (no spurious polls).
//! * `waiters` counts registered waiters while the work runs. Registration happens under the
//!   registry lock, so once the registry has unlinked a flight nobody can join it. When the count
//!   drops to zero while the work is idle, the flight is abandoned: unlinked, its work dropped with
//!   no lock held, and flights started meanwhile for the same hash are gated (`gate`) until that
//!   drop has finished, so two executions of one key never overlap.
//! * The end of a flight (`Done`, `Panicked`) is published under the registry lock, together with
//!   the unlink, and then every listener is notified once (`notify(usize::MAX)`).
//! * Lock order: registry, then flight. User code (the work's poll and drop, the closure) never
//!   runs under either; `V::clone` runs under the flight lock only (documented).

use std::any::Any;
use std::future::Future;
use std::mem;
use std::ops::Deref;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, Waker};

use event_listener::Event;

use crate::panicked::{assert_not_reentrant, Panicked, PollingScope};
use crate::sync::{lock, Arc, AtomicBool, Mutex};

/// The boxed work of a flight: the one heap allocation a flight needs.
pub(crate) type Work<V> = Pin<Box<dyn Future<Output = V> + Send + 'static>>;

/// A waiter's identity within one run of a flight.
pub(crate) type Ticket = u32;

/// What the registry does for a flight; implemented by `Registry`, called through `dyn` so that
/// the flight code is compiled once per `V`, not once per key and hasher type.
pub(crate) trait Unlink<V>: Send + Sync {
    /// Locks the registry, removes `flight`'s entry if it is still the current one for its key
    /// (identity, not key, comparison), runs `publish` with the registry still locked, and keeps
    /// the flight's allocation for reuse.
    fn unlink_with(&self, flight: &Flight<V>, publish: &mut dyn FnMut());

    /// If `flight` has no waiter left and its work is idle, unlinks it, moves it to the
    /// registry's list of flights being dropped and returns the work to drop.
    fn begin_abandon(&self, flight: &Flight<V>) -> Option<Work<V>>;

    /// The work returned by `begin_abandon` has been dropped: ungate the flights that waited.
    fn end_abandon(&self, flight: &Flight<V>);
}

/// A handle on one flight (a reference-counted pointer). Recycled by the registry once nobody
/// else holds it.
pub(crate) struct Flight<V>(Arc<Inner<V>>);

/// What a flight is made of.
pub(crate) struct Inner<V> {
    pub(crate) state: Mutex<State<V>>,
    /// Waiters that are not driving listen here for the end of the flight and for hand-offs.
    pub(crate) event: Event,
    /// The key's hash, so that unlinking never hashes the key again.
    pub(crate) hash: u64,
    /// Whether a caller other than the starter has joined this run. Written and read only with
    /// the registry locked (joins happen there), so the lock orders it and `Relaxed` suffices. A
    /// starter that finishes on its first poll with nobody joined owns the flight alone and
    /// publishes without the flight's lock (`finish`).
    joined: AtomicBool,
}

pub(crate) struct State<V> {
    pub(crate) phase: Phase<V>,
    /// Registered waiters while the flight runs (a detached task counts as one).
    pub(crate) waiters: usize,
    pub(crate) next_ticket: Ticket,
    /// The waiter that polled the work last and waits on `driver_waker` instead of the event.
    driver: Option<Ticket>,
    driver_waker: Option<Waker>,
    /// Abandoned flights of the same hash whose work is still being dropped.
    pub(crate) gate: usize,
}

pub(crate) enum Phase<V> {
    /// The flight is in the registry, its work is held by the starter (closure running, first
    /// poll, or a detached spawn being set up).
    Starting,
    /// The work waits for its next poll; `woken` is true if it must be polled (first poll, or
    /// its waker fired since the last poll).
    Idle { work: Work<V>, woken: bool },
    /// A waiter has moved the work out and is polling it; `woken` records a wakeup meanwhile.
    Polling { woken: bool },
    /// The work belongs to a spawned task (`Detached`), which alone polls it.
    Detached,
    /// The work returned. `remaining` waiters have still to take the value; the last one moves
    /// it out, the others clone it.
    Done {
        value: Option<V>,
        remaining: usize,
        shared: bool,
    },
    /// The work (or the closure that made it) panicked.
    Panicked(Panicked),
    /// Every waiter left: the work has been (or is being) dropped.
    Abandoned,
}

/// What `poll_drive` tells its waiter.
pub(crate) enum Step<V> {
    /// The flight ended with this value; the bool is Go's `shared`.
    Value(V, bool),
    /// Someone else is in charge: listen on the event.
    Listen,
}

impl<V> Flight<V> {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Inner {
            state: Mutex::new(State {
                phase: Phase::Abandoned,
                waiters: 0,
                next_ticket: 0,
                driver: None,
                driver_waker: None,
                gate: 0,
            }),
            event: Event::new(),
            hash: 0,
            joined: AtomicBool::new(false),
        }))
    }

    /// The identity the re-entrancy check uses.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as *const () as usize
    }

    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The flight's parts, if nobody else holds it (a recycled flight being reset).
    pub(crate) fn get_mut(&mut self) -> Option<&mut Inner<V>> {
        Arc::get_mut(&mut self.0)
    }

    /// The waker the work is polled with: it reaches the flight, not one waiter. Borrowed from
    /// the flight's `Arc`, so a poll costs no reference-count traffic; the work clones it only if
    /// it keeps it.
    #[cfg(not(loom))]
    fn waker(&self) -> futures_task::WakerRef<'_>
    where
        V: Send + 'static,
    {
        futures_task::waker_ref(&self.0)
    }

    #[cfg(loom)]
    fn waker(&self) -> Waker
    where
        V: Send + 'static,
    {
        // loom's `Arc` keeps the flight's drop modelled; the waker wraps it in a std `Arc`.
        Waker::from(std::sync::Arc::new(LoomWaker(self.0.clone())))
    }
}

impl<V> Clone for Flight<V> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<V> Deref for Flight<V> {
    type Target = Inner<V>;

    fn deref(&self) -> &Inner<V> {
        &self.0
    }
}

#[cfg(loom)]
struct LoomWaker<V>(Arc<Inner<V>>);

#[cfg(loom)]
impl<V: Send + 'static> std::task::Wake for LoomWaker<V> {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.wake_flight();
    }
}

impl<V> State<V> {
    /// Resets the state for a new run whose starter holds ticket 0 (and, for a detached run, the
    /// task ticket 1).
    fn reset(&mut self, phase: Phase<V>, waiters: usize, gate: usize) {
        self.phase = phase;
        self.waiters = waiters;
        self.next_ticket = waiters as Ticket;
        self.driver = None;
        self.driver_waker = None;
        self.gate = gate;
    }

    fn join(&mut self) -> (Ticket, bool) {
        self.waiters += 1;
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        // Someone else is in charge: the new waiter can go straight to listening, which saves
        // it one trip through this lock in a herd.
        let busy = match &self.phase {
            Phase::Starting | Phase::Polling { .. } | Phase::Detached => true,
            Phase::Idle { woken, .. } => !*woken && self.driver.is_some(),
            _ => false,
        };
        (ticket, busy)
    }

    /// Takes one waiter's share of a finished value; `None` if the flight has not finished.
    fn take_value(&mut self) -> Option<(V, bool)>
    where
        V: Clone,
    {
        let Phase::Done {
            value,
            remaining,
            shared,
        } = &mut self.phase
        else {
            return None;
        };
        // Clone before counting down: if `V::clone` panics, this waiter is still registered and
        // its guard counts it out, so the last taker still finds the value.
        let out = if *remaining == 1 {
            value.take()
        } else {
            value.clone()
        };
        *remaining -= 1;
        Some((
            out.expect("a finished flight keeps its value until the last taker"),
            *shared,
        ))
    }

    /// Installs `waker` as the driver's, cloning only if it changed.
    fn set_driver(&mut self, ticket: Ticket, waker: &Waker) -> Option<Waker> {
        let previous = if self.driver == Some(ticket) {
            None
        } else {
            self.driver = Some(ticket);
            // The former driver waits on no listener: wake it so it re-registers as a standby.
            self.driver_waker.take()
        };
        match &mut self.driver_waker {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        previous
    }
}

#[cfg(not(loom))]
impl<V: Send + 'static> futures_task::ArcWake for Inner<V> {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.wake_flight();
    }
}

impl<V> Inner<V> {
    /// Resets a recycled flight (nobody else holds it) for a new run of the key hashed `hash`.
    pub(crate) fn reset(&mut self, hash: u64, phase: Phase<V>, waiters: usize, gate: usize) {
        self.hash = hash;
        self.joined.store(false, Relaxed);
        let state = match self.state.get_mut() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.reset(phase, waiters, gate);
    }

    /// Registers one more waiter; called with the registry locked.
    pub(crate) fn join(&self) -> (Ticket, bool) {
        self.joined.store(true, Relaxed);
        lock(&self.state).join()
    }

    /// The gate of this flight opened one notch (a predecessor finished dropping its work).
    pub(crate) fn ungate(&self) {
        let mut state = lock(&self.state);
        state.gate -= 1;
        if state.gate > 0 {
            return;
        }
        match state.phase {
            Phase::Idle { woken: true, .. } => {
                let driver = state.driver_waker.clone();
                drop(state);
                self.wake_driver_and_standby(driver);
            }
            // A detached task parked in `detached_gate_open`.
            Phase::Detached => {
                let task = state.driver_waker.take();
                drop(state);
                if let Some(task) = task {
                    task.wake();
                }
            }
            _ => {}
        }
    }

    /// Whether a detached task may poll its work: not before abandoned flights of the same hash
    /// have dropped theirs. If not, the task's waker is parked until `ungate` opens the gate.
    pub(crate) fn detached_gate_open(&self, waker: &Waker) -> bool {
        let mut state = lock(&self.state);
        if state.gate == 0 {
            return true;
        }
        match &mut state.driver_waker {
            Some(parked) if parked.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        false
    }

    fn wake_driver_and_standby(&self, driver: Option<Waker>) {
        if let Some(driver) = driver {
            driver.wake();
        }
        // `total_listeners` first: notifying an event nobody listened to allocates its state.
        if self.event.total_listeners() > 0 {
            self.event.notify_additional(1);
        }
    }

    fn notify_all(&self) {
        if self.event.total_listeners() > 0 {
            self.event.notify(usize::MAX);
        }
    }

    /// An inner wakeup of the work: mark it due and wake the driver plus one standby.
    fn wake_flight(&self) {
        let mut state = lock(&self.state);
        let rearmed = match &mut state.phase {
            // The poller sees the flag when its poll returns and re-arms.
            Phase::Polling { woken } => {
                *woken = true;
                false
            }
            Phase::Idle { woken, .. } if !*woken => {
                *woken = true;
                true
            }
            _ => false,
        };
        // While gated, `ungate` wakes the driver once the gate opens.
        if rearmed && state.gate == 0 {
            let driver = state.driver_waker.clone();
            drop(state);
            self.wake_driver_and_standby(driver);
        }
    }
}

impl<V: Clone + Send + 'static> Flight<V> {
    /// One poll of a registered waiter: take the value, drive the work, or report that this
    /// waiter must listen. `Pending` means this waiter is the driver and its waker is stored.
    pub(crate) fn poll_drive(
        &self,
        registry: &dyn Unlink<V>,
        ticket: Ticket,
        cx: &mut Context<'_>,
    ) -> Poll<Step<V>> {
        let mut state = lock(&self.state);
        match &mut state.phase {
            Phase::Done { .. } => {
                let (value, shared) = state.take_value().expect("phase is Done");
                Poll::Ready(Step::Value(value, shared))
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
            Phase::Starting => Poll::Ready(Step::Listen),
            Phase::Idle { woken, .. } => {
                let woken = *woken;
                if woken && state.gate == 0 {
                    let Phase::Idle { work, .. } =
                        mem::replace(&mut state.phase, Phase::Polling { woken: false })
                    else {
                        unreachable!()
                    };
                    let previous = state.set_driver(ticket, cx.waker());
                    drop(state);
                    if let Some(previous) = previous {
                        previous.wake();
                    }
                    return self.poll_work(registry, ticket, work, false, cx);
                }
                match state.driver {
                    Some(driver) if driver != ticket => Poll::Ready(Step::Listen),
                    // Nobody drives (the driver left): this waiter takes the role without a
                    // spurious poll; the flight's waker will reach it when the work wakes.
                    _ => {
                        let previous = state.set_driver(ticket, cx.waker());
                        debug_assert!(previous.is_none());
                        Poll::Pending
                    }
                }
            }
            Phase::Abandoned => {
                unreachable!("a flight with a registered waiter is never abandoned")
            }
        }
    }

    /// Whether the flight ended with a panic (its waiters are no longer counted).
    pub(crate) fn has_panicked(&self) -> bool {
        matches!(lock(&self.state).phase, Phase::Panicked(_))
    }

    /// Whether a waiter that just registered its listener must poll again instead of waiting
    /// (the check after `listener!` that closes the lost-wakeup window).
    pub(crate) fn needs_poll(&self, ticket: Ticket) -> bool {
        let state = lock(&self.state);
        match &state.phase {
            Phase::Done { .. } | Phase::Panicked(_) => true,
            Phase::Idle { woken, .. } => {
                (*woken && state.gate == 0)
                    || state.driver.is_none()
                    || state.driver == Some(ticket)
            }
            Phase::Polling { .. } | Phase::Detached => {
                drop(state);
                // About to wait for work that may be the very work polling this waiter.
                assert_not_reentrant(self.id());
                false
            }
            Phase::Starting => false,
            Phase::Abandoned => true,
        }
    }

    /// Polls work that this waiter has moved out of the flight (`Phase::Polling`);
    /// `first_poll` is true for the starter's poll of the work it has just made.
    pub(crate) fn poll_work(
        &self,
        registry: &dyn Unlink<V>,
        ticket: Ticket,
        mut work: Work<V>,
        first_poll: bool,
        cx: &mut Context<'_>,
    ) -> Poll<Step<V>> {
        let waker = self.waker();
        let polled = {
            let _scope = PollingScope::enter(self.id());
            catch_unwind(AssertUnwindSafe(|| {
                work.as_mut().poll(&mut Context::from_waker(&waker))
            }))
        };
        match polled {
            Ok(Poll::Ready(value)) => {
                drop_quietly(work);
                let (value, shared) = self.finish(registry, Some(ticket), value, first_poll);
                Poll::Ready(Step::Value(
                    value.expect("the finisher takes a share"),
                    shared,
                ))
            }
            Ok(Poll::Pending) => {
                let mut state = lock(&self.state);
                let Phase::Polling { woken } = state.phase else {
                    unreachable!("only the poller leaves Phase::Polling")
                };
                state.phase = Phase::Idle { work, woken };
                let previous = state.set_driver(ticket, cx.waker());
                drop(state);
                debug_assert!(previous.is_none());
                if woken {
                    // Woken during its own poll: poll again soon, through this task (yielding to
                    // the executor) or, should it stop being polled, through a standby.
                    self.wake_driver_and_standby(Some(cx.waker().clone()));
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
        registry: &dyn Unlink<V>,
        taker: Option<Ticket>,
        value: V,
        first_poll: bool,
    ) -> (Option<V>, bool) {
        let mut value = Some(value);
        let mut mine = None;
        let mut others = 0;
        let mut driver = None;
        registry.unlink_with(self, &mut || {
            if first_poll && !self.joined.load(Relaxed) {
                // The solo case, without the flight's lock: the registry is locked, so nobody can
                // join, and nobody did. The starter is the only waiter; no driver was recorded
                // (that needs a pending poll) and nobody listens. The state keeps its `Polling`
                // phase until the next run resets it, and only a stale waker of the work could
                // still look at it, which a `Polling` phase tolerates.
                mine = value.take().map(|v| (v, false));
                return;
            }
            let mut state = lock(&self.state);
            // A detached task is registered but takes no share.
            let takers = if taker.is_some() {
                state.waiters
            } else {
                state.waiters - 1
            };
            let shared = takers > 1;
            state.waiters = 0;
            if state.driver != taker {
                driver = state.driver_waker.take();
            }
            state.driver = None;
            if takers == 1 && taker.is_some() {
                // The common solo case: no clone, no notification.
                mine = value.take().map(|v| (v, false));
                state.phase = Phase::Done {
                    value: None,
                    remaining: 0,
                    shared,
                };
            } else if takers == 0 {
                // A detached flight whose waiters all left: the value is dropped below, unlocked.
                state.phase = Phase::Done {
                    value: None,
                    remaining: 0,
                    shared,
                };
            } else {
                state.phase = Phase::Done {
                    value: value.take(),
                    remaining: takers,
                    shared,
                };
                others = takers - usize::from(taker.is_some());
            }
        });
        if let Some(value) = value.take() {
            // Nobody takes it (a detached flight whose waiters all left): drop it here, unlocked.
            drop(value);
        }
        // Wake the others before taking this waiter's own share: the share may run `V::clone`,
        // and a panic there must only unwind this waiter.
        if others > 0 {
            self.notify_all();
        }
        if let Some(driver) = driver {
            driver.wake();
        }
        match mine {
            Some((v, shared)) => (Some(v), shared),
            None if taker.is_some() => {
                let (v, shared) = lock(&self.state).take_value().expect("phase is Done");
                (Some(v), shared)
            }
            None => (None, others > 1),
        }
    }

    /// Publishes a panic of the work (or of the closure that made it).
    pub(crate) fn finish_panicked(&self, registry: &dyn Unlink<V>, payload: &(dyn Any + Send)) {
        let panicked = Panicked::from_payload(payload);
        let mut driver = None;
        registry.unlink_with(self, &mut || {
            let mut state = lock(&self.state);
            state.phase = Phase::Panicked(panicked.clone());
            state.waiters = 0;
            state.driver = None;
            driver = state.driver_waker.take();
        });
        self.notify_all();
        if let Some(driver) = driver {
            driver.wake();
        }
    }

    /// A registered waiter goes away without having taken a value (dropped, timed out, or
    /// unwinding). Hands driving on if it was the driver; abandons the flight if it was the last.
    pub(crate) fn leave(&self, registry: &dyn Unlink<V>, ticket: Ticket) {
        let mut state = lock(&self.state);
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
                let mut old_waker = None;
                if state.driver == Some(ticket) {
                    state.driver = None;
                    old_waker = state.driver_waker.take();
                }
                let idle = matches!(state.phase, Phase::Idle { .. });
                if state.waiters == 0 && idle {
                    drop(state);
                    drop(old_waker);
                    self.abandon(registry);
                    return;
                }
                // The driver waits on no listener, so its role is handed to a standby at once:
                // the standby makes the poll the driver would have made if the work is due, and
                // otherwise becomes the driver that the next inner wakeup reaches. Should that
                // standby be stalled, it keeps the notification and the next wakeup skips it.
                let hand_off = old_waker.is_some();
                drop(state);
                drop(old_waker);
                if hand_off && self.event.total_listeners() > 0 {
                    self.event.notify_additional(1);
                }
            }
        }
    }
}

impl<V> Flight<V> {
    /// The last waiter left while the work was idle: drop the work, unlocked.
    pub(crate) fn abandon(&self, registry: &dyn Unlink<V>) {
        if let Some(work) = registry.begin_abandon(self) {
            drop_quietly(work);
            registry.end_abandon(self);
        }
    }

    /// Installs the work made by a starter that does not poll it now (`do_chan`, or a detached
    /// task giving its work back to the waiters).
    pub(crate) fn install(&self, registry: &dyn Unlink<V>, work: Work<V>) {
        let mut state = lock(&self.state);
        if state.waiters == 0 {
            // Nobody is left to poll it.
            state.phase = Phase::Idle { work, woken: true };
            drop(state);
            self.abandon(registry);
            return;
        }
        state.phase = Phase::Idle { work, woken: true };
        let driver = state.driver_waker.clone();
        let gated = state.gate > 0;
        drop(state);
        if !gated {
            self.wake_driver_and_standby(driver);
        }
    }

    /// A detached task dropped before completion gives its work back to the waiters.
    pub(crate) fn give_back(&self, registry: &dyn Unlink<V>, work: Work<V>) {
        lock(&self.state).waiters -= 1;
        self.install(registry, work);
    }
}

/// Drops user code (a work future) without letting a panic in its `Drop` escape into the
/// flight's bookkeeping; the panic hook has already reported it.
pub(crate) fn drop_quietly<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}
