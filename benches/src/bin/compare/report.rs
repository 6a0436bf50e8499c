//! The markdown report: one block per scenario (and one for the targets), each a short function
//! around a [`Table`].

use std::time::Duration;

use single_flight_benches::machine::{load_average, Machine};
use single_flight_benches::markdown::{Align, Table};
use single_flight_benches::peers::Impl;

use crate::cli::Config;
use crate::go::GoRows;
use crate::scenarios::herd::HerdRow;
use crate::scenarios::solo::{best, ratio, SoloRow};
use crate::scenarios::spread::SpreadRow;
use crate::scenarios::timeouts::{TimeoutRow, TimeoutSample};
use crate::scenarios::{before_the_floors, row, Results};
use crate::stats::{mean, median, min_max};
use crate::targets::{targets, Target};

/// The generated markdown, one block per scenario (and one for the targets), each opening
/// with the machine and run it came from: `BENCHMARKS.md` places each block in the section
/// that answers its question, and a run of some scenarios replaces only their blocks.
pub(crate) fn markdown(
    results: &Results,
    config: &Config,
    machine: &Machine,
    total: Duration,
) -> Vec<(&'static str, String)> {
    let header = header(config, machine, total);
    let targets = targets(results, config);
    let go = results.go.as_ref();
    let sections = [
        (
            "targets",
            (!targets.is_empty()).then(|| targets_table(&targets)),
        ),
        (
            "solo",
            results.solo.as_deref().map(|rows| solo(rows, config, go)),
        ),
        (
            "single-thread",
            results
                .single_thread
                .as_deref()
                .map(|rows| solo(rows, config, None)),
        ),
        (
            "herd",
            results.herd.as_deref().map(|rows| herd(rows, config, go)),
        ),
        (
            "spread",
            results.spread.as_deref().map(|rows| spread(rows, config)),
        ),
        (
            "timeouts",
            results
                .timeouts
                .as_deref()
                .map(|rows| timeouts(rows, config)),
        ),
    ];
    sections
        .into_iter()
        .filter_map(|(name, md)| Some((name, format!("{header}{}", md?))))
        .collect()
}

/// The line every block opens with: the machine, the run, the load.
fn header(config: &Config, machine: &Machine, total: Duration) -> String {
    format!(
        "Measured on {} — {} CPUs ({}), {}; {} run, {} repetitions, took {:.0} s; \
         load average {} at the start, {} at the end.\n\n",
        machine.date,
        machine.cpus,
        machine.cpu_model,
        machine.rustc,
        if config.quick { "`--quick`" } else { "full" },
        config.reps,
        total.as_secs_f64(),
        machine.load_before,
        load_average(),
    )
}

fn targets_table(targets: &[Target]) -> String {
    let left = ["target", "goal", "measured", "met"].map(|name| (name, Align::Left));
    let mut table = Table::new(&left);
    for t in targets {
        let met = if t.met { "yes" } else { "**no**" };
        table.row([t.name, &t.goal, &t.measured, met]);
    }
    table.finish()
}

/// `solo` and `single-thread`: ns per call, allocations, ratios of the best repetitions.
fn solo(rows: &[SoloRow], config: &Config, go: Option<&GoRows>) -> String {
    let ratio_to = |r: &SoloRow, imp| row(rows, imp, |r| r.imp).map_or(f64::NAN, |b| ratio(r, b));
    let mut table = Table::figures(
        "implementation",
        &[
            "ns/call",
            "best",
            "allocations/call",
            "× KeyedGroup",
            "× safe floor, same hasher",
        ],
    );
    let line = |r: &SoloRow| {
        // Our rows against the floor on their own hasher; the others have no such floor.
        let floor = match r.imp {
            Impl::SingleFlightKeyed | Impl::SingleFlightGroup => {
                format!("{:.2}", ratio_to(r, Impl::FLOOR))
            }
            Impl::KeyedWith(hasher) => format!("{:.2}", ratio_to(r, Impl::Floor(hasher))),
            _ => String::new(),
        };
        [
            r.imp.name().to_owned(),
            format!("{:.1}", median(&r.ns)),
            format!("{:.1}", best(r)),
            format!("{:.2}", r.allocs_per_call),
            format!("{:.2}", ratio_to(r, Impl::SingleFlightKeyed)),
            floor,
        ]
    };
    let keyed = row(rows, Impl::SingleFlightKeyed, |r| r.imp).map_or(f64::NAN, best);
    let go_row = go.and_then(|go| {
        let solo = go.solo.as_ref()?;
        Some([
            go.name(),
            format!("{:.1}", solo.ns_median),
            format!("{:.1}", solo.ns_best),
            format!("{:.2}", solo.allocs_per_call),
            format!("{:.2}", solo.ns_best / keyed),
            String::new(),
        ])
    });
    fill(&mut table, before_the_floors(rows, |r| r.imp), line, go_row);
    format!(
        "{} repetitions of about {} ms per row, round-robin; ns/call is the median repetition, \
         best the fastest, and a × column the ratio of the best repetitions (other processes only \
         add time: the best is the steady figure on a shared machine).{}\n\n{}",
        rows.first().map_or(0, |r| r.ns.len()),
        config.solo_sample.as_millis(),
        go_note(go),
        table.finish()
    )
}

/// Writes the rows of the peers, then Go's row if any, then the floors' rows.
fn fill<R, const N: usize>(
    table: &mut Table,
    (peers, floors): (&[R], &[R]),
    line: impl Fn(&R) -> [String; N],
    go_row: Option<[String; N]>,
) {
    let rows = peers.iter().map(&line).chain(go_row);
    for cells in rows.chain(floors.iter().map(&line)) {
        table.row(cells);
    }
}

