//! `cargo xtask bench`: the comparison benchmarks.

use crate::util::{self, Result};

const PACKAGE: &str = "single-flight-benches";

/// Runs a binary of the benches package in release mode: `fleet` for `bench redis [ARGS...]`,
/// `http_layer` for `bench http [ARGS...]`, `contention` for `bench contention [ARGS...]`, else
/// `compare` with `args` (which adds Go's x/sync rows when `go` is installed, and names the
/// packages to install when it is not).
pub(crate) fn run(args: &[String]) -> Result<()> {
    let manifest = util::project_root().join("benches/Cargo.toml");
    if !manifest.exists() {
        return Err(format!(
            "{} does not exist: the benchmarks package `{PACKAGE}` has not been added to the workspace yet",
            manifest.display()
        ));
    }
    // `bench redis ...`: the latency a flight through Redis adds (needs `redis-server`);
    // `bench redis fanout [SECONDS]`: bytes and keys per flight from 1 to 16 processes;
    // `bench http ...`: single-flight-tower through hyper on loopback;
    // `bench contention ...`: many threads on one group.
    let (bin, args) = match args.split_first() {
        // The binaries are not named `redis` and `http`: folders `src/bin/redis/` and
        // `src/bin/http/` read, to tools that follow names, as if the crates `redis` (redis-rs)
        // and `http` that the integrations import were these binaries.
        Some((first, rest)) if first == "redis" => {
            crate::redis::ensure()?;
            ("fleet", rest)
        }
        Some((first, rest)) if first == "http" => ("http_layer", rest),
        Some((first, rest)) if first == "contention" => ("contention", rest),
        _ => ("compare", args),
    };
    let mut cmd = util::cargo(["run", "--release", "-p", PACKAGE, "--bin", bin, "--"]);
    cmd.args(args);
    util::run(&mut cmd).map(drop)
}
