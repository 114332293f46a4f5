//! The editor on a real Nix code base: every file of nixpkgs' `lib` (the
//! copy in `../shared/nixpkgs-lib`, MIT), checked against Nix itself.
//!
//! - Every file loads (Nix accepts them all, so must nixflip).
//! - For every literal binding of every file, `get` reads what `nix-instantiate
//!   --eval` computes for it, wherever the file can be evaluated (a set, or a
//!   function of `lib` only): one driver expression evaluates them all.
//! - For every literal binding, `set`, inserting a sibling and `unset` keep
//!   the editor's guarantees (`nixedit::invariants`), and every file they
//!   write is one Nix parses: all of them go through one `nix-instantiate
//!   --parse` process.
//!
//! Without `nix-instantiate` on PATH the test fails and says so.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use nixflip::nixedit::{self, invariants, AttrPath, NewValue, NixFile, Query, Reading, Value};

/// One edit of the corpus test: its name, the invariant check's verdict and
/// the edit's result.
type Step<'a> = (
    &'a str,
    Result<(), String>,
    Result<nixedit::Edited, nixedit::EditError>,
);

fn lib_dir() -> PathBuf {
    let dir = common::shared_dir().join("nixpkgs-lib/lib");
    assert!(
        dir.is_dir(),
        "{} is missing: the real-corpus test needs ../shared/nixpkgs-lib (or NIXFLIP_SHARED_DIR)",
        dir.display()
    );
    dir
}

fn nix_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read lib").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "nix") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn nix_instantiate(args: &[&str], files: &[PathBuf]) -> std::process::Output {
    Command::new("nix-instantiate")
        .args(args)
        .args(files)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run nix-instantiate ({e}): install Nix (Debian: apt-get install nix-bin)"
            )
        })
}

/// Every file, loaded the way `nixflip get/set` loads it.
fn load_all() -> Vec<(PathBuf, NixFile)> {
    nix_files(&lib_dir())
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("read");
            let file = NixFile::from_bytes(path.display().to_string(), bytes, Reading::Attrs)
                .unwrap_or_else(|e| {
                    panic!("{}: nixflip refuses a file Nix reads: {e}", path.display())
                });
            (path, file)
        })
        .collect()
}

/// The literal bindings of a file: path and value.
fn literals(file: &NixFile) -> Vec<(AttrPath, Value)> {
    let mut out: Vec<(AttrPath, Value)> = Vec::new();
    for b in file.bindings() {
        if b.inherited || b.conditional {
            continue;
        }
        // `mkForce false` is `false` to nixflip (it sees through the
        // module system's wrappers) but an attribute set to plain Nix.
        if nixedit::syntax::unparen(&b.value) != b.inner {
            continue;
        }
        let path = AttrPath::new(b.path.clone());
        if out.iter().any(|(p, _)| *p == path) {
            continue;
        }
        // What `get` reads there (the winning definition).
        if let Ok(Query::One(found)) = file.query(&path) {
            if let Some(value) = found.value {
                out.push((path, value));
            }
        }
    }
    out
}

