//! `cargo xtask ci`: exactly what CI runs, step by step, stopping at the first failure.

use std::time::{Duration, Instant};

use crate::util::{self, Result};
use crate::{examples, loom, package, redis, tidy};

/// The steps, in the order CI runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Tidy,
    Fmt,
    Clippy,
    Test,
    Doc,
    Examples,
    Loom,
    Package,
}

const STEPS: [Step; 8] = [
    Step::Tidy,
    Step::Fmt,
    Step::Clippy,
    Step::Test,
    Step::Doc,
    Step::Examples,
    Step::Loom,
    Step::Package,
];

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Tidy => "tidy",
            Step::Fmt => "fmt",
            Step::Clippy => "clippy",
            Step::Test => "test",
            Step::Doc => "doc",
            Step::Examples => "examples",
            Step::Loom => "loom",
            Step::Package => "package",
        }
    }

    fn from_name(name: &str) -> Option<Step> {
        STEPS.into_iter().find(|step| step.name() == name)
    }

    /// What to do when the step fails, besides reading its output.
    fn hint(self) -> Option<&'static str> {
        match self {
            Step::Fmt => Some("run `cargo fmt --all` to fix the formatting"),
            Step::Loom => Some("`cargo xtask loom` runs the models deeper"),
            _ => None,
        }
    }

    fn run(self) -> Result<()> {
        if matches!(self, Step::Test | Step::Examples) {
            redis::ensure()?; // single-flight-redis's tests and the `replicas` example need it
        }
        match self {
            Step::Tidy => tidy::run(),
            Step::Fmt => cargo(&["fmt", "--all", "--", "--check"]),
            Step::Clippy => {
                cargo(&[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ])?;
                // The core's optional `tracing` feature, which the workspace build leaves off.
                cargo(&[
                    "clippy",
                    "-p",
                    "single-flight",
                    "--all-targets",
                    "--features",
                    "tracing",
                    "--",
                    "-D",
                    "warnings",
                ])
            }
            Step::Test => {
                cargo(&["test", "--workspace"])?;
                // The span tree of the `tracing` feature (crates/single-flight/tests/tracing.rs).
                cargo(&["test", "-p", "single-flight", "--features", "tracing"])?;
                // Redis over TLS (crates/single-flight-redis/tests/tls.rs): its certificate
                // maker and rustls build only under this feature, not in every `cargo test`.
                cargo(&[
                    "test",
                    "-p",
                    "single-flight-redis",
                    "--features",
                    "tls-test",
                    "--test",
                    "tls",
                ])
            }
            Step::Doc => {
                let mut cmd = util::cargo(["doc", "--workspace", "--no-deps"]);
                cmd.env(
                    "RUSTDOCFLAGS",
                    util::extend_flags(
                        "RUSTDOCFLAGS",
                        "-D warnings -D missing_docs -D rustdoc::broken_intra_doc_links",
                    ),
                );
                util::run(&mut cmd).map(drop)
            }
            Step::Examples => examples::smoke(&examples::names()?),
            Step::Loom => loom::run(loom::CI_PREEMPTIONS, &[]),
            Step::Package => {
                let listing = package::run()?;
                println!("packages:");
                print!("{listing}");
                Ok(())
            }
        }
    }
}

fn cargo(args: &[&str]) -> Result<()> {
    util::run(&mut util::cargo(args)).map(drop)
}

/// Which steps to run, from `--skip a,b` and `--only a,b` (also `--skip=a,b`; both may repeat).
fn select(args: &[String]) -> Result<Vec<Step>> {
    let mut only: Option<Vec<Step>> = None;
    let mut skip = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let target = match flag {
            "--only" => only.get_or_insert_with(Vec::new),
            "--skip" => &mut skip,
            _ => {
                return Err(format!(
                    "unknown argument `{arg}` to `cargo xtask ci` (see `cargo xtask help`)"
                ))
            }
        };
        let list = match inline.or_else(|| args.next().cloned()) {
            Some(list) => list,
            None => return Err(format!("`{flag}` needs a comma-separated list of steps")),
        };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let step = Step::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = STEPS.iter().map(|s| s.name()).collect();
                format!("unknown step `{name}`; the steps are: {}", known.join(", "))
            })?;
            target.push(step);
        }
    }
    Ok(STEPS
        .into_iter()
        .filter(|step| only.as_ref().is_none_or(|only| only.contains(step)))
        .filter(|step| !skip.contains(step))
        .collect())
}

/// Runs the selected steps in order; prints each step's wall time at the end, also after a failure.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let steps = select(args)?;
    if steps.is_empty() {
        return Err("no step left to run".into());
    }
    let total = Instant::now();
    let mut report: Vec<(Step, Duration, String)> = Vec::new();
    for (i, &step) in steps.iter().enumerate() {
        println!("\n==> [{}/{}] {}", i + 1, steps.len(), step.name());
        let start = Instant::now();
        let result = step.run();
        let elapsed = start.elapsed();
        match result {
            Ok(()) => report.push((step, elapsed, "ok".into())),
            Err(error) => {
                report.push((step, elapsed, "FAILED".into()));
                print_report(&report, total.elapsed());
                let hint = step
                    .hint()
                    .map(|h| format!("\nhint: {h}"))
                    .unwrap_or_default();
                return Err(format!("ci step `{}` failed: {error}{hint}", step.name()));
            }
        }
    }
    print_report(&report, total.elapsed());
    println!("ci: passed");
    Ok(())
}

fn print_report(report: &[(Step, Duration, String)], total: Duration) {
    println!("\nci steps:");
    for (step, elapsed, outcome) in report {
        println!(
            "  {:<9} {:>8}  {outcome}",
            step.name(),
            util::fmt_duration(*elapsed)
        );
    }
    println!("  {:<9} {:>8}", "total", util::fmt_duration(total));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn selects_all_by_default() {
        assert_eq!(select(&[]).unwrap(), STEPS);
    }

    #[test]
    fn skip_and_only() {
        assert_eq!(
            select(&args(&["--skip", "loom,package"])).unwrap(),
            [
                Step::Tidy,
                Step::Fmt,
                Step::Clippy,
                Step::Test,
                Step::Doc,
                Step::Examples
            ]
        );
        assert_eq!(select(&args(&["--only", "test"])).unwrap(), [Step::Test]);
        assert_eq!(
            select(&args(&["--only=package,fmt", "--skip=package"])).unwrap(),
            [Step::Fmt]
        );
    }

    #[test]
    fn rejects_unknown_steps_and_flags() {
        assert!(select(&args(&["--only", "tests"])).is_err());
        assert!(select(&args(&["--skip"])).is_err());
        assert!(select(&args(&["--fast"])).is_err());
    }
}
