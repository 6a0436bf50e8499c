//! `cargo package` for the published crates (`crates/*`), then their `.crate` sizes.

use std::env;
use std::fs;

use crate::manifest;
use crate::util::{self, Result};

/// Packages every publishable crate under `crates/`; `Ok(None)` if there is none,
/// `Ok(Some(listing))` with the `.crate` files and their sizes otherwise.
pub(crate) fn run() -> Result<String> {
    let names = published_crates()?;
    if names.is_empty() {
        return Err("no publishable crate under crates/".into());
    }
    forget_stale_unpacked_copies(&names);
    // Verification builds go to their own target directory, where our crates' earlier builds are
    // forgotten first: cargo takes a registry crate of the same name and version as unchanged, so
    // it would check the adapters against the core as packaged the previous time (seen here: a
    // type added to the core was missing when an adapter was verified).
    let verify_dir = util::target_dir().join("package-verify");
    forget_stale_builds(&verify_dir, &names);
    let mut cmd = util::cargo(["package"]);
    cmd.env("CARGO_TARGET_DIR", &verify_dir);
    for name in &names {
        cmd.args(["-p", name]);
    }
    if env::var_os("CI").is_none() {
        cmd.arg("--allow-dirty");
    }
    util::run(&mut cmd)?;
    list_crate_files(&verify_dir.join("package"), &names)
}

/// Removes copies of our own crates that an earlier `cargo package` unpacked from its temporary
/// local registry into `$CARGO_HOME/registry/src/<registry>/NAME-VERSION`.
///
/// Cargo may reuse such a directory when it finds it again instead of unpacking the new package.
/// The crates are not on crates.io, so any unpacked copy outside the crates.io index directories
/// is one of those leftovers.
fn forget_stale_unpacked_copies(names: &[String]) {
    let cargo_home = match env::var_os("CARGO_HOME") {
        Some(home) => std::path::PathBuf::from(home),
        None => match env::var_os("HOME") {
            Some(home) => std::path::PathBuf::from(home).join(".cargo"),
            None => return,
        },
    };
    let Ok(registries) = fs::read_dir(cargo_home.join("registry").join("src")) else {
        return;
    };
    for registry in registries.flatten() {
        if registry
            .file_name()
            .to_string_lossy()
            .starts_with("index.crates.io")
        {
            continue;
        }
        let Ok(unpacked) = fs::read_dir(registry.path()) else {
            continue;
        };
        for copy in unpacked.flatten() {
            let dir_name = copy.file_name().to_string_lossy().into_owned();
            let ours = names.iter().any(|name| {
                dir_name
                    .strip_prefix(name.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
            });
            if ours {
                let _ = fs::remove_dir_all(copy.path());
            }
        }
    }
}

/// Removes the build fingerprints of our crates under `verify_dir`, so that verification rebuilds
/// them from the new packages (dependencies stay built).
fn forget_stale_builds(verify_dir: &std::path::Path, names: &[String]) {
    let fingerprints = verify_dir.join("debug").join(".fingerprint");
    let Ok(entries) = fs::read_dir(&fingerprints) else {
        return;
    };
    for entry in entries.flatten() {
        let dir_name = entry.file_name().to_string_lossy().into_owned();
        if names
            .iter()
            .any(|name| dir_name.starts_with(&format!("{name}-")))
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// `name` from `[package]` of each `crates/*/Cargo.toml` that is not `publish = false`, sorted.
fn published_crates() -> Result<Vec<String>> {
    let dir = util::project_root().join("crates");
    let entries = fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path()
            .join("Cargo.toml");
        if !path.is_file() {
            continue;
        }
        let text = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if manifest::is_unpublished(&text) {
            println!("  (skipping {}: publish = false)", path.display());
            continue;
        }
        let name = manifest::value(&text, "[package]", "name")
            .ok_or_else(|| format!("no `name` in [package] of {}", path.display()))?;
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// The `.crate` files of `names` in `dir`, one per line with the size in KiB.
fn list_crate_files(dir: &std::path::Path, names: &[String]) -> Result<String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !file_name.ends_with(".crate") || !names.iter().any(|n| is_crate_of(&file_name, n)) {
            continue;
        }
        let size = entry
            .metadata()
            .map_err(|e| format!("cannot stat {file_name}: {e}"))?
            .len();
        files.push((file_name, size));
    }
    files.sort();
    let mut listing = String::new();
    for (file_name, size) in files {
        listing.push_str(&format!(
            "  {:>8.1} KiB  {file_name}\n",
            size as f64 / 1024.0
        ));
    }
    Ok(listing)
}

/// `single-flight-0.1.0.crate` is a crate of `single-flight`; `single-flight-tokio-0.1.0.crate` is not.
fn is_crate_of(file_name: &str, name: &str) -> bool {
    file_name
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_file_names() {
        assert!(is_crate_of("single-flight-0.1.0.crate", "single-flight"));
        assert!(!is_crate_of(
            "single-flight-tokio-0.1.0.crate",
            "single-flight"
        ));
        assert!(is_crate_of(
            "single-flight-tokio-0.1.0.crate",
            "single-flight-tokio"
        ));
    }
}
