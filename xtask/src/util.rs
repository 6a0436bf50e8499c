//! Running commands: the workspace root, cargo from `$CARGO`, `$ cmd` headers and timings.

use std::env;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Errors are messages for the person at the terminal.
pub(crate) type Result<T, E = String> = std::result::Result<T, E>;

/// The workspace root (the parent of `xtask/`).
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ lives in the workspace root")
        .to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the root) or `<root>/target`.
pub(crate) fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => project_root().join(dir),
        _ => project_root().join("target"),
    }
}

/// A `cargo` command (the cargo that runs xtask, from `$CARGO`) in the workspace root.
pub(crate) fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(project_root()).args(args);
    cmd
}

/// `ours`, after whatever the user already has in the flags variable `var` (e.g. `RUSTFLAGS`).
pub(crate) fn extend_flags(var: &str, ours: &str) -> OsString {
    match env::var_os(var) {
        Some(existing) if !existing.is_empty() => {
            let mut flags = existing;
            flags.push(" ");
            flags.push(ours);
            flags
        }
        _ => ours.into(),
    }
}

/// Arguments to pass on, without a leading `--` separator.
pub(crate) fn forwarded(args: &[String]) -> &[String] {
    match args.first() {
        Some(first) if first == "--" => &args[1..],
        _ => args,
    }
}

/// Runs `cmd` with inherited stdio after printing `$ cmd`; fails unless it exits with 0.
pub(crate) fn run(cmd: &mut Command) -> Result<Duration> {
    let shown = display(cmd);
    println!("$ {shown}");
    let start = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("could not start `{shown}`: {e}"))?;
    let elapsed = start.elapsed();
    println!(
        "  ({} in {})",
        status_word(status.success()),
        fmt_duration(elapsed)
    );
    if status.success() {
        Ok(elapsed)
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

fn status_word(success: bool) -> &'static str {
    if success {
        "ok"
    } else {
        "FAILED"
    }
}

/// The command as a shell line: changed environment, program name, quoted arguments.
pub(crate) fn display(cmd: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            parts.push(format!(
                "{}={}",
                key.to_string_lossy(),
                quote(&value.to_string_lossy())
            ));
        }
    }
    let program = Path::new(cmd.get_program());
    let program = program
        .file_stem()
        .unwrap_or(program.as_os_str())
        .to_string_lossy();
    parts.push(program.into_owned());
    parts.extend(cmd.get_args().map(|arg| quote(&arg.to_string_lossy())));
    parts.join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=.,/:+@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `0.42s`, `12.3s`, `2m 05s`.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.2}s")
    } else if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_and_shows_env() {
        let mut cmd = Command::new("/some/toolchain/bin/cargo");
        cmd.env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--workspace"]);
        assert_eq!(
            display(&cmd),
            "RUSTDOCFLAGS='-D warnings' cargo doc --workspace"
        );
    }

    #[test]
    fn forwarded_strips_one_separator() {
        let args = ["--".to_owned(), "--".to_owned(), "x".to_owned()];
        assert_eq!(forwarded(&args), &args[1..]);
        assert_eq!(forwarded(&args[2..]), &args[2..]);
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(Duration::from_millis(420)), "0.42s");
        assert_eq!(fmt_duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(fmt_duration(Duration::from_secs(125)), "2m 05s");
    }
}
