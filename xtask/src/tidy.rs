//! `cargo xtask tidy`: checks of the repository itself, in the spirit of rust-analyzer's
//! `tidy.rs`. It judges whatever the tree holds when it runs (crates, examples and files are
//! discovered, never listed here):
//!
//! * every file that a doc or a comment names exists (a path under one of the repository's
//!   top-level entries, a top-level document such as `README.md`, or a `.rs` file named alone),
//!   and every `doc.md#anchor` names a heading of that file;
//! * every Rust module file has a `//!` line;
//! * no `.rs` file is longer than [`MAX_LINES`] lines;
//! * the README's crate table lists exactly the crates under `crates/`, and its examples table
//!   exactly the `[[example]]`s of `examples/Cargo.toml`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::manifest;
use crate::util::{self, Result};

/// The longest a `.rs` file may be: what a maintainer reads in one sitting.
const MAX_LINES: usize = 600;

/// Files allowed over [`MAX_LINES`] for now, with the reason. An entry whose file is gone or
/// back under the limit is itself a failure, so that the list only shrinks.
const LONG_FILES: &[(&str, &str)] = &[];

/// File names that docs mention on purpose although they are not in this repository: files of
/// other projects.
const FOREIGN_FILES: &[&str] = &[
    // event-listener's source, where a loom run found its mutex poisoned (RELIABILITY.md).
    "intrusive.rs",
];

/// Files whose mentions of other files are history, not references: they may name what has
/// since moved.
const HISTORY: &[&str] = &["CHANGELOG.md"];

/// Runs every check; fails with the list of problems if there is any.
pub(crate) fn run() -> Result<()> {
    let root = util::project_root();
    let files = tracked_files(&root)?;
    let mut problems = Vec::new();
    let top_level = top_level_entries(&files);
    for file in &files {
        let path = root.join(file);
        let Ok(text) = fs::read_to_string(&path) else {
            continue; // not UTF-8 text: nothing to check
        };
        if file.ends_with(".rs") {
            check_rust_file(file, &text, &mut problems);
        }
        if (file.ends_with(".rs") || file.ends_with(".md")) && !HISTORY.contains(&file.as_str()) {
            check_references(&root, &files, &top_level, file, &text, &mut problems);
        }
    }
    check_long_file_list(&root, &mut problems);
    check_readme_tables(&root, &mut problems)?;
    if problems.is_empty() {
        println!("tidy: {} files checked", files.len());
        Ok(())
    } else {
        for problem in &problems {
            println!("  {problem}");
        }
        Err(format!("tidy found {} problem(s)", problems.len()))
    }
}

/// The files git knows (tracked, or new and not ignored), relative to the root, `/`-separated.
fn tracked_files(root: &Path) -> Result<Vec<String>> {
    let output = Command::new("git")
        .args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "-z",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| format!("tidy needs git to list the repository's files: {e}"))?;
    if !output.status.success() {
        return Err("`git ls-files` failed: tidy runs in a git checkout".into());
    }
    let mut files: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .split('\0')
        .filter(|f| !f.is_empty() && root.join(f).is_file())
        .map(str::to_owned)
        .collect();
    files.sort();
    Ok(files)
}

/// The first components of every file's path: the names a repository path starts with.
fn top_level_entries(files: &[String]) -> BTreeSet<String> {
    files
        .iter()
        .filter_map(|f| f.split('/').next())
        .map(str::to_owned)
        .collect()
}

fn check_rust_file(file: &str, text: &str, problems: &mut Vec<String>) {
    if !text
        .lines()
        .any(|line| line.trim_start().starts_with("//!"))
    {
        problems.push(format!(
            "{file}: no `//!` line saying what the module is for"
        ));
    }
    let lines = text.lines().count();
    let allowed = LONG_FILES.iter().any(|(long, _)| *long == file);
    if lines > MAX_LINES && !allowed {
        problems.push(format!(
            "{file}: {lines} lines, over {MAX_LINES}: split it into modules along its sections"
        ));
    }
}

fn check_long_file_list(root: &Path, problems: &mut Vec<String>) {
    for (file, _) in LONG_FILES {
        match fs::read_to_string(root.join(file)) {
            Ok(text) if text.lines().count() > MAX_LINES => {}
            Ok(_) => problems.push(format!(
                "{file} is now within {MAX_LINES} lines: remove it from tidy's LONG_FILES"
            )),
            Err(_) => problems.push(format!("{file} is gone: remove it from tidy's LONG_FILES")),
        }
    }
}

