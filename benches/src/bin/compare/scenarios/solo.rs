//! solo: one task, sequential calls, a fresh key each.

use std::hint::black_box;
use std::time::{Duration, Instant};

use single_flight_benches::alloc;
use single_flight_benches::peers::{Coalescer, Impl, Visit};
use tokio::runtime::Runtime;

use crate::cli::Config;
use crate::stats::progress;

pub(crate) struct Solo<'a> {
    pub(crate) rt: &'a Runtime,
    pub(crate) calls: u64,
    pub(crate) count_allocs: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct SoloSample {
    pub(crate) elapsed: Duration,
    pub(crate) allocs: u64,
}

/// The work of the solo scenarios: ready at once.
async fn ready(key: u64) -> u64 {
    key
}

pub(crate) const SOLO_WARMUP: u64 = 1_000;

/// Solo scenarios run this many times `--reps` repetitions (their samples are short).
pub(crate) const SOLO_REPS: usize = 3;

impl Visit for Solo<'_> {
    type Output = SoloSample;

    fn visit<C: Coalescer>(self) -> SoloSample {
        let (calls, count_allocs) = (self.calls, self.count_allocs);
        let task = async move {
            let group = C::new();
            // First use, recycled state, the map's capacity: not what a solo call costs.
            for key in 0..SOLO_WARMUP {
                black_box(group.call(u64::MAX - key, ready).await);
            }
            if count_allocs {
                alloc::start();
            }
            let start = Instant::now();
            for key in 0..calls {
                black_box(group.call(black_box(key), ready).await);
            }
            let elapsed = start.elapsed();
            let allocs = if count_allocs { alloc::stop() } else { 0 };
            SoloSample { elapsed, allocs }
        };
        self.rt
            .block_on(self.rt.spawn(task))
            .expect("the solo task panicked")
    }
}

#[derive(Debug)]
pub(crate) struct SoloRow {
    pub(crate) imp: Impl,
    pub(crate) calls: u64,
    /// ns/call, one per repetition (the same repetitions in every row).
    pub(crate) ns: Vec<f64>,
    pub(crate) allocs_per_call: f64,
}

pub(crate) fn run(config: &Config, rt: &Runtime, label: &str) -> Vec<SoloRow> {
    let calibration = 2_000;
    let mut rows: Vec<SoloRow> = config
        .impls
        .iter()
        .copied()
        .map(|imp| {
            let sample = imp.visit(Solo {
                rt,
                calls: calibration,
                count_allocs: false,
            });
            let per_call = sample.elapsed.as_nanos().max(1) as f64 / calibration as f64;
            let calls = (config.solo_sample.as_nanos() as f64 / per_call) as u64;
            SoloRow {
                imp,
                calls: calls.clamp(2_000, 5_000_000),
                ns: Vec::new(),
                allocs_per_call: f64::NAN,
            }
        })
        .collect();
    let reps = config.reps * SOLO_REPS;
    for rep in 0..reps {
        progress(format_args!("{label}: repetition {}/{reps}", rep + 1));
        for row in &mut rows {
            let sample = row.imp.visit(Solo {
                rt,
                calls: row.calls,
                count_allocs: false,
            });
            row.ns
                .push(sample.elapsed.as_nanos() as f64 / row.calls as f64);
        }
    }
    for row in &mut rows {
        let calls = 20_000;
        let sample = row.imp.visit(Solo {
            rt,
            calls,
            count_allocs: true,
        });
        row.allocs_per_call = sample.allocs as f64 / calls as f64;
    }
    rows
}

/// `a`'s best repetition over `b`'s. Other processes only ever add time to a sample, and on a
/// shared machine they hit most samples of a run: the medians of one row moved from 45 to 68 ns
/// between runs of one afternoon while its best stayed within 1 ns, so the best repetitions are
/// what a ratio is taken between.
pub(crate) fn ratio(a: &SoloRow, b: &SoloRow) -> f64 {
    best(a) / best(b)
}

/// The fastest repetition of a row, ns/call.
pub(crate) fn best(row: &SoloRow) -> f64 {
    row.ns.iter().copied().fold(f64::INFINITY, f64::min)
}
