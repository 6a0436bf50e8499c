//! How the work passes between the flight's waiters, a detached task and the registry:
//! installing it, giving it back, claiming it for a promoted task, abandoning it, opening the
//! gate, and the wakeups that every such change ends with (invariant 4).

use std::mem;
use std::task::Waker;

use super::state::{Change, Listeners, Phase, Wake};
use super::{drop_quietly, Carrier, Flight, Inner, Lifecycle, Sendable, Work};
use crate::sync::lock;

/// What a promoted flight's task gets when it asks for the work.
pub(crate) enum Claim<V, C: Carrier<V> = Sendable> {
    Work(Work<V, C>),
    /// The work is being made or polled; the task's waker is parked.
    Wait,
    /// The flight ended before the task claimed it.
    Ended,
}

impl<V, C: Carrier<V>> Inner<V, C> {
    /// Keeps the waker of a promoted flight's task, for wakeups of its work registered through
    /// the flight's own waker before the promotion.
    #[cold]
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
    #[cold]
    pub(crate) fn ungate(&self) {
        let mut state = lock(&self.state);
        state.dropping_predecessors -= 1;
        if state.dropping_predecessors > 0 {
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
    #[cold]
    pub(crate) fn detached_gate_open(&self, waker: &Waker) -> bool {
        let mut state = lock(&self.state);
        if state.dropping_predecessors == 0 {
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

    /// Acts on a decision of [`FlightState::nudge`], with no lock held.
    pub(super) fn wake(&self, wake: Wake) {
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
    pub(super) fn notify_standby(&self) {
        // `total_listeners` first: notifying an event nobody listened to allocates its state.
        if self.event.total_listeners() > 0 {
            self.event.notify_additional(1);
        }
    }

    pub(super) fn notify_all(&self) {
        if self.event.total_listeners() > 0 {
            self.event.notify(usize::MAX);
        }
    }

    /// An inner wakeup of the work: mark it due and wake the driver plus one standby.
    pub(super) fn wake_flight(&self) {
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

impl<V, C: Carrier<V>> Flight<V, C> {
    /// A promoted flight's task asks for the work: it gets it if the work is idle (the waiter
    /// that drove it is woken to listen instead); otherwise its waker is parked until the work
    /// is idle.
    #[cold]
    pub(crate) fn claim(&self, waker: &Waker) -> Claim<V, C> {
        let mut state = lock(&self.state);
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
            if let Some(trace) = lock(&self.state).trace.take() {
                trace.end(crate::trace::Ending::Abandoned);
            }
            drop_quietly(work);
            // Flights of this hash started meanwhile may poll their work now (invariant 6).
            for successor in registry.end_abandon(self) {
                successor.ungate();
            }
        }
    }

    /// Installs the work made by a starter that does not poll it now (`do_chan`, or a detached
    /// task giving its work back to the waiters).
    pub(crate) fn install(&self, registry: &dyn Lifecycle<V, C>, work: Work<V, C>) {
        let mut state = lock(&self.state);
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
        self.wake(wake);
    }

    /// A detached task dropped before completion gives its work back to the waiters.
    #[cold]
    pub(crate) fn give_back(&self, registry: &dyn Lifecycle<V, C>, work: Work<V, C>) {
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
    #[cold]
    pub(crate) fn release_claim(&self, registry: &dyn Lifecycle<V, C>) {
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