/// The text in which references are looked for: a Markdown file whole, a Rust file's comments.
fn prose(file: &str, text: &str) -> String {
    if file.ends_with(".md") {
        return text.to_owned();
    }
    text.lines()
        .filter_map(|line| line.trim_start().strip_prefix("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn check_references(
    root: &Path,
    files: &[String],
    top_level: &BTreeSet<String>,
    file: &str,
    text: &str,
    problems: &mut Vec<String>,
) {
    let prose = prose(file, text);
    for reference in references(&prose) {
        let (path, anchor) = match reference.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (reference.as_str(), None),
        };
        for path in expand_braces(path) {
            let Some(found) = resolve(root, files, top_level, file, &path) else {
                if mentions_repository_path(top_level, &path) {
                    problems.push(format!("{file}: names `{path}`, which does not exist"));
                }
                continue;
            };
            if let Some(anchor) = anchor.filter(|_| found.extension().is_some_and(|e| e == "md")) {
                let headings = fs::read_to_string(&found).unwrap_or_default();
                if !markdown_anchors(&headings).contains(anchor) {
                    problems.push(format!(
                        "{file}: names `{path}#{anchor}`, a heading `{path}` does not have"
                    ));
                }
            }
        }
    }
}

/// Whether a path that did not resolve is one this repository should have: it starts with one
/// of the repository's top-level entries, is a top-level document (its name in capitals, `.md`), or
/// is a `.rs` file named alone that is no other project's.
fn mentions_repository_path(top_level: &BTreeSet<String>, path: &str) -> bool {
    let first = path.split('/').next().unwrap_or_default();
    if path.contains('/') {
        return top_level.contains(first);
    }
    let is_top_doc = path.ends_with(".md")
        && path[..path.len() - 3]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c == '-');
    let is_rust_file = path.ends_with(".rs") && !FOREIGN_FILES.contains(&path);
    is_top_doc || is_rust_file
}

/// Finds a named path: from the root, from the naming file's package, from its directory, or
/// (a `.rs` file named alone) anywhere in the repository. `*` matches any one path component.
fn resolve(
    root: &Path,
    files: &[String],
    top_level: &BTreeSet<String>,
    file: &str,
    path: &str,
) -> Option<PathBuf> {
    let path = path.trim_end_matches('/');
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let mut bases = vec![PathBuf::new(), dir.to_path_buf()];
    bases.extend(
        dir.ancestors()
            .filter(|a| root.join(a).join("Cargo.toml").is_file())
            .map(Path::to_path_buf),
    );
    for base in &bases {
        let candidate = base.join(path);
        let candidate = candidate.to_string_lossy().replace('\\', "/");
        if let Some(found) = files
            .iter()
            .find(|f| glob_matches(&candidate, f) || glob_is_dir_of(&candidate, f))
        {
            return Some(root.join(if glob_matches(&candidate, found) {
                found.as_str()
            } else {
                candidate.as_str()
            }));
        }
    }
    if !path.contains('/') && !top_level.contains(path) {
        let name = format!("/{path}");
        return files
            .iter()
            .find(|f| f.ends_with(&name) || *f == path)
            .map(|f| root.join(f));
    }
    None
}

/// Whether `file` matches `pattern`, where a `*` in the pattern stands for any text within one
/// path component.
fn glob_matches(pattern: &str, file: &str) -> bool {
    let (pattern, file): (Vec<&str>, Vec<&str>) =
        (pattern.split('/').collect(), file.split('/').collect());
    pattern.len() == file.len()
        && pattern
            .iter()
            .zip(&file)
            .all(|(p, f)| component_matches(p, f))
}

/// Whether `pattern` matches a directory that holds `file`.
fn glob_is_dir_of(pattern: &str, file: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let file: Vec<&str> = file.split('/').collect();
    pattern.len() < file.len()
        && pattern
            .iter()
            .zip(&file)
            .all(|(p, f)| component_matches(p, f))
}

fn component_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && {
                let rest = &name[head.len()..];
                (0..=rest.len())
                    .any(|i| rest.is_char_boundary(i) && component_matches(tail, &rest[i..]))
            }
        }
    }
}

/// `a/{b,c}.rs` → `a/b.rs`, `a/c.rs` (one level of braces).
fn expand_braces(path: &str) -> Vec<String> {
    match (path.find('{'), path.find('}')) {
        (Some(open), Some(close)) if open < close => path[open + 1..close]
            .split(',')
            .map(|alt| format!("{}{}{}", &path[..open], alt.trim(), &path[close + 1..]))
            .collect(),
        _ => vec![path.to_owned()],
    }
}

/// The paths a text may name: runs of path characters that contain a `/` or end in a file
/// extension this repository uses, optionally with a `#anchor` (which of them must exist is
/// [`mentions_repository_path`]'s call).
fn references(text: &str) -> Vec<String> {
    let is_path_char = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '_' | '-' | '.' | '/' | '*' | '{' | '}' | ',' | '#')
    };
    let mut found = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !is_path_char(c) {
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(i, c)) = chars.peek() {
            if !is_path_char(c) {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        let preceded_by_url = text[..start].ends_with("://") || text[..start].ends_with(':');
        let token = text[start..end].trim_end_matches(['.', ',', '/']);
        if preceded_by_url || token.starts_with(['.', '/', '-', '#']) || token.contains("//") {
            continue;
        }
        let (path, _) = token.split_once('#').unwrap_or((token, ""));
        let has_extension = ["rs", "md", "toml", "py"]
            .iter()
            .any(|ext| path.ends_with(&format!(".{ext}")));
        // A bare `{a,b}` list is prose, not a path; a list outside braces splits the token.
        if path.contains(',') && !path.contains('{') {
            continue;
        }
        if has_extension || path.contains('/') {
            found.push(token.to_owned());
        }
    }
    found
}

