//! `cargo xtask bench`: the comparison benchmarks.

use crate::util::{self, Result};

const PACKAGE: &str = "single-flight-benches";

/// Runs the `compare` binary of the benches package in release mode with `args`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let manifest = util::project_root().join("benches/Cargo.toml");
    if !manifest.exists() {
        return Err(format!(
            "{} does not exist: the benchmarks package `{PACKAGE}` has not been added to the workspace yet",
            manifest.display()
        ));
    }
    let mut cmd = util::cargo(["run", "--release", "-p", PACKAGE, "--bin", "compare", "--"]);
    cmd.args(args);
    util::run(&mut cmd).map(drop)
}
