//! herd: many spawned tasks on one key, the work held until all of them have joined.

use super::*;

// ---------------------------------------------------------------------------------------------
// herd: many spawned tasks on one key, the work held until all of them have joined

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
    pub(crate) executions: Vec<usize>,
    pub(crate) wrong: usize,
    /// Allocations of the last herd, when counted.
    pub(crate) allocs: u64,
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
            let mut sample = HerdSample::default();
            for herd in 0..herds {
                let key = herd as u64;
                let state = Arc::new(HerdState {
                    executions: AtomicUsize::new(0),
                    release: Countdown::new(callers),
                    done: Countdown::new(callers),
                    wrong: AtomicUsize::new(0),
                });
                let counting = count_allocs && herd + 1 == herds;
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
                if counting {
                    sample.allocs = alloc::stop();
                }
                sample.times.push(elapsed);
                sample.executions.push(state.executions.load(Relaxed));
                sample.wrong += state.wrong.load(Relaxed);
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
    /// ns/caller minus the no-dedup floor's in the same repetition.
    pub(crate) net: Vec<f64>,
    pub(crate) executions: Vec<usize>,
    pub(crate) wrong: usize,
    pub(crate) allocs_per_herd: u64,
}

pub(crate) fn run_herd(config: &Config, rt: &Runtime) -> Vec<HerdRow> {
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
            let times: Vec<f64> = sample.times.iter().map(|t| t.as_nanos() as f64).collect();
            row.ns.push(median(&times) / callers as f64);
            row.executions.extend(sample.executions);
            row.wrong += sample.wrong;
        }
        let floor = *rows
            .iter()
            .find(|row| row.imp == Impl::NoDedup)
            .and_then(|row| row.ns.last())
            .expect("the floor ran");
        for row in &mut rows {
            let ns = *row.ns.last().expect("ran");
            row.net.push(ns - floor);
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
