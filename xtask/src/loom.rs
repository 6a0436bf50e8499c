//! Loom models: `crates/single-flight/tests/loom.rs` built with `--cfg loom`, in its own target dir.

use std::env;
use std::path::PathBuf;

use crate::util::{self, Result};

/// The preemption bound of `cargo xtask ci`.
pub(crate) const CI_PREEMPTIONS: u32 = 2;
/// The preemption bound of `cargo xtask loom`.
pub(crate) const DEEP_PREEMPTIONS: u32 = 3;

const TEST_FILE: &str = "crates/single-flight/tests/loom.rs";

/// Runs the loom models with `LOOM_MAX_PREEMPTIONS` from the environment or `default_preemptions`,
/// passing `test_args` to the test binary.
pub(crate) fn run(default_preemptions: u32, test_args: &[String]) -> Result<()> {
    if !util::project_root().join(TEST_FILE).is_file() {
        return Err(format!(
            "{TEST_FILE} does not exist: the loom models are missing"
        ));
    }
    let preemptions = env::var("LOOM_MAX_PREEMPTIONS")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default_preemptions.to_string());
    let mut cmd = util::cargo(["test", "-p", "single-flight", "--test", "loom", "--release"]);
    if !test_args.is_empty() {
        cmd.arg("--").args(test_args);
    }
    // A separate target dir: `--cfg loom` changes RUSTFLAGS, which would otherwise rebuild
    // everything in the normal target dir (and again on the next normal build).
    cmd.env("RUSTFLAGS", util::extend_flags("RUSTFLAGS", "--cfg loom"))
        .env("LOOM_MAX_PREEMPTIONS", preemptions)
        .env("CARGO_TARGET_DIR", loom_target_dir());
    util::run(&mut cmd).map(drop)
}

fn loom_target_dir() -> PathBuf {
    util::target_dir().join("loom")
}
