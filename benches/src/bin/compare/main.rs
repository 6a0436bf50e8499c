//! `compare`: single-flight against its peers, in one run, on the same runtime settings.
//!
//! Run it with `cargo xtask bench [ARGS]` (a release build). Every scenario runs each
//! implementation once per repetition, round-robin, so that machine noise hits every row alike,
//! and reports medians over the repetitions. See `--help` and `BENCHMARKS.md`.

use std::process::ExitCode;
use std::time::Instant;

use single_flight_benches::alloc::{self, CountingAlloc};
use single_flight_benches::machine::Machine;
use single_flight_benches::markdown::write_markdown;
use single_flight_benches::peers::Impl;

use crate::cli::{current_thread, multi_thread, Config, Scenario};
use crate::scenarios::{herd, solo, spread, timeouts, Results};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const USAGE: &str = "\
usage: compare [--quick] [--json] [--write | --no-write] [--out PATH] [--reps N] [--only LIST]
               [--impls LIST] [--no-go]

Measures single-flight against uniflight, async_singleflight, singleflight-async,
rs-singleflight, moka (get_with as a coalescer), two hand-rolled maps, a no-dedup floor and the
safe floor of a solo call (on each hasher), and prints markdown tables. When `go` is installed
(`apt-get install -y golang-go golang-golang-x-sync-dev`), the solo and herd tables get a row for
Go's golang.org/x/sync/singleflight (benches/go/singleflight.go, run after the Rust rows).

  --quick       a fast smoke run (fewer repetitions, smaller samples); does not write BENCHMARKS.md
                unless --write is given
  --json        print the results as JSON instead of markdown
  --write       write the markdown blocks of the scenarios run into BENCHMARKS.md, and the JSON
                and SVG charts into the results directory (the default for a full run of every
                scenario and implementation)
  --no-write    do not write BENCHMARKS.md, the JSON or the charts
  --out PATH    the markdown file to write (default: BENCHMARKS.md at the repository root)
  --results DIR where compare.json and the charts go (default: benches/results)
  --reps N      repetitions per scenario (default 15, quick 3)
  --only LIST   comma-separated scenarios: solo, single-thread, herd, spread, timeouts
  --impls LIST  comma-separated implementations (see below; the no-dedup floor and the safe
                floor on KeyedGroup::new()'s hasher are always measured). keyed-HASHER and
                floor-HASHER rows are measured in the solo scenarios only. No Go row.
  --no-go       leave Go's rows out even when `go` is installed
";

mod charts;
mod cli;
mod go;
mod json;
mod report;
mod scenarios;
mod stats;
mod targets;

/// Writes the markdown blocks, the JSON and the charts: the tables and the pictures of one run.
fn write(
    config: &Config,
    results: &Results,
    blocks: &[(&'static str, String)],
    json: &str,
) -> Result<(), String> {
    let cannot = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |err: std::io::Error| format!("cannot write {path}: {err}")
    };
    write_markdown(&config.out, blocks).map_err(cannot(&config.out))?;
    std::fs::create_dir_all(&config.results).map_err(cannot(&config.results))?;
    let path = config.results.join("compare.json");
    std::fs::write(&path, format!("{json}\n")).map_err(cannot(&path))?;
    let charts = charts::charts(results, &config.results)?;
    eprintln!(
        "compare: wrote {}, {} and {}",
        config.out.display(),
        path.display(),
        charts.join(", ")
    );
    Ok(())
}

fn main() -> ExitCode {
    let config = match Config::parse(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("compare: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if config.help {
        print!("{USAGE}\nIMPL names: {}\n", Impl::shorts());
        return ExitCode::SUCCESS;
    }
    if cfg!(debug_assertions) {
        eprintln!("compare: warning: a debug build; run `cargo xtask bench` for a release build");
    }
    assert!(
        alloc::installed(),
        "the counting allocator is not installed"
    );
    let machine = Machine::probe();
    let started = Instant::now();
    let mut results = Results::default();
    for &scenario in &config.scenarios {
        match scenario {
            Scenario::Solo => results.solo = Some(solo::run(&config, &multi_thread(), "solo")),
            Scenario::SingleThread => {
                results.single_thread =
                    Some(solo::run(&config, &current_thread(), "single-thread"));
            }
            Scenario::Herd => results.herd = Some(herd::run(&config, &multi_thread())),
            Scenario::Spread => results.spread = Some(spread::run(&config, &multi_thread())),
            Scenario::Timeouts => results.timeouts = Some(timeouts::run(&config, &multi_thread())),
        }
    }
    let go_scenarios = [Scenario::Solo, Scenario::Herd];
    if config.go && config.scenarios.iter().any(|s| go_scenarios.contains(s)) {
        results.go = go::run(&config);
    }
    let total = started.elapsed();
    let blocks = report::markdown(&results, &config, &machine, total);
    let json = json::json(&results, &config, &machine, total).to_string();
    if config.json {
        println!("{json}");
    } else {
        for (name, md) in &blocks {
            println!("### {name}\n\n{md}");
        }
    }
    if config.write {
        if let Err(err) = write(&config, &results, &blocks, &json) {
            eprintln!("compare: {err}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("compare: done in {:.1} s", total.as_secs_f64());
    ExitCode::SUCCESS
}
