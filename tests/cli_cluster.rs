//! The real binary's `status`, `check` and `hook install` on fixture flakes.

mod common;

use assert_cmd::Command;

fn nixflip() -> Command {
    let mut cmd = Command::cargo_bin("nixflip").expect("binary builds");
    cmd.env("NO_COLOR", "1");
    cmd
}

fn flake(rel: &str) -> String {
    common::repo().join(rel).display().to_string()
}

/// A complete copy of the flake at `rel` to evaluate (nothing evaluates the
/// repository's own files), and its path.
fn flake_copy(rel: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("flake");
    common::copy_flake(rel, &root);
    (dir, root.display().to_string())
}

#[test]
fn status_json_of_the_example() {
    let out = nixflip()
        .args(["--flake", &flake("examples/two-node"), "status", "--json"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let mut json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    json["flake"] = "FLAKE".into();
    insta::assert_json_snapshot!("status_example", json);
}

#[test]
fn status_table_of_the_example() {
    let out = nixflip()
        .args(["--flake", &flake("examples/two-node"), "status"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("status_example_table", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn check_exit_codes() {
    let clean = nixflip()
        .args(["--flake", &flake("examples/two-node"), "check"])
        .output()
        .expect("runs");
    assert_eq!(clean.status.code(), Some(0));
    let broken = nixflip()
        .args([
            "--flake",
            &flake("fixtures/clusters/nf001_two_primaries"),
            "check",
        ])
        .output()
        .expect("runs");
    assert_eq!(broken.status.code(), Some(1));
    let warning_only = nixflip()
        .args([
            "--flake",
            &flake("fixtures/clusters/nf102_proxy_points_at_standby"),
            "check",
        ])
        .output()
        .expect("runs");
    assert_eq!(warning_only.status.code(), Some(0));
    let nowhere = nixflip()
        .args(["--flake", "/nonexistent", "check"])
        .output()
        .expect("runs");
    assert_eq!(nowhere.status.code(), Some(2));
}

#[test]
fn check_given_paths_checks_their_flakes() {
    let file = flake("fixtures/clusters/nf003_allowed_ips_miss_standby/machines/alpha/alpha.nix");
    let out = nixflip()
        .args(["check", "--format", "json", &file])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["findings"][0]["id"], "NF003");
}

#[test]
fn check_github_format() {
    let out = nixflip()
        .args([
            "--flake",
            &flake("fixtures/clusters/nf002_standby_peerhost_not_primary"),
            "check",
            "--format",
            "github",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().next().unwrap_or_default();
    assert!(line.starts_with("::error file="), "{stdout}");
    assert!(
        line.contains("default.nix,line=13,col=64,title=NF002::"),
        "{line}"
    );
}

#[test]
fn bad_config_is_exit_2_naming_the_key_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("flake.nix"), "{ outputs = _: { }; }\n").expect("write");
    std::fs::write(
        dir.path().join("nixflip.toml"),
        "[cluster]\noption = \"a.b\"\n\n[hosts.alpha]\naddress = \"300.1.2.3\"\n",
    )
    .expect("write");
    let out = nixflip()
        .args(["--flake", &dir.path().display().to_string(), "check"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&dir.path().display().to_string(), "TMP");
    insta::assert_snapshot!("bad_config_address", stderr);

    std::fs::write(
        dir.path().join("nixflip.toml"),
        "[cluster]\noptoin = \"a.b\"\n",
    )
    .expect("write");
    let out = nixflip()
        .args(["--flake", &dir.path().display().to_string(), "check"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&dir.path().display().to_string(), "TMP");
    insta::assert_snapshot!("bad_config_unknown_key", stderr);
}

/// A nixflip.toml that exists but cannot be read is the system failing
/// (exit 3), not bad input; a path that is not there is bad input (exit 2).
/// `/proc/self/mem` fails every read from offset 0 with EIO, even for root.
#[test]
fn unreadable_config_is_exit_3_and_a_missing_one_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("flake.nix"), "{ outputs = _: { }; }\n").expect("write");
    let flake = dir.path().display().to_string();
    let out = nixflip()
        .args(["--flake", &flake, "--config", "/proc/self/mem", "check"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /proc/self/mem"));

    let missing = dir.path().join("nope.toml").display().to_string();
    let out = nixflip()
        .args(["--flake", &flake, "--config", &missing, "check"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hook_install_writes_and_refuses_foreign_hooks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().display().to_string();
    std::fs::write(dir.path().join("flake.nix"), "{ outputs = _: { }; }\n").expect("write");
    let init = std::process::Command::new("git")
        .args(["init", "-q", &root])
        .status()
        .expect("git");
    assert!(init.success());
    let out = nixflip()
        .args(["--flake", &root, "hook", "install"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hook = dir.path().join(".git/hooks/pre-commit");
    assert!(std::fs::read_to_string(&hook)
        .expect("hook")
        .contains("nixflip"));
    // Ours may be rewritten; a foreign hook needs --force.
    assert_eq!(
        nixflip()
            .args(["--flake", &root, "hook", "install"])
            .output()
            .expect("runs")
            .status
            .code(),
        Some(0)
    );
    std::fs::write(&hook, "#!/bin/sh\necho mine\n").expect("write");
    assert_eq!(
        nixflip()
            .args(["--flake", &root, "hook", "install"])
            .output()
            .expect("runs")
            .status
            .code(),
        Some(4)
    );
    assert_eq!(
        nixflip()
            .args(["--flake", &root, "hook", "install", "--force"])
            .output()
            .expect("runs")
            .status
            .code(),
        Some(0)
    );
}

/// A role forced in flake.nix, where no host file shows it: the static check
/// is clean, `check --eval` sees two primaries and says where the files lie.
#[test]
fn check_eval_sees_a_role_forced_outside_the_host_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("flake");
    common::copy_flake("fixtures/clusters/mkforce_role_hidden_in_flake", &root);
    let flake = root.join("flake.nix");
    let text = std::fs::read_to_string(&flake).expect("flake.nix");
    let forced = text.replace("(lib.mkForce \"standby\")", "(lib.mkForce \"primary\")");
    assert_ne!(text, forced, "the fixture's forced role moved");
    std::fs::write(&flake, forced).expect("write flake.nix");
    let root_arg = root.display().to_string();

    let stat = nixflip()
        .args(["--flake", &root_arg, "check"])
        .output()
        .expect("runs");
    assert_eq!(
        stat.status.code(),
        Some(0),
        "static check should not see it"
    );

    let out = nixflip()
        .args(["--flake", &root_arg, "check", "--eval", "--format", "json"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    json["flake"] = "FLAKE".into();
    insta::assert_json_snapshot!("check_eval_forced_primary", json);

    let text = nixflip()
        .args(["--flake", &root_arg, "check", "--eval"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(text.status.code(), Some(1));
    insta::assert_snapshot!(
        "check_eval_forced_primary_text",
        String::from_utf8_lossy(&text.stderr).replace(&root_arg, "FLAKE")
    );
}

#[test]
fn check_eval_of_the_example_is_clean() {
    let (_dir, root) = flake_copy("examples/two-node");
    let out = nixflip()
        .args(["--flake", &root, "check", "--eval"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "nixflip check: 0 errors, 0 warnings in 2 members"
    );
}

#[test]
fn check_eval_without_nix_says_how_to_install_it() {
    let empty_path = tempfile::tempdir().expect("tempdir");
    let out = nixflip()
        .env("PATH", empty_path.path())
        .args(["--flake", &flake("examples/two-node"), "check", "--eval"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("`nix` is not installed"), "{stderr}");
}

/// A module that flake.nix adds to every host and that sets a cluster option
/// (but no role) is a shared module: listed, never a member with role (unset).
#[test]
fn a_shared_module_is_listed_and_not_a_member() {
    let (_dir, dir) = flake_copy("fixtures/clusters/shared_module_sets_domain");
    let status = nixflip()
        .args(["--flake", &dir, "status"])
        .output()
        .expect("runs");
    assert_eq!(status.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&status.stderr), "");
    insta::assert_snapshot!(
        "status_shared_module_table",
        String::from_utf8_lossy(&status.stdout)
    );
    let eval: Vec<String> = std::iter::once("--eval".to_string())
        .chain(common::nix_options())
        .collect();
    for extra in [&[][..], &eval[..]] {
        let check = nixflip()
            .args(["--flake", &dir, "check"])
            .args(extra)
            .output()
            .expect("runs");
        assert_eq!(
            check.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&check.stderr), "");
        assert_eq!(
            String::from_utf8_lossy(&check.stdout),
            "shared modules (not members): modules/common.nix\n\
             nixflip check: 0 errors, 0 warnings in 2 members\n"
        );
    }
    let json = nixflip()
        .args(["--flake", &dir, "check", "--format", "json"])
        .output()
        .expect("runs");
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(json["members"], 2);
    assert_eq!(
        json["sharedModules"],
        serde_json::json!(["modules/common.nix"])
    );
}

fn git_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(args)
        .env("PATH", path_with_nixflip())
        .output()
        .expect("git runs")
}

/// PATH with the built binary first, so the installed hook finds `nixflip`.
fn path_with_nixflip() -> std::ffi::OsString {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_nixflip"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH")
}

#[test]
fn hook_install_refuses_a_foreign_hook_that_is_not_utf8() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().display().to_string();
    std::fs::write(dir.path().join("flake.nix"), "{ outputs = _: { }; }\n").expect("write");
    assert!(git_in(dir.path(), &["init", "-q"]).status.success());
    let hooks = dir.path().join(".git/hooks");
    std::fs::create_dir_all(&hooks).expect("hooks dir");
    let hook = hooks.join("pre-commit");
    let foreign: &[u8] = b"#!/bin/sh\n# \xff\xfe latin-1 caf\xe9\nexit 0\n";
    std::fs::write(&hook, foreign).expect("write");
    let out = nixflip()
        .args(["--flake", &root, "hook", "install"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read(&hook).expect("read"), foreign);

    // A hook nixflip cannot read is an error, not "no hook": here a directory.
    std::fs::remove_file(&hook).expect("rm");
    std::fs::create_dir(&hook).expect("mkdir");
    let out = nixflip()
        .args(["--flake", &root, "hook", "install"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(hook.is_dir());
}

#[test]
fn hook_is_executable_and_checks_a_commit_that_deletes_a_member_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("flake");
    common::copy_flake("examples/two-node", &root);
    assert!(git_in(&root, &["init", "-q"]).status.success());
    assert!(git_in(&root, &["add", "-A"]).status.success());
    assert!(
        git_in(&root, &["commit", "-q", "--no-verify", "-m", "init"])
            .status
            .success()
    );
    let out = nixflip()
        .args(["--flake", &root.display().to_string(), "hook", "install"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let hook = root.join(".git/hooks/pre-commit");
    let mode = std::fs::metadata(&hook).expect("hook").permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    let names: Vec<_> = std::fs::read_dir(root.join(".git/hooks"))
        .expect("hooks")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".nixflip-"))
        .collect();
    assert!(names.is_empty(), "temp files left: {names:?}");

    // A harmless edit passes the hook...
    let member = root.join("nixos/system/hectic-lab/hectic-lab.nix");
    let mut text = std::fs::read_to_string(&member).expect("read");
    text.push_str("# note\n");
    std::fs::write(&member, text).expect("write");
    let commit = git_in(&root, &["commit", "-q", "-am", "edit"]);
    assert!(
        commit.status.success(),
        "{}",
        String::from_utf8_lossy(&commit.stderr)
    );
    // ...deleting a member file runs the check, which fails, so no commit.
    assert!(git_in(
        &root,
        &["rm", "-q", "nixos/system/hectic-lab/hectic-lab.nix"]
    )
    .status
    .success());
    let commit = git_in(&root, &["commit", "-q", "-m", "delete"]);
    assert!(
        !commit.status.success(),
        "the hook let a commit deleting a member file through"
    );
}

/// A copy of `rel` whose `nix eval` fails (beta's module list holds a
/// throw) while every file still parses.
fn flake_that_does_not_evaluate(rel: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("flake");
    common::copy_flake(rel, &root);
    let flake = root.join("flake.nix");
    let text = std::fs::read_to_string(&flake).expect("flake.nix");
    let broken = text.replace(
        "host [ ./hosts/beta.nix ]",
        "host [ ./hosts/beta.nix (throw \"this flake does not evaluate\") ]",
    );
    assert_ne!(text, broken, "the fixture's flake.nix changed shape");
    std::fs::write(&flake, broken).expect("write");
    (dir, root)
}

fn check_eval(root: &std::path::Path, format: &str) -> std::process::Output {
    nixflip()
        .args(["--flake", &root.display().to_string(), "check", "--eval"])
        .args(["--format", format])
        .args(common::nix_options())
        .output()
        .expect("runs")
}

#[test]
fn check_eval_that_fails_prints_the_static_findings_as_text_then_nixs_error() {
    let (_dir, root) = flake_that_does_not_evaluate("fixtures/clusters/nf001_two_primaries");
    let out = check_eval(&root, "text");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let findings_at = stderr.find("NF001").expect("the static findings");
    let nix_at = stderr
        .find("this flake does not evaluate")
        .expect("Nix's own error");
    assert!(findings_at < nix_at, "findings first, then Nix:\n{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "nixflip check: 2 errors, 0 warnings in 2 members; nix eval failed (its error follows)\n"
    );
}

#[test]
fn check_eval_that_fails_prints_the_static_findings_as_json() {
    let (_dir, root) = flake_that_does_not_evaluate("fixtures/clusters/nf001_two_primaries");
    let out = check_eval(&root, "json");
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    let ids: Vec<&str> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert_eq!(ids, ["NF001", "NF001"]);
    assert!(json["evalError"]
        .as_str()
        .is_some_and(|e| e.contains("this flake does not evaluate")));
    assert!(String::from_utf8_lossy(&out.stderr).contains("this flake does not evaluate"));
}

#[test]
fn check_eval_that_fails_prints_the_static_findings_as_github_annotations() {
    let (_dir, root) = flake_that_does_not_evaluate("fixtures/clusters/nf001_two_primaries");
    let out = check_eval(&root, "github");
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines[0].starts_with("::error file=hosts/alpha.nix,line="),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("::error file=hosts/beta.nix,line="),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("::error title=nix eval::nix eval failed:")
            && lines[2].contains("this flake does not evaluate"),
        "{stdout}"
    );
    assert_eq!(
        lines[3],
        "nixflip check: 2 errors, 0 warnings in 2 members; nix eval failed (its error follows)"
    );
}

/// A copy of the NF102 fixture whose beta.nix lost a `;`.
fn flake_with_a_parse_error() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("flake");
    common::copy_tree(
        &common::repo().join("fixtures/clusters/nf102_proxy_points_at_standby"),
        &root,
    );
    let beta = root.join("hosts/beta.nix");
    let text = std::fs::read_to_string(&beta).expect("beta.nix");
    let broken = text.replacen("role = \"standby\";", "role = \"standby\"", 1);
    assert_ne!(text, broken);
    std::fs::write(&beta, broken).expect("write");
    (dir, root)
}

#[test]
fn a_parse_error_is_a_json_finding_on_stdout() {
    let (_dir, root) = flake_with_a_parse_error();
    let out = nixflip()
        .args([
            "--flake",
            &root.display().to_string(),
            "check",
            "--format",
            "json",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let mut json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    json["flake"] = "FLAKE".into();
    insta::assert_json_snapshot!("check_parse_error_json", json);
}

#[test]
fn a_parse_error_is_a_github_annotation() {
    let (_dir, root) = flake_with_a_parse_error();
    let out = nixflip()
        .args([
            "--flake",
            &root.display().to_string(),
            "check",
            "--format",
            "github",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(
        "check_parse_error_github",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_staged_parse_error_is_a_json_finding_too() {
    let (_dir, root) = flake_with_a_parse_error();
    let beta = root.join("hosts/beta.nix");
    let broken = std::fs::read_to_string(&beta).expect("read");
    common::commit_all(&root);
    // The index holds the broken file; the work tree is repaired.
    std::fs::write(
        &beta,
        broken.replacen("role = \"standby\"", "role = \"standby\";", 1),
    )
    .expect("write");
    let out = nixflip()
        .args([
            "--flake",
            &root.display().to_string(),
            "check",
            "--staged",
            "--format",
            "json",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(json["findings"][0]["id"], "NF010");
    assert_eq!(json["findings"][0]["file"], "hosts/beta.nix");
}

/// `flake.nix` lists the hosts: when it does not parse, no command reads
/// it as a flake without hosts (no file names the cluster option there).
#[test]
fn a_flake_nix_that_does_not_parse_is_exit_2_for_status_and_check() {
    let (_dir, root) = flake_copy("examples/two-node");
    let flake_nix = std::path::Path::new(&root).join("flake.nix");
    let text = std::fs::read_to_string(&flake_nix).expect("flake.nix");
    let broken = text.replacen("outputs =", "outputs = =", 1);
    assert_ne!(text, broken);
    std::fs::write(&flake_nix, broken).expect("write");
    for command in ["status", "check"] {
        let out = nixflip()
            .args(["--flake", &root, command])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert!(out.stdout.is_empty(), "{command}");
        insta::assert_snapshot!(
            format!("flake_nix_parse_error_{command}"),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn status_code(rel: &str, json: bool) -> Option<i32> {
    nixflip()
        .args(["--flake", &flake(rel), "status"])
        .args(json.then_some("--json"))
        .output()
        .expect("runs")
        .status
        .code()
}

#[test]
fn status_exits_1_when_it_lists_an_error_finding() {
    let rel = "fixtures/clusters/nf001_two_primaries";
    assert_eq!(status_code(rel, false), Some(1));
    assert_eq!(status_code(rel, true), Some(1));
}

#[test]
fn status_exits_0_when_it_lists_only_warnings() {
    let rel = "fixtures/clusters/nf102_proxy_points_at_standby";
    assert_eq!(status_code(rel, false), Some(0));
    assert_eq!(status_code(rel, true), Some(0));
}

#[test]
fn status_lists_members_addresses_outside_the_cluster_options() {
    let out = nixflip()
        .args([
            "--flake",
            &flake("fixtures/clusters/hand_written_admission"),
            "status",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(
        "status_addresses_outside_options",
        String::from_utf8_lossy(&out.stdout)
    );
    let json = nixflip()
        .args([
            "--flake",
            &flake("fixtures/clusters/hand_written_admission"),
            "status",
            "--json",
        ])
        .output()
        .expect("runs");
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let listed: Vec<(String, String, u64)> = json["addressesOutsideClusterOptions"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| {
            (
                m["member"].as_str().unwrap_or_default().to_string(),
                m["file"].as_str().unwrap_or_default().to_string(),
                m["line"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("alpha".to_string(), "hosts/beta.nix".to_string(), 23),
            ("beta".to_string(), "hosts/alpha.nix".to_string(), 23),
            ("beta".to_string(), "hosts/alpha.nix".to_string(), 28),
        ]
    );
}
