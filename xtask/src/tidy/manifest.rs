//! Just enough TOML to read what tidy checks in a `Cargo.toml`.
//!
//! A real TOML parser would be xtask's first dependency, and tidy needs little: table headers,
//! plain and dotted keys, strings, and inline tables of dependencies.
//! Anything else (multi-line strings, arrays, arrays of tables) is skipped over, not understood.
//! Line numbers are 1-based, for `file:line` messages.

/// What tidy needs from one `Cargo.toml`.
#[derive(Debug, Default)]
pub(crate) struct Manifest {
    /// `package.name`, if the manifest has a `[package]` table.
    pub(crate) package_name: Option<String>,
    /// Every entry of every dependency table, in file order.
    pub(crate) dependencies: Vec<Dependency>,
    /// Whether `[lints]` says `workspace = true`.
    pub(crate) lints_workspace: bool,
    /// The patterns in `workspace.members`, for the root manifest.
    pub(crate) workspace_members: Vec<String>,
}

/// One entry of a dependency table (`[dependencies]`, `[dev-dependencies]`,
/// `[build-dependencies]`, their `[target.'cfg(..)'.*]` forms, or `[workspace.dependencies]`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Dependency {
    /// The key the dependency is declared under.
    pub(crate) key: String,
    /// The `package = "..."` rename, if any.
    pub(crate) package: Option<String>,
    /// The table it is declared in, such as `dependencies` or `target.cfg(unix).dev-dependencies`.
    pub(crate) table: String,
    /// The line where it is declared.
    pub(crate) line: usize,
    /// Whether it says `workspace = true`, taking its version from the root manifest.
    pub(crate) workspace: bool,
}

impl Dependency {
    /// Returns the name of the package depended on: the `package` rename if given, else the key.
    pub(crate) fn crate_name(&self) -> &str {
        self.package.as_deref().unwrap_or(&self.key)
    }
}

/// The kinds of dependency table.
const DEPENDENCY_TABLES: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];

/// Reads the parts of a manifest that tidy checks from its text.
pub(crate) fn parse(text: &str) -> Manifest {
    let lines: Vec<&str> = text.lines().collect();
    let mut manifest = Manifest::default();
    let mut table: Vec<String> = Vec::new();
    let mut next = 0;
    while next < lines.len() {
        let line_number = next + 1;
        let line = strip_comment(lines[next]).trim();
        next += 1;
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            table = split_dotted(line.trim_start_matches('[').trim_end_matches(']'));
            if let Some((label, Some(key))) = dependency_table(&table) {
                manifest.dependency(&label, key, line_number);
            }
            continue;
        }
        let Some(equals) = find_unquoted(line, '=') else {
            continue;
        };
        let key = split_dotted(&line[..equals]);
        let mut value = line[equals + 1..].trim().to_owned();
        for quotes in ["\"\"\"", "'''"] {
            if value.starts_with(quotes) && !value[3..].contains(quotes) {
                // A multi-line string: skip its lines, which could look like headers or keys.
                while next < lines.len() && !lines[next].contains(quotes) {
                    next += 1;
                }
                next += 1;
                value.clear();
            }
        }
        while nesting(&value) > 0 && next < lines.len() {
            value.push(' ');
            value.push_str(strip_comment(lines[next]).trim());
            next += 1;
        }
        manifest.entry(&table, &key, &value, line_number);
    }
    manifest
}

