//! One fixture per shape in `fixtures/editor/`, driven by `cases.toml`, and one
//! test per fixture: each `get`, `set`, insertion, `--expr` and `unset` result
//! is snapshotted, and every change is checked to re-parse, read back, and be
//! a no-op when repeated.

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

/// The cases of `fixtures/editor/cases.toml`, by fixture name.
fn cases() -> BTreeMap<String, Case> {
    let text = std::fs::read_to_string(common::repo().join("fixtures/editor/cases.toml"))
        .expect("cases.toml");
    toml::from_str(&text).expect("cases.toml parses")
}

/// Run the case of fixture `name` and compare with its snapshot.
fn check_fixture(name: &str) {
    let cases = cases();
    let case = cases
        .get(name)
        .unwrap_or_else(|| panic!("fixture {name}.nix has no entry in cases.toml"));
    let text = std::fs::read_to_string(common::repo().join(format!("fixtures/editor/{name}.nix")))
        .expect("fixture exists");
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
    insta::assert_snapshot!(name, out);
}

/// One test per fixture, named after it.
macro_rules! editor_fixtures {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_fixture(stringify!($name));
            }
        )*

        /// The fixtures that have a test above.
        const TESTED: &[&str] = &[$(stringify!($name)),*];
    };
}

editor_fixtures! {
    block_comment_inside,
    comments_before_bindings,
    conflicting_mkmerge_definitions,
    crlf_line_endings,
    dotted_flat,
    dotted_mkforce_role,
    dotted_with_aligned_eq,
    double_lambda_module,
    duplicate_attribute,
    empty_attrset_inline,
    empty_attrset_multiline,
    explicit_config_module,
    function_call_value,
    inherit_siblings,
    insert_new_parents_nested,
    mixed_dotted_then_nested,
    mkforce_wins_over_plain,
    mkif_body,
    mkif_config_module,
    mkmerge_body,
    mkoverride_value,
    module_let_in,
    multiline_list,
    multiline_lists_preferred,
    nested_plain,
    nested_with_aligned_eq,
    no_trailing_newline,
    numbers_negative_float,
    paren_wrapped_body,
    quoted_and_dynamic_keys,
    quoted_key_with_dot,
    rec_set,
    single_line_set,
    string_escapes,
    string_interpolation_value,
    tab_indentation,
    trailing_comment_same_line,
    variable_prefix,
    with_lib_prefix,
}

/// Every fixture file has a case and a test, and every case a fixture file.
#[test]
fn every_fixture_has_a_case_and_a_test() {
    let mut files: Vec<String> = std::fs::read_dir(common::repo().join("fixtures/editor"))
        .expect("fixtures/editor")
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".nix"))
                .map(str::to_string)
        })
        .collect();
    files.sort();
    let mut tested: Vec<String> = TESTED.iter().map(|n| n.to_string()).collect();
    tested.sort();
    assert_eq!(
        files, tested,
        "add each fixtures/editor/NAME.nix to editor_fixtures! in tests/editor_fixtures.rs"
    );
    let cased: Vec<String> = cases().into_keys().collect();
    assert_eq!(
        files, cased,
        "fixtures/editor/cases.toml has one entry per fixture"
    );
}
