//! The generated blocks of `BENCHMARKS.md`: each command replaces the blocks it measured and
//! keeps the hand-written text around them, so a table always comes from its command.

use std::path::Path;

/// Replaces each generated block `(name, markdown)` of the markdown file at `path` (between its
/// `BEGIN` and `END` marks), keeping the hand-written rest; a block the file does not have yet is
/// appended at its end.
pub fn write_markdown(path: &Path, blocks: &[(&'static str, String)]) -> std::io::Result<()> {
    let mut text = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    for (name, generated) in blocks {
        let (begin, end) = (begin_mark(name), end_mark(name));
        let block = format!("{begin}\n\n{generated}{end}");
        match (text.find(&begin), text.find(&end)) {
            (Some(b), Some(e)) if b < e => text.replace_range(b..e + end.len(), &block),
            _ => {
                eprintln!("{} has no `{name}` block yet: appended", path.display());
                text = format!("{}\n\n{block}\n", text.trim_end());
            }
        }
    }
    std::fs::write(path, text)
}

/// The line that opens the block `name`.
pub fn begin_mark(name: &str) -> String {
    format!("<!-- BEGIN GENERATED {name} by `cargo xtask bench`: do not edit by hand -->")
}

/// The line that closes the block `name`.
pub fn end_mark(name: &str) -> String {
    format!("<!-- END GENERATED {name} -->")
}