impl Manifest {
    /// Records `key = value`, found on `line` in the table named by the segments of `table`.
    fn entry(&mut self, table: &[String], key: &[String], value: &str, line: usize) {
        let table: Vec<&str> = table.iter().map(String::as_str).collect();
        let key: Vec<&str> = key.iter().map(String::as_str).collect();
        match (table.as_slice(), key.as_slice()) {
            (["package"], ["name"]) => self.package_name = Some(unquote(value).to_owned()),
            (["lints"], ["workspace"]) => self.lints_workspace = value == "true",
            (["workspace"], ["members"]) => self.workspace_members = quoted_strings(value),
            _ => match dependency_table(&table) {
                // `[dependencies]` itself: `name = "1"`, `name = { .. }` or `name.field = ..`.
                Some((label, None)) => {
                    let Some((name, field)) = key.split_first() else {
                        return;
                    };
                    let dependency = self.dependency(&label, name, line);
                    match field {
                        [] => {
                            for (field, value) in inline_table(value) {
                                dependency.field(&field, &value);
                            }
                        }
                        [field] => dependency.field(field, value),
                        _ => {}
                    }
                }
                // `[dependencies.name]`: one field per line.
                Some((label, Some(name))) => {
                    if let [field] = key.as_slice() {
                        self.dependency(&label, name, line).field(field, value);
                    }
                }
                None => {}
            },
        }
    }

    /// Returns the dependency `key` of table `label`, first recorded at `line` if new.
    fn dependency(&mut self, label: &str, key: &str, line: usize) -> &mut Dependency {
        let found = self
            .dependencies
            .iter()
            .position(|dependency| dependency.table == label && dependency.key == key);
        let index = found.unwrap_or_else(|| {
            self.dependencies.push(Dependency {
                key: key.to_owned(),
                package: None,
                table: label.to_owned(),
                line,
                workspace: false,
            });
            self.dependencies.len() - 1
        });
        &mut self.dependencies[index]
    }
}

impl Dependency {
    /// Records one field of the dependency's specification.
    fn field(&mut self, field: &str, value: &str) {
        match field {
            "workspace" => self.workspace = value.trim() == "true",
            "package" => self.package = Some(unquote(value).to_owned()),
            _ => {}
        }
    }
}

/// If the table with header segments `table` declares dependencies, returns a label for it and,
/// for a `[dependencies.name]` table, the dependency's name.
///
/// The root's `[workspace.dependencies]` counts, labelled `workspace.dependencies`.
fn dependency_table<S: AsRef<str>>(table: &[S]) -> Option<(String, Option<&str>)> {
    let segments: Vec<&str> = table.iter().map(AsRef::as_ref).collect();
    let (prefix, rest) = match segments.as_slice() {
        ["target", platform, rest @ ..] => (format!("target.{platform}."), rest),
        ["workspace", rest @ ..] => ("workspace.".to_owned(), rest),
        rest => (String::new(), rest),
    };
    let (kind, name) = match rest {
        [kind] => (*kind, None),
        [kind, name] => (*kind, Some(*name)),
        _ => return None,
    };
    let known = if prefix == "workspace." {
        kind == "dependencies"
    } else {
        DEPENDENCY_TABLES.contains(&kind)
    };
    known.then(|| (format!("{prefix}{kind}"), name))
}

/// Returns `line` without its `#` comment, if any.
fn strip_comment(line: &str) -> &str {
    find_unquoted(line, '#').map_or(line, |hash| &line[..hash])
}

/// Returns the byte index of the first `needle` in `text` that is outside a quoted string.
fn find_unquoted(text: &str, needle: char) -> Option<usize> {
    let mut quote = None;
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if c == needle => return Some(index),
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
        }
    }
    None
}

/// Splits `text` at each `separator` outside quotes and brackets.
fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        let mut depth = 0_i32;
        let mut quote = None;
        let mut escaped = false;
        let mut cut = None;
        for (index, c) in rest.char_indices() {
            match quote {
                Some('"') if escaped => escaped = false,
                Some('"') if c == '\\' => escaped = true,
                Some(open) if c == open => quote = None,
                Some(_) => {}
                None => match c {
                    '"' | '\'' => quote = Some(c),
                    '[' | '{' => depth += 1,
                    ']' | '}' => depth -= 1,
                    _ if c == separator && depth == 0 => {
                        cut = Some(index);
                        break;
                    }
                    _ => {}
                },
            }
        }
        match cut {
            Some(index) => {
                parts.push(&rest[..index]);
                rest = &rest[index + separator.len_utf8()..];
            }
            None => {
                parts.push(rest);
                return parts;
            }
        }
    }
}

