//! The host's modules import each other one way only.
//!
//! The top-level modules sit in layers ([`LAYERS`]): a module may use the modules of lower
//! layers and none of its own layer or above, so the graph is a tree of one-way arrows and
//! each module can be read without the ones above it. Inside a folder module (`oauth/`,
//! `plugins/`, …) the files may use their parent (`super::…`, which owns what they share)
//! and each other, but never in a circle.
//!
//! The test reads the sources (every `crate::…` and `super::…` path outside comments), so a
//! forbidden import fails it before anyone has to notice. `cargo test -p hearth-host --test
//! module_graph -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules, lowest layer first. A module may use only modules of lower layers.
const LAYERS: &[&[&str]] = &[
    // Storage: pools, transactions, the SQL gate and values. Knows nothing else. The
    // process allocator's settings.
    &["db", "allocator"],
    // Errors as HTTP answers, TLS files, proxies' forwarded addresses, metrics and request
    // labels, what every server-rendered page shares, serving connections.
    &["error", "tls", "proxy", "telemetry", "web", "connections"],
    // The host's settings.
    &["config"],
    // Keys, signatures, hashes.
    &["crypto"],
    // Sites: their databases, keys and per-process caches (a leaf for everything above).
    &["sites"],
    // Who calls (tokens, scopes, users, ACL) and what was done (the audit log).
    &["auth", "audit"],
    // The plugin runtime; the registrar (OAuth clients, scopes, settings, accounts).
    &["plugins", "registrar"],
    // What every router shares: the application state, FHIR's format negotiation.
    &["state", "formats"],
    // The routers: none knows another.
    &["api", "oauth", "admin", "console", "fhir", "openapi", "ops"],
    // The application: builds the state and the routers, serves them.
    &["app"],
    // The command line, on top of everything.
    &["cli"],
];

/// Folder modules whose files must not import each other in a circle.
const FOLDERS: &[&str] = &[
    "api",
    "api/bulk",
    "auth",
    "cli",
    "console",
    "crypto",
    "db",
    "oauth",
    "plugins",
    "registrar",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the source folder reads") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without comments (line comments, doc comments; block comments are not
/// used in this code base) and without its unit tests (`#[cfg(test)] mod …`, which may
/// reach anywhere to check that things agree).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("a source file reads");
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        // A trailing comment: `code // words`.
        let line = match line.find(" // ") {
            Some(at) => &line[..at],
            None => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The identifiers that follow each occurrence of `prefix` (`crate::` → `db`, …).
fn names_after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        names.push(&rest[..end]);
    }
    names
}

/// Where a module's items are named: `crate::db::…`, and `crate::on_db!` (a `db` macro).
fn top_level_target(name: &str) -> &str {
    match name {
        "on_db" => "db",
        other => other,
    }
}

/// The top-level module a file belongs to (`oauth/token.rs` → `oauth`), or `None` for
/// the crate root files.
fn top_level(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Edges between top-level modules: (from, to) → the files that make them.
fn top_level_edges() -> BTreeMap<(String, String), BTreeSet<String>> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut edges: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&root).expect("under src").to_path_buf();
        let Some(from) = top_level(&relative) else {
            continue;
        };
        let code = code(&file);
        for name in names_after(&code, "crate::") {
            let to = top_level_target(name);
            if to != from {
                edges
                    .entry((from.clone(), to.to_owned()))
                    .or_default()
                    .insert(relative.display().to_string());
            }
        }
    }
    edges
}

/// Edges between the files of a folder module: `super::x` and `crate::folder::x`, where
/// `x` is a sibling file or folder.
fn folder_edges(folder: &str) -> BTreeMap<String, BTreeSet<String>> {
    let dir = src().join(folder);
    let mut children = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("the folder reads") {
        let path = entry.expect("an entry").path();
        let name = path
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name != "mod" {
            children.insert(name.to_owned());
        }
    }
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&dir).expect("under the folder");
        let first = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default();
        let from = first.strip_suffix(".rs").unwrap_or(first);
        if from == "mod" {
            // The parent declares its children and may use them.
            continue;
        }
        let code = code(&file);
        let own = format!("crate::{folder}::");
        let nested = relative.components().count() > 1;
        let mut targets = names_after(&code, &own);
        if !nested {
            // In `folder/x.rs`, `super::` is the folder.
            targets.extend(names_after(&code, "super::"));
        }
        for to in targets {
            if to != from && children.contains(to) {
                edges
                    .entry(from.to_owned())
                    .or_default()
                    .insert(to.to_owned());
            }
        }
    }
    edges
}

/// A circle in `edges`, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn every_top_level_module_has_a_layer() {
    let root = src();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&root).expect("src reads") {
        let path = entry.expect("an entry").path();
        let relative = path.strip_prefix(&root).expect("under src");
        if let Some(module) = top_level(relative)
            && layer_of(&module).is_none()
        {
            missing.push(module);
        }
    }
    assert!(
        missing.is_empty(),
        "modules without a layer in LAYERS (add each where it belongs): {missing:?}"
    );
}

#[test]
fn top_level_modules_use_only_lower_layers() {
    let edges = top_level_edges();
    let mut graph = String::new();
    let mut wrong = Vec::new();
    for ((from, to), files) in &edges {
        graph.push_str(&format!("{from} -> {to}\n"));
        let (Some(a), Some(b)) = (layer_of(from), layer_of(to)) else {
            wrong.push(format!("{from} -> {to}: a module without a layer"));
            continue;
        };
        if b >= a {
            wrong.push(format!(
                "{from} (layer {a}) uses {to} (layer {b}) in {}",
                files.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    eprintln!("top-level module graph:\n{graph}");
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn files_of_a_folder_module_do_not_import_each_other_in_a_circle() {
    for folder in FOLDERS {
        let edges = folder_edges(folder);
        let listed: Vec<String> = edges
            .iter()
            .flat_map(|(from, tos)| tos.iter().map(move |to| format!("{from} -> {to}")))
            .collect();
        eprintln!("{folder}/: {}", listed.join(", "));
        if let Some(cycle) = find_cycle(&edges) {
            panic!(
                "{folder}/ files import each other in a circle: {}",
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_checker_sees_imports_and_circles() {
    let code = "use crate::db::Db;\nlet x = crate::on_db!(db, |p| p);\nnot_crate::x";
    assert_eq!(names_after(code, "crate::"), ["db", "on_db"]);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    assert!(find_cycle(&edges).is_none());
    edges.entry("b".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&edges).expect("a circle"), ["a", "b", "a"]);
}
