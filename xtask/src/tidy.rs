//! `cargo xtask tidy`: the repository rules of `STYLE.md` as failing checks.
//!
//! Each violation is printed as `path:line: rule: message`, or `path: rule: message` when it
//! concerns a whole file, and all of them are printed before tidy fails, so one run lists
//! everything to fix.
//! The rules:
//!
//! - `layering`: a crate under `crates/` depends only on the workspace crates its row of the
//!   layering table in `ARCHITECTURE.md` allows (see [`layering`] for the table's format), in
//!   its normal and build dependency tables (dev-dependencies, which only tests and doc tests
//!   use, are free); every crate has a row.
//!   The facade, `curio-rt`, may depend on any of them.
//! - `lints`: every member manifest has `[lints]` with `workspace = true`.
//! - `workspace-deps`: every dependency of a member says `workspace = true`, so each version is
//!   written once, in the root `[workspace.dependencies]`.
//! - `safety-comment`, `no-ignore`, `no-todo`, `no-unimplemented`, `no-dbg`: see [`source`].
//! - `crate-doc`: every crate root starts with a `//!` line.
//! - `facade-paths`: the visible lines of the examples in the docs of `crates/` (except
//!   `curio-core` and each crate root's `//!` docs) name no workspace crate, only the facade's
//!   `curio::` paths (see [`docs`]).
//! - `module-cycles`: within each crate under `crates/`, modules do not depend on each other in
//!   a cycle (see [`modules`]).
//! - `crate-readme`: every crate directory has a `README.md`.
//! - `changelog`, `readme`, `lockfile`, `toolchain`: `CHANGELOG.md` has `## [Unreleased]`,
//!   `README.md` shows how to run the example and the tests near its top, `Cargo.lock` is
//!   committed, and there is no `rust-toolchain.toml`.
//!
//! The Rust rules scan `crates/`, `src/`, `examples/`, `tests/` and `benches/`, never `xtask/`:
//! this module has to spell out the very patterns it forbids.

mod docs;
mod layering;
mod manifest;
mod modules;
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::Path;

use self::manifest::{Dependency, Manifest};

/// The directories whose Rust files the source rules check.
const SOURCE_DIRS: [&str; 5] = ["crates", "src", "examples", "tests", "benches"];

/// The prefix of our crates' names, which marks a dependency as workspace-internal.
const INTERNAL_PREFIX: &str = "curio-";

/// The table, in the root manifest, that holds every dependency's version.
const WORKSPACE_DEPENDENCIES: &str = "workspace.dependencies";

/// How many lines at the top of `README.md` must show the commands below.
const README_HEAD: usize = 15;

/// The commands `README.md` must show near its top.
const README_COMMANDS: [&str; 2] = [
    "cargo run --release --example echo_server",
    "cargo xtask test",
];

/// A broken rule, or a warning, located in a file.
#[derive(Debug)]
struct Finding {
    /// The file, relative to the workspace root, with `/` separators.
    path: String,
    /// The line, 1-based, if the finding concerns one line.
    line: Option<usize>,
    /// The name of the rule.
    rule: &'static str,
    /// What is wrong, and what to do instead.
    message: String,
}

impl fmt::Display for Finding {
    /// Writes `path:line: rule: message`, the form editors and CI logs link to.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}: {}", self.path, self.rule, self.message),
            None => write!(f, "{}: {}: {}", self.path, self.rule, self.message),
        }
    }
}

/// One run of the checks over the workspace at `root`.
struct Tidy<'a> {
    /// The workspace root.
    root: &'a Path,
    /// The rules broken so far.
    violations: Vec<Finding>,
    /// Oddities that do not fail the run.
    warnings: Vec<Finding>,
    /// The crate directories, `crates/<name>`, that have a `Cargo.toml`.
    crates: Vec<String>,
    /// The number of Rust files checked.
    rust_files: usize,
}

