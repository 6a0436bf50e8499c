//! Go's `golang.org/x/sync/singleflight`, an optional peer: `benches/go/singleflight.go` run
//! with the Go toolchain when there is one, its rows added to the solo and herd tables.
//!
//! The Go program runs as a process of its own, after the Rust rows of the scenario (not
//! interleaved with them as the Rust rows are with each other), on `GOMAXPROCS=2` like tokio's
//! two workers. Without `go` (or without the x/sync sources) the rows are left out and the
//! command that installs them is printed.

use std::process::Command;

use crate::cli::Config;

/// The Debian packages the Go rows need (Go and x/sync's sources, no module download).
pub(crate) const INSTALL: &str = "apt-get install -y golang-go golang-golang-x-sync-dev";

/// Where Debian's `golang-golang-x-sync-dev` puts its sources (a GOPATH).
const GOPATH: &str = "/usr/share/gocode";

/// The row label.
pub(crate) const NAME: &str = "Go x/sync singleflight";

/// What the Go program measured.
#[derive(Debug, Default)]
pub(crate) struct GoRows {
    /// `go1.19.8`.
    pub(crate) version: String,
    /// x/sync's version (Debian's package version), if known.
    pub(crate) x_sync: String,
    pub(crate) solo: Option<GoSolo>,
    pub(crate) herd: Option<GoHerd>,
}

/// The solo row: one goroutine, `Do` with a distinct key each call.
#[derive(Debug)]
pub(crate) struct GoSolo {
    pub(crate) ns_median: f64,
    pub(crate) ns_best: f64,
    pub(crate) allocs_per_call: f64,
}

/// The herd row: `callers` goroutines on one key through `DoChan`.
#[derive(Debug)]
pub(crate) struct GoHerd {
    pub(crate) ns_per_caller: f64,
    pub(crate) net_ns_per_caller: f64,
    pub(crate) executions_mean: f64,
    pub(crate) executions_max: usize,
    pub(crate) allocs_per_caller: f64,
}

impl GoRows {
    /// The row label with the versions.
    pub(crate) fn name(&self) -> String {
        format!("{NAME} {} ({})", self.x_sync, self.version)
    }
}

/// Runs the Go program with the run's settings; `None` (and a note on stderr) without Go.
pub(crate) fn run(config: &Config) -> Option<GoRows> {
    let program = concat!(env!("CARGO_MANIFEST_DIR"), "/go/singleflight.go");
    let output = Command::new("go")
        .args(["run", program])
        .args(["-reps", &config.reps.to_string()])
        .args(["-sample-ms", &config.solo_sample.as_millis().to_string()])
        .args(["-herds", &config.herds_per_sample.to_string()])
        .args(["-callers", &config.herd_callers.to_string()])
        .env("GOPATH", GOPATH)
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOMAXPROCS", "2")
        .output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            eprintln!(
                "compare: the Go rows are left out: `go run {program}` failed (x/sync's sources \
                 missing? `{INSTALL}`):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            return None;
        }
        Err(_) => {
            eprintln!("compare: no `go` on PATH: the Go rows are left out (install: `{INSTALL}`)");
            return None;
        }
    };
    Some(parse(&String::from_utf8_lossy(&output.stdout)))
}

/// Reads the program's `name key=value ...` lines.
fn parse(stdout: &str) -> GoRows {
    let mut rows = GoRows {
        x_sync: x_sync_version(),
        ..GoRows::default()
    };
    for line in stdout.lines() {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or_default();
        let fields: Vec<(&str, &str)> = words.filter_map(|w| w.split_once('=')).collect();
        let get = |key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let num = |key: &str| get(key).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
        match name {
            "go" => rows.version = get("version").unwrap_or("go").to_owned(),
            "solo" => {
                rows.solo = Some(GoSolo {
                    ns_median: num("ns_median"),
                    ns_best: num("ns_best"),
                    allocs_per_call: num("allocations_per_call"),
                });
            }
            "herd" => {
                rows.herd = Some(GoHerd {
                    ns_per_caller: num("ns_per_caller"),
                    net_ns_per_caller: num("net_ns_per_caller"),
                    executions_mean: num("executions_mean"),
                    executions_max: num("executions_max") as usize,
                    allocs_per_caller: num("allocations_per_caller"),
                });
            }
            _ => {}
        }
    }
    rows
}

/// x/sync's version from Debian's package database (`0.1.0`), or `""`.
fn x_sync_version() -> String {
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap_or_default();
    status
        .split("\n\n")
        .find(|entry| entry.starts_with("Package: golang-golang-x-sync-dev\n"))
        .and_then(|entry| entry.lines().find_map(|l| l.strip_prefix("Version: ")))
        .map(|version| version.split('-').next().unwrap_or(version).to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_s_lines_become_rows() {
        let rows = parse(
            "go version=go1.19.8 gomaxprocs=2\n\
             solo reps=9 calls=42983 ns_median=237.1 ns_best=222.1 allocations_per_call=1.99\n\
             herd reps=3 herds=4 callers=1000 ns_per_caller=441.0 net_ns_per_caller=125.0 \
             executions_mean=1.00 executions_max=1 allocations_per_caller=3.021\n",
        );
        assert_eq!(rows.version, "go1.19.8");
        let solo = rows.solo.expect("a solo row");
        assert_eq!((solo.ns_median, solo.ns_best), (237.1, 222.1));
        let herd = rows.herd.expect("a herd row");
        assert_eq!((herd.net_ns_per_caller, herd.executions_max), (125.0, 1));
    }
}