/// The anchors GitHub makes of a Markdown file's headings.
fn markdown_anchors(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let heading = line.trim_start_matches('#');
            (heading.len() < line.len() && heading.starts_with(' ')).then_some(heading.trim())
        })
        .map(|heading| {
            heading
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// The README's crate table lists the crates under `crates/`; its examples table, the examples.
fn check_readme_tables(root: &Path, problems: &mut Vec<String>) -> Result<()> {
    let readme = fs::read_to_string(root.join("README.md"))
        .map_err(|e| format!("cannot read README.md: {e}"))?;

    let mut crates = BTreeSet::new();
    let dirs =
        fs::read_dir(root.join("crates")).map_err(|e| format!("cannot list crates/: {e}"))?;
    for dir in dirs.flatten() {
        if let Ok(text) = fs::read_to_string(dir.path().join("Cargo.toml")) {
            crates.extend(manifest::values(&text, "[package]", "name"));
        }
    }
    compare_table(
        &readme,
        "Crates",
        "crates under `crates/`",
        &crates,
        problems,
    );

    let examples_manifest = fs::read_to_string(root.join("examples/Cargo.toml"))
        .map_err(|e| format!("cannot read examples/Cargo.toml: {e}"))?;
    let examples: BTreeSet<String> = manifest::values(&examples_manifest, "[[example]]", "name")
        .into_iter()
        .collect();
    compare_table(
        &readme,
        "Examples",
        "`[[example]]`s of examples/Cargo.toml",
        &examples,
        problems,
    );
    Ok(())
}

fn compare_table(
    readme: &str,
    section: &str,
    what: &str,
    expected: &BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let Some(listed) = table_first_column(readme, section) else {
        problems.push(format!("README.md: no table under `## {section}`"));
        return;
    };
    for missing in expected.difference(&listed) {
        problems.push(format!(
            "README.md: the table under `## {section}` does not list `{missing}`, one of the {what}"
        ));
    }
    for extra in listed.difference(expected) {
        problems.push(format!(
            "README.md: the table under `## {section}` lists `{extra}`, which is not one of the {what}"
        ));
    }
}

/// The backticked names in the first column of the first table under `## {section}`.
fn table_first_column(markdown: &str, section: &str) -> Option<BTreeSet<String>> {
    let heading = format!("## {section}");
    let mut lines = markdown
        .lines()
        .skip_while(|line| line.trim() != heading)
        .skip(1);
    let mut names = BTreeSet::new();
    let mut in_table = false;
    for line in lines.by_ref() {
        if line.starts_with("## ") {
            break;
        }
        if let Some(row) = line.trim().strip_prefix('|') {
            in_table = true;
            let cell = row.split('|').next().unwrap_or_default();
            if let Some(name) = cell.split('`').nth(1) {
                names.insert(name.to_owned());
            }
        } else if in_table {
            break;
        }
    }
    in_table.then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_paths_in_prose() {
        let text =
            "see `crates/single-flight/tests/loom.rs`, README.md#crates and tests/tests/chaos/ \
                    (also `go_suite.rs`); not https://docs.rs/x/y.rs nor a/b";
        assert_eq!(
            references(text),
            [
                "crates/single-flight/tests/loom.rs",
                "README.md#crates",
                "tests/tests/chaos",
                "go_suite.rs",
                "a/b"
            ]
        );
    }

    #[test]
    fn expands_braces_and_matches_globs() {
        assert_eq!(expand_braces("a/{b,c}.rs"), ["a/b.rs", "a/c.rs"]);
        assert!(glob_matches("tests/tests/*.rs", "tests/tests/group.rs"));
        assert!(!glob_matches(
            "tests/tests/*.rs",
            "tests/tests/chaos/main.rs"
        ));
        assert!(glob_matches(
            "crates/single-flight-*/src",
            "crates/single-flight-smol/src"
        ));
    }

    #[test]
    fn reads_the_first_column_of_a_section_table() {
        let readme = "## Crates\n\ntext\n\n| crate | what |\n|---|---|\n| [`a`](crates/a) | x |\n\
                      | [`b`](crates/b) | y |\n\nafter\n## Next\n| `c` | z |\n";
        let names = table_first_column(readme, "Crates").unwrap();
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(table_first_column(readme, "Missing").is_none());
    }

    #[test]
    fn makes_github_anchors() {
        let anchors = markdown_anchors("# Top\n## Choosing an adapter\ntext # not\n");
        assert!(anchors.contains("top") && anchors.contains("choosing-an-adapter"));
        assert_eq!(anchors.len(), 2);
    }
}
