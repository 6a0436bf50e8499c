//! Go's `DoChan` with a timeout: five tasks ask for the same key at once, each willing to wait a
//! different time. The ones that give up leave; the others get the value; the work runs once.
//!
//! Part 1 is the Go example: `do_chan_spawned` (from `single-flight-tokio`) hands the work to
//! `tokio::spawn`, like Go's `DoChan` runs it in a goroutine, and each task waits with
//! `recv_timeout` (the `select` on the channel and `time.After`).
//!
//! Part 2 shows what happens when *every* caller gives up. With the core's `do_chan`, the work
//! lives in the flight and is driven by its waiters, so it is dropped when the last one leaves
//! (here waited for with `tokio::select!` against `tokio::time::sleep`, which works on any
//! `Receiver`). With `do_chan_spawned`, the runtime runs it to completion anyway.
//!
//! The example runs on tokio's paused clock, so the timings it prints are exact.
//!
//! Run it from the workspace root:
//!
//! ```text
//! cargo run --release --example do_chan_timeout
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use single_flight::KeyedGroup;
use single_flight_tokio::{KeyedGroupExt, ReceiverExt};
use tokio::time::Instant;

/// How long the work takes.
const WORK_TIME: Duration = Duration::from_millis(250);

static PROFILES: KeyedGroup<u64, String> = KeyedGroup::new();

/// Executions of the work that started, finished, and were dropped before finishing.
static STARTED: AtomicUsize = AtomicUsize::new(0);
static FINISHED: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Counts a drop of the work before it finished.
struct Unfinished;

impl Drop for Unfinished {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

/// The work: a slow fetch.
async fn fetch_profile(id: u64) -> String {
    STARTED.fetch_add(1, Ordering::SeqCst);
    let unfinished = Unfinished;
    tokio::time::sleep(WORK_TIME).await;
    std::mem::forget(unfinished);
    FINISHED.fetch_add(1, Ordering::SeqCst);
    format!("profile of user {id}")
}

fn executions() -> (usize, usize, usize) {
    (
        STARTED.swap(0, Ordering::SeqCst),
        FINISHED.swap(0, Ordering::SeqCst),
        DROPPED.swap(0, Ordering::SeqCst),
    )
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Part 1: five callers, five timeouts, one execution.
async fn five_callers() -> Result<(), String> {
    let timeouts = [50, 100, 200, 300, 400].map(Duration::from_millis);
    println!(
        "part 1: five tasks do_chan user 42 at once; the work takes {} ms",
        ms(WORK_TIME)
    );
    println!();
    println!("  {:>4}  {:>7}  outcome", "task", "timeout");
    let start = Instant::now();
    let tasks: Vec<_> = timeouts
        .iter()
        .map(|&timeout| {
            // Go: ch := g.DoChan(key, fn); select { case r := <-ch: ...; case <-time.After(t): ... }
            let receiver = PROFILES.do_chan_spawned(42, fetch_profile);
            tokio::spawn(receiver.recv_timeout(timeout))
        })
        .collect();
    let mut got = 0;
    for (i, (task, timeout)) in tasks.into_iter().zip(timeouts).enumerate() {
        let outcome = task.await.map_err(|e| format!("task {}: {e}", i + 1))?;
        let at = ms(start.elapsed());
        let line = match outcome {
            Ok(value) => {
                got += 1;
                format!("got {value:?}")
            }
            Err(elapsed) => format!("timed out after {} ms", ms(elapsed.waited())),
        };
        println!(
            "  {:>4}  {:>4} ms  {line:<26}  [done at {at} ms]",
            i + 1,
            ms(timeout)
        );
        let expected_value = timeout > WORK_TIME;
        if line.starts_with("got") != expected_value {
            return Err(format!("task {} with timeout {timeout:?}: {line}", i + 1));
        }
    }
    let (started, finished, dropped) = executions();
    println!();
    println!(
        "  {got} tasks got the value, {} timed out; executions of the work: {started} started, {finished} finished",
        timeouts.len() - got
    );
    if (started, finished, dropped) != (1, 1, 0) {
        return Err(format!(
            "part 1: the work started {started}, finished {finished}, was dropped {dropped} times"
        ));
    }
    Ok(())
}

/// Part 2: both callers give up before the work is done.
async fn everyone_gives_up(spawned: bool) -> Result<(), String> {
    let how = if spawned {
        "do_chan_spawned + recv_timeout"
    } else {
        "do_chan + select! against sleep"
    };
    let timeouts = [50, 100].map(Duration::from_millis);
    let tasks: Vec<_> = timeouts
        .iter()
        .map(|&timeout| {
            if spawned {
                let receiver = PROFILES.do_chan_spawned(7, fetch_profile);
                tokio::spawn(async move { receiver.recv_timeout(timeout).await.ok() })
            } else {
                let mut receiver = PROFILES.do_chan(7, fetch_profile);
                tokio::spawn(async move {
                    tokio::select! {
                        value = &mut receiver => Some(value),
                        _ = tokio::time::sleep(timeout) => None,
                    }
                })
            }
        })
        .collect();
    for task in tasks {
        if let Some(value) = task.await.map_err(|e| e.to_string())? {
            return Err(format!("{how}: a caller got {value:?} before its timeout"));
        }
    }
    // Give a detached work the time to finish.
    tokio::time::sleep(WORK_TIME * 2).await;
    let (started, finished, dropped) = executions();
    let fate = if finished == 1 {
        "ran to completion on the runtime"
    } else {
        "was dropped when the last caller left"
    };
    println!("  {how:<32}  started {started}, finished {finished}: the work {fate}");
    let expected = if spawned { (1, 1, 0) } else { (1, 0, 1) };
    if (started, finished, dropped) != expected || PROFILES.in_flight() != 0 {
        return Err(format!(
            "{how}: started {started}, finished {finished}, dropped {dropped}, in flight {}",
            PROFILES.in_flight()
        ));
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    let result = async {
        five_callers().await?;
        println!();
        println!("part 2: two callers, timeouts 50 and 100 ms, both give up");
        println!();
        everyone_gives_up(false).await?;
        everyone_gives_up(true).await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("do_chan_timeout: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
