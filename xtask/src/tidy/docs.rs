//! The `facade-paths` rule: the examples users read on the facade's pages use the facade's paths.
//!
//! The facade, `curio-rt`, inlines the docs of every item it re-exports, so an example in those
//! docs is read by users who depend on `curio-rt` and can name only `curio::...`.
//! A doc test is compiled in the crate that defines the item, where `curio` does not exist, so
//! the example builds it in a hidden line (`# mod curio { pub use curio_kernel::run; ... }`);
//! hidden lines may name any crate, visible ones only the facade.
//! A crate root's own `//!` docs are the crate's, not the facade's, and keep the crate's paths.

/// The info-string words that still make a fenced block Rust (rustdoc's attributes).
const RUST_INFO: [&str; 7] = [
    "rust",
    "no_run",
    "ignore",
    "should_panic",
    "compile_fail",
    "test_harness",
    "standalone_crate",
];

/// A visible example line that names a workspace crate.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The line, 1-based.
    pub(crate) line: usize,
    /// The crate path it names, such as `curio_kernel::`.
    pub(crate) path: String,
}

/// Returns the visible lines of Rust examples in the doc comments of `text` that name one of
/// `crate_paths` (such as `curio_kernel::`); `crate_root` skips the file's `//!` docs.
pub(crate) fn check(text: &str, crate_root: bool, crate_paths: &[String]) -> Vec<Problem> {
    let mut problems = Vec::new();
    // The doc-comment marker of the fenced block we are in, and whether it is Rust.
    let mut block: Option<(&str, bool)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let Some(marker) = ["///", "//!"].into_iter().find(|m| trimmed.starts_with(m)) else {
            continue;
        };
        let rest = &trimmed[marker.len()..];
        let content = rest.strip_prefix(' ').unwrap_or(rest);
        if let Some(info) = content.trim_start().strip_prefix("```") {
            block = match block {
                Some((open, _)) if open == marker => None,
                Some(inside) => Some(inside),
                None => Some((marker, is_rust(info))),
            };
            continue;
        }
        let Some((open, rust)) = block else {
            continue;
        };
        // rustdoc hides a line whose first non-blank characters are `# `, or a lone `#`.
        let code = content.trim_start();
        let hidden = code == "#" || code.starts_with("# ");
        if open != marker || !rust || hidden || (crate_root && marker == "//!") {
            continue;
        }
        if let Some(path) = crate_paths.iter().find(|p| content.contains(p.as_str())) {
            problems.push(Problem {
                line: index + 1,
                path: path.clone(),
            });
        }
    }
    problems
}

/// Reports whether a fence with info string `info` opens a Rust block, as rustdoc decides.
fn is_rust(info: &str) -> bool {
    info.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|word| !word.is_empty())
        .all(|word| RUST_INFO.contains(&word) || word.starts_with("edition"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> Vec<String> {
        vec![
            "curio_kernel::".into(),
            "curio_net::".into(),
            "curio_sync::".into(),
        ]
    }

    #[test]
    fn flags_visible_crate_paths_in_examples_only() {
        let text = "\
/// Mentions `curio_kernel::run` in prose, which is fine.
///
/// ```
/// # mod curio { pub use curio_kernel::run; }
/// curio::run(async {});
/// curio_kernel::run(async {});
/// ```
///
/// ```text
/// curio_net::TcpStream
/// ```
fn f() {}
";
        assert_eq!(
            check(text, false, &paths()),
            [Problem {
                line: 6,
                path: "curio_kernel::".into()
            }]
        );
    }

    #[test]
    fn a_crate_root_keeps_its_own_paths() {
        let text = "\
//! ```
//! curio_sync::Queue::new(0);
//! ```

/// ```no_run
/// curio_sync::Queue::new(0);
/// ```
fn f() {}
";
        assert_eq!(
            check(text, true, &paths()),
            [Problem {
                line: 6,
                path: "curio_sync::".into()
            }]
        );
        assert_eq!(check(text, false, &paths()).len(), 2);
    }

    #[test]
    fn knows_rust_info_strings() {
        assert!(is_rust(""));
        assert!(is_rust("rust"));
        assert!(is_rust("no_run"));
        assert!(is_rust("rust,should_panic"));
        assert!(is_rust("edition2024"));
        assert!(!is_rust("text"));
        assert!(!is_rust("sh"));
        assert!(!is_rust("toml"));
    }
}
