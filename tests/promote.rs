//! `nixflip promote` end to end with the real binary and real `nix eval` on
//! copies of the example and fixture flakes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;

fn nixflip(flake: &Path) -> Command {
    let mut cmd = Command::cargo_bin("nixflip").expect("binary builds");
    cmd.env("NO_COLOR", "1").arg("--flake").arg(flake);
    cmd
}

/// A copy of `rel` in a temp dir, committed to a fresh git repository.
fn scratch(rel: &str) -> (tempfile::TempDir, PathBuf) {
    scratch_with(rel, |_| {})
}

/// Like [`scratch`], with `change` applied to the copy before the commit.
fn scratch_with(rel: &str, change: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("flake");
    common::copy_flake(rel, &root);
    change(&root);
    common::commit_all(&root);
    (dir, root)
}

/// Every file under `root` (except .git) with its bytes.
fn snapshot_tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            if entry.file_name() == ".git" {
                continue;
            }
            if entry.file_type().expect("type").is_dir() {
                stack.push(entry.path());
            } else {
                out.push((
                    entry
                        .path()
                        .strip_prefix(root)
                        .expect("prefix")
                        .to_path_buf(),
                    std::fs::read(entry.path()).expect("read"),
                ));
            }
        }
    }
    out.sort();
    out
}

fn eval_roles(root: &Path) -> serde_json::Value {
    common::nix_eval(
        root,
        "nixosConfigurations",
        "cs: builtins.mapAttrs (n: c: c.config.hectic.generic.matrix-cluster.role) cs",
    )
    .unwrap_or_else(|stderr| panic!("{stderr}"))
}

#[test]
fn promote_and_back_restores_the_original_bytes() {
    let (_dir, root) = scratch("examples/two-node");
    let before = snapshot_tree(&root);
    let out = nixflip(&root)
        .args(["promote", "bfs.poland.xray", "--yes"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!(
        "promote_example_stdout",
        String::from_utf8_lossy(&out.stdout)
    );
    let roles = eval_roles(&root);
    assert_eq!(roles["bfs.poland.xray|x86_64-linux"], "primary");
    assert_eq!(roles["hectic-lab|x86_64-linux"], "standby");

    // Commit so the tree is clean, then flip back.
    assert!(Std::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qam",
            "flip"
        ])
        .current_dir(&root)
        .status()
        .expect("git")
        .success());
    let out = nixflip(&root)
        .args(["promote", "hectic-lab", "--yes"])
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
        snapshot_tree(&root),
        before,
        "files differ from the originals after promoting back"
    );
}

