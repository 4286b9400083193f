//! The crate's layout, held as the README describes it: concepts in folders, no import
//! circle between modules, no file past 600 lines, and no Lua inside Rust; and the
//! integration tests': no file past 600 lines, test modules that import only helpers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Every `.rs` file under `src/`, by module path (`storage::cache`; `""` for `lib.rs`).
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new(SRC), &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path
                .strip_prefix(SRC)
                .expect("under src")
                .with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                parts.pop();
            }
            (parts.join("::"), path)
        })
        .collect()
}

/// The source without comments and without its unit-test module.
fn product_code(path: &Path) -> String {
    let text = fs::read_to_string(path).expect("read source");
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .map(|line| line.split_once("//").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::...` path the code names, with `use` groups (`a::{b, c::d}`) expanded.
fn crate_paths(code: &str) -> Vec<String> {
    fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
        let tree = tree.trim();
        match tree.find('{') {
            Some(open) if tree.ends_with('}') => {
                let head = tree[..open].trim_end_matches("::");
                let prefix = [prefix, head]
                    .iter()
                    .filter(|p| !p.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("::");
                let (mut depth, mut start) = (0, open + 1);
                let inner_end = tree.len() - 1;
                for (i, ch) in tree.char_indices().take(inner_end).skip(open + 1) {
                    match ch {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            expand(&prefix, &tree[start..i], out);
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
                expand(&prefix, &tree[start..inner_end], out);
            }
            _ if tree.is_empty() => {}
            _ => {
                let name = tree.split(" as ").next().unwrap_or(tree).trim();
                out.push(if prefix.is_empty() {
                    name.to_owned()
                } else {
                    format!("{prefix}::{name}")
                });
            }
        }
    }
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let is_use = rest[..at].trim_end().ends_with("use");
        if is_use {
            let end = after.find(';').unwrap_or(after.len());
            expand("", &after[..end], &mut paths);
            rest = &after[end..];
        } else {
            let end = after
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(after.len());
            paths.push(after[..end].trim_end_matches(':').to_owned());
            rest = &after[end..];
        }
    }
    paths
}

/// The module a path lands in: its longest prefix that is a module file.
fn owner<'a>(path: &str, modules: &'a BTreeMap<String, PathBuf>) -> Option<&'a str> {
    let mut parts: Vec<&str> = path.split("::").collect();
    while !parts.is_empty() {
        if let Some((name, _)) = modules.get_key_value(&parts.join("::")) {
            return Some(name);
        }
        parts.pop();
    }
    None
}

/// Which modules each module's product code uses (itself and its ancestors left out).
fn imports(modules: &BTreeMap<String, PathBuf>) -> BTreeMap<&str, BTreeSet<&str>> {
    modules
        .iter()
        .map(|(name, path)| {
            let used = crate_paths(&product_code(path))
                .iter()
                .filter_map(|p| owner(p, modules))
                .filter(|target| {
                    !target.is_empty()
                        && target != name
                        && !name.starts_with(&format!("{target}::"))
                })
                .collect();
            (name.as_str(), used)
        })
        .collect()
}

/// A cycle through `start`, if the graph has one.
fn cycle_from<'a>(
    start: &'a str,
    graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
) -> Option<Vec<&'a str>> {
    fn visit<'a>(
        node: &'a str,
        start: &'a str,
        graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        seen: &mut BTreeSet<&'a str>,
    ) -> bool {
        for &next in graph.get(node).into_iter().flatten() {
            if next == start {
                path.push(next);
                return true;
            }
            if seen.insert(next) {
                path.push(next);
                if visit(next, start, graph, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start];
    visit(start, start, graph, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let modules = modules();
    let graph = imports(&modules);
    assert!(
        graph["handlers::ably_events"].contains("platform::http"),
        "the import graph is read: {:?}",
        graph["handlers::ably_events"]
    );
    for name in graph.keys() {
        assert_eq!(cycle_from(name, &graph), None, "import circle");
    }
    // The concept folders are layered too: each uses only those before it.
    let folder = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
    let order = [
        "platform", "identity", "channels", "events", "ably", "storage", "handlers",
    ];
    for (from, targets) in &graph {
        for to in targets {
            let (a, b) = (folder(from), folder(to));
            let rank = |f: &str| order.iter().position(|o| *o == f);
            if a != b {
                assert!(
                    rank(&a) > rank(&b),
                    "{from} ({a}) uses {to} ({b}), against the layering {order:?}"
                );
            }
        }
    }
}

#[test]
fn concepts_live_in_folders_and_no_file_is_two_concepts() {
    let modules = modules();
    let loose: Vec<&String> = modules
        .iter()
        .filter(|(name, path)| {
            !name.is_empty()
                && !name.contains("::")
                && path.file_name().is_some_and(|f| f != "mod.rs")
        })
        .map(|(name, _)| name)
        .collect();
    assert!(loose.len() <= 4, "loose modules beside lib.rs: {loose:?}");
    for (name, path) in &modules {
        let text = fs::read_to_string(path).expect("read source");
        let lines = text.lines().count();
        assert!(lines <= 600, "{name}: {lines} lines");
        assert!(
            !text.contains(concat!("redis", ".call(")),
            "{name}: Lua belongs in storage/scripts/*.lua"
        );
    }
}

// --- the integration tests (`tests/`) ----------------------------------------------------

const TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests");
/// The one module every test module may import from.
const HELPERS: &str = "helpers";

/// Every `.rs` file under a directory.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("read tests") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// What a file of the `api` test binary imports that it may not: `crate::<m>` for any
/// top-level module `m` but [`HELPERS`] (a helpers file may use none), and `super::`
/// paths that leave its own top-level module. `module` is the file's top-level module
/// (`""` for `main.rs`), `depth` how deep inside it the file is (0: `module.rs` or
/// `module/mod.rs`).
fn forbidden_imports(module: &str, depth: usize, code: &str) -> Vec<String> {
    let mut found: Vec<String> = crate_paths(code)
        .into_iter()
        .filter(|path| {
            let target = path.split("::").next().unwrap_or_default();
            target != module && (target != HELPERS || module == HELPERS)
        })
        .map(|path| format!("crate::{path}"))
        .collect();
    // `super::` once per level the file sits below its top-level module is still inside it.
    let leaving = "super::".repeat(depth + 1);
    if code.contains(&leaving) {
        found.push(format!("{leaving}.."));
    }
    found
}

#[test]
fn test_modules_import_only_helpers_and_no_test_file_is_two_concepts() {
    let api = Path::new(TESTS).join("tests/api");
    let files = rust_files(Path::new(TESTS));
    assert!(files.len() > 20, "the test files are read: {}", files.len());
    for path in &files {
        let text = fs::read_to_string(path).expect("read test source");
        let lines = text.lines().count();
        assert!(lines <= 600, "{}: {lines} lines", path.display());
        let Ok(inside) = path.strip_prefix(&api) else {
            continue;
        };
        let parts: Vec<String> = inside
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let module = if parts[0] == "main" {
            ""
        } else {
            parts[0].as_str()
        };
        let depth =
            parts.len().saturating_sub(1) - usize::from(parts.last().is_some_and(|p| p == "mod"));
        let code: String = text
            .lines()
            .map(|line| line.split_once("//").map_or(line, |(code, _)| code))
            .collect::<Vec<_>>()
            .join("\n");
        let forbidden = forbidden_imports(module, depth, &code);
        assert!(
            forbidden.is_empty(),
            "{}: a test module imports another ({forbidden:?}); shared code belongs in helpers/",
            path.display()
        );
    }
}

#[test]
fn an_import_from_another_test_module_is_caught() {
    // What the rule above must refuse, and what it must let through.
    assert_eq!(
        forbidden_imports("polling", 0, "use crate::resume::config_over;"),
        ["crate::resume::config_over"]
    );
    assert_eq!(
        forbidden_imports("rollout", 0, "let r = crate::resume::Rollout::new(&x);"),
        ["crate::resume::Rollout::new"]
    );
    // Helpers import no test module; among themselves they are one module.
    assert_eq!(
        forbidden_imports("helpers", 1, "use crate::{helpers::stack_var, events::x};"),
        ["crate::events::x"]
    );
    assert_eq!(
        forbidden_imports("events", 1, "use super::super::polling::Page;"),
        ["super::super::.."]
    );
    assert_eq!(
        forbidden_imports("polling", 0, "use super::resume::Rollout;"),
        ["super::.."]
    );
    assert!(forbidden_imports("polling", 0, "use crate::helpers::{bearer, EventsApp};").is_empty());
    assert!(forbidden_imports("openapi", 1, "use super::{case, Answers};").is_empty());
    assert!(forbidden_imports("faults", 1, "use super::tcp_proxy::Fault;").is_empty());
}

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The relative Markdown links of `text` (`[..](path)` or `[..](path#anchor)`), without
/// web addresses and in-page anchors.
fn relative_links(text: &str) -> Vec<&str> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|target| target.split('#').next().unwrap_or(""))
        .filter(|target| !target.is_empty() && !target.contains("://"))
        .collect()
}

#[test]
fn the_readme_is_short_with_contents_and_every_document_link_resolves() {
    let readme = fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 450,
        "README.md has {lines} lines; move detail to docs/"
    );
    assert!(
        readme.contains("\n## Contents\n"),
        "README.md has no table of contents"
    );
    let mut documents = vec![(PathBuf::from(ROOT), readme)];
    for entry in fs::read_dir(Path::new(ROOT).join("docs")).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        documents.push((path.parent().unwrap().to_path_buf(), text));
    }
    for (dir, text) in &documents {
        for link in relative_links(text) {
            assert!(
                dir.join(link).exists(),
                "a link to {link} from {} leads nowhere",
                dir.display()
            );
        }
    }
    assert_eq!(
        relative_links("[a](docs/x.md#y), [b](#z), [c](https://e.org/p), [d](../R.md)"),
        ["docs/x.md", "../R.md"]
    );
}
