//! `cargo xtask stress [ROUNDS] [--load] [--doc]`: the flake hunt. Runs the workspace's tests
//! `ROUNDS` times (20 by default), optionally with two busy-looping threads competing for the
//! cores, and prints every test that failed at least once, how often, and its first message.
//!
//! A test that fails once in twenty runs blocks a landing as surely as a broken one, and shows up
//! only when someone runs the suite many times on a loaded machine; this is that run. The build
//! happens once, before the first round, so every round only runs tests. Doctests are compiled
//! anew by every `cargo test` and are plain sequential examples, so they run in the first round
//! only unless `--doc` asks for them in every round.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crate::redis;
use crate::util::{self, Result};

const DEFAULT_ROUNDS: usize = 20;
/// Lines of a failure's output kept for the report.
const MESSAGE_LINES: usize = 12;
/// Busy threads of `--load`: as many as the 2-core machines CI runs on have cores.
const BUSY_THREADS: usize = 2;

#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    rounds: usize,
    load: bool,
    doc_every_round: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        rounds: DEFAULT_ROUNDS,
        ..Options::default()
    };
    for arg in args {
        match arg.as_str() {
            "--load" => options.load = true,
            "--doc" => options.doc_every_round = true,
            number => {
                options.rounds = number
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n > 0)
                    .ok_or_else(|| {
                        format!(
                            "stress: expected a number of rounds (1 or more), `--load` or `--doc`, got `{number}`"
                        )
                    })?;
            }
        }
    }
    Ok(options)
}

/// Failures of one test over all rounds.
#[derive(Debug, Default)]
struct Failures {
    count: usize,
    first_message: Vec<String>,
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    redis::ensure()?; // single-flight-redis's tests start their own server
    util::run(&mut util::cargo(["test", "--workspace", "--no-run"]))?;
    let _load = options.load.then(BusyLoad::start);
    let started = Instant::now();
    let mut failures: BTreeMap<String, Failures> = BTreeMap::new();
    let mut failed_rounds = 0;
    for round in 1..=options.rounds {
        let doc = round == 1 || options.doc_every_round;
        let round_started = Instant::now();
        let output = run_round(doc)?;
        let failed = failed_tests(&output);
        let verdict = if failed.is_empty() {
            "ok".to_owned()
        } else {
            failed_rounds += 1;
            let names: Vec<&str> = failed.iter().map(|(name, _)| name.as_str()).collect();
            format!("{} failed: {}", failed.len(), names.join(", "))
        };
        println!(
            "round {round}/{}{}: {verdict} ({})",
            options.rounds,
            if doc { " (with doctests)" } else { "" },
            util::fmt_duration(round_started.elapsed())
        );
        for (name, message) in failed {
            let entry = failures.entry(name).or_default();
            entry.count += 1;
            if entry.first_message.is_empty() {
                entry.first_message = message;
            }
        }
    }
    println!(
        "\n{} rounds{} in {}: {failed_rounds} with a failure",
        options.rounds,
        if options.load {
            format!(" with {BUSY_THREADS} busy threads")
        } else {
            String::new()
        },
        util::fmt_duration(started.elapsed())
    );
    if failures.is_empty() {
        return Ok(());
    }
    for (name, failure) in &failures {
        println!(
            "\n{name}: failed in {} of {} rounds",
            failure.count, options.rounds
        );
        for line in &failure.first_message {
            println!("    {line}");
        }
    }
    Err(format!(
        "{} test(s) failed at least once in {} rounds",
        failures.len(),
        options.rounds
    ))
}

