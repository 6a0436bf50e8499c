//! `--write`: the tables into the `http` block of `BENCHMARKS.md`, the herd's and the leader
//! abort's figures as JSON, and their charts, into `benches/results`.

use std::path::Path;

use single_flight_benches::chart::{self, Bar, Bars};
use single_flight_benches::markdown;

use crate::abort::{AbortRow, FOLLOWERS};
use crate::{Front, Row, REPORT};

/// Writes the block, the JSON and the charts of a run.
pub(crate) fn write(
    herd: &[Row],
    abort: &[(Front, AbortRow)],
    machine: &str,
) -> Result<(), String> {
    let md = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS.md"));
    markdown::write_markdown(md, &[("http", format!("{machine}\n\n{}", report()))])
        .map_err(|err| format!("{}: {err}", md.display()))?;
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/results"));
    std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let path = dir.join("http.json");
    std::fs::write(&path, json(herd, abort)).map_err(|err| format!("{}: {err}", path.display()))?;
    chart::bars(&dir.join("http-cpu.svg"), &cpu_chart(herd))?;
    chart::bars(&dir.join("http-abort.svg"), &abort_chart(abort))?;
    eprintln!(
        "http: wrote {}, {}, http-cpu.svg and http-abort.svg",
        md.display(),
        path.display()
    );
    Ok(())
}

/// What the run printed, without its title: `BENCHMARKS.md`'s section has its own.
fn report() -> String {
    REPORT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .lines()
        .skip_while(|line| line.starts_with("## ") || line.is_empty())
        .map(|line| format!("{line}\n"))
        .collect()
}

fn json(herd: &[Row], abort: &[(Front, AbortRow)]) -> String {
    let herd: Vec<String> = herd
        .iter()
        .map(|row| {
            format!(
                "{{\"front\":\"{}\",\"requests_per_s\":{:.0},\"upstream_calls\":{},\"cpu_us_per_request\":{},\"failed\":{}}}",
                row.front.name(),
                row.per_second,
                row.upstream_calls,
                row.cpu_micros.map_or("null".into(), |cpu| format!("{cpu:.1}")),
                row.failed
            )
        })
        .collect();
    let abort: Vec<String> = abort
        .iter()
        .map(|(front, row)| {
            format!(
                "{{\"front\":\"{}\",\"rounds\":{},\"followers_per_round\":{FOLLOWERS},\"followers_served\":{},\"followers_failed\":{},\"upstream_calls\":{},\"upstream_calls_dropped\":{},\"follower_ms_p50\":{:.1}}}",
                front.name(),
                row.rounds,
                row.served,
                row.failed,
                row.upstream_calls,
                row.dropped,
                row.follower_ms
            )
        })
        .collect();
    format!(
        "{{\"herd\":[{}],\"leader_abort\":[{}]}}\n",
        herd.join(","),
        abort.join(",")
    )
}

fn cpu_chart(herd: &[Row]) -> Bars<'static> {
    Bars {
        title: "HTTP herd, one URL: CPU per request while 200 clients wait on a 20 ms upstream",
        unit: "CPU µs per request, client and server (shorter is better)",
        bars: herd
            .iter()
            .map(|row| Bar {
                label: row.front.name().into(),
                value: row.cpu_micros.unwrap_or(f64::NAN),
                ours: matches!(row.front, Front::Tower),
            })
            .collect(),
        reference: None,
        log: false,
        cap: None,
    }
}

fn abort_chart(abort: &[(Front, AbortRow)]) -> Bars<'static> {
    Bars {
        title: "HTTP leader abort: followers served the upstream's response",
        unit: "% of the followers that got status 200 and the body (longer is better)",
        bars: abort
            .iter()
            .map(|(front, row)| Bar {
                label: front.name().into(),
                value: 100.0 * row.served as f64 / (row.rounds * FOLLOWERS).max(1) as f64,
                ours: matches!(front, Front::Tower),
            })
            .collect(),
        reference: None,
        log: false,
        cap: None,
    }
}
