//! The modules form layers: each may import only modules below it, so data
//! flows one way and no two modules import each other (DESIGN.md). The
//! check reads `crate::NAME` paths in each module's source (tests aside).

use std::collections::BTreeMap;
use std::path::Path;

/// Lowest first. Modules on one line share a layer and do not import each
/// other.
const LAYERS: &[&[&str]] = &[
    &["error", "hash", "python", "http"],
    &["gguf"],
    &["request", "stats"],
    &["cache", "metric"],
    &["data", "worker"],
    &["ports"],
    &["task"],
    &["prompt"],
    &["backend"],
    &["engine"],
    &["invocation"],
    &["results"],
    &["variant"],
    &["run"],
    &["leaderboard"],
    &["gate"],
    &["scaffold"],
    &["cli"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `crate::NAME` (and `crate::{NAME::...}`) a source text uses.
fn imports(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(
                group
                    .split(',')
                    .filter_map(|p| p.trim().split("::").next())
                    .map(str::to_string),
            );
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_module_imports_only_modules_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let own =
            rank(&top).unwrap_or_else(|| panic!("module `{top}` has no layer: add it to LAYERS"));
        for used in imports(&std::fs::read_to_string(&file).unwrap()) {
            if used == top || used.is_empty() {
                continue;
            }
            let theirs = rank(&used)
                .unwrap_or_else(|| panic!("{}: `crate::{used}` has no layer", file.display()));
            if theirs >= own {
                wrong
                    .entry(relative.display().to_string())
                    .or_default()
                    .push(used);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports of a module at the same layer or above: {wrong:?}"
    );
}

#[test]
fn the_check_sees_grouped_and_plain_paths() {
    assert_eq!(
        imports("use crate::results::{self, Run};\nuse crate::{hash::hex, python::text};\nfn f() { crate::error::exit::OK; }"),
        ["results", "hash", "python", "error"]
    );
}
