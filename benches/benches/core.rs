//! Criterion benchmarks of the core: a solo `KeyedGroup` call, a solo `Group` call, and a herd
//! of spawned tasks on one key (with the no-dedup herd it is measured against).
//!
//! `cargo bench -p single-flight-benches --bench core` (add `-- --quick` for a short run).
//! The comparison with other crates is the `compare` binary (`cargo xtask bench`).

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use single_flight::{Group, KeyedGroup};
use single_flight_benches::gate::{arrive, Countdown};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime")
}

async fn ready(key: u64) -> u64 {
    key
}

/// Runs `iters` sequential calls, each with a fresh key, in one spawned task.
fn solo(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("solo");
    g.throughput(Throughput::Elements(1));
    g.bench_function("KeyedGroup::call", |b| {
        let group: Arc<KeyedGroup<u64, u64>> = Arc::new(KeyedGroup::new());
        let next = Arc::new(AtomicUsize::new(0));
        b.iter_custom(|iters| {
            let (group, next) = (group.clone(), next.clone());
            let task = rt.spawn(async move {
                let first = next.fetch_add(iters as usize, Relaxed) as u64;
                let start = Instant::now();
                for key in first..first + iters {
                    black_box(group.call(black_box(key), ready).await);
                }
                start.elapsed()
            });
            rt.block_on(task).expect("the bench task panicked")
        });
    });
    g.bench_function("Group::call", |b| {
        let group: Arc<Group<u64>> = Arc::new(Group::new());
        b.iter_custom(|iters| {
            let group = group.clone();
            let task = rt.spawn(async move {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(group.call(move || ready(black_box(i))).await);
                }
                start.elapsed()
            });
            rt.block_on(task).expect("the bench task panicked")
        });
    });
    g.finish();
}

struct HerdState {
    executions: AtomicUsize,
    release: Countdown,
    done: Countdown,
}

async fn gated(state: Arc<HerdState>, key: u64) -> u64 {
    state.executions.fetch_add(1, Relaxed);
    state.release.wait().await;
    key
}

/// One herd: `callers` spawned tasks on one key, the work held until every caller has joined.
/// With `group: None`, every task runs the work itself (the floor).
async fn herd(group: Option<Arc<KeyedGroup<u64, u64>>>, callers: usize, key: u64) -> Duration {
    let state = Arc::new(HerdState {
        executions: AtomicUsize::new(0),
        release: Countdown::new(callers),
        done: Countdown::new(callers),
    });
    let start = Instant::now();
    for _ in 0..callers {
        let (group, state) = (group.clone(), state.clone());
        drop(tokio::spawn(async move {
            let work_state = state.clone();
            let value = match &group {
                Some(group) => {
                    let call = group.call(key, move |key| gated(work_state, key));
                    arrive(call, || state.release.tick()).await
                }
                None => arrive(gated(work_state, key), || state.release.tick()).await,
            };
            assert_eq!(value, key);
            state.done.tick();
        }));
    }
    state.done.wait().await;
    let elapsed = start.elapsed();
    let executions = state.executions.load(Relaxed);
    let expected = if group.is_some() { 1 } else { callers };
    assert_eq!(executions, expected, "executions of one herd");
    elapsed
}

fn herds(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("herd");
    for callers in [100usize, 1_000] {
        g.throughput(Throughput::Elements(callers as u64));
        g.bench_with_input(
            BenchmarkId::new("KeyedGroup::call", callers),
            &callers,
            |b, &callers| {
                let group: Arc<KeyedGroup<u64, u64>> = Arc::new(KeyedGroup::new());
                b.iter_custom(|iters| {
                    let group = group.clone();
                    let task = rt.spawn(async move {
                        let mut total = Duration::ZERO;
                        for i in 0..iters {
                            total += herd(Some(group.clone()), callers, i).await;
                        }
                        total
                    });
                    rt.block_on(task).expect("the bench task panicked")
                });
            },
        );
        g.bench_with_input(
            BenchmarkId::new("no-dedup", callers),
            &callers,
            |b, &callers| {
                b.iter_custom(|iters| {
                    let task = rt.spawn(async move {
                        let mut total = Duration::ZERO;
                        for i in 0..iters {
                            total += herd(None, callers, i).await;
                        }
                        total
                    });
                    rt.block_on(task).expect("the bench task panicked")
                });
            },
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = solo, herds
}
criterion_main!(benches);
