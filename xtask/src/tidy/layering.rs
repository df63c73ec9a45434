//! The layering table in `ARCHITECTURE.md`: which workspace crates each crate may depend on.
//!
//! The table is the first Markdown table under the first heading that contains "Layering".
//! Its first column names a crate in backticks; its second column lists, in backticks, the
//! workspace crates that crate may depend on (`—`, or anything without backticks, means none).
//! Rows whose first column has no backticks, such as the header row, are skipped, and further
//! columns are free text:
//!
//! ```text
//! | crate | may depend on | why |
//! |---|---|---|
//! | `curio-time` | — | the clock is a leaf |
//! | `curio-kernel` | `curio-reactor`, `curio-time` | the kernel parks on the reactor |
//! ```

use std::collections::{BTreeMap, BTreeSet};

/// The parsed layering table.
#[derive(Debug)]
pub(crate) struct Layering {
    /// The line of the heading the table sits under.
    pub(crate) heading_line: usize,
    /// The rows, by crate name.
    pub(crate) rows: BTreeMap<String, Row>,
    /// Rows naming a crate that an earlier row already named, as `(crate, line)`.
    pub(crate) duplicates: Vec<(String, usize)>,
}

/// One row of the layering table.
#[derive(Debug)]
pub(crate) struct Row {
    /// The line of the row.
    pub(crate) line: usize,
    /// The workspace crates this crate may depend on.
    pub(crate) allowed: BTreeSet<String>,
}

/// Why the layering table could not be read: a message and, if known, the line it concerns.
pub(crate) type Error = (Option<usize>, String);

/// Reads the layering table from the text of `ARCHITECTURE.md`.
///
/// # Errors
///
/// Returns an error if there is no heading containing "Layering", or no table under it.
pub(crate) fn parse(text: &str) -> Result<Layering, Error> {
    let lines: Vec<&str> = text.lines().collect();
    let mut in_fence = false;
    let mut heading = None;
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        } else if !in_fence
            && heading_level(trimmed).is_some()
            && trimmed.to_lowercase().contains("layering")
        {
            heading = Some(index);
            break;
        }
    }
    let Some(heading) = heading else {
        return Err((None, "no heading containing \"Layering\"".to_owned()));
    };
    let level = heading_level(lines[heading].trim_start());

    // The table is the first run of `|` lines before the next heading at the same level or above.
    let mut table = Vec::new();
    for (index, line) in lines.iter().enumerate().skip(heading + 1) {
        let trimmed = line.trim();
        if trimmed.starts_with('|') {
            table.push((index + 1, trimmed));
        } else if !table.is_empty() || heading_level(trimmed).is_some_and(|l| Some(l) <= level) {
            break;
        }
    }
    if table.is_empty() {
        return Err((
            Some(heading + 1),
            "no table under the layering heading".to_owned(),
        ));
    }

    let mut layering = Layering {
        heading_line: heading + 1,
        rows: BTreeMap::new(),
        duplicates: Vec::new(),
    };
    for (line, row) in table {
        let cells: Vec<&str> = row.trim_matches('|').split('|').collect();
        let Some(name) = cells
            .first()
            .and_then(|cell| code_spans(cell).into_iter().next())
        else {
            continue;
        };
        let allowed = cells
            .get(1)
            .map(|cell| code_spans(cell).into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        if layering.rows.contains_key(name) {
            layering.duplicates.push((name.to_owned(), line));
        } else {
            layering.rows.insert(name.to_owned(), Row { line, allowed });
        }
    }
    Ok(layering)
}

/// Returns the level of the Markdown heading `line` (1 for `#`), or `None` if it is not one.
fn heading_level(line: &str) -> Option<usize> {
    let level = line.chars().take_while(|&c| c == '#').count();
    let rest = &line[level..];
    ((1..=6).contains(&level) && (rest.is_empty() || rest.starts_with(' '))).then_some(level)
}

/// Returns the contents of the backtick code spans in `cell`, trimmed.
fn code_spans(cell: &str) -> Vec<&str> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::trim)
        .filter(|span| !span.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table under the layering heading is read; other tables and fenced code are not.
    #[test]
    fn reads_the_table_under_the_heading() {
        let text = "\
# Architecture

| `not-this` | `table` |

```
# Layering (inside a code block)
```

## Layering

Which crate may use which.

| crate | may depend on | why |
|---|---|---|
| `curio-time` | — | leaf |
| [`curio-kernel`](crates/curio-kernel) | `curio-reactor`, `curio-time` | parks |
| `curio-time` | `curio-kernel` | duplicate |

| `later` | `table` |
";
        let layering = parse(text).unwrap();
        assert_eq!(layering.heading_line, 9);
        assert_eq!(layering.rows.len(), 2);
        assert!(layering.rows["curio-time"].allowed.is_empty());
        let kernel = &layering.rows["curio-kernel"];
        assert_eq!(kernel.line, 16);
        assert_eq!(
            kernel.allowed.iter().collect::<Vec<_>>(),
            ["curio-reactor", "curio-time"]
        );
        assert_eq!(layering.duplicates, [("curio-time".to_owned(), 17)]);
    }

    /// A missing heading or table is an error that says which.
    #[test]
    fn reports_what_is_missing() {
        assert_eq!(parse("# Architecture\n").unwrap_err().0, None);
        let error = parse("# A\n## Crate layering\ntext\n## Next\n| `x` | |\n").unwrap_err();
        assert_eq!(error.0, Some(2));
    }
}