/// Splits a dotted key or table header such as `target.'cfg(unix)'.dependencies` into segments.
fn split_dotted(key: &str) -> Vec<String> {
    split_unquoted(key, '.')
        .into_iter()
        .map(|segment| unquote(segment).to_owned())
        .collect()
}

/// Returns how many more brackets and braces `value` opens than it closes, outside strings.
fn nesting(value: &str) -> i32 {
    let mut depth = 0;
    let mut quote = None;
    let mut escaped = false;
    for c in value.chars() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' | '{' => depth += 1,
                ']' | '}' => depth -= 1,
                _ => {}
            },
        }
    }
    depth
}

/// Returns the fields of the inline table `value` (`{ key = value, .. }`), or none if it is not one.
fn inline_table(value: &str) -> Vec<(String, String)> {
    let Some(inner) = value
        .trim()
        .strip_prefix('{')
        .and_then(|inner| inner.strip_suffix('}'))
    else {
        return Vec::new();
    };
    split_unquoted(inner, ',')
        .into_iter()
        .filter_map(|field| {
            let equals = find_unquoted(field, '=')?;
            let key = split_dotted(&field[..equals]).join(".");
            Some((key, field[equals + 1..].trim().to_owned()))
        })
        .collect()
}

/// Returns `value` without its surrounding quotes, if it has them.
fn unquote(value: &str) -> &str {
    let value = value.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// Returns every string in the array `value`, such as `["crates/*", "xtask"]`.
fn quoted_strings(value: &str) -> Vec<String> {
    let inner = value.trim().trim_start_matches('[').trim_end_matches(']');
    split_unquoted(inner, ',')
        .into_iter()
        .map(|item| unquote(item).to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dependency forms Cargo accepts are all recognised, with their line numbers.
    #[test]
    fn reads_every_dependency_form() {
        let manifest = parse(
            r#"
[package]
name = "curio-kernel" # trailing comment
description = """
[dependencies]
fake = "1"
"""

[dependencies]
async-task.workspace = true
curio-time = { workspace = true, features = ["a", "b"] }
polling = "3.7"
renamed = { package = "curio-reactor", path = "../curio-reactor" }
spread = { workspace = true, features = [
    "x",
] }

[dependencies.by-table]
version = "1"

[target.'cfg(unix)'.dev-dependencies]
rustix = { workspace = true }

[workspace.dependencies]
declared-once = "1"

[lints]
workspace = true
"#,
        );
        assert_eq!(manifest.package_name.as_deref(), Some("curio-kernel"));
        assert!(manifest.lints_workspace);
        let seen: Vec<(&str, &str, usize, bool)> = manifest
            .dependencies
            .iter()
            .map(|d| (d.table.as_str(), d.crate_name(), d.line, d.workspace))
            .collect();
        assert_eq!(
            seen,
            [
                ("dependencies", "async-task", 10, true),
                ("dependencies", "curio-time", 11, true),
                ("dependencies", "polling", 12, false),
                ("dependencies", "curio-reactor", 13, false),
                ("dependencies", "spread", 14, true),
                ("dependencies", "by-table", 18, false),
                ("target.cfg(unix).dev-dependencies", "rustix", 22, true),
                ("workspace.dependencies", "declared-once", 25, false),
            ]
        );
    }

    /// A manifest without `[lints]` is reported as such.
    #[test]
    fn lints_default_to_absent() {
        assert!(!parse("[package]\nname = \"x\"\n").lints_workspace);
        assert!(!parse("[lints]\nworkspace = false\n").lints_workspace);
    }

    /// Workspace member patterns are read across lines.
    #[test]
    fn reads_workspace_members() {
        let manifest = parse("[workspace]\nmembers = [\n  \"crates/*\", # ours\n  \"xtask\",\n]\n");
        assert_eq!(manifest.workspace_members, ["crates/*", "xtask"]);
    }
}
