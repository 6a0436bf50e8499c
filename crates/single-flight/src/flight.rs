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
    /// Whether a detached task is registered: counted in `waiters`, it takes no share of the
    /// value. Set for a flight started detached, and for one promoted to detached while it ran
    /// (the task then claims the work once it is idle).
    task: bool,
    /// The waker of a detached task (never a waiter's): parked until the gate opens, until a
    /// promoted flight's work can be claimed, or for wakeups of promoted work through the
    /// flight's own waker.
    task_waker: Option<Waker>,
    /// Abandoned flights of the same hash whose work is still being dropped.
    pub(crate) gate: usize,
}

/// Whom to wake after a change of the flight's state: decided under the flight's lock by
/// [`State::nudge`], acted on by [`Inner::wake`] once the lock is released.
#[must_use]
struct Wake {
    driver: Option<Waker>,
    listeners: Listeners,
    /// A promoted flight's task waiting to claim the idle work.
    task: Option<Waker>,
}

/// How many of the waiters listening on the flight's event to wake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Listeners {
    None,
    /// One that has not been notified yet (`notify_additional(1)`): a standby.
    One,
    /// Every one not notified yet (`notify(usize::MAX)`).
    All,
}

impl Wake {
    const NOBODY: Self = Self {
        driver: None,
        listeners: Listeners::None,
        task: None,
    };
}

/// What changed before [`State::nudge`] decides whom to wake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Change {
    /// The work's own waker fired; `first` unless the work was already due.
    InnerWakeup { first: bool },
    /// The work was installed (a `do_chan` closure returned, a detached task gave it back) or
    /// its gate opened: it is due now, for the first time.
    Installed,
    /// A waiter left; `was_driver` if it held the driver's role.
    Left { was_driver: bool },
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

/// A waiter's registration with a running flight.
pub(crate) struct Joined {
    pub(crate) ticket: Ticket,
    /// Someone else is in charge: the new waiter may listen before it first looks.
    pub(crate) listen: bool,
    /// The join promoted the flight to detached: a task must be spawned to claim its work.
    pub(crate) promoted: bool,
}

/// What a promoted flight's task gets when it asks for the work.
pub(crate) enum Claim<V> {
    Work(Work<V>),
    /// The work is being made or polled; the task's waker is parked.
    Wait,
    /// The flight ended before the task claimed it.
    Ended,
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
                task: false,
                task_waker: None,
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

    /// Whether another handle on this flight exists (a waiter's, a detached task's, a waker's).
    pub(crate) fn is_shared(&self) -> bool {
        Arc::strong_count(&self.0) > 1
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
        self.task = matches!(self.phase, Phase::Detached);
        // A flight is recycled holding no waker (semantic 8): dropping one here would run
        // executor code under the registry's lock.
        debug_assert!(self.driver_waker.is_none() && self.task_waker.is_none());
        self.gate = gate;
    }

    /// The waker of a promoted flight's task waiting to claim the work, once the work is idle.
    fn claimant(&mut self) -> Option<Waker> {
        match self.phase {
            Phase::Idle { .. } if self.task => self.task_waker.take(),
            _ => None,
        }
    }

    /// Whether the work waits for a poll that nothing stops: it is idle, woken, and no
    /// abandoned flight of its key is still dropping its own work.
    fn due(&self) -> bool {
        self.gate == 0 && matches!(self.phase, Phase::Idle { woken: true, .. })
    }

