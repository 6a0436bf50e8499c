//! `contention`: does the one registry lock limit calls of distinct keys from many threads?
//!
//! ```text
//! cargo run --release -p single-flight-benches --bin contention [IMPL...] [--threads 1,2,4,8]
//! ```
//!
//! Every thread makes sequential solo calls (a fresh key each, ready work, polled by hand with a
//! no-op waker: no runtime), either all on **one shared** instance or each on **its own**. The
//! two differ only in sharing the registry (its lock and its table's cache lines), so their ratio
//! is what contention on it costs; the rows of one run are interleaved, five rounds, medians.
//! `IMPL`: the short names of `profile` that keep keys apart (not `group`: concurrent calls of its
//! one key share a flight); default: `keyed floor`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use single_flight_benches::peers::{Coalescer, Impl, Visit};

async fn ready(key: u64) -> u64 {
    key
}

const CALLS_PER_THREAD: u64 = 200_000;
const ROUNDS: usize = 5;

/// One measurement: `threads` threads, shared or separate instances; ns per call (wall time
/// over all calls).
struct Run {
    threads: usize,
    shared: bool,
}

fn calls<C: Coalescer>(group: &C, thread: u64) {
    let mut cx = Context::from_waker(Waker::noop());
    for i in 0..CALLS_PER_THREAD {
        let key = thread << 40 | i;
        let call = pin!(group.call(key, ready));
        match call.poll(&mut cx) {
            Poll::Ready(value) => black_box(value),
            Poll::Pending => panic!("a solo call with ready work returned Pending"),
        };
    }
}

impl Visit for Run {
    type Output = f64;

    fn visit<C: Coalescer>(self) -> f64 {
        let shared = Arc::new(C::new());
        let barrier = Arc::new(Barrier::new(self.threads + 1));
        let handles: Vec<_> = (0..self.threads)
            .map(|t| {
                let group = if self.shared {
                    shared.clone()
                } else {
                    Arc::new(C::new())
                };
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    // Warm-up: the pool, the table's capacity.
                    calls(&*group, (1 << 20) + t as u64);
                    barrier.wait();
                    calls(&*group, t as u64);
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for handle in handles {
            handle.join().expect("a calling thread panicked");
        }
        start.elapsed().as_nanos() as f64 / (self.threads as u64 * CALLS_PER_THREAD) as f64
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> ExitCode {
    let mut impls = Vec::new();
    let mut threads = vec![1, 2, 4, 8];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--threads" {
            let Some(list) = args.next() else {
                eprintln!("contention: --threads needs a list");
                return ExitCode::from(2);
            };
            match list.split(',').map(str::parse).collect() {
                Ok(list) => threads = list,
                Err(err) => {
                    eprintln!("contention: --threads: {err}");
                    return ExitCode::from(2);
                }
            }
        } else if let Some(imp) = Impl::from_short(&arg).filter(|imp| imp.keyed()) {
            impls.push(imp);
        } else {
            eprintln!("contention: unknown or unkeyed implementation `{arg}`");
            return ExitCode::from(2);
        }
    }
    if impls.is_empty() {
        impls = vec![Impl::SingleFlightKeyed, Impl::FLOOR];
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "{cpus} CPUs; {CALLS_PER_THREAD} solo calls per thread, distinct keys; ns per call \
         (wall time / all calls), median of {ROUNDS} interleaved rounds\n"
    );
    println!("| implementation | threads | one shared instance | one per thread | shared / own |");
    println!("|---|---:|---:|---:|---:|");
    for &t in &threads {
        let mut samples = vec![(Vec::new(), Vec::new()); impls.len()];
        for _ in 0..ROUNDS {
            for (imp, (shared, own)) in impls.iter().zip(&mut samples) {
                shared.push(imp.visit(Run {
                    threads: t,
                    shared: true,
                }));
                own.push(imp.visit(Run {
                    threads: t,
                    shared: false,
                }));
            }
        }
        for (imp, (shared, own)) in impls.iter().zip(samples) {
            let (shared, own) = (median(shared), median(own));
            println!(
                "| {} | {t} | {shared:.1} | {own:.1} | {:.2} |",
                imp.name(),
                shared / own
            );
        }
    }
    ExitCode::SUCCESS
}
