//! Examples smoke run: build every example once, then run each with a timeout and check its output.

use std::env;
use std::fs;
use std::io::{self, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::manifest;
use crate::util::{self, Result};

const PACKAGE: &str = "single-flight-examples";
const MANIFEST: &str = "examples/Cargo.toml";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The `[[example]]` names in `examples/Cargo.toml` (a missing file is an error, not a skip).
pub(crate) fn names() -> Result<Vec<String>> {
    let path = util::project_root().join(MANIFEST);
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(manifest::values(&text, "[[example]]", "name"))
}

/// Builds the examples in release mode, then runs each one; fails if any fails.
pub(crate) fn smoke(names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Err(format!("no `[[example]]` with a `name` in {MANIFEST}"));
    }
    let timeout = timeout()?;
    util::run(&mut util::cargo([
        "build",
        "--release",
        "-p",
        PACKAGE,
        "--examples",
    ]))?;

    let mut failed = Vec::new();
    for name in names {
        if let Err(reason) = run_one(name, timeout) {
            println!("  example `{name}` FAILED: {reason}");
            failed.push(format!("{name} ({reason})"));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("examples failed: {}", failed.join(", ")))
    }
}

/// `$XTASK_EXAMPLE_TIMEOUT` seconds, or two minutes.
fn timeout() -> Result<Duration> {
    match env::var("XTASK_EXAMPLE_TIMEOUT") {
        Ok(secs) if !secs.is_empty() => secs
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("XTASK_EXAMPLE_TIMEOUT={secs:?} is not a number of seconds")),
        _ => Ok(DEFAULT_TIMEOUT),
    }
}

fn run_one(name: &str, timeout: Duration) -> Result<()> {
    let mut cmd = util::cargo(["run", "--release", "-q", "-p", PACKAGE, "--example", name]);
    let shown = util::display(&cmd);
    println!("$ {shown}");
    let run =
        run_with_timeout(&mut cmd, timeout).map_err(|e| format!("could not run `{shown}`: {e}"))?;
    print_indented(&run.stdout);
    print_indented(&run.stderr);
    println!("  (took {})", util::fmt_duration(run.elapsed));

    if run.timed_out {
        return Err(format!("timed out after {}", util::fmt_duration(timeout)));
    }
    if !run.status.success() {
        return Err(format!("exited with {}", run.status));
    }
    for output in [&run.stdout, &run.stderr] {
        if let Some(line) = suspicious_line(output) {
            return Err(format!("its output has the line {:?}", line.trim_end()));
        }
    }
    Ok(())
}

/// What [`run_with_timeout`] saw.
struct Run {
    status: ExitStatus,
    timed_out: bool,
    elapsed: Duration,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` with captured output; a watchdog thread kills it (and its children) after `timeout`.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> io::Result<Run> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    own_process_group(cmd);

    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().map(read_in_thread);
    let stderr = child.stderr.take().map(read_in_thread);

    let (done, done_rx) = mpsc::channel::<()>();
    let pid = child.id();
    let watchdog = thread::spawn(move || match done_rx.recv_timeout(timeout) {
        Err(RecvTimeoutError::Timeout) => {
            kill_tree(pid);
            true
        }
        Ok(()) | Err(RecvTimeoutError::Disconnected) => false,
    });
    let status = child.wait();
    let _ = done.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    let status = status?;
    let elapsed = start.elapsed();
    Ok(Run {
        status,
        timed_out,
        elapsed,
        stdout: stdout.map(join_reader).unwrap_or_default(),
        stderr: stderr.map(join_reader).unwrap_or_default(),
    })
}

/// A line that starts with `error`/`Error` or says `panicked`.
fn suspicious_line(output: &str) -> Option<&str> {
    output.lines().find(|line| {
        line.starts_with("error") || line.starts_with("Error") || line.contains("panicked")
    })
}

fn print_indented(output: &str) {
    for line in output.lines() {
        println!("    {line}");
    }
}

fn read_in_thread<R: Read + Send + 'static>(mut pipe: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn join_reader(reader: thread::JoinHandle<String>) -> String {
    reader.join().unwrap_or_default()
}

/// Puts cargo (and so the example it starts) in a process group of its own, so that the watchdog
/// can kill both: killing only cargo would leave the example running and holding the output pipes.
#[cfg(unix)]
fn own_process_group(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
}

#[cfg(not(unix))]
fn own_process_group(_cmd: &mut Command) {}

#[cfg(unix)]
fn kill_tree(pid: u32) {
    let group = format!("-{pid}");
    let killed = Command::new("kill").args(["-KILL", "--", &group]).status();
    if !killed.is_ok_and(|s| s.success()) {
        eprintln!("warning: could not kill process group {pid}");
    }
}

#[cfg(windows)]
fn kill_tree(pid: u32) {
    let pid = pid.to_string();
    let killed = Command::new("taskkill")
        .args(["/F", "/T", "/PID", &pid])
        .status();
    if !killed.is_ok_and(|s| s.success()) {
        eprintln!("warning: could not kill process tree {pid}");
    }
}

#[cfg(not(any(unix, windows)))]
fn kill_tree(pid: u32) {
    eprintln!("warning: do not know how to kill process {pid} on this platform");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspicious_lines() {
        assert_eq!(suspicious_line("ok\nall good\n"), None);
        assert_eq!(suspicious_line("x\nError: boom\n"), Some("Error: boom"));
        assert_eq!(suspicious_line("error[E0001]: x"), Some("error[E0001]: x"));
        assert_eq!(
            suspicious_line("thread 'main' panicked at src/main.rs:1:1:"),
            Some("thread 'main' panicked at src/main.rs:1:1:")
        );
        assert_eq!(suspicious_line("no errors here"), None);
    }

    #[test]
    fn captures_output_and_status() {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.arg("--version");
        let run = run_with_timeout(&mut cmd, Duration::from_secs(60)).unwrap();
        assert!(run.status.success() && !run.timed_out);
        assert!(run.stdout.starts_with("cargo "), "{:?}", run.stdout);
    }

    /// The watchdog kills the child and its children: the grandchild `sleep` holds the pipes open.
    #[cfg(unix)]
    #[test]
    fn timeout_kills_the_process_group() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; sleep 60 & sleep 60; echo not reached"]);
        let run = run_with_timeout(&mut cmd, Duration::from_millis(500)).unwrap();
        assert!(run.timed_out);
        assert!(!run.status.success());
        assert_eq!(run.stdout, "started\n");
        assert!(run.elapsed < Duration::from_secs(30), "{:?}", run.elapsed);
    }
}
