//! `cargo xtask`: the workspace's automation, in Rust instead of shell scripts.
//!
//! This follows matklad's xtask pattern (as in rust-analyzer): `xtask` is an unpublished member of the
//! workspace, `.cargo/config.toml` has `xtask = "run --package xtask --"`, cargo is taken from the
//! `CARGO` environment variable, and the only dependency is `std`.
//!
//! Run `cargo xtask help` for the list of commands.

mod bench;
mod ci;
mod examples;
mod loom;
mod manifest;
mod package;
mod redis;
mod stress;
mod tidy;
mod util;

use std::env;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [args...]

commands:
  ci [--skip STEPS] [--only STEPS]
        run exactly what CI runs, stopping at the first failing step;
        STEPS is a comma-separated list of: tidy, fmt, clippy, test, doc, examples, loom, package
        (e.g. `cargo xtask ci --skip loom,package`, `cargo xtask ci --only test`)
  tidy
        check the repository itself: files that docs and comments name exist, every module
        has a `//!` line, no .rs file over 600 lines, the README's crate and example tables
  loom [TEST-ARGS...]
        run the loom models deeper (LOOM_MAX_PREEMPTIONS=3 unless set);
        TEST-ARGS go to the test binary (e.g. a test name filter)
  bench [ARGS...]
        run the comparison benchmarks (`single-flight-benches`, binary `compare`) with ARGS;
        with `go` installed (apt-get install -y golang-go golang-golang-x-sync-dev) the solo
        and herd tables get Go's x/sync rows (benches/go/singleflight.go), else they are left out
  bench redis [ROUNDS]
        run the Redis latency scenario (binary `fleet`; needs redis-server)
  bench http [--quick] [--layer-alone | --leader-abort]
        run the HTTP benchmark (binary `http_layer`: single-flight-tower through hyper on loopback)
  bench contention [IMPL...] [--threads LIST]
        many threads on one group (binary `contention`); the default run writes its block
  stress [ROUNDS] [--load] [--doc]
        the flake hunt: run the workspace's tests ROUNDS times (default 20) and list every test
        that failed at least once, how often, and its first message; `--load` adds two
        busy-looping threads, `--doc` runs the doctests in every round (else in the first only)
  help
        print this text

environment:
  CARGO                   cargo to run (set by `cargo xtask`)
  LOOM_MAX_PREEMPTIONS    loom bound (default 2 in `ci`, 3 in `loom`)
  XTASK_EXAMPLE_TIMEOUT   seconds each example may run in `ci` (default 120)
  CI                      when set, `cargo package` runs without --allow-dirty
";

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();

    let result = match command.as_deref() {
        None | Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some("ci") => ci::run(&rest),
        Some("tidy") => tidy::run(),
        Some("loom") => loom::run(loom::DEEP_PREEMPTIONS, util::forwarded(&rest)),
        Some("bench") => bench::run(util::forwarded(&rest)),
        Some("stress") => stress::run(util::forwarded(&rest)),
        Some(other) => {
            eprintln!("error: unknown command `{other}`\n");
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("\nerror: {message}");
            ExitCode::FAILURE
        }
    }
}
