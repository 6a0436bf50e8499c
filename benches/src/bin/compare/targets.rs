//! The targets the workspace holds itself to, checked against the rows of a run.

use single_flight_benches::peers::Impl;

use crate::cli::Config;
use crate::scenarios::herd::HerdRow;
use crate::scenarios::solo::{ratio, SoloRow};
use crate::scenarios::spread::SpreadRow;
use crate::scenarios::timeouts::TimeoutRow;
use crate::scenarios::{row, Results};
use crate::stats::median;

/// One target, as measured.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) name: &'static str,
    pub(crate) goal: String,
    pub(crate) measured: String,
    pub(crate) met: bool,
}

/// The targets of the scenarios in `results`, in the order of the table.
pub(crate) fn targets(results: &Results, config: &Config) -> Vec<Target> {
    let mut out = Vec::new();
    if let Some(rows) = &results.solo {
        solo(rows, &mut out);
    }
    if let Some(rows) = &results.herd {
        for imp in [Impl::SingleFlightKeyed, Impl::SingleFlightGroup] {
            herd(rows, imp, config.herd_callers, &mut out);
        }
    }
    out.extend(results.spread.as_deref().and_then(spread));
    out.extend(results.timeouts.as_deref().and_then(timeouts));
    out
}

/// Against the safe floor, against the fastest peers, and allocations per flight.
fn solo(rows: &[SoloRow], out: &mut Vec<Target>) {
    let get = |imp| row(rows, imp, |r| r.imp);
    let ratio = |a, b| match (get(a), get(b)) {
        (Some(a), Some(b)) => ratio(a, b),
        _ => f64::NAN,
    };
    // The floor on the hasher `KeyedGroup::new()` uses: the ratio is then the registry's cost,
    // not the hasher's.
    for (name, imp, goal) in [
        (
            "solo KeyedGroup vs the safe floor (same hasher)",
            Impl::SingleFlightKeyed,
            1.3,
        ),
        ("solo Group vs the safe floor", Impl::SingleFlightGroup, 1.1),
    ] {
        let r = ratio(imp, Impl::FLOOR);
        out.push(Target {
            name,
            goal: format!("<= {goal}x"),
            measured: format!("{r:.2}x"),
            met: r <= goal,
        });
    }
    // The fastest peer by its ratio to KeyedGroup.
    let fastest = |filter: fn(Impl) -> bool| {
        rows.iter()
            .filter(|r| filter(r.imp))
            .map(|r| (ratio(r.imp, Impl::SingleFlightKeyed), r.imp))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    };
    for (name, filter) in [
        (
            "solo KeyedGroup vs the fastest crate peer",
            Impl::crate_peer as fn(Impl) -> bool,
        ),
        (
            "solo KeyedGroup vs the fastest peer incl. hand-rolled",
            |imp: Impl| imp.deduplicates() && !imp.ours(),
        ),
    ] {
        if let Some((r, peer)) = fastest(filter) {
            out.push(Target {
                name,
                goal: ">= 2x faster".into(),
                measured: format!("{r:.2}x ({})", peer.name()),
                met: r >= 2.0,
            });
        }
    }
    let allocs = |imp| get(imp).map_or(f64::NAN, |r| r.allocs_per_call);
    let (keyed, group) = (
        allocs(Impl::SingleFlightKeyed),
        allocs(Impl::SingleFlightGroup),
    );
    out.push(Target {
        name: "allocations per flight (solo)",
        goal: "<= 1".into(),
        measured: format!("KeyedGroup {keyed:.2}, Group {group:.2}"),
        met: keyed.max(group) <= 1.0 + 1e-3,
    });
}

/// Allocations per joining caller, net cost per caller and executions, for `imp`'s herd row.
fn herd(rows: &[HerdRow], imp: Impl, callers: usize, out: &mut Vec<Target>) {
    let Some(r) = row(rows, imp, |r| r.imp) else {
        return;
    };
    let keyed = imp == Impl::SingleFlightKeyed;
    let floor_allocs =
        row(rows, Impl::NoDedup, |r| r.imp).map_or(f64::NAN, |r| r.allocs_per_herd as f64);
    // The flight's one allocation aside, what the joining callers cost over the floor.
    let per_joiner = (r.allocs_per_herd as f64 - floor_allocs - 1.0) / (callers as f64 - 1.0);
    out.push(Target {
        name: if keyed {
            "allocations per joining caller (herd, KeyedGroup)"
        } else {
            "allocations per joining caller (herd, Group)"
        },
        goal: "0".into(),
        measured: format!(
            "{per_joiner:.3} ({} allocations per herd vs {floor_allocs} for the floor)",
            r.allocs_per_herd
        ),
        met: per_joiner <= 0.0005,
    });
    let net = median(&r.net);
    out.push(Target {
        name: if keyed {
            "herd net cost (KeyedGroup)"
        } else {
            "herd net cost (Group)"
        },
        goal: "<= 20 ns/caller".into(),
        measured: format!("{net:.1} ns/caller"),
        met: net <= 20.0,
    });
    let max = r.executions.iter().copied().max().unwrap_or(0);
    let min = r.executions.iter().copied().min().unwrap_or(0);
    out.push(Target {
        name: if keyed {
            "herd executions (KeyedGroup)"
        } else {
            "herd executions (Group)"
        },
        goal: "exactly 1 in every round".into(),
        measured: format!("min {min}, max {max} over {} herds", r.executions.len()),
        met: min == 1 && max == 1 && r.wrong == 0,
    });
}

/// `KeyedGroup`'s throughput against the no-dedup floor.
fn spread(rows: &[SpreadRow]) -> Option<Target> {
    let r = row(rows, Impl::SingleFlightKeyed, |r| r.imp)?;
    let ratio = median(&r.ratio);
    Some(Target {
        name: "spread throughput",
        goal: ">= 0.95x the no-dedup floor".into(),
        measured: format!("{ratio:.2}x"),
        met: ratio >= 0.95 && r.wrong == 0,
    })
}

/// `KeyedGroup` runs the work once and every patient caller gets the value.
fn timeouts(rows: &[TimeoutRow]) -> Option<Target> {
    let r = row(rows, Impl::SingleFlightKeyed, |r| r.imp)?;
    let max = r.samples.iter().map(|s| s.executions).max().unwrap_or(0);
    let all_done = r
        .samples
        .iter()
        .all(|s| s.completed == s.patient && s.hung == 0 && s.wrong == 0);
    Some(Target {
        name: "timeouts (KeyedGroup)",
        goal: "1 execution, every patient caller gets the value".into(),
        measured: format!(
            "max {max} executions; {}",
            if all_done {
                "all completed"
            } else {
                "NOT all completed"
            }
        ),
        met: max == 1 && all_done,
    })
}
