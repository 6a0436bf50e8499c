//! Markdown for `BENCHMARKS.md`: the [`Table`] writer every table of the benches goes through, and
//! the generated blocks: each command replaces the blocks it measured and
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

/// How a column's cells sit: text to the left, numbers to the right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// `|---|`: names and notes.
    Left,
    /// `|---:|`: figures.
    Right,
}

/// A markdown table, written row by row: every table of the benches goes through it, so they all
/// have the same shape (`| a | b |` rows under a header and its alignment line).
#[derive(Debug)]
pub struct Table {
    text: String,
    columns: usize,
}

impl Table {
    /// A table with these columns; the first is the row's name (left), the others as given.
    pub fn new(columns: &[(&str, Align)]) -> Table {
        let mut table = Table {
            text: String::new(),
            columns: columns.len(),
        };
        table.line(columns.iter().map(|(name, _)| *name));
        for (_, align) in columns {
            table.text.push_str(match align {
                Align::Left => "|---",
                Align::Right => "|---:",
            });
        }
        table.text.push_str("|\n");
        table
    }

    /// A table whose first column is `name` (left) and whose others are figures (right).
    pub fn figures(name: &str, figures: &[&str]) -> Table {
        let columns: Vec<_> = std::iter::once((name, Align::Left))
            .chain(figures.iter().map(|figure| (*figure, Align::Right)))
            .collect();
        Table::new(&columns)
    }

    /// Adds a row; it has as many cells as the table has columns.
    pub fn row<I>(&mut self, cells: I)
    where
        I: IntoIterator,
        I::Item: std::fmt::Display,
    {
        let before = self.text.len();
        let cells = self.line(cells);
        debug_assert_eq!(cells, self.columns, "a row of {}", &self.text[before..]);
    }

    /// The table as markdown, each line ending in a newline.
    pub fn finish(self) -> String {
        self.text
    }

    fn line<I>(&mut self, cells: I) -> usize
    where
        I: IntoIterator,
        I::Item: std::fmt::Display,
    {
        use std::fmt::Write as _;
        let mut n = 0;
        self.text.push('|');
        for cell in cells {
            let _ = write!(self.text, " {cell} |");
            n += 1;
        }
        self.text.push('\n');
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_has_a_header_an_alignment_line_and_rows() {
        let mut table = Table::new(&[("name", Align::Left), ("ns", Align::Right)]);
        table.row(["a", "1.0"]);
        table.row([String::from("b"), format!("{:.1}", 2.0)]);
        assert_eq!(
            table.finish(),
            "| name | ns |\n|---|---:|\n| a | 1.0 |\n| b | 2.0 |\n"
        );
    }

    #[test]
    fn figures_align_every_column_but_the_first_to_the_right() {
        let table = Table::figures("front end", &["requests/s", "failed"]);
        assert_eq!(
            table.finish(),
            "| front end | requests/s | failed |\n|---|---:|---:|\n"
        );
    }
}
