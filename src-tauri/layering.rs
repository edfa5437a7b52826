//! The module rules of ARCHITECTURE.md, checked on the source itself: the top-level modules form
//! no cycle (so each can be built and tested without the ones that use it), only one module
//! each imports axum, tauri and keyring, and the clock and the lock-poisoning policy each have
//! one home.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, with its path relative to `src-tauri/`.
fn sources(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("the source folder reads") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            sources(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under the root");
            let text = std::fs::read_to_string(&path).expect("a source file reads");
            out.push((rel.to_string_lossy().replace('\\', "/"), text));
        }
    }
}

/// The non-test lines of a file: unit tests (`*_tests.rs`, `tests.rs`, an item under
/// `#[cfg(test)]`) may use whatever they test with; comments do not count.
fn code_lines(path: &str, text: &str) -> Vec<String> {
    if path.ends_with("_tests.rs") || path.ends_with("/tests.rs") || path == "layering.rs" {
        return Vec::new();
    }
    let mut code = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            skip_item(&mut lines);
        } else if !line.trim_start().starts_with("//") {
            code.push(line.to_string());
        }
    }
    code
}

/// Skips the item after a `#[cfg(test)]`: up to its `;`, or to the brace that closes it.
fn skip_item<'a>(lines: &mut impl Iterator<Item = &'a str>) {
    let mut depth = 0i32;
    for line in lines {
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        if depth <= 0 && (line.trim_end().ends_with(';') || line.trim_end().ends_with('}')) {
            return;
        }
    }
}

fn top_module(path: &str) -> String {
    let first = path.split('/').next().unwrap_or(path);
    first.trim_end_matches(".rs").to_string()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src-tauri")
}

fn all_code() -> Vec<(String, Vec<String>)> {
    let root = root();
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    files
        .into_iter()
        .filter(|(p, _)| !matches!(p.as_str(), "main.rs" | "lib.rs" | "build.rs"))
        .map(|(p, t)| {
            let lines = code_lines(&p, &t);
            (p, lines)
        })
        .collect()
}

/// `module -> modules it names as crate::NAME`.
fn graph(files: &[(String, Vec<String>)]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files.iter().map(|(p, _)| top_module(p)).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, lines) in files {
        let from = top_module(path);
        for line in lines {
            for part in line.split("crate::").skip(1) {
                let to: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if modules.contains(&to) && to != from {
                    g.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    g
}

/// A path from `to` back to `from`, if any (so `from -> to` closes a cycle).
fn path_back(
    g: &BTreeMap<String, BTreeSet<String>>,
    to: &str,
    from: &str,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if to == from {
        return Some(vec![from.to_string()]);
    }
    if !seen.insert(to.to_string()) {
        return None;
    }
    for next in g.get(to).into_iter().flatten() {
        if let Some(mut rest) = path_back(g, next, from, seen) {
            rest.insert(0, to.to_string());
            return Some(rest);
        }
    }
    None
}

/// Whether `line` names the crate `name` (`name::…` or `name_plugin_…::…`), not as part of
/// another identifier.
fn names_crate(line: &str, name: &str) -> bool {
    [format!("{name}::"), format!("{name}_plugin")]
        .iter()
        .any(|needle| {
            line.match_indices(needle.as_str()).any(|(at, _)| {
                !line[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        })
}

#[test]
fn the_top_level_modules_form_no_cycle() {
    let g = graph(&all_code());
    assert!(g["broker"].contains("upstream"), "the scan sees imports");
    for (from, targets) in &g {
        for to in targets {
            let back = path_back(&g, to, from, &mut BTreeSet::new());
            assert!(
                back.is_none(),
                "module cycle: {from} -> {}",
                back.unwrap_or_default().join(" -> ")
            );
        }
    }
}

#[test]
fn only_gateway_imports_axum_only_desktop_tauri_only_the_keychain_store_keyring() {
    for (path, lines) in all_code() {
        let uses = |name: &str| lines.iter().any(|l| names_crate(l, name));
        let module = top_module(&path);
        assert!(module == "gateway" || !uses("axum"), "{path} uses axum");
        assert!(module == "desktop" || !uses("tauri"), "{path} uses tauri");
        assert!(
            path == "vault/keychain.rs" || !uses("keyring"),
            "{path} uses keyring"
        );
    }
}

#[test]
fn the_clock_is_read_and_mutexes_are_locked_in_one_place_each() {
    for (path, lines) in all_code() {
        let squeezed: String = lines.concat().split_whitespace().collect();
        assert!(
            path == "clock.rs" || !squeezed.contains("UNIX_EPOCH"),
            "{path} reads the clock itself; use clock::unix_now"
        );
        let own_policy =
            squeezed.contains(".lock().unwrap") || squeezed.contains(".lock().expect(");
        assert!(
            path == "sync.rs" || !own_policy,
            "{path} decides about lock poisoning itself; use sync::lock"
        );
    }
}
