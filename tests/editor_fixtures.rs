//! One fixture per shape in `fixtures/editor/`, driven by `cases.toml`: each
//! `get`, `set`, insertion, `--expr` and `unset` result is snapshotted, and
//! every change is checked to re-parse, read back, and be a no-op when repeated.

mod common;

use std::collections::BTreeMap;

use nixflip::nixedit::{self, AttrPath, NewValue, NixFile, Value};
use nixflip::render::unified_diff;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    get: Option<String>,
    set: Option<(String, String)>,
    insert: Option<(String, String)>,
    expr: Option<(String, String)>,
    unset: Option<String>,
}

fn path(text: &str) -> AttrPath {
    text.parse()
        .unwrap_or_else(|e| panic!("bad path {text}: {e}"))
}

fn show_get(file: &NixFile, p: &str) -> String {
    match file.get(&path(p)) {
        Ok(found) => match found.value {
            Some(v) => format!(
                "literal {} at {}:{}\n",
                v.to_json(),
                found.line,
                found.column
            ),
            None => format!(
                "expression `{}` at {}:{}\n",
                found.expr, found.line, found.column
            ),
        },
        Err(e) => common::render(&e),
    }
}

/// Apply a change, check the invariants, and describe the result as a diff.
fn show_change(file: &NixFile, p: &str, new: NewValue) -> String {
    let p = path(p);
    let edited = match nixedit::set(file, &p, &new) {
        Ok(edited) => edited,
        Err(e) => return common::render(&e),
    };
    assert!(edited.changed, "{}: set {p} changed nothing", file.name());
    let reparsed = NixFile::parse(file.name(), edited.text.clone())
        .unwrap_or_else(|e| panic!("{}: result does not parse: {e}", file.name()));
    let found = reparsed
        .get(&p)
        .unwrap_or_else(|e| panic!("{}: cannot read back {p}: {e}", file.name()));
    match &new {
        NewValue::Literal(v) => {
            assert_eq!(found.value.as_ref(), Some(v), "{}: read back", file.name())
        }
        NewValue::Expr(e) => assert_eq!(&found.expr, e, "{}: read back", file.name()),
    }
    let again =
        nixedit::set(&reparsed, &p, &new).unwrap_or_else(|e| panic!("second set failed: {e}"));
    assert!(
        !again.changed,
        "{}: second identical set changed the file",
        file.name()
    );
    assert_eq!(again.text, edited.text);
    unified_diff(file.name(), file.text(), &edited.text, false)
}

fn show_unset(file: &NixFile, p: &str) -> String {
    match nixedit::unset(file, &path(p)) {
        Ok(edited) => {
            let reparsed = NixFile::parse(file.name(), edited.text.clone())
                .unwrap_or_else(|e| panic!("{}: unset result does not parse: {e}", file.name()));
            assert!(
                reparsed.lookup(&path(p)).ok().flatten().is_none(),
                "{}: still defined after unset",
                file.name()
            );
            unified_diff(file.name(), file.text(), &edited.text, false)
        }
        Err(e) => common::render(&e),
    }
}

fn literal(json: &str) -> NewValue {
    NewValue::Literal(Value::from_cli(json).unwrap_or_else(|e| panic!("bad JSON {json}: {e}")))
}

#[test]
fn every_editor_fixture_matches_its_snapshot() {
    let dir = common::repo().join("fixtures/editor");
    let cases_text = std::fs::read_to_string(dir.join("cases.toml")).expect("cases.toml");
    let cases: BTreeMap<String, Case> = toml::from_str(&cases_text).expect("cases.toml parses");
    let fixtures: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures/editor")
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".nix"))
                .map(str::to_string)
        })
        .collect();
    assert!(
        fixtures.len() >= 30,
        "expected at least 30 editor fixtures, found {}",
        fixtures.len()
    );
    for name in &fixtures {
        assert!(
            cases.contains_key(name),
            "fixture {name}.nix has no entry in cases.toml"
        );
    }
    for (name, case) in &cases {
        let text =
            std::fs::read_to_string(dir.join(format!("{name}.nix"))).expect("fixture exists");
        let shown_name = format!("fixtures/editor/{name}.nix");
        let mut out = String::new();
        let file = match NixFile::parse(&shown_name, text) {
            Ok(file) => file,
            Err(e) => panic!("{name} does not parse: {}", common::render(&e)),
        };
        if let Some(p) = &case.get {
            out += &format!("== get {p}\n{}\n", show_get(&file, p));
        }
        if let Some((p, v)) = &case.set {
            out += &format!("== set {p} = {v}\n{}\n", show_change(&file, p, literal(v)));
        }
        if let Some((p, v)) = &case.insert {
            assert!(
                !matches!(file.lookup(&path(p)), Ok(Some(_))),
                "{name}: insert case {p} is already defined"
            );
            out += &format!(
                "== insert {p} = {v}\n{}\n",
                show_change(&file, p, literal(v))
            );
        }
        if let Some((p, e)) = &case.expr {
            let new = NewValue::expr(e).unwrap_or_else(|err| panic!("bad expr {e}: {err}"));
            out += &format!("== set --expr {p} = {e}\n{}\n", show_change(&file, p, new));
        }
        if let Some(p) = &case.unset {
            out += &format!("== unset {p}\n{}\n", show_unset(&file, p));
        }
        insta::assert_snapshot!(name.as_str(), out);
    }
}