#[test]
fn promoting_the_primary_is_a_noop() {
    let (_dir, root) = scratch("examples/two-node");
    let out = nixflip(&root)
        .args(["promote", "hectic-lab"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("already the primary"));
}

#[test]
fn unknown_host_suggests_the_closest_member() {
    let (_dir, root) = scratch("examples/two-node");
    let out = nixflip(&root)
        .args(["promote", "hectic-lob"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did you mean `hectic-lab`"), "{stderr}");
}

#[test]
fn a_hidden_mkforce_fails_validation_and_nothing_is_written() {
    let (_dir, root) = scratch("fixtures/clusters/mkforce_role_hidden_in_flake");
    let before = snapshot_tree(&root);
    let out = nixflip(&root)
        .args(["promote", "beta", "--yes"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("beta: role should be primary but evaluates to standby"),
        "{stderr}"
    );
    assert_eq!(snapshot_tree(&root), before);
}

#[test]
fn a_pinned_mkforce_is_the_definition_edited() {
    let (_dir, root) = scratch("fixtures/clusters/mkforce_role_in_second_module");
    let out = nixflip(&root)
        .args(["promote", "beta", "--yes"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pin = std::fs::read_to_string(root.join("hosts/beta/pin-role.nix")).expect("read");
    assert!(pin.contains("lib.mkForce \"primary\""), "{pin}");
    assert_eq!(eval_roles(&root)["beta|x86_64-linux"], "primary");
}

#[test]
fn three_nodes_repoint_every_standby() {
    let (_dir, root) = scratch("fixtures/clusters/three_node");
    let out = nixflip(&root)
        .args(["promote", "beta", "--yes", "--format", "json"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = nixflip(&root)
        .args(["status", "--json"])
        .output()
        .expect("runs");
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(json["findings"], serde_json::json!([]));
    let members = json["members"].as_array().expect("members");
    let beta = members.iter().find(|m| m["host"] == "beta").expect("beta");
    assert_eq!(beta["role"], "primary");
    let beta_addr = beta["address"].as_str().expect("address").to_string();
    for m in members.iter().filter(|m| m["host"] != "beta") {
        assert_eq!(m["role"], "standby");
        assert_eq!(
            m["peerHost"],
            beta_addr.as_str(),
            "{} points at the new primary",
            m["host"]
        );
        let cidr = format!("{}/32", m["address"].as_str().expect("address"));
        assert!(
            beta["allowedSourceIPs"]
                .as_array()
                .expect("list")
                .iter()
                .any(|a| a == cidr.as_str()),
            "beta allows {cidr}"
        );
    }
}

#[test]
fn secrets_file_is_copied_with_the_path_rebased() {
    let (_dir, root) = scratch("fixtures/clusters/copy_secrets_file");
    let out = nixflip(&root)
        .args(["promote", "beta", "--dry-run"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("copied from alpha"), "{stdout}");
    insta::assert_snapshot!("promote_copy_secrets_dry_run", stdout);
}

#[test]
fn dry_run_and_refusals_write_nothing() {
    let (_dir, root) = scratch("examples/two-node");
    let before = snapshot_tree(&root);
    assert_eq!(
        nixflip(&root)
            .args(["promote", "bfs.poland.xray", "--dry-run"])
            .args(common::nix_options())
            .output()
            .expect("runs")
            .status
            .code(),
        Some(0)
    );
    assert_eq!(snapshot_tree(&root), before);

    // No terminal and no --yes: refused.
    let out = nixflip(&root)
        .args(["promote", "bfs.poland.xray"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert_eq!(snapshot_tree(&root), before);

    // Dirty file to edit: refused.
    let host = root.join("nixos/system/hectic-lab/hectic-lab.nix");
    let mut text = std::fs::read_to_string(&host).expect("read");
    text.push_str("# local edit\n");
    std::fs::write(&host, &text).expect("write");
    let dirty = snapshot_tree(&root);
    let out = nixflip(&root)
        .args(["promote", "bfs.poland.xray", "--yes"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("uncommitted changes"));
    assert_eq!(snapshot_tree(&root), dirty);
}

#[test]
fn a_held_lock_is_refused() {
    let (_dir, root) = scratch("examples/two-node");
    let before = snapshot_tree(&root);
    let _held = nixflip::fsx::lock(&root).expect("lock");
    let out = nixflip(&root)
        .args(["promote", "bfs.poland.xray", "--yes"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lock"));
    assert_eq!(snapshot_tree(&root), before);
}

/// Refusals that need no evaluation come before the plan is printed and
/// before Nix runs: no terminal without --yes, a held lock, a dirty file.
/// A `nix` that logs every call shows it was never started.
#[test]
fn refusals_come_before_the_plan_and_before_nix() {
    let (dir, root) = scratch("examples/two-node");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let log = dir.path().join("nix-calls");
    let path = nix_on_path(&bin, &format!("echo called >> '{}'; exit 1", log.display()));
    let refused = |args: &[&str], why: &str| {
        let out = nixflip(&root)
            .env("PATH", &path)
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(4),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(why),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!log.exists(), "{args:?} started nix");
    };
    refused(&["promote", "bfs.poland.xray"], "--yes");
    let held = nixflip::fsx::lock(&root).expect("lock");
    refused(&["promote", "bfs.poland.xray", "--yes"], "holds the lock");
    drop(held);
    let host = root.join("nixos/system/hectic-lab/hectic-lab.nix");
    let mut text = std::fs::read_to_string(&host).expect("read");
    text.push_str("# local edit\n");
    std::fs::write(&host, &text).expect("write");
    refused(
        &["promote", "bfs.poland.xray", "--yes"],
        "uncommitted changes",
    );
}

#[test]
fn a_read_only_second_file_leaves_every_file_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, root) = scratch("examples/two-node");
    let second = root.join("nixos/system/hectic-lab/hectic-lab.nix");
    std::fs::set_permissions(&second, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let before = snapshot_tree(&root);
    let out = nixflip(&root)
        .args(["promote", "bfs.poland.xray", "--yes"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        snapshot_tree(&root),
        before,
        "a file changed or a temp file was left behind"
    );
}

#[test]
fn commit_makes_one_commit_stating_the_flip() {
    let (_dir, root) = scratch("examples/two-node");
    let out = nixflip(&root)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .args(["promote", "bfs.poland.xray", "--yes", "--commit"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = Std::new("git")
        .args(["log", "-1", "--format=%s"])
        .current_dir(&root)
        .output()
        .expect("git");
    assert_eq!(
        String::from_utf8_lossy(&log.stdout).trim(),
        "nixflip: promote bfs.poland.xray to primary; hectic-lab becomes standby"
    );
    // It says which commit it made.
    let id = Std::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(&root)
        .output()
        .expect("git");
    let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "committed {id}: nixflip: promote bfs.poland.xray to primary; hectic-lab becomes standby"
        )),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let status = Std::new("git")
        .args(["status", "--porcelain"])
        .current_dir(&root)
        .output()
        .expect("git");
    assert!(
        status.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
}

#[test]
fn rebuild_after_promote_starts_with_the_new_primary() {
    let (_dir, root) = scratch("examples/two-node");
    let out = nixflip(&root)
        .args(["-q", "promote", "bfs.poland.xray", "--dry-run", "--rebuild"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let commands: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("nixos-rebuild "))
        .collect();
    assert_eq!(commands.len(), 2, "{stdout}");
    assert!(
        commands[0].contains("#bfs.poland.xray|x86_64-linux' --target-host root@91.198.166.181"),
        "{}",
        commands[0]
    );
    assert!(
        commands[1].contains("#hectic-lab|x86_64-linux' --target-host root@128.140.75.58"),
        "{}",
        commands[1]
    );
}

/// Without `nix` on PATH, promote says so and how to install it (exit 3),
/// and writes nothing; `--no-eval` still works, with its warning.
#[test]
fn missing_nix_is_named_with_the_install_command() {
    let (_dir, root) = scratch("examples/two-node");
    let before = snapshot_tree(&root);
    let empty_path = tempfile::tempdir().expect("tempdir");
    let out = nixflip(&root)
        .env("PATH", empty_path.path())
        .args(["promote", "bfs.poland.xray", "--yes"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("`nix` is not installed"), "{stderr}");
    assert!(stderr.contains("apt-get install nix-bin"), "{stderr}");
    assert_eq!(snapshot_tree(&root), before, "a file changed");

    let out = nixflip(&root)
        .env("PATH", empty_path.path())
        .args(["promote", "bfs.poland.xray", "--dry-run", "--no-eval"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-eval: the change was not proven"));
}

/// A host under a directory whose name starts with `result` (and a `target`
/// directory below the root) is found, and the scratch flake `nix eval` reads
/// holds it; only a `result` symlink and a root `target` are left out.
#[test]
fn hosts_under_result_like_names_are_members_and_copied_for_validation() {
    let (_dir, root) = scratch_with("fixtures/clusters/three_node", |root| {
        std::fs::rename(root.join("machines/gamma"), root.join("machines/resultsdb"))
            .expect("rename");
        std::fs::create_dir_all(root.join("hosts/target")).expect("mkdir");
        std::fs::rename(
            root.join("hosts/alpha.nix"),
            root.join("hosts/target/alpha.nix"),
        )
        .expect("rename");
        let flake = std::fs::read_to_string(root.join("flake.nix")).expect("flake");
        let flake = flake
            .replace("./machines/gamma/", "./machines/resultsdb/")
            .replace("./hosts/alpha.nix", "./hosts/target/alpha.nix");
        std::fs::write(root.join("flake.nix"), flake).expect("write");
        // What `nix build` and cargo leave behind: never scanned or copied.
        std::os::unix::fs::symlink("/nonexistent", root.join("result")).expect("symlink");
        std::fs::create_dir_all(root.join("target")).expect("mkdir");
        std::fs::write(
            root.join("target/stray.nix"),
            "{ hectic.generic.matrix-cluster.role = \"primary\"; }\n",
        )
        .expect("write");
    });
    let check = nixflip(&root).arg("check").output().expect("runs");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("0 errors, 0 warnings in 3 members"),
        "{stdout}"
    );

    let out = nixflip(&root)
        .args(["promote", "gamma", "--yes"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let roles = eval_roles(&root);
    assert_eq!(roles["gamma|x86_64-linux"], "primary");
    assert_eq!(roles["alpha|x86_64-linux"], "standby");
}

/// A shared module (modules/common.nix, set for every host by flake.nix) is
/// no member: promote flips the two hosts and leaves it alone.
#[test]
fn a_shared_module_does_not_block_promote() {
    let (_dir, root) = scratch("fixtures/clusters/shared_module_sets_domain");
    let common = std::fs::read(root.join("modules/common.nix")).expect("read");
    let out = nixflip(&root)
        .args(["promote", "beta", "--yes"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let roles = eval_roles(&root);
    assert_eq!(roles["beta|x86_64-linux"], "primary");
    assert_eq!(roles["alpha|x86_64-linux"], "standby");
    assert_eq!(
        std::fs::read(root.join("modules/common.nix")).expect("read"),
        common
    );
}

#[test]
fn a_failed_commit_says_the_files_were_written_and_how_to_commit() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, root) = scratch("examples/two-node");
    let hook = root.join(".git/hooks/pre-commit");
    std::fs::create_dir_all(hook.parent().expect("hooks")).expect("mkdir");
    std::fs::write(&hook, "#!/bin/sh\necho 'hook says no' >&2\nexit 1\n").expect("hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let before = snapshot_tree(&root);
    let out = nixflip(&root)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .args(["promote", "bfs.poland.xray", "--yes", "--commit"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&root.display().to_string(), "ROOT");
    insta::assert_snapshot!("promote_commit_failed", stderr);
    // The files were written (and stay written), just not committed.
    assert_ne!(snapshot_tree(&root), before);
    let log = Std::new("git")
        .args(["log", "--format=%s"])
        .current_dir(&root)
        .output()
        .expect("git");
    assert_eq!(String::from_utf8_lossy(&log.stdout).trim(), "init");
}

#[test]
fn commit_with_allow_dirty_is_refused_before_anything_is_written() {
    let (_dir, root) = scratch("examples/two-node");
    let host = root.join("nixos/system/hectic-lab/hectic-lab.nix");
    let mut text = std::fs::read_to_string(&host).expect("read");
    text.push_str("# my own edit\n");
    std::fs::write(&host, &text).expect("write");
    let before = snapshot_tree(&root);
    let out = nixflip(&root)
        .args([
            "promote",
            "bfs.poland.xray",
            "--yes",
            "--commit",
            "--allow-dirty",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(
        "promote_commit_allow_dirty",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(snapshot_tree(&root), before);
}

#[test]
fn json_plan_uses_camel_case_keys_like_status() {
    let (_dir, root) = scratch("examples/two-node");
    let out = nixflip(&root)
        .args([
            "promote",
            "bfs.poland.xray",
            "--dry-run",
            "--no-eval",
            "--format",
            "json",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    insta::assert_json_snapshot!("promote_plan_json", json["plan"]);
}

#[test]
fn markdown_plan_fences_survive_backticks_in_the_diff() {
    let (_dir, root) = scratch("examples/two-node");
    let host = root.join("nixos/system/hectic-lab/hectic-lab.nix");
    let text = std::fs::read_to_string(&host).expect("read");
    let text = text.replacen(
        "      role           = \"primary\";\n",
        "      role           = \"primary\";\n      # ```\n",
        1,
    );
    std::fs::write(&host, text).expect("write");
    let out = nixflip(&root)
        .args([
            "promote",
            "bfs.poland.xray",
            "--dry-run",
            "--no-eval",
            "--format",
            "markdown",
        ])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("````diff\n"), "{md}");
    insta::assert_snapshot!("promote_plan_markdown", md);
}

/// `nixflip ARGS` in a private mount namespace in which `busy` is a mount
/// point (the file bind-mounted onto itself): reading it and creating a
/// temp file beside it work, renaming over it fails (EBUSY), also for root.
/// The mount dies with the namespace, however the test ends. Needs root
/// (CAP_SYS_ADMIN) and util-linux's `unshare`; without them the test fails
/// saying so.
fn nixflip_with_busy_file(root: &Path, busy: &Path, args: &[String]) -> std::process::Output {
    let probe = Std::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "this test needs a private mount namespace: run it as root (CAP_SYS_ADMIN), with \
         util-linux's `unshare` (Debian: apt-get install util-linux), as .ci/run does: {probe:?}"
    );
    Std::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"busy="$1"; shift; mount --bind "$busy" "$busy" && exec "$@""#)
        .arg("sh")
        .arg(busy)
        .arg(assert_cmd::cargo::cargo_bin("nixflip"))
        .arg("--flake")
        .arg(root)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("unshare runs")
}

#[test]
fn a_rename_failing_on_the_second_file_restores_the_first() {
    let (_dir, root) = scratch("examples/two-node");
    // The plan writes the files in path order: bfs.poland.xray's first, then hectic-lab's.
    let second = root.join("nixos/system/hectic-lab/hectic-lab.nix");
    let before = snapshot_tree(&root);
    let args: Vec<String> = ["promote", "bfs.poland.xray", "--yes", "--no-eval"]
        .map(String::from)
        .to_vec();
    let out = nixflip_with_busy_file(&root, &second, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("files already replaced were restored"),
        "{stderr}"
    );
    assert!(
        stderr.contains("busy"),
        "the rename failed on the mount point: {stderr}"
    );
    // The first file was renamed into place, then got its bytes back; no temp file remains.
    assert_eq!(
        snapshot_tree(&root),
        before,
        "a file changed or a temp file was left behind"
    );
}

#[test]
fn a_held_lock_is_refused_outside_git_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("flake");
    common::copy_flake("examples/two-node", &root);
    let home = tempfile::tempdir().expect("home");
    let home_path = home.path().as_os_str().to_owned();
    let env = move |name: &str| (name == "HOME").then(|| home_path.clone());
    let held = nixflip::fsx::lock_with(&root, &env).expect("lock");
    // Not in the shared temp dir: in the user's cache dir (here the fake HOME's).
    assert!(held
        .path
        .starts_with(home.path().join(".cache/nixflip/locks")));
    let before = snapshot_tree(&root);
    let out = nixflip(&root)
        .env("HOME", home.path())
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_CACHE_HOME")
        .args(["promote", "bfs.poland.xray", "--yes", "--no-eval"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lock"));
    assert_eq!(snapshot_tree(&root), before);
    drop(held);
}

/// A `nix` in `bin` running the shell `script`, and a PATH that finds it
/// before the real one.
fn nix_on_path(bin: &Path, script: &str) -> String {
    let wrapper = bin.join("nix");
    std::fs::write(&wrapper, format!("#!/bin/sh\n{script}\n")).expect("wrapper");
    Std::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()
        .expect("chmod");
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The scratch directories in `tmp`.
fn scratch_dirs(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("nixflip-scratch-"))
        .collect()
}

/// Whether `cond` holds within 20 s, checked every 10 ms.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    cond()
}

/// A finished promote leaves no scratch copy behind: its janitor removes
/// it, after nixflip has exited.
#[test]
fn promote_leaves_no_scratch_copy() {
    let (_dir, root) = scratch("examples/two-node");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = nixflip(&root)
        .env("TMPDIR", tmp.path())
        .args(["promote", "bfs.poland.xray", "--dry-run"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        eventually(|| scratch_dirs(tmp.path()).is_empty()),
        "left behind: {:?}",
        scratch_dirs(tmp.path())
    );
}

/// promote is stopped by `signal` (sent to its process group, as a terminal
/// sends Ctrl-C, or to it alone) while Nix evaluates the scratch copy: the
/// janitor, in a process group of its own, removes the copy.
fn a_stopped_runs_copy_is_removed_by_the_janitor(signal: &str, to_group: bool) {
    let (_dir, root) = scratch("examples/two-node");
    let tmp = tempfile::tempdir().expect("tempdir");
    // A `nix` that, once started (the copy is complete by then), says so and
    // waits for a writer to a FIFO that never comes.
    let bin = tempfile::tempdir().expect("tempdir");
    let started = bin.path().join("nix.pid");
    let fifo = bin.path().join("hold");
    let made = Std::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let path = nix_on_path(
        bin.path(),
        &format!(
            "echo $$ > '{}'\nexec cat '{}'",
            started.display(),
            fifo.display()
        ),
    );
    let mut run = Std::new(assert_cmd::cargo::cargo_bin("nixflip"));
    run.env("TMPDIR", tmp.path())
        .env("PATH", path)
        .arg("--flake")
        .arg(&root)
        .args(["promote", "bfs.poland.xray", "--dry-run"])
        .args(common::nix_options())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut run, 0);
    let mut child = run.spawn().expect("runs");
    assert!(
        eventually(|| std::fs::read_to_string(&started).is_ok_and(|p| p.ends_with('\n'))),
        "nix never started"
    );
    let target = if to_group {
        format!("-{}", child.id())
    } else {
        child.id().to_string()
    };
    let sent = Std::new("kill")
        .args([signal, "--", &target])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = child.wait().expect("wait");
    assert!(!status.success(), "promote was stopped: {status:?}");
    assert!(
        eventually(|| scratch_dirs(tmp.path()).is_empty()),
        "the janitor never removed {:?}",
        scratch_dirs(tmp.path())
    );
    // The held `nix` is released (killed with the group, or here).
    if let Ok(pid) = std::fs::read_to_string(&started) {
        let _ = Std::new("kill").arg(pid.trim()).status();
    }
}

/// The janitor removes scratch copies and nothing else.
#[test]
fn the_janitor_refuses_a_directory_that_is_not_a_scratch_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let precious = dir.path().join("hosts");
    std::fs::create_dir(&precious).expect("dir");
    let out = Command::cargo_bin("nixflip")
        .expect("binary")
        .arg("janitor")
        .arg(&precious)
        .write_stdin("")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(precious.is_dir());
}

#[test]
fn ctrl_c_during_nix_eval_leaves_no_scratch_copy() {
    a_stopped_runs_copy_is_removed_by_the_janitor("-INT", true);
}

#[test]
fn kill_9_during_nix_eval_leaves_no_scratch_copy() {
    a_stopped_runs_copy_is_removed_by_the_janitor("-KILL", false);
}