#[test]
fn every_file_of_nixpkgs_lib_loads_and_nix_parses_them_too() {
    let files = nix_files(&lib_dir());
    assert!(
        files.len() > 200,
        "expected nixpkgs' lib, found {} files",
        files.len()
    );
    let loaded = load_all();
    assert_eq!(loaded.len(), files.len());
    let out = nix_instantiate(&["--parse"], &files);
    assert!(
        out.status.success(),
        "nix-instantiate --parse refuses a lib file:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Nix string literal.
fn nix_string(s: &str) -> String {
    nixedit::value::render_string(s)
}

/// The driver: for each (file, path), the value Nix computes, or why not.
fn driver(lib: &Path, queries: &[(PathBuf, AttrPath)]) -> String {
    let mut out = format!(
        r#"let
  lib = import {lib};
  scalar = v: builtins.elem (builtins.typeOf v) [ "int" "float" "bool" "string" "null" ];
  shown = v:
    if scalar v then {{ value = v; }}
    else if builtins.isList v && builtins.all scalar v then {{ value = v; }}
    else {{ type = builtins.typeOf v; }};
  # The file's value: a set, or a function that wants only `lib`.
  load = file:
    let
      f = import file;
      formals = builtins.functionArgs f;
      wanted = builtins.filter (n: !formals.${{n}}) (builtins.attrNames formals);
    in
      if !(builtins.isFunction f) then f
      else if formals != {{ }} && builtins.all (n: n == "lib") wanted then f {{ inherit lib; }}
      else null;
  at = v: path:
    if path == [ ] then shown v
    else if builtins.isAttrs v && v ? _type then {{ skip = "a module-system value"; }}
    else if builtins.isAttrs v && builtins.hasAttr (builtins.head path) v
    then at v.${{builtins.head path}} (builtins.tail path)
    else {{ missing = true; }};
  query = file: path:
    let
      loaded = builtins.tryEval (load file);
      v = loaded.value;
      result = builtins.tryEval (builtins.deepSeq (at v path) (at v path));
    in
      if !loaded.success || v == null || !(builtins.isAttrs v) then {{ skip = "not evaluated"; }}
      else if result.success then result.value
      else {{ skip = "throws"; }};
in [
"#,
        lib = lib.display()
    );
    for (file, path) in queries {
        let keys: Vec<String> = path.keys().iter().map(|k| nix_string(k)).collect();
        out.push_str(&format!(
            "  (query {} [ {} ])\n",
            file.display(),
            keys.join(" ")
        ));
    }
    out.push_str("]\n");
    out
}

/// Evaluate the driver for `queries`; when Nix fails outright (an error
/// `tryEval` cannot catch), the queries are split by file and tried again,
/// and the files that still fail are reported as not evaluated.
fn evaluate(dir: &Path, lib: &Path, queries: &[(PathBuf, AttrPath)]) -> Vec<serde_json::Value> {
    let driver_file = dir.join(format!("driver-{}.nix", queries.len()));
    std::fs::write(&driver_file, driver(lib, queries)).expect("write driver");
    let out = nix_instantiate(
        &["--eval", "--strict", "--json"],
        std::slice::from_ref(&driver_file),
    );
    if out.status.success() {
        return serde_json::from_slice(&out.stdout).expect("nix prints JSON");
    }
    let files: Vec<&PathBuf> = {
        let mut f: Vec<&PathBuf> = queries.iter().map(|(f, _)| f).collect();
        f.dedup();
        f
    };
    if files.len() == 1 {
        return queries
            .iter()
            .map(|_| serde_json::json!({ "skip": "nix fails on this file" }))
            .collect();
    }
    let half = files[files.len() / 2];
    let split = queries
        .iter()
        .position(|(f, _)| f == half)
        .unwrap_or(queries.len() / 2);
    let mut results = evaluate(dir, lib, &queries[..split]);
    results.extend(evaluate(dir, lib, &queries[split..]));
    results
}

fn same_value(ours: &serde_json::Value, nix: &serde_json::Value) -> bool {
    match (ours, nix) {
        // Nix 2.8 prints floats with six significant digits.
        (serde_json::Value::Number(a), serde_json::Value::Number(b))
            if a.is_f64() || b.is_f64() =>
        {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1.0)
        }
        (serde_json::Value::Array(a), serde_json::Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y))
        }
        _ => ours == nix,
    }
}

