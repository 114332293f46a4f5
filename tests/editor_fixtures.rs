//! One snapshot per fixture in `fixtures/editor/` (one syntactic shape
//! each), driven by its entry in `cases.toml`: each `get`, `set`, insertion,
//! `--expr`, `unset` and sequence of sets is snapshotted (the diff, or the
//! diagnostic), and every change is held to the editor's guarantees
//! (`nixedit::invariants`: it loads again, reads back, is a no-op the second
//! time, setting the old value back restores the bytes, …). A fixture the
//! editor refuses to load snapshots its diagnostic.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use nixflip::nixedit::{self, invariants, AttrPath, NewValue, NixFile, Query, Reading, Value};
use nixflip::render::unified_diff;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Case {
    /// "attrs" (the file's own paths) or "option" (NixOS option paths, the
    /// default: most fixtures are host modules).
    reading: Option<String>,
    get: Option<String>,
    set: Option<(String, String)>,
    insert: Option<(String, String)>,
    expr: Option<(String, String)>,
    unset: Option<String>,
    /// Sets applied one after another, each shown as the value's new text.
    steps: Option<Vec<(String, String)>>,
}

fn path(text: &str) -> AttrPath {
    text.parse()
        .unwrap_or_else(|e| panic!("bad path {text}: {e}"))
}

fn show_found(found: &nixedit::Found) -> String {
    let what = match &found.value {
        Some(v) => format!("literal {}", v.to_json()),
        None => format!("expression `{}`", found.expr),
    };
    let condition = found
        .condition()
        .map(|c| format!(" when `{c}`"))
        .unwrap_or_default();
    format!("{what} at {}:{}{condition}\n", found.line, found.column)
}

fn show_get(file: &NixFile, p: &str) -> String {
    match file.query(&path(p)) {
        Ok(Query::One(found)) => show_found(&found),
        Ok(Query::Set(set)) => {
            let mut out = match &set.value {
                Some(v) => format!("set {v}\n"),
                None => format!("set spread over {} definitions\n", set.definitions.len()),
            };
            for (p, found) in &set.definitions {
                out += &format!("  {p}: {}", show_found(found));
            }
            out
        }
        Err(e) => common::render(&e),
    }
}

/// Apply a change, check the guarantees, and describe the result as a diff.
fn show_change(file: &NixFile, p: &str, new: NewValue) -> String {
    let p = path(p);
    let edited = match nixedit::set(file, &p, &new) {
        Ok(edited) => edited,
        Err(e) => return common::render(&e),
    };
    assert!(edited.changed, "{}: set {p} changed nothing", file.name());
    if let Err(broken) = invariants::check_set(file, &p, &new) {
        panic!("{}: {broken}", file.name());
    }
    unified_diff(file.name(), file.text(), &edited.text, false)
}

fn show_unset(file: &NixFile, p: &str) -> String {
    match nixedit::unset(file, &path(p)) {
        Ok(edited) => {
            if let Err(broken) = invariants::check_unset(file, &path(p)) {
                panic!("{}: {broken}", file.name());
            }
            unified_diff(file.name(), file.text(), &edited.text, false)
        }
        Err(e) => common::render(&e),
    }
}

/// Sets one after another; each step shows the value as written.
fn show_steps(file: &NixFile, steps: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut current = file.clone();
    for (p, json) in steps {
        // A value the command line itself refuses is shown with its reason.
        let new = match Value::from_cli(json) {
            Ok(value) => NewValue::Literal(value),
            Err(e) => {
                out += &format!("{p} = {json}  ->  refused: {e}\n");
                continue;
            }
        };
        if let Err(broken) = invariants::check_set(&current, &path(p), &new) {
            panic!("{}: {broken}", file.name());
        }
        match nixedit::set(&current, &path(p), &new) {
            Ok(edited) => {
                let next = NixFile::parse_as(file.name(), edited.text, current.reading())
                    .unwrap_or_else(|e| panic!("{}: step does not load: {e}", file.name()));
                let written = next
                    .get(&path(p))
                    .map(|f| {
                        let line_start =
                            next.text()[..f.span.start].rfind('\n').map_or(0, |i| i + 1);
                        let line_end = next.text()[f.span.end..]
                            .find('\n')
                            .map_or(next.text().len(), |i| f.span.end + i);
                        next.text()[line_start..line_end].trim().to_string()
                    })
                    .unwrap_or_else(|e| common::render(&e));
                out += &format!("{p} = {json}  ->  {written}\n");
                current = next;
            }
            Err(e) => out += &common::render(&e),
        }
    }
    if current.text() == file.text() {
        out += "(back to the original bytes)\n";
    } else {
        out += &unified_diff(file.name(), file.text(), current.text(), false);
    }
    out
}

fn literal(json: &str) -> NewValue {
    NewValue::Literal(Value::from_cli(json).unwrap_or_else(|e| panic!("bad JSON {json}: {e}")))
}

fn cases() -> BTreeMap<String, Case> {
    let text = std::fs::read_to_string(common::repo().join("fixtures/editor/cases.toml"))
        .expect("cases.toml");
    toml::from_str(&text).expect("cases.toml parses")
}

fn run_fixture(fixture: &Path, cases: &BTreeMap<String, Case>) -> String {
    let name = fixture
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("fixture name")
        .to_string();
    let case = cases
        .get(&name)
        .unwrap_or_else(|| panic!("fixture {name}.nix has no entry in cases.toml"));
    let reading = match case.reading.as_deref() {
        None | Some("option") => Reading::Option,
        Some("attrs") => Reading::Attrs,
        Some(other) => panic!("{name}: unknown reading {other}"),
    };
    let bytes = std::fs::read(fixture).expect("fixture reads");
    let shown_name = format!("fixtures/editor/{name}.nix");
    let file = match NixFile::from_bytes(&shown_name, bytes, reading) {
        Ok(file) => file,
        Err(e) => return format!("== load\n{}", common::render(&e)),
    };
    let mut out = String::new();
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
    if let Some(steps) = &case.steps {
        out += &format!("== steps\n{}\n", show_steps(&file, steps));
    }
    out
}

#[test]
fn every_fixture_has_a_case_and_every_case_a_fixture() {
    let dir = common::repo().join("fixtures/editor");
    let cases = cases();
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
            "{name}.nix has no entry in cases.toml"
        );
    }
    for name in cases.keys() {
        assert!(
            fixtures.contains(name),
            "cases.toml names {name}, which has no fixture"
        );
    }
}

#[test]
fn editor_fixture() {
    let cases = cases();
    insta::glob!("../fixtures/editor", "*.nix", |fixture| {
        insta::assert_snapshot!(run_fixture(fixture, &cases));
    });
}