/// What the Go row is, when the table has one.
fn go_note(go: Option<&GoRows>) -> &'static str {
    match go {
        Some(_) => {
            " The Go row is `benches/go/singleflight.go`, a process of its own run after the Rust \
             rows (not interleaved with them), `GOMAXPROCS=2`; its herd registers callers \
             with `DoChan`, the one call whose registration a caller can see."
        }
        None => "",
    }
}

/// A row's name, with its wrong values if it returned any.
fn name(imp: Impl, wrong: usize) -> String {
    match wrong {
        0 => imp.name().to_owned(),
        n => format!("{} ({n} wrong values)", imp.name()),
    }
}

/// `herd`: ns per caller, net of the paired no-dedup herd, executions, allocations.
fn herd(rows: &[HerdRow], config: &Config, go: Option<&GoRows>) -> String {
    let mut table = Table::figures(
        "implementation",
        &[
            "ns/caller",
            "net ns/caller vs no-dedup",
            "net min–max",
            "executions/herd mean",
            "max",
            "allocations/caller",
            "net allocations/herd",
        ],
    );
    let floor_allocs = row(rows, Impl::NoDedup, |r| r.imp).map_or(0, |r| r.allocs_per_herd);
    let line = |r: &HerdRow| {
        let (min, max) = min_max(&r.net);
        [
            name(r.imp, r.wrong),
            format!("{:.1}", median(&r.ns)),
            format!("{:+.1}", median(&r.net)),
            format!("{min:+.0}–{max:+.0}"),
            format!("{:.2}", mean(r.executions.iter().copied())),
            format!("{}", r.executions.iter().copied().max().unwrap_or(0)),
            format!(
                "{:.3}",
                r.allocs_per_herd as f64 / config.herd_callers as f64
            ),
            format!("{:+}", r.allocs_per_herd as i64 - floor_allocs as i64),
        ]
    };
    let go_row = go.and_then(|go| {
        let herd = go.herd.as_ref()?;
        Some([
            go.name(),
            format!("{:.1}", herd.ns_per_caller),
            format!("{:+.1}", herd.net_ns_per_caller),
            String::new(),
            format!("{:.2}", herd.executions_mean),
            herd.executions_max.to_string(),
            format!("{:.3}", herd.allocs_per_caller),
            String::new(),
        ])
    });
    fill(&mut table, before_the_floors(rows, |r| r.imp), line, go_row);
    format!(
        "{} callers per herd, {} herds per repetition, each paired with a no-dedup herd run \
         next to it; ns/caller is the median herd, net the median pair (median of the \
         repetitions' medians).{}\n\n{}",
        config.herd_callers,
        config.herds_per_sample,
        go_note(go),
        table.finish()
    )
}

/// `spread`: throughput against the no-dedup floor, executions per round.
fn spread(rows: &[SpreadRow], config: &Config) -> String {
    let mut table = Table::figures(
        "implementation",
        &[
            "calls/s",
            "× no-dedup floor",
            "executions/round (ideal: one per key)",
        ],
    );
    for r in rows {
        table.row([
            name(r.imp, r.wrong),
            format!("{:.2} M", median(&r.calls_per_s) / 1e6),
            format!("{:.2}", median(&r.ratio)),
            format!("{:.0}", mean(r.executions.iter().copied())),
        ]);
    }
    format!(
        "{} keys × {} concurrent callers (one spawned task each), the work yields once.\n\n{}",
        config.spread_keys,
        config.spread_callers,
        table.finish()
    )
}

/// `timeouts`: executions per herd when half the callers time out, and who got the value.
fn timeouts(rows: &[TimeoutRow], config: &Config) -> String {
    let mut table = Table::new(&[
        ("implementation", Align::Left),
        ("timeout", Align::Left),
        ("executions mean", Align::Right),
        ("max", Align::Right),
        ("patient callers completed", Align::Right),
        ("hung", Align::Right),
        ("notes", Align::Left),
    ]);
    for r in rows {
        let s = &r.samples;
        let sum = |get: fn(&TimeoutSample) -> usize| s.iter().map(get).sum::<usize>();
        let timeout = if r.imp.ours() {
            "`single-flight-tokio` `call_timeout`"
        } else {
            "`tokio::time::timeout`"
        };
        table.row([
            r.imp.name().to_owned(),
            timeout.to_owned(),
            format!("{:.2}", mean(s.iter().map(|s| s.executions))),
            format!("{}", s.iter().map(|s| s.executions).max().unwrap_or(0)),
            format!("{}/{}", sum(|s| s.completed), sum(|s| s.patient)),
            format!("{}", sum(|s| s.hung)),
            timeout_notes(r),
        ]);
    }
    format!(
        "{} callers on one key, every other one (the starter among them) times out after \
         {} ms; the work is held until all have joined and the {} timeouts have fired \
         ({} rounds).\n\n{}",
        config.timeout_callers,
        config.timeout.as_millis(),
        config.timeout_callers.div_ceil(2),
        config.timeout_rounds,
        table.finish()
    )
}

/// What went wrong in a timeouts row, if anything.
fn timeout_notes(r: &TimeoutRow) -> String {
    let s = &r.samples;
    let mut notes = Vec::new();
    let wrong: usize = s.iter().map(|s| s.wrong).sum();
    if wrong > 0 {
        notes.push(format!("{wrong} wrong values"));
    }
    let early: usize = s.iter().map(|s| s.early_value).sum();
    if early > 0 {
        notes.push(format!("{early} impatient callers got a value"));
    }
    if s.iter().any(|s| s.early_timeout) {
        notes.push("a timeout fired before every caller had joined".into());
    }
    notes.join("; ")
}