    /// The one rule that keeps due work from being stranded (semantic 3), applied after every
    /// change that can leave the work due: a closure's work installed, work given back by a
    /// detached task, a gate opened, a waiter gone, an inner wakeup.
    ///
    /// * Due and nobody driving: every listening waiter is woken (those notified before and not
    ///   polled since are skipped, they keep their notification), and the first one polled
    ///   takes the work up; so no number of stalled waiters can strand it. This happens at most
    ///   a few times per flight (the work installed, a gate opened, the driver gone), never per
    ///   inner wakeup.
    /// * An inner wakeup of driven work wakes the driver plus one standby (a listener not
    ///   notified before), never all waiters; a repeated wakeup of work still due wakes one more
    ///   standby if nobody drives it. Should the driver and that standby both be stalled, the
    ///   others wait for the next change.
    /// * A driver that leaves hands its role to one standby at once.
    ///
    /// And every waiter that is polled, notified or not, looks at the flight and takes up due
    /// work (`needs_poll`), so a waiter in a `select!` loop never depends on a notification.
    fn nudge(&mut self, change: Change) -> Wake {
        let due = self.due();
        let undriven = self.driver.is_none();
        let (wake_driver, listeners) = match change {
            Change::InnerWakeup { first: true } if due => (true, Listeners::One),
            Change::InnerWakeup { first: false } if due && undriven => (false, Listeners::One),
            Change::InnerWakeup { .. } => (false, Listeners::None),
            Change::Installed | Change::Left { .. } if due && undriven => (false, Listeners::All),
            Change::Installed if due => (true, Listeners::One),
            Change::Left { was_driver: true } => (false, Listeners::One),
            Change::Installed | Change::Left { .. } => (false, Listeners::None),
        };
        Wake {
            driver: if wake_driver {
                self.driver_waker.clone()
            } else {
                None
            },
            listeners,
            task: self.claimant(),
        }
    }

