//! One test and snapshot per fixture in `fixtures/editor/` (one syntactic
//! shape each), driven by its entry in `cases.toml`: each `get`, `set`, insertion,
//! `--expr`, `unset` and sequence of sets is snapshotted (the diff, or the
//! diagnostic), and every change is held to the editor's guarantees
//! (`nixedit::invariants`: it loads again, reads back, is a no-op the second
//! time, setting the old value back restores the bytes, …). A fixture the
//! editor refuses to load snapshots its diagnostic.

mod common;

use std::collections::BTreeMap;

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

/// Run the case of fixture `name` and compare with its snapshot.
fn check_fixture(name: &str) {
    let cases = cases();
    let case = cases
        .get(name)
        .unwrap_or_else(|| panic!("fixture {name}.nix has no entry in cases.toml"));
    let fixture = common::repo().join(format!("fixtures/editor/{name}.nix"));
    let reading = match case.reading.as_deref() {
        None | Some("option") => Reading::Option,
        Some("attrs") => Reading::Attrs,
        Some(other) => panic!("{name}: unknown reading {other}"),
    };
    let bytes = std::fs::read(&fixture).expect("fixture reads");
    let shown_name = format!("fixtures/editor/{name}.nix");
    let file = match NixFile::from_bytes(&shown_name, bytes, reading) {
        Ok(file) => file,
        Err(e) => {
            insta::assert_snapshot!(name, format!("== load\n{}", common::render(&e)));
            return;
        }
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
    config_attribute_own_path,
    conflicting_mkmerge_definitions,
    cr_only_line_endings,
    crlf_line_endings,
    dotted_flat,
    dotted_mkforce_role,
    dotted_only_composed_get,
    dotted_with_aligned_eq,
    double_lambda_module,
    duplicate_attribute,
    duplicate_formals,
    duplicate_value_then_dotted,
    empty_attrset_inline,
    empty_attrset_multiline,
    empty_file,
    explicit_config_module,
    expr_undefined_variable,
    form_feed_outside_string,
    function_call_value,
    indented_string_literal,
    inherit_siblings,
    insert_new_parents_nested,
    insert_meets_merge_below_the_top,
    insert_next_to_non_set,
    integer_out_of_range,
    lambda_as_list_item,
    list_comments_and_layout,
    mixed_dotted_then_nested,
    mkforce_wins_over_plain,
    mkif_body,
    mkif_condition_reported,
    mkif_config_module,
    mkmerge_body,
    mkoverride_value,
    module_let_in,
    multiline_list,
    multiline_lists_preferred,
    negative_numbers_set_back,
    nested_plain,
    nested_with_aligned_eq,
    no_trailing_newline,
    nul_byte,
    numbers_negative_float,
    paren_wrapped_body,
    quoted_and_dynamic_keys,
    quoted_key_with_dot,
    rec_reference_refuses_unset,
    rec_set,
    single_line_set,
    string_escapes,
    string_interpolation_value,
    tab_indentation,
    trailing_comment_same_line,
    unterminated_string,
    update_operator_right_wins,
    values_nix_cannot_read_back,
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
