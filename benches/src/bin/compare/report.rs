//! Statistics, the machine a run measured on, the targets, and the markdown report.

use super::*;

// ---------------------------------------------------------------------------------------------
// statistics and output

pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

pub(crate) fn mean(values: impl IntoIterator<Item = usize>) -> f64 {
    let (sum, n) = values
        .into_iter()
        .fold((0usize, 0usize), |(sum, n), v| (sum + v, n + 1));
    sum as f64 / n.max(1) as f64
}

pub(crate) fn progress(args: fmt::Arguments<'_>) {
    eprintln!("compare: {args}");
}

#[derive(Debug, Default)]
pub(crate) struct Results {
    pub(crate) solo: Option<Vec<SoloRow>>,
    pub(crate) single_thread: Option<Vec<SoloRow>>,
    pub(crate) herd: Option<Vec<HerdRow>>,
    pub(crate) spread: Option<Vec<SpreadRow>>,
    pub(crate) timeouts: Option<Vec<TimeoutRow>>,
}

/// One target, as measured.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) name: &'static str,
    pub(crate) goal: String,
    pub(crate) measured: String,
    pub(crate) met: bool,
}

pub(crate) fn row<R>(rows: &[R], imp: Impl, get: impl Fn(&R) -> Impl) -> Option<&R> {
    rows.iter().find(|r| get(r) == imp)
}

