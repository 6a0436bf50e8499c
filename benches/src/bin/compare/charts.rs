//! The charts of a run, beside its JSON: what the solo and herd tables show, as pictures.

use std::path::Path;

use single_flight_benches::chart::{self, Bar, Bars};

use single_flight_benches::peers::Impl;

use crate::go::GoRows;
use crate::scenarios::herd::HerdRow;
use crate::scenarios::solo::best;
use crate::scenarios::{before_the_floors, row, Results};
use crate::stats::mean;

/// Writes the charts of the scenarios in `results` into `dir`; returns the files written.
pub(crate) fn charts(results: &Results, dir: &Path) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    let go = results.go.as_ref();
    if let Some(rows) = &results.solo {
        // The best repetitions, as the ratios in the table.
        let floor = row(rows, Impl::FLOOR, |r| r.imp).map(best);
        let go = go.and_then(|go| Some(go_bar(go, go.solo.as_ref()?.ns_best)));
        let (peers, floors) = before_the_floors(rows, |r| r.imp);
        let bars = peers.iter().map(|r| bar(r.imp, best(r))).chain(go);
        // The safe floors are the line, not bars.
        let floors = floors.iter().filter(|r| !matches!(r.imp, Impl::Floor(_)));
        let chart = Bars {
            title: "Solo call: ns per call (fresh key, ready work; tokio, 2 workers)",
            unit: "ns per call (best of the repetitions; shorter is better)",
            bars: bars.chain(floors.map(|r| bar(r.imp, best(r)))).collect(),
            reference: floor.map(|ns| (Impl::FLOOR.name().to_owned(), ns)),
            log: false,
            // moka's ~30x would leave the rest as slivers: the axis ends at 5x the floor.
            cap: floor.map(|ns| ns * 5.0),
        };
        written.push(write(dir, "solo.svg", &chart)?);
    }
    if let Some(rows) = &results.herd {
        let go = go.and_then(|go| Some(go_bar(go, go.herd.as_ref()?.executions_mean)));
        let (peers, floors) = before_the_floors(rows, |r| r.imp);
        let bar = |r: &HerdRow| bar(r.imp, mean(r.executions.iter().copied()));
        let bars = peers
            .iter()
            .map(bar)
            .chain(go)
            .chain(floors.iter().map(bar));
        let title = "Herd of 1,000 callers on one key: executions of the work";
        written.push(write(
            dir,
            "herd-executions.svg",
            &executions(title, bars.collect()),
        )?);
    }
    if let Some(rows) = &results.timeouts {
        let bars = rows
            .iter()
            .map(|r| bar(r.imp, mean(r.samples.iter().map(|s| s.executions))))
            .collect();
        let title = "Herd of 1,000 where every other caller, the starter first, times out";
        written.push(write(
            dir,
            "timeouts-executions.svg",
            &executions(title, bars),
        )?);
    }
    Ok(written)
}

/// An implementation's bar.
fn bar(imp: Impl, value: f64) -> Bar {
    Bar {
        label: imp.name().into(),
        value,
        ours: imp.ours(),
    }
}

/// Go's bar.
fn go_bar(go: &GoRows, value: f64) -> Bar {
    Bar {
        label: go.name(),
        value,
        ours: false,
    }
}

/// Executions per herd, on a log scale: the peers that run the work hundreds of times show.
fn executions(title: &str, bars: Vec<Bar>) -> Bars<'_> {
    Bars {
        title,
        unit: "executions per herd (mean; log scale; 1 is the goal)",
        bars,
        reference: None,
        log: true,
        cap: None,
    }
}

fn write(dir: &Path, file: &str, chart: &Bars<'_>) -> Result<String, String> {
    let path = dir.join(file);
    chart::bars(&path, chart)?;
    Ok(path.display().to_string())
}