/// Checks every rule on the workspace at `root` and prints what is broken.
///
/// # Errors
///
/// Returns a summary such as `3 violations` if any rule is broken; the violations themselves
/// have been printed.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let mut tidy = Tidy {
        root,
        violations: Vec::new(),
        warnings: Vec::new(),
        crates: Vec::new(),
        rust_files: 0,
    };
    tidy.crates = tidy.crate_dirs();
    let manifests = tidy.check_manifests();
    tidy.check_layering(&manifests);
    tidy.check_rust_sources();
    tidy.check_crate_roots();
    tidy.check_module_cycles();
    tidy.check_crate_readmes();
    tidy.check_repository_files();
    tidy.report(manifests.len())
}

impl Tidy<'_> {
    /// Records that `rule` is broken in `path` (at `line`, if given).
    fn violation(&mut self, path: &str, line: Option<usize>, rule: &'static str, message: String) {
        self.violations.push(Finding {
            path: path.to_owned(),
            line,
            rule,
            message,
        });
    }

    /// Records a warning about `path` (at `line`, if given), which does not fail the run.
    fn warning(&mut self, path: &str, line: Option<usize>, rule: &'static str, message: String) {
        self.warnings.push(Finding {
            path: path.to_owned(),
            line,
            rule,
            message,
        });
    }

    /// Reports whether `path`, relative to the root, is a file.
    fn is_file(&self, path: &str) -> bool {
        self.root.join(path).is_file()
    }

    /// Reads the file at `path`, relative to the root; records a violation of `rule` if it is
    /// missing, saying `why` it is needed, or unreadable.
    fn read(&mut self, path: &str, rule: &'static str, why: &str) -> Option<String> {
        match fs::read_to_string(self.root.join(path)) {
            Ok(text) => Some(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.violation(path, None, rule, format!("missing: {why}"));
                None
            }
            Err(err) => {
                self.violation(path, None, rule, format!("cannot read: {err}"));
                None
            }
        }
    }

    /// Returns the names of the subdirectories of `dir`, relative to the root, sorted.
    fn subdirectories(&self, dir: &str) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.root.join(dir)) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// Returns the crate directories, `crates/<name>`, that have a `Cargo.toml`.
    fn crate_dirs(&mut self) -> Vec<String> {
        let mut dirs = Vec::new();
        for name in self.subdirectories("crates") {
            let dir = format!("crates/{name}");
            if self.is_file(&format!("{dir}/Cargo.toml")) {
                dirs.push(dir);
            } else {
                let message = "a directory under crates/ without a Cargo.toml".to_owned();
                self.warning(&dir, None, "crates", message);
            }
        }
        dirs
    }

    /// Returns the paths of the member manifests: the root, `xtask`, every crate, and whatever
    /// else `workspace.members` names.
    fn member_manifest_paths(&mut self, root_manifest: &Manifest) -> BTreeSet<String> {
        let mut paths = BTreeSet::from(["Cargo.toml".to_owned()]);
        let mut dirs = self.crates.clone();
        dirs.push("xtask".to_owned());
        for pattern in &root_manifest.workspace_members {
            let pattern = pattern.trim_end_matches('/');
            if let Some(parent) = pattern.strip_suffix("/*") {
                let children = self.subdirectories(parent);
                dirs.extend(children.into_iter().map(|name| format!("{parent}/{name}")));
            } else if pattern.contains(['*', '?', '[']) {
                let message = format!("tidy cannot expand the member pattern `{pattern}`");
                self.warning("Cargo.toml", None, "lints", message);
            } else {
                dirs.push(pattern.to_owned());
            }
        }
        for dir in dirs {
            let path = format!("{dir}/Cargo.toml");
            if self.is_file(&path) {
                paths.insert(path);
            }
        }
        paths
    }

    /// Checks the `lints` and `workspace-deps` rules on every member manifest, and returns the
    /// manifests by path.
    fn check_manifests(&mut self) -> BTreeMap<String, Manifest> {
        let mut manifests = BTreeMap::new();
        let Some(root_text) = self.read("Cargo.toml", "lints", "the workspace manifest") else {
            return manifests;
        };
        let root_manifest = manifest::parse(&root_text);
        for path in self.member_manifest_paths(&root_manifest) {
            let manifest = if path == "Cargo.toml" {
                manifest::parse(&root_text)
            } else {
                match self.read(&path, "lints", "a member manifest") {
                    Some(text) => manifest::parse(&text),
                    None => continue,
                }
            };
            if !manifest.lints_workspace {
                let message =
                    "needs `[lints]` with `workspace = true`, so the workspace lints apply";
                self.violation(&path, None, "lints", message.to_owned());
            }
            for dependency in &manifest.dependencies {
                if dependency.table != WORKSPACE_DEPENDENCIES && !dependency.workspace {
                    let key = &dependency.key;
                    let message = format!(
                        "`{key}` in [{}] must be `{key}.workspace = true`: \
                         its version or path belongs once in the root [workspace.dependencies]",
                        dependency.table
                    );
                    self.violation(&path, Some(dependency.line), "workspace-deps", message);
                }
            }
            manifests.insert(path, manifest);
        }
        manifests
    }

    /// Checks the `layering` rule: every crate's workspace dependencies against its row of the
    /// layering table in `ARCHITECTURE.md`.
    fn check_layering(&mut self, manifests: &BTreeMap<String, Manifest>) {
        const ARCHITECTURE: &str = "ARCHITECTURE.md";
        let why = "it holds the layering table that tidy checks";
        let Some(text) = self.read(ARCHITECTURE, "layering", why) else {
            return;
        };
        let table = match layering::parse(&text) {
            Ok(table) => table,
            Err((line, message)) => {
                self.violation(ARCHITECTURE, line, "layering", message);
                return;
            }
        };
        for (name, line) in &table.duplicates {
            let message = format!("a second row for `{name}`");
            self.violation(ARCHITECTURE, Some(*line), "layering", message);
        }
        let workspace_dependencies: Vec<&Dependency> = manifests
            .get("Cargo.toml")
            .map(|root| {
                let all = root.dependencies.iter();
                all.filter(|dep| dep.table == WORKSPACE_DEPENDENCIES)
                    .collect()
            })
            .unwrap_or_default();
        let mut crates = BTreeSet::new();
        for dir in self.crates.clone() {
            let path = format!("{dir}/Cargo.toml");
            let Some(manifest) = manifests.get(&path) else {
                continue;
            };
            let name = manifest
                .package_name
                .clone()
                .unwrap_or_else(|| dir["crates/".len()..].to_owned());
            crates.insert(name.clone());
            let Some(row) = table.rows.get(&name) else {
                let message = format!("`{name}` ({dir}) has no row in the layering table");
                self.violation(ARCHITECTURE, Some(table.heading_line), "layering", message);
                continue;
            };
            for dependency in &manifest.dependencies {
                let target = package_name(dependency, &workspace_dependencies);
                // Tests and doc tests may use any crate (a dev-dependency is not linked into
                // the library, and cargo allows the cycle); the table governs what the library
                // itself is built on.
                if dependency.table.ends_with("dev-dependencies")
                    || !target.starts_with(INTERNAL_PREFIX)
                    || target == name
                    || row.allowed.contains(target)
                {
                    continue;
                }
                let allowed = if row.allowed.is_empty() {
                    "no workspace crate".to_owned()
                } else {
                    let names: Vec<String> = row.allowed.iter().map(|n| format!("`{n}`")).collect();
                    names.join(", ")
                };
                let message = format!(
                    "`{name}` may not depend on `{target}` (in [{}]): its row at {ARCHITECTURE}:{} \
                     allows {allowed}; a new edge updates that table in the same commit",
                    dependency.table, row.line,
                );
                self.violation(&path, Some(dependency.line), "layering", message);
            }
        }
        for (name, row) in &table.rows {
            if !crates.contains(name) && name != "curio-rt" {
                let message = format!("a row for `{name}`, which is not a crate under crates/");
                self.warning(ARCHITECTURE, Some(row.line), "layering", message);
            }
        }
    }

    /// Checks the Rust source rules on every `.rs` file under [`SOURCE_DIRS`].
    fn check_rust_sources(&mut self) {
        let mut files = Vec::new();
        for dir in SOURCE_DIRS {
            self.collect_rust_files(dir, &mut files);
        }
        for path in files {
            let Some(text) = self.read(&path, "io", "listed a moment ago") else {
                continue;
            };
            self.rust_files += 1;
            for problem in source::check(&text) {
                self.violation(&path, Some(problem.line), problem.rule, problem.message);
            }
            self.check_facade_paths(&path, &text);
        }
    }

    /// Checks the `facade-paths` rule on the Rust file at `path` with text `text`: the examples in
    /// the docs of a crate under `crates/` name the facade's paths, not the crate's (see
    /// [`docs`]). `curio-core`'s docs, and each crate root's `//!` docs, keep their own paths.
    fn check_facade_paths(&mut self, path: &str, text: &str) {
        if !path.starts_with("crates/") || path.starts_with("crates/curio-core/") {
            return;
        }
        let crate_root = path.ends_with("/src/lib.rs");
        // Every workspace crate's path, `curio-net` giving `curio_net::`.
        let crate_paths: Vec<String> = self
            .crates
            .iter()
            .filter_map(|dir| dir.strip_prefix("crates/"))
            .map(|name| format!("{}::", name.replace('-', "_")))
            .collect();
        for problem in docs::check(text, crate_root, &crate_paths) {
            let message = format!(
                "an example the facade shows names `{}`, which a curio-rt user cannot write: \
                 use the facade's path (`curio::...`), built in a hidden `# mod curio {{ ... }}` \
                 line (ARCHITECTURE.md, Documentation)",
                problem.path
            );
            self.violation(path, Some(problem.line), "facade-paths", message);
        }
    }

    /// Appends the `.rs` files under `dir`, relative to the root, to `files`, skipping hidden
    /// and `target` directories.
    fn collect_rust_files(&self, dir: &str, files: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(self.root.join(dir)) else {
            return;
        };
        let mut entries: Vec<(String, bool)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let is_dir = entry.file_type().ok()?.is_dir();
                Some((entry.file_name().into_string().ok()?, is_dir))
            })
            .collect();
        entries.sort();
        for (name, is_dir) in entries {
            let path = format!("{dir}/{name}");
            if is_dir && !name.starts_with('.') && name != "target" {
                self.collect_rust_files(&path, files);
            } else if !is_dir && name.ends_with(".rs") {
                files.push(path);
            }
        }
    }

    /// Checks the `crate-doc` rule: every crate root starts with a `//!` line.
    fn check_crate_roots(&mut self) {
        let mut roots = vec!["src/lib.rs".to_owned()];
        for dir in self.crates.clone() {
            let lib = format!("{dir}/src/lib.rs");
            let main = format!("{dir}/src/main.rs");
            if self.is_file(&lib) {
                roots.push(lib);
            } else if self.is_file(&main) {
                roots.push(main);
            }
        }
        for path in roots {
            let Some(text) = self.read(&path, "crate-doc", "the facade's crate root") else {
                continue;
            };
            if !text.starts_with("//!") {
                let message = "a crate root starts with a `//!` line, the crate's one-line summary";
                self.violation(&path, Some(1), "crate-doc", message.to_owned());
            }
        }
    }

    /// Checks the `module-cycles` rule: in every crate under `crates/`, the modules' `crate::`
    /// paths form no cycle (see [`modules`]).
    fn check_module_cycles(&mut self) {
        for dir in self.crates.clone() {
            let src = self.root.join(&dir).join("src");
            let mut files = Vec::new();
            collect_rs(&src, &src, &mut files);
            let known: BTreeSet<String> = files
                .iter()
                .filter_map(|(rel, _)| modules::module_name(rel))
                .collect();
            let mut graph = modules::Graph::new();
            for (rel, text) in &files {
                if let Some(name) = modules::module_name(rel) {
                    modules::add_edges(&mut graph, &known, &name, text);
                }
            }
            if let Some(cycle) = modules::find_cycle(&graph) {
                let message = format!(
                    "modules depend on each other in a cycle: {}; move what both need into a \
                     leaf module",
                    cycle.join(" -> ")
                );
                self.violation(&format!("{dir}/src"), None, "module-cycles", message);
            }
        }
    }

    /// Checks the `crate-readme` rule: every crate directory has a `README.md`.
    fn check_crate_readmes(&mut self) {
        for dir in self.crates.clone() {
            let path = format!("{dir}/README.md");
            if !self.is_file(&path) {
                let message = "missing: it says what the crate is for and how to depend on it";
                self.violation(&path, None, "crate-readme", message.to_owned());
            }
        }
    }

    /// Checks the rules on the files at the root: `CHANGELOG.md`, `README.md`, `Cargo.lock` and
    /// the absence of `rust-toolchain.toml`.
    fn check_repository_files(&mut self) {
        let why = "every user-visible change adds a line under `## [Unreleased]`";
        if let Some(text) = self.read("CHANGELOG.md", "changelog", why)
            && !text
                .lines()
                .any(|line| line.trim_start().starts_with("## [Unreleased]"))
        {
            let message = format!("has no `## [Unreleased]` section: {why}");
            self.violation("CHANGELOG.md", None, "changelog", message);
        }

        let why = "it shows how to run the example and the tests";
        if let Some(text) = self.read("README.md", "readme", why) {
            let head: Vec<&str> = text.lines().take(README_HEAD).collect();
            let head = head.join("\n");
            for command in README_COMMANDS {
                if !head.contains(command) {
                    let message =
                        format!("must show `{command}` within its first {README_HEAD} lines");
                    self.violation("README.md", None, "readme", message);
                }
            }
        }

        if !self.is_file("Cargo.lock") {
            let message = "missing: Cargo.lock is committed".to_owned();
            self.violation("Cargo.lock", None, "lockfile", message);
        }

        for path in ["rust-toolchain.toml", "rust-toolchain"] {
            if self.root.join(path).exists() {
                let message = "remove it: the machines have exactly one stable toolchain";
                self.violation(path, None, "toolchain", message.to_owned());
            }
        }
    }

    /// Prints the warnings and violations and a summary line, after checking `manifests`
    /// manifests.
    ///
    /// # Errors
    ///
    /// Returns the summary if there are violations.
    fn report(mut self, manifests: usize) -> Result<(), String> {
        for warning in &self.warnings {
            println!("warning: {warning}");
        }
        // A stable sort, so findings on one line keep the order the rules ran in.
        self.violations
            .sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        for violation in &self.violations {
            println!("{violation}");
        }
        let checked = format!("{manifests} manifests, {} Rust files", self.rust_files);
        match self.violations.len() {
            0 => {
                println!("tidy: ok ({checked})");
                Ok(())
            }
            count => {
                let summary = format!(
                    "{count} violation{} ({checked})",
                    if count == 1 { "" } else { "s" }
                );
                println!("tidy: {summary}");
                Err(summary)
            }
        }
    }
}

/// Returns the name of the package `dependency` names, looking through the root's
/// `workspace_dependencies` for a rename when it says `workspace = true`.
fn package_name<'a>(
    dependency: &'a Dependency,
    workspace_dependencies: &[&'a Dependency],
) -> &'a str {
    if dependency.workspace
        && dependency.package.is_none()
        && let Some(declared) = workspace_dependencies
            .iter()
            .find(|declared| declared.key == dependency.key)
    {
        return declared.crate_name();
    }
    dependency.crate_name()
}

/// The `.rs` files under `dir`, as paths relative to `base` (with `/` separators) and texts.
fn collect_rs(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(base, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && let (Ok(rel), Ok(text)) = (path.strip_prefix(base), fs::read_to_string(&path))
        {
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push((rel, text));
        }
    }
}
