//! The machine a run measured on, for the line above each table: on a shared 2-core machine
//! the load average says how far to trust a wall-clock figure.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The machine and the start of a run.
#[derive(Debug)]
pub struct Machine {
    /// The day (UTC) the run started.
    pub date: String,
    /// Available CPUs.
    pub cpus: usize,
    /// `/proc/cpuinfo`'s model name.
    pub cpu_model: String,
    /// `rustc -V`.
    pub rustc: String,
    /// `/proc/loadavg`'s one-minute figure when the run started.
    pub load_before: String,
}

impl Machine {
    /// The machine now (call it when the run starts).
    pub fn probe() -> Machine {
        let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("-V")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown (`rustc -V` failed)".into());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split(':').nth(1))
                    .map(|model| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            load_before: load_average(),
            date: today(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            rustc,
        }
    }
}

/// The one-minute load average (`?` where `/proc/loadavg` is missing): a busy machine (other
/// builds running) makes every timing noisier.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Today's date (UTC) as `YYYY-MM-DD`, from the days since the epoch (Howard Hinnant's
/// `civil_from_days`).
pub fn today() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

impl Machine {
    /// "Measured on DATE — N CPUs (MODEL), RUSTC; load average X at the start, Y at the end."
    pub fn line(&self) -> String {
        format!(
            "Measured on {} — {} CPUs ({}), {}; load average {} at the start, {} at the end.",
            self.date,
            self.cpus,
            self.cpu_model,
            self.rustc,
            self.load_before,
            load_average()
        )
    }
}
