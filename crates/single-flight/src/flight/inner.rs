//! `Inner`: what a flight is made of, the part that its waker reaches (so it holds no `!Send`
//! work), with everything done on it: reset for a new run, the registry's reads and
//! transitions under its lock (join, publish, abandon, age), the detached task's gate, and the
//! wakeups that every change of the work's phase ends with (invariant 4).

use std::sync::atomic::Ordering::Relaxed;
use std::task::Waker;
use std::time::{Duration, Instant};

use event_listener::Event;

use super::state::{
    Change, FlightState, Joined, Listeners, PanicPublished, Phase, Published, Wake,
};
use super::{Carrier, Sendable, Start, Ticket};
use crate::panicked::Panicked;
use crate::sync::{lock, Arc, AtomicBool, Mutex};

/// What a flight is made of: the part its waker reaches, so it holds no `!Send` work.
pub(crate) struct Inner<V, C: Carrier<V> = Sendable> {
    pub(super) state: Mutex<FlightState<V, C>>,
    /// Waiters that are not driving listen here for the end of the flight and for hand-offs.
    pub(crate) event: Event,
    /// The key's hash, so that unlinking never hashes the key again.
    pub(crate) hash: u64,
    /// Whether a caller other than the starter has joined this run. Written and read only with
    /// the registry locked (joins happen there), so the lock orders it and `Relaxed` suffices. A
    /// starter that finishes on its first poll with nobody joined owns the flight alone and
    /// publishes without the flight's lock (`finish`).
    pub(super) joined: AtomicBool,
    /// When this run started, if the group limits the age of the flights it lets callers join.
    pub(super) started_at: Option<Instant>,
}

impl<V, C: Carrier<V>> Inner<V, C> {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::new(FlightState::new()),
            event: Event::new(),
            hash: 0,
            joined: AtomicBool::new(false),
            started_at: None,
        }
    }

    /// Resets a recycled flight (nobody else holds it) for a new run of the key hashed `hash`.
    #[inline]
    pub(crate) fn reset(
        &mut self,
        hash: u64,
        start: Start,
        dropping_predecessors: usize,
        started_at: Option<Instant>,
    ) {
        self.hash = hash;
        self.started_at = started_at;
        self.joined.store(false, Relaxed);
        let state = match self.state.get_mut() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.reset(start, dropping_predecessors);
    }

    /// Opens the span of this run, started for `key` (`tracing` feature).
    #[cfg(feature = "tracing")]
    pub(crate) fn start_trace<K>(&self, key: &K, key_debug: Option<crate::trace::KeyDebug<K>>) {
        let trace = crate::trace::Trace::start(key, key_debug);
        let replaced = lock(&self.state).trace.replace(trace);
        drop(replaced);
    }

    /// Emits `event` in this run's span, if it has one (`tracing` feature).
    #[cfg(feature = "tracing")]
    pub(crate) fn trace_event(&self, event: crate::trace::Event<'_>) {
        let span = lock(&self.state)
            .trace
            .as_ref()
            .map(|trace| trace.span().clone());
        if let Some(span) = span {
            crate::trace::event(&span, event);
        }
    }

    /// Whether this run started longer than `age` ago (`false` if its start was not recorded).
    pub(crate) fn is_older_than(&self, age: Duration) -> bool {
        self.is_older_than_at(age, Instant::now())
    }

    /// `is_older_than`, on a clock read once by the caller (for looking at many flights).
    pub(crate) fn is_older_than_at(&self, age: Duration, now: Instant) -> bool {
        self.started_at
            .is_some_and(|started| now.saturating_duration_since(started) >= age)
    }

    /// The work of a flight whose last waiter left while it was idle, for the registry to drop
    /// (invariant 6); `None` if someone joined meanwhile. Called with the registry locked.
    #[cold]
    pub(crate) fn take_abandoned_work(&self) -> Option<C::Parked> {
        lock(&self.state).take_abandoned_work()
    }

    /// Publishes the end of this run with `value` (see `FlightState::publish`); called by the
    /// registry, locked, as it unlinks the flight (invariant 7).
    pub(crate) fn publish(&self, taker: Option<Ticket>, value: V) -> Published<V> {
        lock(&self.state).publish(taker, value)
    }

    /// Publishes the end of this run by a panic; called by the registry, locked (invariant 7).
    #[cold]
    pub(crate) fn publish_panic(&self, panicked: Panicked) -> PanicPublished {
        lock(&self.state).publish_panic(panicked)
    }

    /// Whether a caller other than the starter joined this run; read with the registry locked.
    pub(crate) fn has_joiners(&self) -> bool {
        self.joined.load(Relaxed)
    }

    /// Registers one more waiter (`detach`: for `do_chan_detached`, which promotes a flight no
    /// task owns); called with the registry locked.
    pub(crate) fn join(&self, detach: bool) -> Joined {
        self.joined.store(true, Relaxed);
        lock(&self.state).join(detach)
    }

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

#[cfg(loom)]
pub(super) struct LoomWaker<V, C: Carrier<V>>(pub(super) Arc<Inner<V, C>>);

#[cfg(loom)]
impl<V: Send + 'static, C: Carrier<V>> std::task::Wake for LoomWaker<V, C> {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.wake_flight();
    }
}

// Needs `Inner: Send + Sync`: the carrier keeps `!Send` work out of `Inner` (`carrier.rs`).
#[cfg(not(loom))]
impl<V: Send + 'static, C: Carrier<V>> futures_task::ArcWake for Inner<V, C> {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.wake_flight();
    }
}
