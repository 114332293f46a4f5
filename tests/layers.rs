//! The library's layers read top-down (docs/ARCHITECTURE.md): no module of
//! `src/` reaches, through `crate::` paths, a module that reaches it back,
//! and the library below the CLI names no clap type.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Source text without comments and without `#[cfg(test)]` modules: only
/// what the compiled library depends on.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a file of `src/` belongs to (`cluster` for
/// `src/cluster/plan.rs`).
fn module_of(rel: &Path) -> String {
    let first = rel.components().next().map_or_else(String::new, |c| {
        c.as_os_str().to_string_lossy().into_owned()
    });
    first.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Library module → the library modules it names as `crate::NAME`.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = common::repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(&src).expect("under src")))
        .filter(|m| !matches!(m.as_str(), "lib" | "main" | "commands"))
        .collect();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(file.strip_prefix(&src).expect("under src"));
        if !modules.contains(&module) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(file).expect("read"));
        let entry = deps.entry(module.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name != module && modules.contains(&name) {
                entry.insert(name);
            }
        }
    }
    deps
}

fn reaches(deps: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(module) = stack.pop() {
        for next in deps.get(&module).into_iter().flatten() {
            if next == to {
                return true;
            }
            if seen.insert(next.clone()) {
                stack.push(next.clone());
            }
        }
    }
    false
}

#[test]
fn library_modules_import_each_other_in_no_cycle() {
    let deps = dependencies();
    assert!(deps.contains_key("cluster") && deps.contains_key("transaction"));
    let cycles: Vec<String> = deps
        .iter()
        .flat_map(|(module, uses)| uses.iter().map(move |used| (module, used)))
        .filter(|(module, used)| reaches(&deps, used, module))
        .map(|(module, used)| format!("{module} -> {used} -> … -> {module}"))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn the_library_names_no_clap_type() {
    let src = common::repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| {
            let rel = f.strip_prefix(&src).expect("under src");
            !rel.starts_with("commands") && rel != Path::new("main.rs")
        })
        .filter(|f| code_of(&std::fs::read_to_string(f).expect("read")).contains("clap::"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "clap below the CLI: {offenders:?}");
}
