//! `cargo package` for the published crates (`crates/*`), then their `.crate` sizes.

use std::env;
use std::fs;

use crate::manifest;
use crate::util::{self, Result};

/// Packages every publishable crate under `crates/`; `Ok(None)` if there is none,
/// `Ok(Some(listing))` with the `.crate` files and their sizes otherwise.
pub(crate) fn run() -> Result<Option<String>> {
    let names = published_crates()?;
    if names.is_empty() {
        return Ok(None);
    }
    let mut cmd = util::cargo(["package"]);
    for name in &names {
        cmd.args(["-p", name]);
    }
    if env::var_os("CI").is_none() {
        cmd.arg("--allow-dirty");
    }
    util::run(&mut cmd)?;
    list_crate_files(&names).map(Some)
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

/// The `.crate` files of `names` in `target/package/`, one per line with the size in KiB.
fn list_crate_files(names: &[String]) -> Result<String> {
    let dir = util::target_dir().join("package");
    let entries = fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
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
