//! The `module-cycles` rule: within a crate, the modules' `crate::` paths form no cycle.
//!
//! A module is a file under `src/` (`src/a.rs` or `src/a/mod.rs` is `a`, `src/a/b.rs` is
//! `a::b`). A file depends on the modules its `crate::...` paths name: the longest prefix of
//! the path that is a module of the crate. A child module declared by its parent (`mod state;`)
//! is not a dependency of the parent, so a feature may keep its per-task state in a leaf child
//! that the header uses while the feature itself uses the header.

use std::collections::{BTreeMap, BTreeSet};

/// A crate's modules: each one's name (`a::b`) and the modules it depends on.
pub(crate) type Graph = BTreeMap<String, BTreeSet<String>>;

/// The module name of the file at `rel`, a path relative to the crate's `src/` with `/`
/// separators; `None` for the crate root (`lib.rs`, `main.rs`).
pub(crate) fn module_name(rel: &str) -> Option<String> {
    let stem = rel.strip_suffix(".rs")?;
    let stem = stem.strip_suffix("/mod").unwrap_or(stem);
    if stem == "lib" || stem == "main" {
        return None;
    }
    Some(stem.replace('/', "::"))
}

/// Adds to `graph` the dependencies of module `name`, whose source is `text`, on the modules
/// in `known`.
pub(crate) fn add_edges(graph: &mut Graph, known: &BTreeSet<String>, name: &str, text: &str) {
    let deps = graph.entry(name.to_owned()).or_default();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            // The longest prefix that names a module of the crate.
            let target = (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|m| known.contains(m));
            if let Some(target) = target
                && target != name
            {
                deps.insert(target);
            }
        }
    }
}

/// A cycle in `graph`, as the modules along it (the first repeated at the end), if any.
pub(crate) fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<'a>(
        graph: &'a Graph,
        node: &'a str,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|n| *n == node).unwrap_or(0);
                let mut cycle: Vec<String> =
                    stack[start..].iter().map(|n| (*n).to_owned()).collect();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node, Mark::Open);
        stack.push(node);
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(graph, dep, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    let mut stack = Vec::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(graph, node, &mut marks, &mut stack) {
            return Some(cycle);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> Graph {
        let known: BTreeSet<String> = files.iter().filter_map(|(f, _)| module_name(f)).collect();
        let mut g = Graph::new();
        for (file, text) in files {
            if let Some(name) = module_name(file) {
                add_edges(&mut g, &known, &name, text);
            }
        }
        g
    }

    #[test]
    fn names_modules_after_their_files() {
        assert_eq!(module_name("a.rs").as_deref(), Some("a"));
        assert_eq!(module_name("a/mod.rs").as_deref(), Some("a"));
        assert_eq!(module_name("a/b.rs").as_deref(), Some("a::b"));
        assert_eq!(module_name("lib.rs"), None);
    }

    #[test]
    fn finds_a_cycle_and_accepts_a_leaf_child() {
        let cyclic = graph(&[
            ("task.rs", "use crate::group::Link;"),
            ("group.rs", "use crate::task::{Task, Header};"),
        ]);
        assert_eq!(
            find_cycle(&cyclic),
            Some(vec!["group".into(), "task".into(), "group".into()])
        );
        let layered = graph(&[
            (
                "header.rs",
                "use crate::group::link::Link; // crate::group would be a cycle",
            ),
            ("group.rs", "mod link;\nuse crate::header::Header;"),
            ("group/link.rs", "pub struct Link;"),
        ]);
        assert_eq!(find_cycle(&layered), None);
    }
}
