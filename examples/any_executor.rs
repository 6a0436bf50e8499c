//! The same call-sharing code driven by tokio, smol, async-std and plain threads with
//! `futures_lite::future::block_on`: the core crate depends on no runtime.
//!
//! [`lookup`] is the code under test: it names no runtime. Each runtime spawns a herd of tasks
//! that all call it for the same key, three herds in a row, and the table shows that every herd
//! ran the work once (one execution per herd: a flight caches nothing, so the next herd runs it
//! again), and on which thread.
//!
//! To make the demo deterministic, the work waits until the whole herd has joined its flight (in
//! real code it would just be slow, and a caller arriving after the end would start a new one).
//! The gate uses `event-listener`, which needs no runtime either.
//!
//! Run it from the workspace root:
//!
//! ```text
//! cargo run --release --example any_executor
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use event_listener::{listener, Event};
use single_flight::KeyedGroup;

/// Tasks per herd (threads, for the plain-thread driver).
const TASKS: usize = 64;
const THREADS: usize = 16;
/// Herds per runtime, one after the other.
const HERDS: usize = 3;

/// The herd's shared state: how many callers have joined, and what the work saw.
#[derive(Debug)]
struct Herd {
    size: usize,
    joined: AtomicUsize,
    all_joined: Event,
    executions: AtomicUsize,
    work_threads: Mutex<Vec<String>>,
}

impl Herd {
    fn new(size: usize) -> Arc<Self> {
        Arc::new(Self {
            size,
            joined: AtomicUsize::new(0),
            all_joined: Event::new(),
            executions: AtomicUsize::new(0),
            work_threads: Mutex::new(Vec::new()),
        })
    }

    fn join(&self) {
        if self.joined.fetch_add(1, Ordering::SeqCst) + 1 == self.size {
            self.all_joined.notify(usize::MAX);
        }
    }

    /// Waits until every caller of the herd has joined the flight.
    async fn wait_for_everyone(&self) {
        loop {
            if self.joined.load(Ordering::SeqCst) >= self.size {
                return;
            }
            listener!(self.all_joined => joined);
            if self.joined.load(Ordering::SeqCst) >= self.size {
                return;
            }
            joined.await;
        }
    }
}

/// The code under test, the same for every runtime: look `name` up through the group.
///
/// `do_chan` joins the flight before it returns, so `herd.join()` counts callers that are
/// really in the flight.
async fn lookup(group: Arc<KeyedGroup<String, u64>>, herd: Arc<Herd>, name: String) -> (u64, bool) {
    let work_herd = herd.clone();
    let receiver = group.do_chan(name, move |name| async move {
        work_herd.executions.fetch_add(1, Ordering::SeqCst);
        work_herd.wait_for_everyone().await; // "the slow query"
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed").to_owned();
        work_herd
            .work_threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(thread);
        name.len() as u64
    });
    herd.join();
    let outcome = receiver.with_role().await;
    (outcome.value, outcome.shared())
}

/// What one runtime's herds did.
#[derive(Debug)]
struct Outcome {
    runtime: &'static str,
    callers: usize,
    /// Executions of the work, herd by herd.
    executions: Vec<usize>,
    shared: usize,
    work_threads: Vec<String>,
}

