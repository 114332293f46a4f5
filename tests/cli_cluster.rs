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
    common::copy_tree(
        &common::repo().join("fixtures/clusters/mkforce_role_hidden_in_flake"),
        &root,
    );
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
    let out = nixflip()
        .args(["--flake", &flake("examples/two-node"), "check", "--eval"])
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
    let dir = flake("fixtures/clusters/shared_module_sets_domain");
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
    for extra in [&[][..], &["--eval"]] {
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
    common::copy_tree(&common::repo().join("examples/two-node"), &root);
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
