//! `contention`: does the one registry lock limit calls of distinct keys from many threads?
//!
//! ```text
//! cargo xtask bench contention [IMPL...] [--threads 1,2,8] [--write | --no-write]
//! ```
//!
//! Every thread makes sequential solo calls (a fresh key each, ready work, polled by hand with a
//! no-op waker: no runtime), either all on **one shared** instance or each on **its own**. The
//! two differ only in sharing the registry (its lock and its table's cache lines), so their ratio
//! is what contention on it costs. The rows of one run are interleaved, seven rounds, the shared
//! and the own run of a row in alternate order from round to round; each column is the best
//! round (other processes only add time, as in `compare`'s solo ratios).
//! `IMPL`: the short names of `profile` that keep keys apart (not `group`: concurrent calls of its
//! one key share a flight); default: `keyed floor-siphash uniflight`, threads 1, 2 and 8. The
//! default run (or `--write`) replaces the `contention` block of `BENCHMARKS.md`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use single_flight_benches::machine::Machine;
use single_flight_benches::markdown::{write_markdown, Table};
use single_flight_benches::peers::{Coalescer, Impl, Visit};

async fn ready(key: u64) -> u64 {
    key
}

const CALLS_PER_THREAD: u64 = 200_000;
const ROUNDS: usize = 7;

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

fn best(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

/// The command line: the implementations, the thread counts, whether to write the block.
struct Args {
    impls: Vec<Impl>,
    threads: Vec<usize>,
    write: Option<bool>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        impls: Vec::new(),
        threads: Vec::new(),
        write: None,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => {
                let list = args.next().ok_or("--threads needs a list")?;
                parsed.threads = list
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|err| format!("--threads: {err}"))?;
            }
            "--write" => parsed.write = Some(true),
            "--no-write" => parsed.write = Some(false),
            "--" => {}
            _ => parsed.impls.push(
                Impl::from_short(&arg)
                    .filter(|imp| imp.keyed())
                    .ok_or(format!("unknown or unkeyed implementation `{arg}`"))?,
            ),
        }
    }
    Ok(parsed)
}

/// The table: per thread count, each implementation on one shared instance and on its own.
fn measure(impls: &[Impl], threads: &[usize]) -> String {
    let mut table = Table::figures(
        "implementation",
        &[
            "threads",
            "one shared instance",
            "one per thread",
            "shared / own",
        ],
    );
    for &t in threads {
        eprintln!("contention: {t} threads");
        let mut samples = vec![(Vec::new(), Vec::new()); impls.len()];
        for round in 0..ROUNDS {
            for (imp, (shared, own)) in impls.iter().zip(&mut samples) {
                // Alternate which goes first, so that neither always follows the other.
                for on_shared in [round % 2 == 0, round % 2 == 1] {
                    let ns = imp.visit(Run {
                        threads: t,
                        shared: on_shared,
                    });
                    if on_shared { &mut *shared } else { &mut *own }.push(ns);
                }
            }
        }
        for (imp, (shared, own)) in impls.iter().zip(samples) {
            let (shared, own) = (best(&shared), best(&own));
            table.row([
                imp.name().to_owned(),
                t.to_string(),
                format!("{shared:.1}"),
                format!("{own:.1}"),
                format!("{:.2}", shared / own),
            ]);
        }
    }
    table.finish()
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("contention: {message}");
            return ExitCode::from(2);
        }
    };
    // Only the default run replaces the block, as `compare` does.
    let write = args
        .write
        .unwrap_or(args.impls.is_empty() && args.threads.is_empty());
    let impls = if args.impls.is_empty() {
        vec![Impl::SingleFlightKeyed, Impl::FLOOR, Impl::Uniflight]
    } else {
        args.impls
    };
    let threads = if args.threads.is_empty() {
        vec![1, 2, 8]
    } else {
        args.threads
    };
    let machine = Machine::probe();
    let table = measure(&impls, &threads);
    let md = format!(
        "{}\n\n{CALLS_PER_THREAD} solo calls per thread, distinct keys; ns per call (wall time / \
         all calls), best of {ROUNDS} interleaved rounds.\n\n{table}",
        machine.line()
    );
    println!("{md}");
    if write {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS.md");
        if let Err(err) = write_markdown(path.as_ref(), &[("contention", md)]) {
            eprintln!("contention: {path}: {err}");
            return ExitCode::FAILURE;
        }
        eprintln!("contention: wrote {path}");
    }
    ExitCode::SUCCESS
}