/// Runs `HERDS` herds of `size` callers, each herd with `drive`, which must run `size` calls of
/// the given closure's futures concurrently and return their results.
fn herds(
    runtime: &'static str,
    size: usize,
    drive: impl Fn(&dyn Fn() -> futures_lite::future::Boxed<(u64, bool)>) -> Vec<(u64, bool)>,
) -> Result<Outcome, String> {
    let group: Arc<KeyedGroup<String, u64>> = Arc::new(KeyedGroup::new());
    let mut outcome = Outcome {
        runtime,
        callers: 0,
        executions: Vec::new(),
        shared: 0,
        work_threads: Vec::new(),
    };
    for _ in 0..HERDS {
        let herd = Herd::new(size);
        let make = || -> futures_lite::future::Boxed<(u64, bool)> {
            Box::pin(lookup(group.clone(), herd.clone(), "grace".to_owned()))
        };
        let results = drive(&make);
        if results.len() != size || results.iter().any(|&(v, _)| v != 5) {
            return Err(format!("{runtime}: wrong results {results:?}"));
        }
        outcome.callers += results.len();
        outcome.shared += results.iter().filter(|(_, shared)| *shared).count();
        outcome
            .executions
            .push(herd.executions.load(Ordering::SeqCst));
        outcome.work_threads.extend(
            herd.work_threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain(..),
        );
    }
    if outcome.executions.iter().any(|&n| n != 1) {
        return Err(format!(
            "{runtime}: executions per herd {:?}, expected 1 each",
            outcome.executions
        ));
    }
    if group.in_flight() != 0 {
        return Err(format!("{runtime}: a flight is still registered"));
    }
    Ok(outcome)
}

fn tokio_multi_thread() -> Result<Outcome, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .map_err(|e| e.to_string())?;
    herds("tokio (multi-thread)", TASKS, |make| {
        rt.block_on(async {
            let tasks: Vec<_> = (0..TASKS).map(|_| tokio::spawn(make())).collect();
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await.expect("task panicked"));
            }
            out
        })
    })
}

fn tokio_current_thread() -> Result<Outcome, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    herds("tokio (current-thread)", TASKS, |make| {
        rt.block_on(async {
            let tasks: Vec<_> = (0..TASKS).map(|_| tokio::spawn(make())).collect();
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await.expect("task panicked"));
            }
            out
        })
    })
}

fn smol() -> Result<Outcome, String> {
    herds("smol", TASKS, |make| {
        smol::block_on(async {
            let tasks: Vec<_> = (0..TASKS).map(|_| smol::spawn(make())).collect();
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await);
            }
            out
        })
    })
}

fn async_std() -> Result<Outcome, String> {
    herds("async-std", TASKS, |make| {
        async_std::task::block_on(async {
            let tasks: Vec<_> = (0..TASKS).map(|_| async_std::task::spawn(make())).collect();
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await);
            }
            out
        })
    })
}

fn plain_threads() -> Result<Outcome, String> {
    herds("threads + block_on", THREADS, |make| {
        let futures: Vec<_> = (0..THREADS).map(|_| make()).collect();
        std::thread::scope(|scope| {
            let threads: Vec<_> = futures
                .into_iter()
                .enumerate()
                .map(|(i, future)| {
                    std::thread::Builder::new()
                        .name(format!("plain-{i}"))
                        .spawn_scoped(scope, move || futures_lite::future::block_on(future))
                        .expect("cannot spawn a thread")
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("thread panicked"))
                .collect()
        })
    })
}

fn main() -> ExitCode {
    println!("{HERDS} herds per runtime; every caller of a herd asks for the same key at once");
    println!();
    println!(
        "{:<22}  {:>7}  {:>6}  {:<19}  work ran on (thread)",
        "runtime", "callers", "shared", "executions per herd"
    );
    let drivers: [fn() -> Result<Outcome, String>; 5] = [
        tokio_multi_thread,
        tokio_current_thread,
        smol,
        async_std,
        plain_threads,
    ];
    let mut failed = false;
    for driver in drivers {
        match driver() {
            Ok(o) => {
                let mut threads = o.work_threads.clone();
                threads.sort();
                threads.dedup();
                let executions = format!("{:?}", o.executions);
                println!(
                    "{:<22}  {:>7}  {:>6}  {executions:<19}  {}",
                    o.runtime,
                    o.callers,
                    o.shared,
                    threads.join(", ")
                );
            }
            Err(e) => {
                eprintln!("any_executor: FAILED: {e}");
                failed = true;
            }
        }
    }
    println!();
    if failed {
        return ExitCode::FAILURE;
    }
    println!("one execution per herd on every runtime ({HERDS} herds each)");
    ExitCode::SUCCESS
}
