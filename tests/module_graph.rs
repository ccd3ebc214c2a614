//! The shape of the code, checked so that it does not drift back:
//! - the library's top-level modules form no cycle (identity → credential → keypackage →
//!   group → transport → content, with the others beside them): a module names a later one
//!   only through a layer that owns the shared type;
//! - the delivery service's crate depends on neither atmls nor openmls (spec/ds.md DS-2: the
//!   compiler keeps MLS out of it only while its manifest does).
//!
//! Unit tests are left out of the graph (a test may reach anywhere): files named `tests.rs`
//! or `*_tests.rs`, and the rest of a file from its first `#[cfg(test)]`.
//!
//! Test code: `unwrap` only on the repository's own files and fixtures (copied before use),
//! never on input from another party.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library's top-level modules: `src/<name>.rs` and `src/<name>/`, without the binaries.
fn top_modules(src: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let rust = path.extension().is_some_and(|e| e == "rs");
        if name != "lib" && name != "bin" && (path.is_dir() || rust) {
            out.insert(name);
        }
    }
    out
}

/// The code of a file that is not a unit test, without line comments.
fn non_test_code(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name.ends_with("_tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text,
    };
    code.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules `code` names: `crate::x…`, and each `x` of `crate::{x…, y…}`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The first segment of each item at depth 1 of the braces.
            let (mut depth, mut start) = (1usize, true);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start && depth == 1 => {
                        out.insert(ident_at(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident_at(rest));
        }
    }
    out
}

/// Which top-level module names which, and in which files.
fn module_graph() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let src = root().join("src");
    let tops = top_modules(&src);
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let from = first.trim_end_matches(".rs").to_string();
        if !tops.contains(&from) {
            continue;
        }
        for to in named_modules(&non_test_code(&file)) {
            if to != from && tops.contains(&to) {
                let files = graph
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default();
                files.insert(rel.display().to_string());
            }
        }
    }
    graph
}

/// A cycle through `start`, if any: the path back to it.
fn cycle_from(
    graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    start: &str,
) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap();
        for next in graph.get(last).map(|m| m.keys()).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn the_library_modules_form_no_cycle() {
    let graph = module_graph();
    // The check sees the edges that exist (a broken parser would pass everything).
    assert!(graph["group"].contains_key("identity"), "{graph:?}");
    assert!(graph["client"].contains_key("group"), "{graph:?}");
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|cycle| {
            let edges: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("{} -> {} ({:?})", w[0], w[1], graph[&w[0]][&w[1]]))
                .collect();
            edges.join("; ")
        })
        .collect();
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_parser_finds_grouped_and_nested_imports() {
    let code = "use crate::{a::{X, Y}, b, c::Z};\nfn f() { crate::d::g(); }";
    let found: Vec<String> = named_modules(code).into_iter().collect();
    assert_eq!(found, ["a", "b", "c", "d"]);
    let mut graph = BTreeMap::new();
    for (from, to) in [("x", "y"), ("y", "z"), ("z", "x")] {
        graph
            .entry(from.to_string())
            .or_insert_with(BTreeMap::new)
            .insert(to.to_string(), BTreeSet::new());
    }
    assert_eq!(
        cycle_from(&graph, "x"),
        Some(vec!["x".into(), "y".into(), "z".into(), "x".into()])
    );
    graph.get_mut("z").unwrap().clear();
    assert_eq!(cycle_from(&graph, "x"), None);
}

/// The `[dependencies]` (not dev-dependencies) of a manifest, by name.
fn dependencies(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut out = BTreeSet::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
        } else if inside && !line.is_empty() && !line.starts_with('#') {
            out.insert(ident_at(&line.replace('-', "_")).replace('_', "-"));
            // A renamed dependency is the package it names.
            if let Some(i) = line.find("package = \"") {
                let rest = &line[i + "package = \"".len()..];
                out.insert(rest.split('"').next().unwrap_or_default().to_string());
            }
        }
    }
    out
}

#[test]
fn ds_2_the_service_depends_on_neither_atmls_nor_openmls() {
    let deps = dependencies(&root().join("crates/atmls-ds/Cargo.toml"));
    assert!(deps.contains("atmls-ds-wire"), "{deps:?}");
    let mls: Vec<_> = deps
        .iter()
        .filter(|d| *d == "atmls" || d.contains("openmls"))
        .collect();
    assert!(mls.is_empty(), "atmls-ds depends on {mls:?}");
    let wire = dependencies(&root().join("crates/atmls-ds-wire/Cargo.toml"));
    assert!(
        !wire.iter().any(|d| d == "atmls" || d.contains("openmls")),
        "{wire:?}"
    );
}
