//! The command line: scenarios, the configuration they run with, and the runtimes.

use std::path::PathBuf;
use std::time::Duration;

use single_flight_benches::peers::Impl;
use tokio::runtime::Runtime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    Solo,
    SingleThread,
    Herd,
    Spread,
    Timeouts,
}

impl Scenario {
    pub(crate) const ALL: [Scenario; 5] = [
        Scenario::Solo,
        Scenario::SingleThread,
        Scenario::Herd,
        Scenario::Spread,
        Scenario::Timeouts,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Solo => "solo",
            Scenario::SingleThread => "single-thread",
            Scenario::Herd => "herd",
            Scenario::Spread => "spread",
            Scenario::Timeouts => "timeouts",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) quick: bool,
    pub(crate) json: bool,
    pub(crate) write: bool,
    pub(crate) out: PathBuf,
    pub(crate) results: PathBuf,
    pub(crate) help: bool,
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) impls: Vec<Impl>,
    /// Whether to add Go's x/sync rows (when `go` is installed): not with `--impls` or
    /// `--no-go`.
    pub(crate) go: bool,
    pub(crate) reps: usize,
    /// Target duration of one solo sample (the call count is calibrated per implementation);
    /// solo scenarios run [`SOLO_REPS`](crate::scenarios::solo::SOLO_REPS) times `reps` repetitions.
    pub(crate) solo_sample: Duration,
    pub(crate) herd_callers: usize,
    pub(crate) herds_per_sample: usize,
    pub(crate) spread_keys: u64,
    pub(crate) spread_callers: usize,
    pub(crate) timeout_callers: usize,
    pub(crate) timeout: Duration,
    pub(crate) timeout_rounds: usize,
}

impl Config {
    pub(crate) fn parse(args: impl Iterator<Item = String>) -> Result<Config, String> {
        let mut quick = false;
        let mut json = false;
        let mut write = None;
        let mut out = None;
        let mut results = None;
        let mut help = false;
        let mut reps = None;
        let mut scenarios = Scenario::ALL.to_vec();
        let mut impls = Impl::ALL.to_vec();
        let mut go = true;
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--json" => json = true,
                "--no-go" => go = false,
                "--write" => write = Some(true),
                "--no-write" => write = Some(false),
                "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a path")?)),
                "--results" => {
                    results = Some(PathBuf::from(args.next().ok_or("--results needs a path")?));
                }
                "--reps" => {
                    let n = args.next().ok_or("--reps needs a number")?;
                    reps = Some(
                        n.parse::<usize>()
                            .ok()
                            .filter(|&n| n > 0)
                            .ok_or(format!("--reps: `{n}` is not a positive number"))?,
                    );
                }
                "--only" => {
                    let list = args.next().ok_or("--only needs a list")?;
                    scenarios = list
                        .split(',')
                        .map(|name| {
                            Scenario::ALL
                                .into_iter()
                                .find(|s| s.name() == name.trim())
                                .ok_or(format!("--only: unknown scenario `{name}`"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--impls" => {
                    go = false;
                    let list = args.next().ok_or("--impls needs a list")?;
                    impls = list
                        .split(',')
                        .map(|name| {
                            Impl::from_short(name.trim())
                                .ok_or(format!("--impls: unknown implementation `{name}`"))
                        })
                        .collect::<Result<_, _>>()?;
                    // Ratios and net costs are taken against the floor.
                    for floor in [Impl::NoDedup, Impl::FLOOR] {
                        if !impls.contains(&floor) {
                            impls.push(floor);
                        }
                    }
                }
                "-h" | "--help" => help = true,
                "--" => {}
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        let default_out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS.md"));
        let default_results = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/results"));
        Ok(Config {
            quick,
            json,
            // Only a full run of everything replaces the numbers in BENCHMARKS.md by default.
            write: write.unwrap_or(
                !quick && scenarios.len() == Scenario::ALL.len() && impls.len() == Impl::ALL.len(),
            ),
            out: out.unwrap_or(default_out),
            results: results.unwrap_or(default_results),
            help,
            scenarios,
            impls,
            go,
            reps: reps.unwrap_or(if quick { 3 } else { 15 }),
            // Short samples, many repetitions: a ratio is taken within each repetition, and
            // rows close in time share the same machine noise.
            solo_sample: Duration::from_millis(if quick { 2 } else { 10 }),
            herd_callers: 1_000,
            // Many herds per repetition: the per-joiner figure is a difference of two herds'
            // times, and only a median over many pairs holds still on a shared machine.
            herds_per_sample: if quick { 4 } else { 40 },
            spread_keys: if quick { 2_000 } else { 10_000 },
            spread_callers: 8,
            timeout_callers: 1_000,
            timeout: Duration::from_millis(50),
            timeout_rounds: if quick { 2 } else { 5 },
        })
    }
}

pub(crate) fn multi_thread() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

pub(crate) fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime")
}
