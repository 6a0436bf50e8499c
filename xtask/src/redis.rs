//! `redis-server` for the tests, examples and benchmarks of `single-flight-redis`: found on
//! `PATH`, or installed from Debian's package when this runs as root with `apt-get`, or a
//! failure that names the command to run. Never a silent skip.

use std::process::{Command, Stdio};

use crate::util::{self, Result};

/// The command that installs the server (and `redis-cli`, for the cluster test).
const INSTALL: &str = "apt-get update && apt-get install -y redis-server";

/// Makes sure `redis-server` and `redis-cli` run; installs them if missing and possible.
pub(crate) fn ensure() -> Result<()> {
    if let Some(version) = installed() {
        println!("redis-server: {version}");
        return Ok(());
    }
    if !is_root() || !on_path("apt-get") {
        return Err(format!(
            "redis-server is missing (the tests of single-flight-redis start their own); install \
             it with `sudo sh -c '{INSTALL}'` (Debian/Ubuntu), or put a `redis-server` and \
             `redis-cli` (Redis 6 or later, or Valkey) on PATH"
        ));
    }
    println!("redis-server is missing: installing the Debian package with `{INSTALL}`");
    for args in [&["update"][..], &["install", "-y", "redis-server"][..]] {
        let mut cmd = Command::new("apt-get");
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        util::run(&mut cmd)?;
    }
    match installed() {
        Some(version) => {
            println!("redis-server: installed, {version}");
            Ok(())
        }
        None => Err(format!(
            "`{INSTALL}` ran but `redis-server --version` and `redis-cli --version` still fail"
        )),
    }
}

/// `redis-server`'s version line, if both it and `redis-cli` run.
fn installed() -> Option<String> {
    let server = Command::new("redis-server")
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Command::new("redis-cli")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())?;
    Some(String::from_utf8_lossy(&server.stdout).trim().to_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
