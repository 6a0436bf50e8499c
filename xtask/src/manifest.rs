//! Just enough `Cargo.toml` reading for xtask, without a TOML parser: `key = "value"` lines by section.

/// The string values of `key` in every section whose header is `header` (e.g. `[[example]]`, `[package]`).
///
/// Handles the common one-line form `key = "value"` (or single quotes), whitespace and trailing comments;
/// inline tables and multi-line strings are not supported (xtask's manifests do not use them).
pub(crate) fn values(text: &str, header: &str, key: &str) -> Vec<String> {
    raw_values(text, header, key)
        .into_iter()
        .filter_map(string_value)
        .map(str::to_owned)
        .collect()
}

/// The raw (unparsed, trimmed) right-hand sides of `key = ...` in every section `header`.
pub(crate) fn raw_values<'a>(text: &'a str, header: &str, key: &str) -> Vec<&'a str> {
    let mut in_section = false;
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = strip_comment(line).trim() == header;
            continue;
        }
        if !in_section {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() == key {
            found.push(v.trim());
        }
    }
    found
}

/// The first value of `key` in section `header`.
pub(crate) fn value(text: &str, header: &str, key: &str) -> Option<String> {
    values(text, header, key).into_iter().next()
}

/// Whether `[package]` says `publish = false` (or `publish = []`).
pub(crate) fn is_unpublished(text: &str) -> bool {
    raw_values(text, "[package]", "publish")
        .into_iter()
        .any(|v| matches!(strip_comment(v).trim(), "false" | "[]"))
}

fn strip_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(before, _)| before)
}

/// `"value" # comment` → `value`; `None` if it is not a one-line string.
fn string_value(raw: &str) -> Option<&str> {
    let quote = raw.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &raw[1..];
    let end = rest.find(quote)?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLES: &str = r#"
[package]
name = "single-flight-examples"
publish = false

[dependencies]
single-flight.workspace = true
name = "not-an-example"

[[example]]
name = "http_customers"
path = "http_customers.rs"

[[example]] # a comment
path = "token.rs"
name='token_refresh'  # trailing comment
"#;

    #[test]
    fn examples_by_section() {
        assert_eq!(
            values(EXAMPLES, "[[example]]", "name"),
            ["http_customers", "token_refresh"]
        );
    }

    #[test]
    fn package_name() {
        assert_eq!(
            value(EXAMPLES, "[package]", "name").as_deref(),
            Some("single-flight-examples")
        );
        assert_eq!(value(EXAMPLES, "[package]", "publish"), None);
        assert!(is_unpublished(EXAMPLES));
        assert!(!is_unpublished(
            "[package]\nname = \"x\"\n[features]\npublish = false\n"
        ));
    }

    #[test]
    fn real_examples_manifest_lists_examples() {
        let path = crate::util::project_root().join("examples/Cargo.toml");
        let text = std::fs::read_to_string(path).expect("examples/Cargo.toml exists");
        let names = values(&text, "[[example]]", "name");
        println!("examples: {names:?}");
        assert!(!names.is_empty());
    }
}
