//! Deep input never crashes the editor: nesting up to the limit is read and
//! edited on an ordinary thread (2 MiB of stack, like a test's or a worker's),
//! nesting past it is refused with a diagnostic at the place where it gets
//! too deep, at any depth.

mod common;

use nixflip::nixedit::{self, AttrPath, EditError, NewValue, NixFile, Reading, Value};

/// `{ b = 1; a = <open × n> 1 <close × n>; }`.
fn nested(open: &str, close: &str, n: usize) -> String {
    format!("{{ b = 1; a = {}1{}; }}", open.repeat(n), close.repeat(n))
}

/// Run `f` on a thread with a small stack, as tests and worker threads have.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("thread starts")
        .join()
        .expect("no panic and no stack overflow")
}

/// Load, read `b`, set it, unset it; drop everything on the same thread.
fn edit_around(text: String) -> Result<String, String> {
    on_small_stack(move || {
        let file = NixFile::parse_as("deep.nix", text, Reading::Attrs).map_err(|e| match e {
            EditError::TooDeep { line, column, .. } => format!("too deep at {line}:{column}"),
            other => format!("{other}"),
        })?;
        let b: AttrPath = "b".parse().expect("path");
        let a: AttrPath = "a".parse().expect("path");
        let got = file.get(&b).map_err(|e| e.to_string())?;
        assert_eq!(got.value, Some(Value::Int(1)));
        let _ = file.query(&a);
        let set = nixedit::set(&file, &b, &NewValue::Literal(Value::Int(2)))
            .map_err(|e| e.to_string())?;
        let unset = nixedit::unset(&file, &a).map_err(|e| e.to_string())?;
        let again = NixFile::parse_as("deep.nix", set.text.clone(), Reading::Attrs)
            .map_err(|e| e.to_string())?;
        drop(again);
        Ok(format!("{} {}", set.text.len(), unset.text))
    })
}

#[test]
fn nesting_nix_parses_is_read_and_edited_on_a_small_stack() {
    for (open, close, n) in [
        ("[", "]", 2_500),
        ("{ a = ", "; }", 2_500),
        ("(", ")", 5_000),
        ("let x = 1; in ", "", 2_500),
        ("with x; ", "", 5_000),
        ("- ", "", 5_000),
        ("\"${", "}\"", 2_000),
    ] {
        let text = nested(open, close, n);
        let result = edit_around(text);
        assert!(result.is_ok(), "{open}…{close} × {n}: {result:?}");
    }
}

#[test]
fn an_operator_chain_of_thousands_is_read_on_a_small_stack() {
    let chain = vec!["1"; 2_500].join(" + ");
    let result = edit_around(format!("{{ b = 1; a = {chain}; }}"));
    assert!(result.is_ok(), "{result:?}");
    let concat = vec!["[ 1 ]"; 2_500].join(" ++ ");
    let result = edit_around(format!("{{ b = 1; a = {concat}; }}"));
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn nesting_past_the_limit_is_refused_where_it_gets_too_deep_at_any_depth() {
    for n in [6_100, 12_000, 50_000, 200_000] {
        for (open, close) in [("[", "]"), ("(", ")"), ("{ a = ", "; }"), ("- ", "")] {
            let result = edit_around(nested(open, close, n));
            let err = result.expect_err("refused");
            assert!(err.starts_with("too deep at 1:"), "{open} × {n}: {err}");
        }
    }
    let chain = vec!["1"; 100_000].join(" + ");
    let err = edit_around(format!("{{ b = 1; a = {chain}; }}")).expect_err("refused");
    assert!(err.starts_with("too deep at 1:"), "{err}");
}

#[test]
fn the_depth_diagnostic_names_the_place_not_the_whole_line() {
    let text = nested("[", "]", 20_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("deep.nix");
    std::fs::write(&file, &text).expect("write");
    let out = assert_cmd::Command::cargo_bin("nixflip")
        .expect("binary")
        .env("NO_COLOR", "1")
        .args(["get", &file.display().to_string(), "b"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&dir.path().display().to_string(), "TMP");
    assert!(
        stderr.len() < 1_000,
        "the diagnostic quotes the line: {} bytes",
        stderr.len()
    );
    insta::assert_snapshot!("too_deep", stderr);
}
