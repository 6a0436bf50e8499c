//! The JSON output (a minimal writer: the benches need no serde).

use std::fmt;
use std::time::Duration;

use single_flight_benches::machine::{load_average, Machine};
use single_flight_benches::peers::Impl;

use crate::cli::Config;
use crate::go::GoRows;
use crate::scenarios::herd::HerdRow;
use crate::scenarios::solo::{best, SoloRow};
use crate::scenarios::spread::SpreadRow;
use crate::scenarios::timeouts::{TimeoutRow, TimeoutSample};
use crate::scenarios::Results;
use crate::stats::median;
use crate::targets::{targets, Target};

/// A minimal JSON writer (the benches need no serde).
pub(crate) enum Json {
    Num(f64),
    Str(String),
    Bool(bool),
    Arr(Vec<Json>),
    Obj(Vec<(&'static str, Json)>),
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Num(n) if n.is_finite() => write!(f, "{n}"),
            Json::Num(_) => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Str(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
            Json::Arr(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Obj(fields) => {
                f.write_str("{")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{v}", Json::Str((*k).to_owned()))?;
                }
                f.write_str("}")
            }
        }
    }
}

pub(crate) fn nums(values: &[f64]) -> Json {
    Json::Arr(values.iter().map(|&v| Json::Num(v)).collect())
}

pub(crate) fn counts(values: impl IntoIterator<Item = usize>) -> Json {
    Json::Arr(values.into_iter().map(|v| Json::Num(v as f64)).collect())
}

/// The run as JSON: the machine and the run, then one array per scenario, then the targets.
pub(crate) fn json(results: &Results, config: &Config, machine: &Machine, total: Duration) -> Json {
    let mut fields = vec![
        ("date", Json::Str(machine.date.clone())),
        ("cpus", Json::Num(machine.cpus as f64)),
        ("cpu_model", Json::Str(machine.cpu_model.clone())),
        ("rustc", Json::Str(machine.rustc.clone())),
        ("load_average_start", Json::Str(machine.load_before.clone())),
        ("load_average_end", Json::Str(load_average())),
        ("quick", Json::Bool(config.quick)),
        ("repetitions", Json::Num(config.reps as f64)),
        ("seconds", Json::Num(total.as_secs_f64())),
    ];
    let sections = [
        (
            "solo",
            results.solo.as_deref().map(|rows| each_of(rows, &solo)),
        ),
        (
            "single_thread",
            results
                .single_thread
                .as_deref()
                .map(|rows| each_of(rows, &solo)),
        ),
        (
            "herd",
            results
                .herd
                .as_deref()
                .map(|rows| each_of(rows, &|r| herd(r, config))),
        ),
        (
            "spread",
            results
                .spread
                .as_deref()
                .map(|rows| each_of(rows, &|r| spread(r, config))),
        ),
        (
            "timeouts",
            results
                .timeouts
                .as_deref()
                .map(|rows| each_of(rows, &timeouts)),
        ),
    ];
    fields.extend(
        sections
            .into_iter()
            .filter_map(|(name, json)| Some((name, json?))),
    );
    if let Some(rows) = &results.go {
        fields.push(("go", go(rows)));
    }
    let targets = targets(results, config).into_iter().map(target).collect();
    fields.push(("targets", Json::Arr(targets)));
    Json::Obj(fields)
}

/// An array of one object per row.
fn each_of<R>(rows: &[R], each: &dyn Fn(&R) -> Json) -> Json {
    Json::Arr(rows.iter().map(each).collect())
}

fn name(imp: Impl) -> (&'static str, Json) {
    ("implementation", Json::Str(imp.name().into()))
}

fn solo(r: &SoloRow) -> Json {
    Json::Obj(vec![
        name(r.imp),
        ("ns_per_call_median", Json::Num(median(&r.ns))),
        ("ns_per_call_best", Json::Num(best(r))),
        ("ns_per_call", nums(&r.ns)),
        ("calls_per_sample", Json::Num(r.calls as f64)),
        ("allocations_per_call", Json::Num(r.allocs_per_call)),
    ])
}

fn herd(r: &HerdRow, config: &Config) -> Json {
    Json::Obj(vec![
        name(r.imp),
        ("callers", Json::Num(config.herd_callers as f64)),
        (
            "herds_per_repetition",
            Json::Num(config.herds_per_sample as f64),
        ),
        ("ns_per_caller_median", Json::Num(median(&r.ns))),
        ("net_ns_per_caller_median", Json::Num(median(&r.net))),
        ("ns_per_caller", nums(&r.ns)),
        ("net_ns_per_caller", nums(&r.net)),
        ("executions", counts(r.executions.iter().copied())),
        ("allocations_per_herd", Json::Num(r.allocs_per_herd as f64)),
        ("wrong_values", Json::Num(r.wrong as f64)),
    ])
}

fn spread(r: &SpreadRow, config: &Config) -> Json {
    Json::Obj(vec![
        name(r.imp),
        ("keys", Json::Num(config.spread_keys as f64)),
        ("callers_per_key", Json::Num(config.spread_callers as f64)),
        ("calls_per_s_median", Json::Num(median(&r.calls_per_s))),
        ("ratio_to_floor_median", Json::Num(median(&r.ratio))),
        ("calls_per_s", nums(&r.calls_per_s)),
        ("executions", counts(r.executions.iter().copied())),
        ("wrong_values", Json::Num(r.wrong as f64)),
    ])
}

fn timeouts(r: &TimeoutRow) -> Json {
    let rounds = r.samples.iter().map(timeout_round).collect();
    Json::Obj(vec![name(r.imp), ("rounds", Json::Arr(rounds))])
}

fn timeout_round(s: &TimeoutSample) -> Json {
    Json::Obj(vec![
        ("executions", Json::Num(s.executions as f64)),
        ("patient", Json::Num(s.patient as f64)),
        ("completed", Json::Num(s.completed as f64)),
        ("timed_out", Json::Num(s.timed_out as f64)),
        ("impatient_got_value", Json::Num(s.early_value as f64)),
        ("early_timeout", Json::Bool(s.early_timeout)),
        ("wrong_values", Json::Num(s.wrong as f64)),
        ("hung", Json::Num(s.hung as f64)),
        ("ms", Json::Num(s.elapsed.as_secs_f64() * 1e3)),
    ])
}

fn go(go: &GoRows) -> Json {
    let mut fields = vec![
        ("implementation", Json::Str(go.name())),
        ("go", Json::Str(go.version.clone())),
        ("x_sync", Json::Str(go.x_sync.clone())),
    ];
    if let Some(s) = &go.solo {
        let solo = vec![
            ("ns_per_call_median", Json::Num(s.ns_median)),
            ("ns_per_call_best", Json::Num(s.ns_best)),
            ("allocations_per_call", Json::Num(s.allocs_per_call)),
        ];
        fields.push(("solo", Json::Obj(solo)));
    }
    if let Some(h) = &go.herd {
        let herd = vec![
            ("ns_per_caller_median", Json::Num(h.ns_per_caller)),
            ("net_ns_per_caller_median", Json::Num(h.net_ns_per_caller)),
            ("executions_mean", Json::Num(h.executions_mean)),
            ("executions_max", Json::Num(h.executions_max as f64)),
            ("allocations_per_caller", Json::Num(h.allocs_per_caller)),
        ];
        fields.push(("herd", Json::Obj(herd)));
    }
    Json::Obj(fields)
}

fn target(t: Target) -> Json {
    Json::Obj(vec![
        ("name", Json::Str(t.name.into())),
        ("goal", Json::Str(t.goal)),
        ("measured", Json::Str(t.measured)),
        ("met", Json::Bool(t.met)),
    ])
}
