//! spread: many keys, a few concurrent callers each.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use single_flight_benches::gate::Countdown;
use single_flight_benches::peers::{Coalescer, Impl, Visit};
use tokio::runtime::Runtime;

use crate::cli::Config;
use crate::stats::progress;

pub(crate) struct SpreadState {
    pub(crate) executions: AtomicUsize,
    pub(crate) done: Countdown,
    pub(crate) wrong: AtomicUsize,
}

pub(crate) async fn yielding(state: Arc<SpreadState>, key: u64) -> u64 {
    state.executions.fetch_add(1, Relaxed);
    tokio::task::yield_now().await;
    key
}

pub(crate) struct Spread<'a> {
    pub(crate) rt: &'a Runtime,
    pub(crate) keys: u64,
    pub(crate) callers: usize,
}

#[derive(Debug)]
pub(crate) struct SpreadSample {
    pub(crate) elapsed: Duration,
    pub(crate) executions: usize,
    pub(crate) wrong: usize,
}

impl Visit for Spread<'_> {
    type Output = SpreadSample;

    fn visit<C: Coalescer>(self) -> SpreadSample {
        let Spread { keys, callers, .. } = self;
        let task = async move {
            let group = Arc::new(C::new());
            let state = Arc::new(SpreadState {
                executions: AtomicUsize::new(0),
                done: Countdown::new(keys as usize * callers),
                wrong: AtomicUsize::new(0),
            });
            let start = Instant::now();
            for key in 0..keys {
                for _ in 0..callers {
                    let (group, state) = (group.clone(), state.clone());
                    drop(tokio::spawn(async move {
                        let work_state = state.clone();
                        let value = group.call(key, move |key| yielding(work_state, key)).await;
                        if value != key {
                            state.wrong.fetch_add(1, Relaxed);
                        }
                        state.done.tick();
                    }));
                }
            }
            state.done.wait().await;
            SpreadSample {
                elapsed: start.elapsed(),
                executions: state.executions.load(Relaxed),
                wrong: state.wrong.load(Relaxed),
            }
        };
        self.rt
            .block_on(self.rt.spawn(task))
            .expect("the spread driver panicked")
    }
}

#[derive(Debug)]
pub(crate) struct SpreadRow {
    pub(crate) imp: Impl,
    pub(crate) calls_per_s: Vec<f64>,
    /// Throughput over the floor's in the same repetition.
    pub(crate) ratio: Vec<f64>,
    pub(crate) executions: Vec<usize>,
    pub(crate) wrong: usize,
}

pub(crate) fn run(config: &Config, rt: &Runtime) -> Vec<SpreadRow> {
    let (keys, callers) = (config.spread_keys, config.spread_callers);
    let calls = keys as f64 * callers as f64;
    let mut rows: Vec<SpreadRow> = config
        .impls
        .iter()
        .copied()
        .filter(|imp| imp.keyed() && !imp.solo_only())
        .map(|imp| SpreadRow {
            imp,
            calls_per_s: Vec::new(),
            ratio: Vec::new(),
            executions: Vec::new(),
            wrong: 0,
        })
        .collect();
    Impl::NoDedup.visit(Spread { rt, keys, callers });
    for rep in 0..config.reps {
        progress(format_args!(
            "spread: repetition {}/{}",
            rep + 1,
            config.reps
        ));
        for row in &mut rows {
            let sample = row.imp.visit(Spread { rt, keys, callers });
            row.calls_per_s.push(calls / sample.elapsed.as_secs_f64());
            row.executions.push(sample.executions);
            row.wrong += sample.wrong;
        }
        let floor = *rows
            .iter()
            .find(|row| row.imp == Impl::NoDedup)
            .and_then(|row| row.calls_per_s.last())
            .expect("the floor ran");
        for row in &mut rows {
            let rate = *row.calls_per_s.last().expect("ran");
            row.ratio.push(rate / floor);
        }
    }
    rows
}