    fn join(&mut self, detach: bool) -> Joined {
        self.waiters += 1;
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        // Someone else is in charge: the new waiter can go straight to listening, which saves
        // it one trip through this lock in a herd.
        let listen = match &self.phase {
            Phase::Starting | Phase::Polling { .. } | Phase::Detached => true,
            Phase::Idle { woken, .. } => !*woken && self.driver.is_some(),
            _ => false,
        };
        // A detached join of a flight that no task owns promotes it: a task registers, to
        // claim the work and run it to its end whoever leaves.
        let promoted = detach && !self.task;
        if promoted {
            self.task = true;
            self.waiters += 1;
        }
        Joined {
            ticket,
            listen,
            promoted,
        }
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

    /// Makes `ticket` the driver, waiting on `waker` (cloned only if it changed). Returns the
    /// waker this lets go of, for the caller to release once the lock is gone.
    fn set_driver(&mut self, ticket: Ticket, waker: &Waker) -> Replaced {
        if self.driver == Some(ticket) {
            return match &self.driver_waker {
                Some(w) if w.will_wake(waker) => Replaced::Nothing,
                _ => self
                    .driver_waker
                    .replace(waker.clone())
                    .map_or(Replaced::Nothing, Replaced::Stale),
            };
        }
        self.driver = Some(ticket);
        match self.driver_waker.replace(waker.clone()) {
            Some(former) => Replaced::FormerDriver(former),
            None => Replaced::Nothing,
        }
    }

    /// The driver role lapses (its waiter took the value, left, or the flight ended); its waker
    /// is returned to be dropped or woken with no lock held.
    fn clear_driver(&mut self) -> Option<Waker> {
        self.driver = None;
        self.driver_waker.take()
    }
}

/// A waker that `set_driver` replaced.
#[must_use]
enum Replaced {
    Nothing,
    /// The former driver's: it waits on no listener, so it is woken to re-register as a standby.
    FormerDriver(Waker),
    /// This driver's own, from an earlier poll through another waker: dropped.
    Stale(Waker),
}

impl Replaced {
    /// Wakes or drops the replaced waker; executor code, so never under a lock.
    fn release(self) {
        match self {
            Replaced::Nothing => {}
            Replaced::FormerDriver(waker) => waker.wake(),
            Replaced::Stale(waker) => drop(waker),
        }
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

    /// Registers one more waiter (`detach`: for `do_chan_detached`, which promotes a flight no
    /// task owns); called with the registry locked.
    pub(crate) fn join(&self, detach: bool) -> Joined {
        self.joined.store(true, Relaxed);
        lock(&self.state).join(detach)
    }

    /// A promoted flight's task asks for the work: it gets it if the work is idle (the waiter
    /// that drove it is woken to listen instead); otherwise its waker is parked until the work
    /// is idle.
    pub(crate) fn claim(&self, waker: &Waker) -> Claim<V> {
        let mut state = lock(&self.state);
        match state.phase {
            Phase::Idle { .. } => {
                let Phase::Idle { work, .. } = mem::replace(&mut state.phase, Phase::Detached)
                else {
                    unreachable!()
                };
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

    /// Keeps the waker of a promoted flight's task, for wakeups of its work registered through
    /// the flight's own waker before the promotion.
    pub(crate) fn park_task(&self, waker: &Waker) {
        let mut state = lock(&self.state);
        let replaced = match &state.task_waker {
            Some(parked) if parked.will_wake(waker) => None,
            _ => state.task_waker.replace(waker.clone()),
        };
        drop(state);
        drop(replaced);
    }

    /// The gate of this flight opened one notch (a predecessor finished dropping its work).
    pub(crate) fn ungate(&self) {
        let mut state = lock(&self.state);
        state.gate -= 1;
        if state.gate > 0 {
            return;
        }
        // A detached task parked in `detached_gate_open` may poll now.
        let task = state.task_waker.take();
        let wake = state.nudge(Change::Installed);
        drop(state);
        if let Some(task) = task {
            task.wake();
        }
        self.wake(wake);
    }

    /// Whether a detached task may poll its work: not before abandoned flights of the same hash
    /// have dropped theirs. If not, the task's waker is parked until `ungate` opens the gate.
    pub(crate) fn detached_gate_open(&self, waker: &Waker) -> bool {
        let mut state = lock(&self.state);
        if state.gate == 0 {
            return true;
        }
        let replaced = match &state.task_waker {
            Some(parked) if parked.will_wake(waker) => None,
            _ => state.task_waker.replace(waker.clone()),
        };
        drop(state);
        // Executor code: never under the lock.
        drop(replaced);
        false
    }

    /// Acts on a decision of [`State::nudge`], with no lock held.
    fn wake(&self, wake: Wake) {
        if let Some(task) = wake.task {
            task.wake();
        }
        if let Some(driver) = wake.driver {
            driver.wake();
        }
        match wake.listeners {
            Listeners::None => {}
            Listeners::One => self.notify_standby(),
            Listeners::All => self.notify_all(),
        }
    }

    /// Wakes one listener that has not been notified yet.
    fn notify_standby(&self) {
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
        let wake = match &mut state.phase {
            // The poller sees the flag when its poll returns and re-arms.
            Phase::Polling { woken } => {
                *woken = true;
                Wake::NOBODY
            }
            Phase::Idle { woken, .. } => {
                // A wakeup of work that is already due reaches a standby only if nobody
                // drives it; the driver was woken the first time.
                let first = !std::mem::replace(woken, true);
                state.nudge(Change::InnerWakeup { first })
            }
            // Promoted work woken through a waker it took before its task claimed it.
            Phase::Detached => Wake {
                task: state.task_waker.clone(),
                ..Wake::NOBODY
            },
            _ => Wake::NOBODY,
        };
        drop(state);
        self.wake(wake);
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
            Phase::Starting => {
                drop(state);
                // The closure that makes the work may be what is waiting here.
                assert_not_reentrant(self.id());
                Poll::Ready(Step::Listen)
            }
            Phase::Idle { woken, .. } => {
                let woken = *woken;
                if woken && state.gate == 0 {
                    let Phase::Idle { work, .. } =
                        mem::replace(&mut state.phase, Phase::Polling { woken: false })
                    else {
                        unreachable!()
                    };
                    let replaced = state.set_driver(ticket, cx.waker());
                    drop(state);
                    replaced.release();
                    return self.poll_work(registry, ticket, work, false, cx);
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
            lock(&self.state).phase,
            Phase::Done { .. } | Phase::Panicked(_)
        )
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
                    self.notify_standby();
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
        let mut published = None;
        registry.unlink_with(self, &mut || {
            let value = value.take().expect("published once");
            published = Some(if first_poll && !self.joined.load(Relaxed) {
                // The solo case, without the flight's lock: the registry is locked, so nobody can
                // join, and nobody did. The starter is the only waiter; no driver was recorded
                // (that needs a pending poll) and nobody listens. The state keeps its `Polling`
                // phase until the next run resets it, and only a stale waker of the work could
                // still look at it, which a `Polling` phase tolerates.
                Published::solo(value)
            } else {
                lock(&self.state).publish(taker, value)
            });
        });
        let Published {
            mine,
            unclaimed,
            others,
            shared,
            driver,
            task,
        } = published.expect("unlink_with runs the publication");
        if let Some(task) = task {
            task.wake();
        }
        // Nobody takes it (a detached flight whose waiters all left): its drop is user code,
        // run unlocked, and must not unwind through the task that published it.
        drop_quietly(unclaimed);
        // Wake the others before taking this waiter's own share: the share may run `V::clone`,
        // and a panic there must only unwind this waiter.
        if others > 0 {
            self.notify_all();
        }
        if let Some(driver) = driver {
            driver.release();
        }
        match mine {
            Some(v) => (Some(v), shared),
            None if taker.is_some() => {
                let (v, shared) = lock(&self.state).take_value().expect("phase is Done");
                (Some(v), shared)
            }
            None => (None, shared),
        }
    }

    /// Publishes a panic of the work (or of the closure that made it).
    pub(crate) fn finish_panicked(&self, registry: &dyn Unlink<V>, payload: &(dyn Any + Send)) {
        let panicked = Panicked::from_payload(payload);
        let (mut driver, mut task) = (None, None);
        registry.unlink_with(self, &mut || {
            let mut state = lock(&self.state);
            state.phase = Phase::Panicked(panicked.clone());
            state.waiters = 0;
            state.task = false;
            driver = state.clear_driver();
            task = state.task_waker.take();
        });
        if let Some(task) = task {
            task.wake();
        }
        self.notify_all();
        // The driver waits on no listener: wake it to take its panic.
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
                drop(old_waker);
                self.wake(wake);
            }
        }
    }
}

impl<V> State<V> {
    /// The end of a run with `value`, decided under the registry's and the flight's locks:
    /// which share goes to the taker, how many other waiters to wake, which waker to release.
    fn publish(&mut self, taker: Option<Ticket>, value: V) -> Published<V> {
        // A detached task is registered but takes no share.
        let takers = self.waiters - usize::from(self.task);
        let shared = takers > 1;
        self.waiters = 0;
        self.task = false;
        // A promoted flight's task that never claimed the work finds the flight ended.
        let task = self.task_waker.take();
        let driver_is_taker = self.driver.is_some() && self.driver == taker;
        // Released in every case: a recycled state keeps no waker (semantic 8).
        let driver = self.clear_driver().map(|waker| {
            if driver_is_taker {
                Replaced::Stale(waker)
            } else {
                Replaced::FormerDriver(waker)
            }
        });
        let (mine, unclaimed, stored, others) = match (takers, taker) {
            // The common solo case: no clone, no notification.
            (1, Some(_)) => (Some(value), None, None, 0),
            // A detached flight whose waiters all left.
            (0, _) => (None, Some(value), None, 0),
            _ => (
                None,
                None,
                Some(value),
                takers - usize::from(taker.is_some()),
            ),
        };
        self.phase = Phase::Done {
            value: stored,
            remaining: if mine.is_some() || unclaimed.is_some() {
                0
            } else {
                takers
            },
            shared,
        };
        Published {
            mine,
            unclaimed,
            others,
            shared,
            driver,
            task,
        }
    }
}

/// What `State::publish` decided; acted on with no lock held.
struct Published<V> {
    /// The taker's share when it is the only one (moved, not cloned).
    mine: Option<V>,
    /// A value nobody takes, to drop unlocked.
    unclaimed: Option<V>,
    /// Waiters besides the taker that take their share from `Phase::Done`.
    others: usize,
    shared: bool,
    driver: Option<Replaced>,
    task: Option<Waker>,
}

impl<V> Published<V> {
    fn solo(value: V) -> Self {
        Self {
            mine: Some(value),
            unclaimed: None,
            others: 0,
            shared: false,
            driver: None,
            task: None,
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
        state.phase = Phase::Idle { work, woken: true };
        if state.waiters == 0 {
            // Nobody is left to poll it.
            drop(state);
            self.abandon(registry);
            return;
        }
        let wake = state.nudge(Change::Installed);
        drop(state);
        self.wake(wake);
    }

    /// A detached task dropped before completion gives its work back to the waiters.
    pub(crate) fn give_back(&self, registry: &dyn Unlink<V>, work: Work<V>) {
        let parked = {
            let mut state = lock(&self.state);
            state.waiters -= 1;
            state.task = false;
            state.task_waker.take()
        };
        drop(parked);
        self.install(registry, work);
    }

    /// A promoted flight's task dropped before it claimed the work: it counts itself out like
    /// a waiter that leaves.
    pub(crate) fn release_claim(&self, registry: &dyn Unlink<V>) {
        let mut state = lock(&self.state);
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
        self.wake(wake);
    }
}

/// Drops user code (a work future) without letting a panic in its `Drop` escape into the
/// flight's bookkeeping; the panic hook has already reported it.
pub(crate) fn drop_quietly<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}
