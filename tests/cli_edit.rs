//! The real `nixflip` binary on editor fixtures: output modes, exit codes,
//! diagnostics on stderr, atomic in-place writes.

mod common;

use assert_cmd::Command;

fn nixflip() -> Command {
    let mut cmd = Command::cargo_bin("nixflip").expect("binary builds");
    cmd.env("NO_COLOR", "1").env_remove("CLICOLOR_FORCE");
    cmd
}

fn fixture(name: &str) -> String {
    common::repo()
        .join("fixtures/editor")
        .join(name)
        .display()
        .to_string()
}

fn scratch_copy(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::copy(fixture(name), &path).expect("copy fixture");
    (dir, path)
}

const ROLE: &str = "hectic.generic.matrix-cluster.role";

#[test]
fn get_prints_json_literal_and_position() {
    let out = nixflip()
        .args(["get", &fixture("double_lambda_module.nix"), ROLE])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"primary\"\n");

    let out = nixflip()
        .args([
            "get",
            "--json",
            &fixture("double_lambda_module.nix"),
            "hectic.generic.matrix-cluster.secretsFile",
        ])
        .output()
        .expect("runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["expr"], "config.sops.secrets.\"matrix/secrets\".path");
    assert_eq!(json["line"], 11);
    assert_eq!(json["column"], 24);
}

#[test]
fn get_of_a_missing_path_exits_1() {
    let out = nixflip()
        .args([
            "get",
            &fixture("dotted_flat.nix"),
            "hectic.generic.matrix-cluster.publicIp",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not defined"));
}

#[test]
fn set_prints_new_file_by_default_and_diff_on_request() {
    let path = fixture("dotted_mkforce_role.nix");
    let out = nixflip()
        .args(["set", &path, ROLE, "\"primary\""])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("lib.mkForce \"primary\""), "{stdout}");

    let out = nixflip()
        .args(["set", "--diff", &path, ROLE, "\"primary\""])
        .output()
        .expect("runs");
    let repo = common::repo().display().to_string();
    let repo = repo.trim_start_matches('/');
    insta::assert_snapshot!(
        "set_diff_mkforce",
        String::from_utf8_lossy(&out.stdout).replace(repo, "REPO")
    );
}

#[test]
fn set_in_place_writes_atomically_and_leaves_no_temp_files() {
    let (dir, path) = scratch_copy("nested_with_aligned_eq.nix");
    let before = std::fs::read_to_string(&path).expect("read");
    let out = nixflip()
        .args([
            "set",
            "-i",
            &path.display().to_string(),
            ROLE,
            "\"standby\"",
        ])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = std::fs::read_to_string(&path).expect("read");
    assert_eq!(after, before.replace("\"primary\"", "\"standby\""));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "left behind: {names:?}");

    // The same set again is a no-op and says so.
    let out = nixflip()
        .args([
            "set",
            "-i",
            &path.display().to_string(),
            ROLE,
            "\"standby\"",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to do"));
}

#[test]
fn read_only_file_is_a_clean_error_and_unchanged() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = scratch_copy("nested_plain.nix");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let before = std::fs::read(&path).expect("read");
    let out = nixflip()
        .args([
            "set",
            "-i",
            &path.display().to_string(),
            ROLE,
            "\"standby\"",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("read-only"), "{stderr}");
    assert_eq!(std::fs::read(&path).expect("read"), before);
}

#[test]
fn non_literal_refusal_is_a_diagnostic_with_exit_2() {
    let out = nixflip()
        .args([
            "set",
            &fixture("function_call_value.nix"),
            ROLE,
            "\"primary\"",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&common::repo().display().to_string(), "REPO");
    insta::assert_snapshot!("non_literal_refusal", stderr);
}

#[test]
fn parse_error_is_a_diagnostic_with_exit_2_and_nothing_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.nix");
    std::fs::write(&path, "{ a = 1;\n  b = ;\n}\n").expect("write");
    let out = nixflip()
        .args(["set", "-i", &path.display().to_string(), "a", "2"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&dir.path().display().to_string(), "TMP");
    insta::assert_snapshot!("parse_error", stderr);
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "{ a = 1;\n  b = ;\n}\n"
    );
}

#[test]
fn bad_value_and_bad_expr_exit_2() {
    let path = fixture("dotted_flat.nix");
    let out = nixflip()
        .args(["set", &path, ROLE, "primary"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    let out = nixflip()
        .args(["set", "--expr", &path, ROLE, "lib.mkForce ("])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid Nix"));
}

/// `nixflip set -i --expr FILE a EXPR`.
fn set_expr_in_place(path: &std::path::Path, expr: &str) -> std::process::Output {
    nixflip()
        .args(["set", "-i", "--expr"])
        .arg(path)
        .args(["a", expr])
        .output()
        .expect("runs")
}

/// A comment around an `--expr` would be written again on every set, or
/// swallow the `;` after it: refused, the file untouched.
#[test]
fn an_expr_with_a_comment_around_it_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("host.nix");
    std::fs::write(&path, "{\n  a = 0;\n}\n").expect("write");
    for (expr, name) in [("# why\n1", "leading"), ("1 # why", "trailing")] {
        let out = set_expr_in_place(&path, expr);
        assert_eq!(out.status.code(), Some(2), "{expr}");
        insta::assert_snapshot!(
            format!("expr_comment_{name}"),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Inside the expression, a comment is part of it.
    let out = set_expr_in_place(&path, "1 /* why */ + 2");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "{\n  a = 1 /* why */ + 2;\n}\n"
    );
}

#[test]
fn unset_removes_the_line_and_missing_unset_is_a_no_op() {
    let path = fixture("comments_before_bindings.nix");
    let out = nixflip()
        .args(["unset", "--diff", &path, ROLE])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("-    role = \"primary\";"));
    let out = nixflip()
        .args(["unset", &path, "hectic.generic.matrix-cluster.nothing"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to do"));
}

#[test]
fn missing_file_is_exit_2() {
    let out = nixflip()
        .args(["get", "/nonexistent/x.nix", ROLE])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn set_in_place_through_a_symlink_edits_the_target_and_keeps_the_link() {
    let (dir, path) = scratch_copy("nested_with_aligned_eq.nix");
    let before = std::fs::read_to_string(&path).expect("read");
    let link = dir.path().join("link.nix");
    std::os::unix::fs::symlink(&path, &link).expect("symlink");
    let out = nixflip()
        .args([
            "set",
            "-i",
            &link.display().to_string(),
            ROLE,
            "\"standby\"",
        ])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::symlink_metadata(&link).expect("link");
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        before.replace("\"primary\"", "\"standby\"")
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 2, "left behind: {names:?}");
}
