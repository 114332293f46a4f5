//! The pre-commit hook through real `git commit`: the hook `nixflip hook
//! install` writes, and the pre-commit framework (from the test virtualenv,
//! see `common::venv_tool`) with the configurations nixflip ships. Each
//! checks the cluster as it is staged.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// PATH with the built nixflip first.
fn path_with_nixflip() -> OsString {
    let bin = Path::new(env!("CARGO_BIN_EXE_nixflip"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH")
}

/// `git ARGS` in `dir` with a fixed identity and the given PATH (the hook
/// runs with git's environment).
fn git_with(dir: &Path, path: &OsString, args: &[&str]) -> Output {
    Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("PATH", path)
        .output()
        .expect("git runs")
}

fn git(dir: &Path, args: &[&str]) -> Output {
    git_with(dir, &path_with_nixflip(), args)
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn nixflip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nixflip"))
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("nixflip runs")
}

/// A repository holding `fixtures/clusters/three_node` in `flake_dir`
/// (`"."`: at its top), committed, with nixflip's hook installed.
fn repo_with_hook(flake_dir: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    let flake = if flake_dir == "." {
        repo.clone()
    } else {
        repo.join(flake_dir)
    };
    common::copy_tree(&common::repo().join("fixtures/clusters/three_node"), &flake);
    ok(git(&repo, &["init", "-q"]));
    ok(git(&repo, &["add", "-A"]));
    ok(git(&repo, &["commit", "-q", "-m", "init"]));
    ok(nixflip(&[
        "--flake",
        &flake.display().to_string(),
        "hook",
        "install",
    ]));
    (dir, repo)
}

/// Stage beta as a second primary, then put the work tree back as it was:
/// only the index holds the split brain.
fn stage_split_brain(flake: &Path) {
    let beta = flake.join("hosts/beta/default.nix");
    let clean = std::fs::read_to_string(&beta).expect("beta");
    let split = clean.replace("= \"standby\";", "= \"primary\";");
    assert_ne!(clean, split, "beta's role moved in the fixture");
    std::fs::write(&beta, split).expect("write");
    ok(git(flake, &["add", "hosts/beta/default.nix"]));
    std::fs::write(&beta, clean).expect("write");
}

/// The commit failed, and the report (pre-commit prints hook output on
/// stdout, git's own hook on stderr) names the split brain.
fn assert_refused(out: &Output) {
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "the commit went through:\n{report}");
    assert!(report.contains("NF001"), "{report}");
}

#[test]
fn installed_hook_refuses_a_staged_split_brain_with_a_clean_work_tree() {
    let (_dir, repo) = repo_with_hook("infra");
    let flake = repo.join("infra");
    stage_split_brain(&flake);
    // The work tree alone is consistent...
    let check = nixflip(&["--flake", &flake.display().to_string(), "check"]);
    assert_eq!(check.status.code(), Some(0));
    // ...what the commit would record is not.
    let staged = nixflip(&["--flake", &flake.display().to_string(), "check", "--staged"]);
    assert_eq!(staged.status.code(), Some(1));
    let head = String::from_utf8_lossy(&ok(git(&repo, &["rev-parse", "HEAD"])).stdout).into_owned();
    assert_refused(&git(&repo, &["commit", "-q", "-m", "split brain"]));
    assert_eq!(
        String::from_utf8_lossy(&ok(git(&repo, &["rev-parse", "HEAD"])).stdout),
        head,
        "no commit was made"
    );
}

#[test]
fn the_hook_holds_no_absolute_path() {
    let (dir, repo) = repo_with_hook("infra");
    let hook = std::fs::read_to_string(repo.join(".git/hooks/pre-commit")).expect("hook");
    let tmp = dir.path().display().to_string();
    assert!(!hook.contains(&tmp), "{hook}");
    assert!(hook.contains("flake='infra'"), "{hook}");
}

#[test]
fn a_copied_and_moved_repository_is_checked_in_its_new_place() {
    let (dir, repo) = repo_with_hook(".");
    // The copy is broken where the original stays clean: a hook that still
    // checked the original would let the copy's split brain through.
    let copy = dir.path().join("copy");
    let status = Command::new("cp")
        .args(["-a"])
        .arg(&repo)
        .arg(&copy)
        .status()
        .expect("cp runs");
    assert!(status.success());
    stage_split_brain(&copy);
    assert_refused(&git(
        &copy,
        &["commit", "-q", "-m", "split brain in the copy"],
    ));

    let moved = dir.path().join("moved");
    std::fs::rename(&copy, &moved).expect("mv");
    assert_refused(&git(&moved, &["commit", "-q", "-m", "split brain, moved"]));
    // The original is untouched and still commits.
    std::fs::write(repo.join("README"), "notes\n").expect("write");
    ok(git(&repo, &["add", "README"]));
    ok(git(&repo, &["commit", "-q", "-m", "notes"]));
}

#[test]
fn installed_hook_runs_on_a_commit_that_only_renames_a_host_file_away() {
    let (_dir, repo) = repo_with_hook(".");
    // Renaming the primary's host file out of the flake's .nix files (to
    // disable it) leaves no primary; the commit holds nothing but a rename.
    ok(git(
        &repo,
        &["mv", "hosts/alpha.nix", "hosts/alpha.nix.disabled"],
    ));
    let out = git(&repo, &["commit", "-q", "-m", "rename only"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the rename went through: {stderr}");
    assert!(stderr.contains("NF001"), "{stderr}");
}

#[test]
fn installed_hook_runs_on_a_commit_that_only_deletes_a_host_file() {
    let (_dir, repo) = repo_with_hook(".");
    ok(git(&repo, &["rm", "-q", "hosts/alpha.nix"]));
    let out = git(&repo, &["commit", "-q", "-m", "delete only"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NF001"));
}

#[test]
fn a_hook_without_nixflip_on_path_says_how_to_install_it_and_how_to_skip() {
    let (_dir, repo) = repo_with_hook(".");
    stage_split_brain(&repo);
    // PATH with git and a shell, but no nixflip.
    let git_dir = which("git");
    let sh_dir = which("sh");
    let path = std::env::join_paths([git_dir, sh_dir]).expect("PATH");
    let out = git_with(&repo, &path, &["commit", "-q", "-m", "no nixflip"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("nixflip is not on PATH"), "{stderr}");
    assert!(
        lines[0].contains("cargo install --locked --path ."),
        "{stderr}"
    );
    assert!(lines[0].contains("git commit --no-verify"), "{stderr}");
}

/// The directory holding `program` on PATH (never the test's nixflip).
fn which(program: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .expect("sh runs");
    let found = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let dir = found.parent().expect("a directory").to_path_buf();
    assert!(
        !dir.join("nixflip").exists(),
        "{} holds a nixflip; the test needs a PATH without one",
        dir.display()
    );
    dir
}

// ------------------------------------------------- the pre-commit framework --

/// A repository holding a cluster made by `nixflip init` (which writes the
/// shipped `.pre-commit-config.yaml`), committed, with `config` (when
/// given) as its pre-commit configuration and `pre-commit install` run.
fn repo_with_pre_commit(config: Option<String>) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let pre_commit = common::venv_tool("pre-commit");
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    ok(git(&repo, &["init", "-q"]));
    ok(nixflip(&[
        "init",
        &repo.display().to_string(),
        "--domain",
        "example.org",
        "--primary",
        "alpha=192.0.2.1",
        "--standby",
        "beta=192.0.2.2",
    ]));
    if let Some(config) = config {
        std::fs::write(repo.join(".pre-commit-config.yaml"), config).expect("config");
    }
    ok(git(&repo, &["add", "-A"]));
    ok(git(&repo, &["commit", "-q", "-m", "init"]));
    let home = dir.path().join("pre-commit-home");
    ok(pre_commit_cmd(&pre_commit, &repo, &home)
        .arg("install")
        .output()
        .expect("pre-commit runs"));
    (dir, repo, home)
}

fn pre_commit_cmd(tool: &Path, repo: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(tool);
    cmd.current_dir(repo)
        .env("PRE_COMMIT_HOME", home)
        .env("PATH", path_with_nixflip());
    cmd
}

/// A commit through pre-commit's installed hook (it finds its cache in
/// PRE_COMMIT_HOME).
fn commit_via_framework(repo: &Path, home: &Path, message: &str) -> Output {
    Command::new("git")
        .current_dir(repo)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(["commit", "-q", "-m", message])
        .env("PATH", path_with_nixflip())
        .env("PRE_COMMIT_HOME", home)
        .output()
        .expect("git runs")
}

fn stage_split_brain_in_init(repo: &Path) {
    let beta = repo.join("hosts/beta.nix");
    let clean = std::fs::read_to_string(&beta).expect("beta");
    let split = clean.replace("role = \"standby\";", "role = \"primary\";");
    assert_ne!(clean, split, "the generated host file changed shape");
    std::fs::write(&beta, split).expect("write");
    ok(git(repo, &["add", "hosts/beta.nix"]));
    std::fs::write(&beta, clean).expect("write");
}

/// A configuration that uses `.pre-commit-hooks.yaml` the way a user's
/// does: from a repository at a pinned revision (here a local one holding
/// just that file).
fn config_from_hooks_file(dir: &Path) -> String {
    let hooks = dir.join("nixflip-hooks");
    std::fs::create_dir_all(&hooks).expect("mkdir");
    std::fs::copy(
        common::repo().join(".pre-commit-hooks.yaml"),
        hooks.join(".pre-commit-hooks.yaml"),
    )
    .expect("copy");
    ok(git(&hooks, &["init", "-q"]));
    ok(git(&hooks, &["add", "-A"]));
    ok(git(&hooks, &["commit", "-q", "-m", "hooks"]));
    let rev = String::from_utf8_lossy(&ok(git(&hooks, &["rev-parse", "HEAD"])).stdout)
        .trim()
        .to_string();
    format!(
        "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: nixflip-check-system\n",
        hooks.display()
    )
}

#[test]
fn pre_commit_with_the_generated_config_refuses_a_staged_split_brain() {
    let (_dir, repo, home) = repo_with_pre_commit(None);
    stage_split_brain_in_init(&repo);
    assert_refused(&commit_via_framework(&repo, &home, "split brain"));
}

#[test]
fn pre_commit_with_the_generated_config_runs_on_a_delete_only_commit() {
    let (_dir, repo, home) = repo_with_pre_commit(None);
    ok(git(&repo, &["rm", "-q", "hosts/alpha.nix"]));
    let out = commit_via_framework(&repo, &home, "delete only");
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("NF001"), "{report}");
}

#[test]
fn pre_commit_with_the_shipped_hooks_file_refuses_a_staged_split_brain() {
    let outer = tempfile::tempdir().expect("tempdir");
    let (_dir, repo, home) = repo_with_pre_commit(Some(config_from_hooks_file(outer.path())));
    stage_split_brain_in_init(&repo);
    assert_refused(&commit_via_framework(&repo, &home, "split brain"));
}

#[test]
fn pre_commit_with_the_shipped_hooks_file_runs_on_a_delete_only_commit() {
    let outer = tempfile::tempdir().expect("tempdir");
    let (_dir, repo, home) = repo_with_pre_commit(Some(config_from_hooks_file(outer.path())));
    ok(git(&repo, &["rm", "-q", "hosts/alpha.nix"]));
    let out = commit_via_framework(&repo, &home, "delete only");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("NF001"), "{report}");
}
