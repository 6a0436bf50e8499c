//! The state of one flight and its pure transitions: each takes the state (locked by the
//! caller) and returns what the caller must do once the lock is released, so that every
//! decision can be unit-tested without threads.

use std::mem;
use std::task::Waker;

use super::{Carrier, Sendable, Start, Ticket};
use crate::panicked::Panicked;

/// The state of a flight, behind its lock.
pub(crate) struct FlightState<V, C: Carrier<V> = Sendable> {
    pub(super) phase: Phase<V, C>,
    /// Registered waiters while the flight runs (a detached task counts as one; invariant 5).
    pub(super) waiters: usize,
    next_ticket: Ticket,
    /// The waiter that polled the work last and waits on `driver_waker` instead of the event
    /// (invariant 3).
    pub(super) driver: Option<Ticket>,
    pub(super) driver_waker: Option<Waker>,
    /// Whether a detached task is registered: counted in `waiters`, it takes no share of the
    /// value. Set for a flight started detached, and for one promoted to detached while it ran
    /// (the task then claims the work once it is idle).
    pub(super) task: bool,
    /// The waker of a detached task (never a waiter's): parked until the gate opens, until a
    /// promoted flight's work can be claimed, or for wakeups of promoted work through the
    /// flight's own waker.
    pub(super) task_waker: Option<Waker>,
    /// Abandoned flights of the same hash whose work is still being dropped: while there are
    /// any, the gate is closed and the work is not polled (invariant 6).
    pub(super) dropping_predecessors: usize,
    /// The flight's span while it runs (taken when it ends).
    #[cfg(feature = "tracing")]
    pub(super) trace: Option<crate::trace::Trace>,
}

/// Whom to wake after a change of the flight's state: decided under the flight's lock by
/// [`FlightState::nudge`], acted on by [`Inner::wake`] once the lock is released.
#[must_use]
pub(super) struct Wake {
    pub(super) driver: Option<Waker>,
    pub(super) listeners: Listeners,
    /// A promoted flight's task waiting to claim the idle work.
    pub(super) task: Option<Waker>,
}

/// How many of the waiters listening on the flight's event to wake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Listeners {
    None,
    /// One that has not been notified yet (`notify_additional(1)`): a standby.
    One,
    /// Every one not notified yet (`notify(usize::MAX)`).
    All,
}

impl Wake {
    pub(super) const NOBODY: Self = Self {
        driver: None,
        listeners: Listeners::None,
        task: None,
    };
}

/// What changed before [`FlightState::nudge`] decides whom to wake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Change {
    /// The work's own waker fired; `first` unless the work was already due.
    InnerWakeup { first: bool },
    /// The work was installed (a `do_chan` closure returned, a detached task gave it back) or
    /// its gate opened: it is due now, for the first time.
    Installed,
    /// A waiter left; `was_driver` if it held the driver's role.
    Left { was_driver: bool },
}

