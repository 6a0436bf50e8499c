//! timeouts: a herd where half the callers (the starter among them) time out early.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use single_flight_benches::gate::{arrive, Countdown};
use single_flight_benches::peers::{Coalescer, Impl, Visit};
use tokio::runtime::Runtime;

use crate::cli::Config;
use crate::stats::progress;

pub(crate) struct TimeoutState {
    pub(crate) callers: usize,
    pub(crate) executions: AtomicUsize,
    pub(crate) arrived: AtomicUsize,
    /// Opens once every caller has arrived and every impatient one has timed out.
    pub(crate) release: Countdown,
    pub(crate) done: Countdown,
    pub(crate) completed: AtomicUsize,
    pub(crate) timed_out: AtomicUsize,
    pub(crate) early_value: AtomicUsize,
    pub(crate) wrong: AtomicUsize,
    pub(crate) early_timeout: AtomicBool,
}

pub(crate) const TIMEOUT_KEY: u64 = 42;

pub(crate) async fn timeout_caller<C: Coalescer>(
    group: Arc<C>,
    state: Arc<TimeoutState>,
    impatient: bool,
    timeout: Duration,
) {
    let work_state = state.clone();
    let work = move |key| async move {
        work_state.executions.fetch_add(1, Relaxed);
        work_state.release.wait().await;
        key
    };
    let arrived = || {
        state.arrived.fetch_add(1, Relaxed);
        state.release.tick();
    };
    if impatient {
        match arrive(group.call_timeout(TIMEOUT_KEY, timeout, work), arrived).await {
            None => {
                if state.arrived.load(Relaxed) < state.callers {
                    state.early_timeout.store(true, Relaxed);
                }
                state.timed_out.fetch_add(1, Relaxed);
                state.release.tick();
            }
            Some(value) => {
                if value != TIMEOUT_KEY {
                    state.wrong.fetch_add(1, Relaxed);
                }
                state.early_value.fetch_add(1, Relaxed);
            }
        }
    } else {
        let value = arrive(group.call(TIMEOUT_KEY, work), arrived).await;
        if value != TIMEOUT_KEY {
            state.wrong.fetch_add(1, Relaxed);
        }
        state.completed.fetch_add(1, Relaxed);
    }
    state.done.tick();
}

pub(crate) struct Timeouts<'a> {
    pub(crate) rt: &'a Runtime,
    pub(crate) callers: usize,
    pub(crate) timeout: Duration,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeoutSample {
    pub(crate) executions: usize,
    pub(crate) patient: usize,
    pub(crate) completed: usize,
    pub(crate) timed_out: usize,
    pub(crate) early_value: usize,
    pub(crate) early_timeout: bool,
    pub(crate) wrong: usize,
    pub(crate) hung: usize,
    pub(crate) elapsed: Duration,
}

/// How long a timeouts round may take before its remaining callers count as hung.
pub(crate) const HANG_LIMIT: Duration = Duration::from_secs(2);

impl Visit for Timeouts<'_> {
    type Output = TimeoutSample;

    fn visit<C: Coalescer>(self) -> TimeoutSample {
        let Timeouts {
            callers, timeout, ..
        } = self;
        let impatient = callers.div_ceil(2);
        let task = async move {
            let group = Arc::new(C::new());
            let state = Arc::new(TimeoutState {
                callers,
                executions: AtomicUsize::new(0),
                arrived: AtomicUsize::new(0),
                release: Countdown::new(callers + impatient),
                done: Countdown::new(callers),
                completed: AtomicUsize::new(0),
                timed_out: AtomicUsize::new(0),
                early_value: AtomicUsize::new(0),
                wrong: AtomicUsize::new(0),
                early_timeout: AtomicBool::new(false),
            });
            let start = Instant::now();
            let mut handles = Vec::with_capacity(callers);
            for i in 0..callers {
                // Even callers time out; caller 0 starts the flight before anyone else runs.
                let caller = timeout_caller(group.clone(), state.clone(), i % 2 == 0, timeout);
                handles.push(tokio::spawn(caller));
                if i == 0 {
                    while state.arrived.load(Relaxed) == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }
            let finished = tokio::time::timeout(HANG_LIMIT, state.done.wait())
                .await
                .is_ok();
            if !finished {
                for handle in &handles {
                    handle.abort();
                }
            }
            TimeoutSample {
                executions: state.executions.load(Relaxed),
                patient: callers - impatient,
                completed: state.completed.load(Relaxed),
                timed_out: state.timed_out.load(Relaxed),
                early_value: state.early_value.load(Relaxed),
                early_timeout: state.early_timeout.load(Relaxed),
                wrong: state.wrong.load(Relaxed),
                hung: state.done.left(),
                elapsed: start.elapsed(),
            }
        };
        self.rt
            .block_on(self.rt.spawn(task))
            .expect("the timeouts driver panicked")
    }
}

#[derive(Debug)]
pub(crate) struct TimeoutRow {
    pub(crate) imp: Impl,
    pub(crate) samples: Vec<TimeoutSample>,
}

pub(crate) fn run(config: &Config, rt: &Runtime) -> Vec<TimeoutRow> {
    let mut rows: Vec<TimeoutRow> = config
        .impls
        .iter()
        .copied()
        .filter(|imp| imp.deduplicates() && !imp.solo_only())
        .map(|imp| TimeoutRow {
            imp,
            samples: Vec::new(),
        })
        .collect();
    for round in 0..config.timeout_rounds {
        progress(format_args!(
            "timeouts: round {}/{}",
            round + 1,
            config.timeout_rounds
        ));
        for row in &mut rows {
            row.samples.push(row.imp.visit(Timeouts {
                rt,
                callers: config.timeout_callers,
                timeout: config.timeout,
            }));
        }
    }
    rows
}
