//! herd: many spawned tasks on one key, the work held until all of them have joined.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use single_flight_benches::alloc;
use single_flight_benches::gate::{arrive, Countdown};
use single_flight_benches::peers::{Coalescer, Impl, Visit};
use tokio::runtime::Runtime;

use crate::cli::Config;
use crate::stats::{median, progress};

pub(crate) struct HerdState {
    pub(crate) executions: AtomicUsize,
    pub(crate) release: Countdown,
    pub(crate) done: Countdown,
    pub(crate) wrong: AtomicUsize,
}

/// The herd's work: counts itself, then waits until every caller has joined.
pub(crate) async fn gated(state: Arc<HerdState>, key: u64) -> u64 {
    state.executions.fetch_add(1, Relaxed);
    state.release.wait().await;
    key
}

pub(crate) struct Herd<'a> {
    pub(crate) rt: &'a Runtime,
    pub(crate) callers: usize,
    pub(crate) herds: usize,
    pub(crate) count_allocs: bool,
}

#[derive(Debug, Default)]
pub(crate) struct HerdSample {
    pub(crate) times: Vec<Duration>,
    /// The no-dedup herd run next to each herd (before it or after it, alternately), in the
    /// same task: the pair sees the same machine, so their difference holds still.
    pub(crate) floor_times: Vec<Duration>,
    pub(crate) executions: Vec<usize>,
    pub(crate) wrong: usize,
    /// Allocations of the last herd, when counted.
    pub(crate) allocs: u64,
}

/// One herd of `callers` spawned tasks on `key`: its time, executions and wrong values.
async fn one_herd<C: Coalescer>(
    group: &Arc<C>,
    key: u64,
    callers: usize,
    counting: bool,
) -> (Duration, usize, usize, u64) {
    let state = Arc::new(HerdState {
        executions: AtomicUsize::new(0),
        release: Countdown::new(callers),
        done: Countdown::new(callers),
        wrong: AtomicUsize::new(0),
    });
    if counting {
        alloc::start();
    }
    let start = Instant::now();
    for _ in 0..callers {
        let (group, state) = (group.clone(), state.clone());
        drop(tokio::spawn(async move {
            let work_state = state.clone();
            let call = group.call(key, move |key| gated(work_state, key));
            let value = arrive(call, || state.release.tick()).await;
            if value != key {
                state.wrong.fetch_add(1, Relaxed);
            }
            state.done.tick();
        }));
    }
    state.done.wait().await;
    let elapsed = start.elapsed();
    let allocs = if counting { alloc::stop() } else { 0 };
    (
        elapsed,
        state.executions.load(Relaxed),
        state.wrong.load(Relaxed),
        allocs,
    )
}

impl Visit for Herd<'_> {
    type Output = HerdSample;

    fn visit<C: Coalescer>(self) -> HerdSample {
        let Herd {
            callers,
            herds,
            count_allocs,
            ..
        } = self;
        let task = async move {
            let group = Arc::new(C::new());
            let floor = Arc::new(single_flight_benches::peers::NoDedup);
            let mut sample = HerdSample::default();
            for herd in 0..herds {
                let key = herd as u64;
                let counting = count_allocs && herd + 1 == herds;
                // Alternate which of the pair goes first, so that neither always finds the
                // runtime freshly warmed (or cooled) by the other.
                if herd % 2 == 1 {
                    sample
                        .floor_times
                        .push(one_herd(&floor, key, callers, false).await.0);
                }
                let (elapsed, executions, wrong, allocs) =
                    one_herd(&group, key, callers, counting).await;
                if herd % 2 == 0 {
                    sample
                        .floor_times
                        .push(one_herd(&floor, key, callers, false).await.0);
                }
                sample.times.push(elapsed);
                sample.executions.push(executions);
                sample.wrong += wrong;
                sample.allocs = allocs;
            }
            sample
        };
        self.rt
            .block_on(self.rt.spawn(task))
            .expect("the herd driver panicked")
    }
}

#[derive(Debug)]
pub(crate) struct HerdRow {
    pub(crate) imp: Impl,
    /// ns/caller, median herd of each repetition.
    pub(crate) ns: Vec<f64>,
    /// ns/caller over the no-dedup herd paired with it: the median pair of each repetition.
    pub(crate) net: Vec<f64>,
    pub(crate) executions: Vec<usize>,
    pub(crate) wrong: usize,
    pub(crate) allocs_per_herd: u64,
}

pub(crate) fn run(config: &Config, rt: &Runtime) -> Vec<HerdRow> {
    let callers = config.herd_callers;
    let mut rows: Vec<HerdRow> = config
        .impls
        .iter()
        .copied()
        .filter(|imp| !imp.solo_only())
        .map(|imp| HerdRow {
            imp,
            ns: Vec::new(),
            net: Vec::new(),
            executions: Vec::new(),
            wrong: 0,
            allocs_per_herd: 0,
        })
        .collect();
    // Warm the runtime (worker threads, task allocations) before the first measured herd.
    Impl::NoDedup.visit(Herd {
        rt,
        callers,
        herds: 3,
        count_allocs: false,
    });
    for rep in 0..config.reps {
        progress(format_args!("herd: repetition {}/{}", rep + 1, config.reps));
        for row in &mut rows {
            let sample = row.imp.visit(Herd {
                rt,
                callers,
                herds: config.herds_per_sample,
                count_allocs: false,
            });
            let per_caller = |t: &Duration| t.as_nanos() as f64 / callers as f64;
            let times: Vec<f64> = sample.times.iter().map(per_caller).collect();
            let net: Vec<f64> = sample
                .times
                .iter()
                .zip(&sample.floor_times)
                .map(|(t, floor)| per_caller(t) - per_caller(floor))
                .collect();
            row.ns.push(median(&times));
            row.net.push(median(&net));
            row.executions.extend(sample.executions);
            row.wrong += sample.wrong;
        }
    }
    for row in &mut rows {
        let sample = row.imp.visit(Herd {
            rt,
            callers,
            herds: 2,
            count_allocs: true,
        });
        row.allocs_per_herd = sample.allocs;
    }
    rows
}