pub(super) enum Phase<V, C: Carrier<V> = Sendable> {
    /// The flight is in the registry, its work is held by the starter (closure running, first
    /// poll, or a detached spawn being set up).
    Starting,
    /// The work waits for its next poll; `woken` is true if it must be polled (first poll, or
    /// its waker fired since the last poll). `work` is what the carrier keeps here: the work
    /// itself, or (`Local`) nothing, the work being parked in the flight's slot.
    Idle { work: C::Parked, woken: bool },
    /// A waiter has moved the work out and is polling it; `woken` records a wakeup meanwhile.
    Polling { woken: bool },
    /// The work belongs to a spawned task (`Detached`), which alone polls it.
    Detached,
    /// The work returned. `remaining` waiters have still to take the value; the last one moves
    /// it out, the others clone it.
    Done {
        value: Option<V>,
        remaining: usize,
        /// The callers the value went to (the waiters registered when it was published).
        callers: usize,
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

impl<V, C: Carrier<V>> FlightState<V, C> {
    /// The state of a flight that has never run.
    pub(super) fn new() -> Self {
        Self {
            phase: Phase::Abandoned,
            waiters: 0,
            next_ticket: 0,
            driver: None,
            driver_waker: None,
            task: false,
            task_waker: None,
            dropping_predecessors: 0,
            #[cfg(feature = "tracing")]
            trace: None,
        }
    }

    /// Resets the state for a new run whose starter holds ticket 0 (and, for a detached run, the
    /// task ticket 1), behind `dropping_predecessors` abandoned flights of the same hash.
    pub(super) fn reset(&mut self, start: Start, dropping_predecessors: usize) {
        // Reset only what the last run used: one that ended on its starter's first poll with
        // nobody joined (`Flight::finish`'s solo case, the only one that leaves a flight
        // `Polling`) left the state exactly as a plain `call` start makes it, except `woken`.
        if let Phase::Polling { woken } = &mut self.phase {
            if start == Start::Poll && dropping_predecessors == 0 {
                debug_assert!(
                    self.waiters == 1
                        && self.next_ticket == 1
                        && self.driver.is_none()
                        && self.driver_waker.is_none()
                        && !self.task
                        && self.task_waker.is_none()
                        && self.dropping_predecessors == 0
                );
                *woken = false;
                return;
            }
        }
        let (phase, waiters) = match start {
            // A gated starter cannot poll at once: it installs its work like `do_chan` does.
            Start::Poll if dropping_predecessors == 0 => (Phase::Polling { woken: false }, 1),
            Start::Poll | Start::Install => (Phase::Starting, 1),
            Start::Detach => (Phase::Detached, 2),
        };
        self.phase = phase;
        self.waiters = waiters;
        self.next_ticket = waiters as Ticket;
        self.driver = None;
        self.task = start == Start::Detach;
        // A flight is recycled holding no waker (semantic 8): dropping one here would run
        // executor code under the registry's lock.
        debug_assert!(self.driver_waker.is_none() && self.task_waker.is_none());
        self.dropping_predecessors = dropping_predecessors;
    }

    /// The work of a flight whose last waiter has left while it was idle, taken for dropping
    /// (`Phase::Abandoned`); `None` if someone joined meanwhile or the work is not idle.
    pub(super) fn take_abandoned_work(&mut self) -> Option<C::Parked> {
        if self.waiters != 0 || !matches!(self.phase, Phase::Idle { .. }) {
            return None;
        }
        match mem::replace(&mut self.phase, Phase::Abandoned) {
            Phase::Idle { work, .. } => Some(work),
            _ => unreachable!("the phase was just seen idle"),
        }
    }

    /// The waker of a promoted flight's task waiting to claim the work, once the work is idle.
    pub(super) fn claimant(&mut self) -> Option<Waker> {
        match self.phase {
            Phase::Idle { .. } if self.task => self.task_waker.take(),
            _ => None,
        }
    }

    /// Whether the work waits for a poll that nothing stops: it is idle, woken, and no
    /// abandoned flight of its key is still dropping its own work.
    pub(super) fn due(&self) -> bool {
        self.dropping_predecessors == 0 && matches!(self.phase, Phase::Idle { woken: true, .. })
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
    ///   notified before), never all waiters; each repeated wakeup of work still due (nobody
    ///   has polled it since) wakes one more standby, so stalled waiters hold the others only
    ///   until the work wakes once more than there are stalled waiters. Should the driver and
    ///   the standby of a single wakeup both be stalled, the others wait for the next change.
    /// * A driver that leaves hands its role to one standby at once.
    ///
    /// And every waiter that is polled, notified or not, looks at the flight and takes up due
    /// work (`needs_poll`), so a waiter in a `select!` loop never depends on a notification.
    pub(super) fn nudge(&mut self, change: Change) -> Wake {
        let due = self.due();
        let undriven = self.driver.is_none();
        let (wake_driver, listeners) = match change {
            Change::InnerWakeup { first: true } if due => (true, Listeners::One),
            // Woken again before anyone polled it: the driver and every standby notified so far
            // are not polling (or not yet), so reach one listener more (`notify_additional`
            // skips those already notified).
            Change::InnerWakeup { first: false } if due => (false, Listeners::One),
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

    pub(super) fn join(&mut self, detach: bool) -> Joined {
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
    pub(super) fn take_value(&mut self) -> Option<(V, usize)>
    where
        V: Clone,
    {
        let Phase::Done {
            value,
            remaining,
            callers,
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
            *callers,
        ))
    }

    /// Makes `ticket` the driver, waiting on `waker` (cloned only if it changed). Returns the
    /// waker this lets go of, for the caller to release once the lock is gone.
    pub(super) fn set_driver(&mut self, ticket: Ticket, waker: &Waker) -> Replaced {
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
    pub(super) fn clear_driver(&mut self) -> Option<Waker> {
        self.driver = None;
        self.driver_waker.take()
    }
}

/// A waker that `set_driver` replaced.
#[must_use]
pub(super) enum Replaced {
    Nothing,
    /// The former driver's: it waits on no listener, so it is woken to re-register as a standby.
    FormerDriver(Waker),
    /// This driver's own, from an earlier poll through another waker: dropped.
    Stale(Waker),
}

impl Replaced {
    /// Wakes or drops the replaced waker; executor code, so never under a lock.
    pub(super) fn release(self) {
        match self {
            Replaced::Nothing => {}
            Replaced::FormerDriver(waker) => waker.wake(),
            Replaced::Stale(waker) => drop(waker),
        }
    }
}

impl<V, C: Carrier<V>> FlightState<V, C> {
    /// The end of a run with `value`, decided under the registry's and the flight's locks:
    /// which share goes to the taker, how many other waiters to wake, which waker to release.
    pub(super) fn publish(&mut self, taker: Option<Ticket>, value: V) -> Published<V> {
        // A detached task is registered but takes no share.
        let takers = self.waiters - usize::from(self.task);
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
            callers: takers,
        };
        Published {
            mine,
            unclaimed,
            others,
            callers: takers,
            driver,
            task,
            #[cfg(feature = "tracing")]
            trace: self.trace.take(),
        }
    }
}

/// What `FlightState::publish` decided; acted on with no lock held.
pub(crate) struct Published<V> {
    /// The taker's share when it is the only one (moved, not cloned).
    pub(super) mine: Option<V>,
    /// A value nobody takes, to drop unlocked.
    pub(super) unclaimed: Option<V>,
    /// Waiters besides the taker that take their share from `Phase::Done`.
    pub(super) others: usize,
    /// The callers the value went to.
    pub(super) callers: usize,
    pub(super) driver: Option<Replaced>,
    pub(super) task: Option<Waker>,
    #[cfg(feature = "tracing")]
    pub(super) trace: Option<crate::trace::Trace>,
}

impl<V, C: Carrier<V>> FlightState<V, C> {
    /// The end of a run by a panic of its work (or of the closure that made it), decided under
    /// the registry's and the flight's locks: every waiter is counted out (they take the panic,
    /// not a share), and the wakers to wake are handed back.
    #[cold]
    pub(super) fn publish_panic(&mut self, panicked: Panicked) -> PanicPublished {
        self.phase = Phase::Panicked(panicked);
        self.waiters = 0;
        self.task = false;
        PanicPublished {
            driver: self.clear_driver(),
            task: self.task_waker.take(),
            #[cfg(feature = "tracing")]
            trace: self.trace.take(),
        }
    }
}

/// What `FlightState::publish_panic` decided; acted on with no lock held.
#[must_use]
pub(crate) struct PanicPublished {
    /// The driver waits on no listener: it is woken to take its panic.
    pub(super) driver: Option<Waker>,
    pub(super) task: Option<Waker>,
    #[cfg(feature = "tracing")]
    pub(super) trace: Option<crate::trace::Trace>,
}

#[cfg(all(test, not(loom)))]
mod tests;
