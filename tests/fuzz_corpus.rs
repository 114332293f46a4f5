//! The committed fuzz corpus (`fuzz/corpus/TARGET/`, minimised with `cargo
//! fuzz cmin`) replayed on stable Rust through the very cases the fuzz
//! targets run (`tests/fuzz_support`): every input that once found a crash
//! stays a regression test, and every input keeps the editor's guarantees.
//! Each file is run on its own; all failures are listed, by file.

mod fuzz_support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use nixflip::nixedit::invariants::Operation;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "{}: only {} inputs",
        dir.display(),
        files.len()
    );
    files
}

fn replay(target: &str, run: impl Fn(&[u8])) {
    let mut failures = Vec::new();
    let files = corpus(target);
    for file in &files {
        let data = std::fs::read(file).expect("corpus file");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(&data))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} inputs of {target} fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn get_corpus_keeps_the_guarantees() {
    replay("get", |data| fuzz_support::editor(Operation::Get, data));
}

#[test]
fn set_corpus_keeps_the_guarantees() {
    replay("set", |data| fuzz_support::editor(Operation::Set, data));
}

#[test]
fn unset_corpus_keeps_the_guarantees() {
    replay("unset", |data| fuzz_support::editor(Operation::Unset, data));
}

#[test]
fn check_corpus_never_panics() {
    let flake = fuzz_support::Flake::fixture();
    replay("check", |data| flake.check(data));
}

/// One input that once broke a guarantee (`fuzz/regressions/TARGET/NAME`),
/// run through its target's case.
fn regression(target: &str, name: &str, operation: Operation) {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target)
        .join(name);
    let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    fuzz_support::editor(operation, &data);
}

/// `set fz4 --expr '{ x = 1; }'` on `{ }`: the new set reads back as the
/// set it composes, which the check once took for a different value.
#[test]
fn regression_set_attr_set_expression_reads_back_as_composed_set() {
    regression(
        "set",
        "attr_set_expression_reads_back_as_composed_set",
        Operation::Set,
    );
}

/// `unset port` where `body = { inherit port; }` in a legacy `let { }`: the
/// last name of an `inherit` takes the whole `inherit …;` with it.
#[test]
fn regression_unset_last_inherited_name_removes_the_inherit() {
    regression(
        "unset",
        "last_inherited_name_removes_the_inherit",
        Operation::Unset,
    );
}

/// `set fz5 --expr 'lib.mkForce true'` on `{ lib, ... }: { }`: the path
/// reads back as the wrapped `true` (with mkForce's priority), which the
/// check once took for a different value.
#[test]
fn regression_set_wrapper_expression_reads_back_as_its_value() {
    let name = "wrapper_expression_reads_back_as_its_value";
    regression("set", name, Operation::Set);
    assert!(written("set", name), "the case is written, not refused");
}

/// `set fz0 --expr '\r"\n"'` on `{}` and again: an expression kept with
/// the whitespace around it never equalled the value written, so every set
/// wrote it again. Expressions are trimmed as `--expr` trims them.
#[test]
fn regression_set_expr_with_leading_carriage_return_set_twice() {
    let name = "expr_with_leading_carriage_return_set_twice";
    regression("set", name, Operation::Set);
    assert!(written("set", name), "the case is written, not refused");
}

/// `set fz2 --expr '{}'` on `{}`: the empty set reads back as a composed
/// set with no definitions, which the check once took for a different value.
#[test]
fn regression_set_empty_set_expression_reads_back_as_empty_set() {
    let name = "empty_set_expression_reads_back_as_empty_set";
    regression("set", name, Operation::Set);
    assert!(written("set", name), "the case is written, not refused");
}

/// Whether the `set` case of a regression input is written (not refused).
fn written(target: &str, name: &str) -> bool {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target)
        .join(name);
    let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let case = nixflip::nixedit::invariants::Case::from_bytes(&data);
    let file = case.file().expect("the case's file loads");
    let path = case.path(&file);
    nixflip::nixedit::set(&file, &path, &case.new).is_ok_and(|e| e.changed)
}