pub(crate) fn targets(results: &Results, config: &Config) -> Vec<Target> {
    let mut out = Vec::new();
    if let Some(solo) = &results.solo {
        let get = |imp| row(solo, imp, |r| r.imp);
        let allocs = |imp| get(imp).map_or(f64::NAN, |r| r.allocs_per_call);
        let ratio = |a, b| match (get(a), get(b)) {
            (Some(a), Some(b)) => ratio(a, b),
            _ => f64::NAN,
        };
        // The floor on the hasher `KeyedGroup::new()` uses: the ratio is then the registry's
        // cost, not the hasher's.
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
            solo.iter()
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
        let worst = allocs(Impl::SingleFlightKeyed).max(allocs(Impl::SingleFlightGroup));
        out.push(Target {
            name: "allocations per flight (solo)",
            goal: "<= 1".into(),
            measured: format!(
                "KeyedGroup {:.2}, Group {:.2}",
                allocs(Impl::SingleFlightKeyed),
                allocs(Impl::SingleFlightGroup)
            ),
            met: worst <= 1.0 + 1e-3,
        });
    }
    if let Some(herd) = &results.herd {
        let callers = config.herd_callers as f64;
        let floor_allocs =
            row(herd, Impl::NoDedup, |r| r.imp).map_or(f64::NAN, |r| r.allocs_per_herd as f64);
        for imp in [Impl::SingleFlightKeyed, Impl::SingleFlightGroup] {
            let Some(r) = row(herd, imp, |r| r.imp) else {
                continue;
            };
            // The flight's one allocation aside, what the joining callers cost over the floor.
            let per_joiner = (r.allocs_per_herd as f64 - floor_allocs - 1.0) / (callers - 1.0);
            out.push(Target {
                name: if imp == Impl::SingleFlightKeyed {
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
                name: if imp == Impl::SingleFlightKeyed {
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
                name: if imp == Impl::SingleFlightKeyed {
                    "herd executions (KeyedGroup)"
                } else {
                    "herd executions (Group)"
                },
                goal: "exactly 1 in every round".into(),
                measured: format!("min {min}, max {max} over {} herds", r.executions.len()),
                met: min == 1 && max == 1 && r.wrong == 0,
            });
        }
    }
    if let Some(spread) = &results.spread {
        if let Some(r) = row(spread, Impl::SingleFlightKeyed, |r| r.imp) {
            let ratio = median(&r.ratio);
            out.push(Target {
                name: "spread throughput",
                goal: ">= 0.95x the no-dedup floor".into(),
                measured: format!("{ratio:.2}x"),
                met: ratio >= 0.95 && r.wrong == 0,
            });
        }
    }
    if let Some(timeouts) = &results.timeouts {
        if let Some(r) = row(timeouts, Impl::SingleFlightKeyed, |r| r.imp) {
            let max = r.samples.iter().map(|s| s.executions).max().unwrap_or(0);
            let all_done = r
                .samples
                .iter()
                .all(|s| s.completed == s.patient && s.hung == 0 && s.wrong == 0);
            out.push(Target {
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
            });
        }
    }
    out
}

pub(crate) fn yes(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "**no**"
    }
}

pub(crate) fn solo_table(md: &mut String, rows: &[SoloRow], solo_sample: Duration) {
    let ratio_to = |r: &SoloRow, imp| row(rows, imp, |r| r.imp).map_or(f64::NAN, |b| ratio(r, b));
    let _ = writeln!(
        md,
        "{} repetitions of about {} ms per row, round-robin; ns/call is the median repetition, \
         best the fastest, and a × column the ratio of the best repetitions (other processes only \
         add time: the best is the steady figure on a shared machine).\n",
        rows.first().map_or(0, |r| r.ns.len()),
        solo_sample.as_millis(),
    );
    md.push_str(
        "| implementation | ns/call | best | allocations/call | × KeyedGroup | × safe floor, same hasher |\n",
    );
    md.push_str("|---|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let ns = median(&r.ns);
        let best = best(r);
        // Our rows against the floor on their own hasher; the others have no such floor.
        let floor = match r.imp {
            Impl::SingleFlightKeyed | Impl::SingleFlightGroup => {
                format!("{:.2}", ratio_to(r, Impl::FLOOR))
            }
            Impl::KeyedWith(hasher) => format!("{:.2}", ratio_to(r, Impl::Floor(hasher))),
            _ => String::new(),
        };
        let _ = writeln!(
            md,
            "| {} | {ns:.1} | {best:.1} | {:.2} | {:.2} | {floor} |",
            r.imp.name(),
            r.allocs_per_call,
            ratio_to(r, Impl::SingleFlightKeyed),
        );
    }
}

/// The generated markdown, one block per scenario (and one for the targets), each opening
/// with the machine and run it came from: `BENCHMARKS.md` places each block in the section
/// that answers its question, and a run of some scenarios replaces only their blocks.
pub(crate) fn markdown(
    results: &Results,
    config: &Config,
    machine: &Machine,
    total: Duration,
) -> Vec<(&'static str, String)> {
    let header = format!(
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
    );
    let mut blocks = Vec::new();
    let mut block = |name: &'static str, md: String| {
        if !md.is_empty() {
            blocks.push((name, format!("{header}{md}")));
        }
    };
    let targets = targets(results, config);
    let mut md = String::new();
    if !targets.is_empty() {
        md.push_str("| target | goal | measured | met |\n|---|---|---|---|\n");
        for t in &targets {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                t.name,
                t.goal,
                t.measured,
                yes(t.met)
            );
        }
    }
    block("targets", std::mem::take(&mut md));
    if let Some(rows) = &results.solo {
        solo_table(&mut md, rows, config.solo_sample);
        block("solo", std::mem::take(&mut md));
    }
    if let Some(rows) = &results.single_thread {
        solo_table(&mut md, rows, config.solo_sample);
        block("single-thread", std::mem::take(&mut md));
    }
    if let Some(rows) = &results.herd {
        let _ = writeln!(
            md,
            "{} callers per herd, {} herds per repetition, each paired with a no-dedup herd run \
             next to it; ns/caller is the median herd, net the median pair (median of the \
             repetitions' medians).\n",
            config.herd_callers, config.herds_per_sample
        );
        md.push_str(
            "| implementation | ns/caller | net ns/caller vs no-dedup | net min–max | executions/herd mean | max | allocations/caller | net allocations/herd |\n",
        );
        md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        let floor_allocs = row(rows, Impl::NoDedup, |r| r.imp).map_or(0, |r| r.allocs_per_herd);
        for r in rows {
            let min = r.net.iter().copied().fold(f64::INFINITY, f64::min);
            let max = r.net.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let _ = writeln!(
                md,
                "| {} | {:.1} | {:+.1} | {min:+.0}–{max:+.0} | {:.2} | {} | {:.3} | {:+} |{}",
                r.imp.name(),
                median(&r.ns),
                median(&r.net),
                mean(r.executions.iter().copied()),
                r.executions.iter().copied().max().unwrap_or(0),
                r.allocs_per_herd as f64 / config.herd_callers as f64,
                r.allocs_per_herd as i64 - floor_allocs as i64,
                if r.wrong > 0 {
                    format!(" {} wrong values", r.wrong)
                } else {
                    String::new()
                }
            );
        }
        block("herd", std::mem::take(&mut md));
    }
    if let Some(rows) = &results.spread {
        let _ = writeln!(
            md,
            "{} keys × {} concurrent callers (one spawned task each), the work yields once.\n",
            config.spread_keys, config.spread_callers
        );
        md.push_str(
            "| implementation | calls/s | × no-dedup floor | executions/round (ideal: one per key) |\n",
        );
        md.push_str("|---|---:|---:|---:|\n");
        for r in rows {
            let _ = writeln!(
                md,
                "| {} | {:.2} M | {:.2} | {:.0} |{}",
                r.imp.name(),
                median(&r.calls_per_s) / 1e6,
                median(&r.ratio),
                mean(r.executions.iter().copied()),
                if r.wrong > 0 {
                    format!(" {} wrong values", r.wrong)
                } else {
                    String::new()
                }
            );
        }
        block("spread", std::mem::take(&mut md));
    }
    if let Some(rows) = &results.timeouts {
        let _ = writeln!(
            md,
            "{} callers on one key, every other one (the starter among them) times out after \
             {} ms; the work is held until all have joined and the {} timeouts have fired \
             ({} rounds).\n",
            config.timeout_callers,
            config.timeout.as_millis(),
            config.timeout_callers.div_ceil(2),
            config.timeout_rounds
        );
        md.push_str(
            "| implementation | timeout | executions mean | max | patient callers completed | hung | notes |\n",
        );
        md.push_str("|---|---|---:|---:|---:|---:|---|\n");
        for r in rows {
            let s = &r.samples;
            let completed: usize = s.iter().map(|s| s.completed).sum();
            let patient: usize = s.iter().map(|s| s.patient).sum();
            let hung: usize = s.iter().map(|s| s.hung).sum();
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
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {} | {completed}/{patient} | {hung} | {} |",
                r.imp.name(),
                if r.imp.ours() {
                    "`single-flight-tokio` `call_timeout`"
                } else {
                    "`tokio::time::timeout`"
                },
                mean(s.iter().map(|s| s.executions)),
                s.iter().map(|s| s.executions).max().unwrap_or(0),
                notes.join("; ")
            );
        }
        block("timeouts", md);
    }
    blocks
}