#[test]
fn get_reads_what_nix_evaluates_for_every_literal_binding() {
    let lib = lib_dir();
    let mut queries: Vec<(PathBuf, AttrPath)> = Vec::new();
    let mut expected: Vec<Value> = Vec::new();
    for (path, file) in load_all() {
        for (attr, value) in literals(&file) {
            queries.push((path.clone(), attr));
            expected.push(value);
        }
    }
    assert!(
        queries.len() > 400,
        "only {} literal bindings",
        queries.len()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let results = evaluate(dir.path(), &lib, &queries);
    assert_eq!(results.len(), queries.len());
    let (mut compared, mut skipped) = (0, BTreeMap::<String, usize>::new());
    let mut wrong = Vec::new();
    for (((file, attr), value), result) in queries.iter().zip(&expected).zip(&results) {
        if let Some(nix) = result.get("value") {
            compared += 1;
            if !same_value(&value.to_json(), nix) {
                wrong.push(format!(
                    "{} {attr}: nixflip {} / nix {nix}",
                    file.display(),
                    value.to_json()
                ));
            }
        } else if result.get("missing").is_some() || result.get("type").is_some() {
            wrong.push(format!(
                "{} {attr}: nixflip {} / nix {result}",
                file.display(),
                value.to_json()
            ));
        } else {
            let why = result.get("skip").and_then(|s| s.as_str()).unwrap_or("?");
            *skipped.entry(why.to_string()).or_default() += 1;
        }
    }
    println!("{compared} literal bindings compared with nix, skipped: {skipped:?}");
    assert!(
        wrong.is_empty(),
        "get disagrees with nix:\n{}",
        wrong.join("\n")
    );
    assert!(
        compared * 2 > queries.len(),
        "only {compared} of {} bindings could be compared",
        queries.len()
    );
}

/// A different literal of the same shape.
fn other(value: &Value) -> Value {
    match value {
        Value::Null => Value::String("nixflip".into()),
        Value::Bool(b) => Value::Bool(!b),
        Value::Int(i) => Value::Int(if *i == 7 { -7 } else { 7 }),
        Value::Float(_) => Value::Float(2.5),
        Value::String(s) => Value::String(format!("{s}-nixflip ${{x}} \"q\"")),
        Value::List(items) => Value::List(
            items
                .iter()
                .map(|item| match item {
                    Value::List(_) => item.clone(),
                    v => other(v),
                })
                .collect(),
        ),
    }
}

#[test]
fn edits_of_every_literal_binding_keep_the_guarantees_and_nix_parses_them() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let mut written: Vec<PathBuf> = Vec::new();
    let mut broken: Vec<String> = Vec::new();
    let mut refused = 0;
    for (path, file) in load_all() {
        let stem = path
            .strip_prefix(lib_dir())
            .map(|p| p.display().to_string().replace('/', "_"))
            .unwrap_or_default();
        for (n, (attr, value)) in literals(&file).into_iter().enumerate() {
            let mut sibling = attr.keys().to_vec();
            sibling.pop();
            sibling.push("nixflipAdded".into());
            let sibling = AttrPath::new(sibling);
            let new = NewValue::Literal(other(&value));
            let added = NewValue::Literal(Value::String("added".into()));
            let steps: [Step; 3] = [
                (
                    "set",
                    invariants::check_set(&file, &attr, &new),
                    nixedit::set(&file, &attr, &new),
                ),
                (
                    "insert",
                    invariants::check_set(&file, &sibling, &added),
                    nixedit::set(&file, &sibling, &added),
                ),
                (
                    "unset",
                    invariants::check_unset(&file, &attr),
                    nixedit::unset(&file, &attr),
                ),
            ];
            for (what, check, edited) in steps {
                if let Err(e) = check {
                    broken.push(format!("{} {what} {attr}: {e}", path.display()));
                }
                match edited {
                    Ok(edited) if edited.changed => {
                        let target = path
                            .parent()
                            .unwrap_or(&path)
                            .join(format!(".nixflip-{stem}-{n}-{what}.nix"));
                        // Beside the original, so relative paths mean the
                        // same; named apart, and removed below.
                        let target = out_dir.path().join(target.file_name().unwrap_or_default());
                        std::fs::write(&target, &edited.text).expect("write variant");
                        written.push(target);
                    }
                    Ok(_) => {}
                    Err(_) => refused += 1,
                }
            }
        }
    }
    println!(
        "{} edited files written, {refused} edits refused",
        written.len()
    );
    assert!(
        broken.is_empty(),
        "guarantees broken:\n{}",
        broken.join("\n")
    );
    assert!(written.len() > 1000, "only {} edits made", written.len());
    let out = nix_instantiate(&["--parse"], &written);
    assert!(
        out.status.success(),
        "nix-instantiate --parse refuses a file nixflip wrote:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