/// One `cargo test --workspace --no-fail-fast` run; its output, both streams in order.
fn run_round(doc: bool) -> Result<String> {
    let mut cmd = util::cargo(["test", "--workspace", "--no-fail-fast"]);
    if !doc {
        cmd.args(["--lib", "--bins", "--tests"]);
    }
    // Cargo's progress goes to stderr, the harness's report to stdout: one pipe keeps them in
    // the order a reader needs (which binary ran before which failure).
    let shown = util::display(&cmd);
    let output = shell_merged(cmd)
        .output()
        .map_err(|e| format!("could not start `{shown}`: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `cmd` run by `sh` with its stderr into its stdout.
fn shell_merged(cmd: Command) -> Command {
    let mut line = String::from("exec");
    line.push(' ');
    line.push_str(&shell_word(&cmd.get_program().to_string_lossy()));
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&shell_word(&arg.to_string_lossy()));
    }
    line.push_str(" 2>&1");
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(line).stdin(Stdio::null());
    if let Some(dir) = cmd.get_current_dir() {
        shell.current_dir(dir);
    }
    shell
}

fn shell_word(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The tests that failed in one round's output, each named `target: test`, with the first
/// lines of its captured output; a target that failed without a failing test (a crash, an
/// abort) is named by cargo's own error line.
fn failed_tests(output: &str) -> Vec<(String, Vec<String>)> {
    let mut failed = Vec::new();
    let mut target = String::from("?");
    let mut lines = output.lines().peekable();
    // Whether the current target printed its `test result:` line (a crash prints none).
    let mut reported = true;
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(running) = trimmed.strip_prefix("Running ") {
            // `Running tests/<name>.rs (target/debug/deps/<name>-<hash>)`, `Running unittests src/lib.rs (...)`
            target = running
                .split(" (")
                .next()
                .unwrap_or(running)
                .trim()
                .to_owned();
            reported = false;
        } else if trimmed.starts_with("Doc-tests ") {
            target = trimmed.to_owned();
            reported = false;
        } else if let Some(name) = trimmed
            .strip_prefix("---- ")
            .and_then(|rest| rest.strip_suffix(" stdout ----"))
        {
            let mut message = Vec::new();
            while let Some(next) = lines.peek() {
                if next.starts_with("---- ") || next.trim() == "failures:" {
                    break;
                }
                let next = lines.next().expect("peeked");
                if message.len() < MESSAGE_LINES && !next.trim().is_empty() {
                    message.push(next.trim_end().to_owned());
                }
            }
            failed.push((format!("{target}: {name}"), message));
        } else if trimmed.starts_with("error: test failed") && !reported {
            // A target that failed without a test report (it crashed or was killed).
            failed.push((format!("{target}: {trimmed}"), Vec::new()));
        } else if trimmed.starts_with("test result:") {
            reported = true;
        }
    }
    failed
}

/// Threads that spin until dropped: competition for the cores, like a loaded CI machine.
struct BusyLoad {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl BusyLoad {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..BUSY_THREADS)
            .map(|_| {
                let stop = stop.clone();
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        println!("load: {BUSY_THREADS} busy-looping threads until the last round ends");
        Self { stop, threads }
    }
}

impl Drop for BusyLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_rounds_and_flags() {
        assert_eq!(
            parse(&[]).unwrap(),
            Options {
                rounds: 20,
                load: false,
                doc_every_round: false
            }
        );
        assert_eq!(
            parse(&args(&["5", "--load", "--doc"])).unwrap(),
            Options {
                rounds: 5,
                load: true,
                doc_every_round: true
            }
        );
        assert!(parse(&args(&["0"])).is_err());
        assert!(parse(&args(&["--fast"])).is_err());
    }

    #[test]
    fn finds_failed_tests_with_their_messages() {
        let output = "\
     Running tests/allocations.rs (target/debug/deps/allocations-0123)

running 2 tests
test a ... ok
test b ... FAILED

failures:

---- b stdout ----
solo calls: 4001 allocations

thread 'b' panicked at tests/tests/allocations.rs:9:5:
assertion failed
---- c stdout ----
other
failures:
    b

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s

error: test failed, to rerun pass `--test allocations`
     Running tests/crash.rs (target/debug/deps/crash-0123)
error: test failed, to rerun pass `--test crash`
";
        let failed = failed_tests(output);
        assert_eq!(failed.len(), 3, "{failed:?}");
        assert_eq!(failed[0].0, "tests/allocations.rs: b");
        assert_eq!(
            failed[0].1,
            [
                "solo calls: 4001 allocations",
                "thread 'b' panicked at tests/tests/allocations.rs:9:5:",
                "assertion failed"
            ]
        );
        assert_eq!(failed[1].0, "tests/allocations.rs: c");
        assert_eq!(
            failed[2].0,
            "tests/crash.rs: error: test failed, to rerun pass `--test crash`"
        );
    }
}
