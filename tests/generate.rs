//! The generator end to end: `nixflip init` into a temp dir, then `check`,
//! real `nix eval` (nixpkgs replaced by the stand-in of nix/stand-ins through
//! `--override-input`), `promote`; the generated module on both roles;
//! `add-host` on a copy of examples/two-node; bad input; the project's own
//! flake.nix.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;

const NIX_FEATURES: &str = "nix-command flakes";
const FIELDS: &str = r#"c: let m = c.config.hectic.generic.matrix-cluster; in {
  inherit (m) role effectiveSynapse;
  secrets = m.secretsFile != null;
  inherit (m.replication) peerHost allowedSourceIPs;
}"#;

fn nixflip() -> Command {
    let mut cmd = Command::cargo_bin("nixflip").expect("binary builds");
    cmd.env("NO_COLOR", "1");
    cmd
}

/// `nix eval --json` of `path:DIR#ATTR` with `--apply`, nixpkgs overridden.
fn nix_eval(dir: &Path, attr: &str, apply: &str) -> Result<serde_json::Value, String> {
    common::nix_eval(dir, attr, apply)
}

/// The host attributes of the flake at `root` read the way `nixos-rebuild
/// --flake .` reads it: through git (`git+file://`), which leaves out files
/// git does not know.
fn git_flake_hosts(root: &Path) -> Vec<String> {
    let out = Std::new("nix")
        .args([
            "--extra-experimental-features",
            NIX_FEATURES,
            "eval",
            "--json",
        ])
        .args(common::nix_overrides())
        .arg(format!("git+file://{}#nixosConfigurations", root.display()))
        .args(["--apply", "builtins.attrNames"])
        .output()
        .expect("nix runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// `check` exits 0 with no finding at all: findings go to stderr, so that
/// must be empty, and the summary must be the clean one.
fn assert_check_is_clean(root: &Path, members: usize) {
    let out = nixflip()
        .arg("--flake")
        .arg(root)
        .arg("check")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "", "no findings");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("nixflip check: 0 errors, 0 warnings in {members} members\n")
    );
}

fn git_ls_files(root: &Path) -> String {
    let out = Std::new("git")
        .args(["ls-files"])
        .current_dir(root)
        .output()
        .expect("git runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A configuration's value through `f` (a Nix function of the configuration).
fn eval_host(dir: &Path, attr: &str, f: &str) -> Result<serde_json::Value, String> {
    nix_eval(
        dir,
        "nixosConfigurations",
        &format!("cs: ({f}) cs.{}", nix_str(attr)),
    )
}

fn nix_str(s: &str) -> String {
    format!("\"{s}\"")
}

/// `nixflip init` of a three-node cluster into DIR/cluster.
fn init_cluster() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("cluster");
    nixflip()
        .arg("init")
        .arg(&root)
        .args(["--domain", "chat.example.org"])
        .args(["--primary", "alpha=192.0.2.1"])
        .args(["--standby", "beta=192.0.2.2"])
        .args(["--standby", "gamma=2001:db8::3"])
        .assert()
        .success();
    (tmp, root)
}

fn redact(text: &str, root: &Path) -> String {
    text.replace(&root.display().to_string(), "TMP")
        .replace(&common::repo().display().to_string(), "REPO")
}

fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            if e.file_name() == ".git" {
                continue;
            }
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            } else {
                out.push(
                    e.path()
                        .strip_prefix(root)
                        .expect("prefix")
                        .display()
                        .to_string(),
                );
            }
        }
    }
    out.sort();
    out
}

// ------------------------------------------------------------------- init --

#[test]
fn init_writes_a_complete_flake_and_says_what_next() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("cluster");
    let out = nixflip()
        .arg("init")
        .arg(&root)
        .args(["--domain", "chat.example.org"])
        .args(["--primary", "alpha=192.0.2.1"])
        .args(["--standby", "beta=192.0.2.2"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    insta::assert_snapshot!(
        "init_stdout",
        redact(&String::from_utf8_lossy(&out), tmp.path())
    );
    assert_eq!(
        files_under(&root),
        [
            ".github/workflows/nixflip.yml",
            ".pre-commit-config.yaml",
            "flake.nix",
            "hosts/alpha.nix",
            "hosts/beta.nix",
            "modules/matrix-cluster.nix",
            "nixflip.toml",
        ]
    );
    let read = |p: &str| std::fs::read_to_string(root.join(p)).expect("read");
    insta::assert_snapshot!("init_flake_nix", read("flake.nix"));
    insta::assert_snapshot!("init_host_primary", read("hosts/alpha.nix"));
    insta::assert_snapshot!("init_host_standby", read("hosts/beta.nix"));
    insta::assert_snapshot!("init_nixflip_toml", read("nixflip.toml"));
    insta::assert_snapshot!("init_pre_commit", read(".pre-commit-config.yaml"));
    // The module and the CI workflow are the project's own files, verbatim.
    let repo = common::repo();
    assert_eq!(
        read("modules/matrix-cluster.nix"),
        std::fs::read_to_string(repo.join("nix/matrix-cluster.nix")).expect("module")
    );
    assert_eq!(
        read(".github/workflows/nixflip.yml"),
        std::fs::read_to_string(repo.join("examples/ci/github-actions.yml")).expect("workflow")
    );
    for f in ["flake.nix", "hosts/alpha.nix", "hosts/beta.nix"] {
        let status = Std::new("nix-instantiate")
            .args(["--parse", &root.join(f).display().to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("nix-instantiate");
        assert!(status.success(), "{f} parses");
    }
}

/// `init` into a directory of an existing repository: the files are added
/// with --intent-to-add (so the git flake sees them), and the next steps say
/// to commit instead of nesting a second repository with `git init`.
#[test]
fn init_inside_a_git_repository_makes_the_files_known_to_git() {
    let tmp = tempfile::tempdir().expect("tempdir");
    common::git(tmp.path(), &["init", "-q"]);
    let out = nixflip()
        .current_dir(tmp.path())
        .args(["init", "cluster", "--domain", "chat.example.org"])
        .args([
            "--primary",
            "alpha=192.0.2.1",
            "--standby",
            "beta=192.0.2.2",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("git add . && git commit"), "{stdout}");
    assert!(!stdout.contains("git init"), "{stdout}");
    let tracked = git_ls_files(tmp.path());
    for file in [
        "cluster/flake.nix",
        "cluster/hosts/alpha.nix",
        "cluster/hosts/beta.nix",
    ] {
        assert!(tracked.lines().any(|l| l == file), "{file} in:\n{tracked}");
    }
    // The git flake (as nixos-rebuild reads it) has both hosts.
    let out = Std::new("nix")
        .args([
            "--extra-experimental-features",
            NIX_FEATURES,
            "eval",
            "--json",
        ])
        .args(common::nix_overrides())
        .arg(format!(
            "git+file://{}?dir=cluster#nixosConfigurations",
            tmp.path().display()
        ))
        .args(["--apply", "builtins.attrNames"])
        .output()
        .expect("nix runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hosts: Vec<String> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(hosts, ["alpha|x86_64-linux", "beta|x86_64-linux"]);
}

#[test]
fn init_result_passes_check_and_evaluates() {
    let (_tmp, root) = init_cluster();
    assert_check_is_clean(&root, 3);

    // Every host's managed fields, and its whole system, evaluate.
    let fields = nix_eval(
        &root,
        "nixosConfigurations",
        &format!("cs: builtins.mapAttrs (n: c: ({FIELDS}) c // {{ toplevel = c.config.system.build.toplevel != null; }}) cs"),
    )
    .expect("the generated flake evaluates");
    insta::assert_json_snapshot!("init_evaluated_fields", fields);

    // nixflip's own evaluation of the members, through status --json.
    let status = nixflip()
        .arg("--flake")
        .arg(&root)
        .args(["status", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let status: serde_json::Value = serde_json::from_slice(&status).expect("json");
    let roles: Vec<(String, String, String)> = status["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["host"].as_str().unwrap_or_default().to_string(),
                m["role"].as_str().unwrap_or_default().to_string(),
                m["address"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("alpha".into(), "primary".into(), "192.0.2.1".into()),
            ("beta".into(), "standby".into(), "192.0.2.2".into()),
            ("gamma".into(), "standby".into(), "2001:db8::3".into()),
        ]
    );
}

#[test]
fn promote_works_on_an_init_flake() {
    let (_tmp, root) = init_cluster();
    common::commit_all(&root);
    nixflip()
        .arg("--flake")
        .arg(&root)
        .args(["promote", "gamma", "--yes"])
        .args(common::nix_options())
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "nix eval: every member evaluates to the planned roles (3 members",
        ));
    let fields = nix_eval(
        &root,
        "nixosConfigurations",
        &format!("cs: builtins.mapAttrs (n: c: ({FIELDS}) c) cs"),
    )
    .expect("evaluates after the flip");
    insta::assert_json_snapshot!("init_promoted_fields", fields);
    // A standby of an IPv6 primary: the passfile's host field escapes ':'.
    let script = eval_host(
        &root,
        "alpha|x86_64-linux",
        "c: c.config.systemd.services.matrix-cluster-standby-setup.script",
    )
    .expect("standby script");
    let script = script.as_str().unwrap_or_default();
    assert!(script.contains(r"'2001\:db8\:\:3' 5432"), "{script}");
    assert!(script.contains("host=2001:db8::3 port=5432"), "{script}");
    nixflip()
        .arg("--flake")
        .arg(&root)
        .arg("check")
        .assert()
        .success();
}

#[test]
fn init_refuses_to_overwrite_and_lists_the_files() {
    let (_tmp, root) = init_cluster();
    std::fs::write(root.join("hosts/alpha.nix"), "# mine\n").expect("write");
    let before = std::fs::read_to_string(root.join("flake.nix")).expect("read");
    let out = nixflip()
        .arg("init")
        .arg(&root)
        .args(["--domain", "other.example.org"])
        .args(["--primary", "alpha=192.0.2.1"])
        .args(["--standby", "beta=192.0.2.2"])
        .assert()
        .code(4)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8_lossy(&out);
    assert!(
        err.contains("hosts/alpha.nix") && err.contains("flake.nix"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read_to_string(root.join("hosts/alpha.nix")).expect("read"),
        "# mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("flake.nix")).expect("read"),
        before
    );
    // --force overwrites.
    nixflip()
        .arg("init")
        .arg(&root)
        .args(["--domain", "other.example.org"])
        .args(["--primary", "alpha=192.0.2.1"])
        .args(["--standby", "beta=192.0.2.2"])
        .arg("--force")
        .assert()
        .success()
        .stdout(predicates::str::contains("(replaced)"));
    assert!(std::fs::read_to_string(root.join("hosts/alpha.nix"))
        .expect("read")
        .contains("other.example.org"));
}

#[test]
fn init_rejects_bad_input_and_writes_nothing() {
    let cases: &[(&str, &[&str])] = &[
        (
            "address",
            &[
                "--domain",
                "x.org",
                "--primary",
                "alpha=300.1.1.1",
                "--standby",
                "beta=192.0.2.2",
            ],
        ),
        (
            "name",
            &[
                "--domain",
                "x.org",
                "--primary",
                "al pha=192.0.2.1",
                "--standby",
                "beta=192.0.2.2",
            ],
        ),
        (
            "slash",
            &[
                "--domain",
                "x.org",
                "--primary",
                "alpha=192.0.2.1",
                "--standby",
                "../beta=192.0.2.2",
            ],
        ),
        (
            "duplicate",
            &[
                "--domain",
                "x.org",
                "--primary",
                "alpha=192.0.2.1",
                "--standby",
                "alpha=192.0.2.2",
            ],
        ),
        (
            "domain",
            &[
                "--domain",
                "not a domain",
                "--primary",
                "alpha=192.0.2.1",
                "--standby",
                "beta=192.0.2.2",
            ],
        ),
        (
            "no_standby",
            &["--domain", "x.org", "--primary", "alpha=192.0.2.1"],
        ),
        (
            "dns_name",
            &[
                "--domain",
                "x.org",
                "--primary",
                "alpha=192.0.2.1",
                "--standby",
                "b=db.example.org",
            ],
        ),
    ];
    let mut report = String::new();
    for (name, args) in cases {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("c");
        let out = nixflip()
            .arg("init")
            .arg(&root)
            .args(*args)
            .assert()
            .code(2)
            .get_output()
            .clone();
        assert!(!root.exists(), "{name}: nothing may be written");
        report.push_str(&format!(
            "== {name}\n{}\n",
            redact(&String::from_utf8_lossy(&out.stderr), tmp.path()).trim_end()
        ));
    }
    insta::assert_snapshot!("init_bad_input", report);
}

// ----------------------------------------------------------------- module --

/// The generated module on the real module system: Postgres settings per role.
#[test]
fn generated_module_configures_replication_for_both_roles() {
    let (_tmp, root) = init_cluster();
    let pg = r#"c: {
  settings = { inherit (c.config.services.postgresql.settings) wal_level max_wal_senders hot_standby; };
  pg_hba = c.config.services.postgresql.authentication;
  firewall = c.config.networking.firewall.extraCommands;
  synapse = c.config.services.matrix-synapse.enable;
  standbySetup = c.config.systemd.services ? matrix-cluster-standby-setup;
  replicationPassword = c.config.systemd.services ? matrix-cluster-replication-password;
}"#;
    let primary = eval_host(&root, "alpha|x86_64-linux", pg).expect("primary evaluates");
    insta::assert_json_snapshot!("module_primary_postgres", primary);

    let standby = eval_host(
        &root,
        "beta|x86_64-linux",
        r#"c: let s = c.config.systemd.services.matrix-cluster-standby-setup; in {
  settings = { inherit (c.config.services.postgresql.settings) wal_level hot_standby include_if_exists; };
  pg_hba = c.config.services.postgresql.authentication;
  synapse = c.config.services.matrix-synapse.enable;
  inherit (s) before requiredBy;
  script = s.script;
}"#,
    )
    .expect("standby evaluates");
    let script = standby["script"].as_str().unwrap_or_default().to_string();
    for needle in [
        "primary_conninfo = '\\''host=192.0.2.1 port=5432 user=replicator passfile=/run/matrix-cluster/pgpass sslmode=require'\\''",
        "standby.signal",
        "refusing to start a standby without a base backup",
    ] {
        assert!(script.contains(needle), "standby script lacks {needle}:\n{script}");
    }
    let mut standby = standby;
    standby["script"] = serde_json::Value::Null;
    insta::assert_json_snapshot!("module_standby_postgres", standby);
    insta::assert_snapshot!("module_standby_script", script);
}

#[test]
fn generated_module_rejects_a_bad_role() {
    let (_tmp, root) = init_cluster();
    nixflip()
        .args(["set"])
        .arg(root.join("hosts/beta.nix"))
        .args([
            "hectic.generic.matrix-cluster.role",
            "\"leader\"",
            "--in-place",
        ])
        .assert()
        .success();
    let err = eval_host(
        &root,
        "beta|x86_64-linux",
        "c: c.config.hectic.generic.matrix-cluster.role",
    )
    .expect_err("a bad role must not evaluate");
    assert!(
        err.contains(r#"A definition for option `hectic.generic.matrix-cluster.role' is not of type `one of "primary", "standby"'"#)
            && err.contains(r#""leader""#),
        "{err}"
    );
}

#[test]
fn generated_module_requires_secrets_where_synapse_runs() {
    let (_tmp, root) = init_cluster();
    nixflip()
        .args(["set"])
        .arg(root.join("hosts/alpha.nix"))
        .args([
            "hectic.generic.matrix-cluster.secretsFile",
            "null",
            "--in-place",
        ])
        .assert()
        .success();
    let err = eval_host(
        &root,
        "alpha|x86_64-linux",
        "c: c.config.system.build.toplevel",
    )
    .expect_err("the assertion must fail");
    assert!(err.contains("so secretsFile must be set"), "{err}");
}

// --------------------------------------------------------------- add-host --

fn two_node() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("two-node");
    common::copy_flake("examples/two-node", &root);
    common::commit_all(&root);
    (tmp, root)
}

#[test]
fn add_host_on_the_example() {
    let (tmp, root) = two_node();
    let out = nixflip()
        .arg("--flake")
        .arg(&root)
        .args(["add-host", "gamma", "--address", "192.0.2.30", "--yes"])
        .args(common::nix_options())
        .assert()
        .success()
        .get_output()
        .clone();
    insta::assert_snapshot!(
        "add_host_example_stdout",
        redact(&String::from_utf8_lossy(&out.stdout), tmp.path())
    );
    // The new file is known to git (intent to add), so the git flake that
    // `nixos-rebuild --flake .` reads has the new host before any commit.
    assert!(
        git_ls_files(&root).contains("nixos/system/gamma/gamma.nix"),
        "{}",
        git_ls_files(&root)
    );
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("git add --intent-to-add nixos/system/gamma/gamma.nix"));
    assert!(git_flake_hosts(&root).contains(&"gamma|x86_64-linux".to_string()));
    // The new standby points at the primary; the primary allows it.
    let fields = nix_eval(
        &root,
        "nixosConfigurations",
        &format!("cs: builtins.mapAttrs (n: c: ({FIELDS}) c // {{ toplevel = c.config.system.build.toplevel != null; }}) cs"),
    )
    .expect("evaluates");
    assert_eq!(fields["gamma|x86_64-linux"]["role"], "standby");
    assert_eq!(fields["gamma|x86_64-linux"]["peerHost"], "128.140.75.58");
    assert_eq!(fields["gamma|x86_64-linux"]["effectiveSynapse"], false);
    let allowed = &fields["hectic-lab|x86_64-linux"]["allowedSourceIPs"];
    assert!(
        allowed
            .as_array()
            .is_some_and(|a| a.contains(&"192.0.2.30/32".into())),
        "{allowed}"
    );
    insta::assert_json_snapshot!("add_host_example_fields", fields);
    assert_check_is_clean(&root, 3);
    // The example itself was not touched.
    assert!(!common::repo()
        .join("examples/two-node/nixos/system/gamma")
        .exists());
}

/// Every member admits the new host, so the cluster stays symmetric:
/// promoting the current primary afterwards is a no-op.
#[test]
fn add_host_gives_every_member_the_new_address() {
    let (_tmp, root) = two_node();
    nixflip()
        .arg("--flake")
        .arg(&root)
        .args(["add-host", "gamma", "--address", "192.0.2.30", "--yes"])
        .args(common::nix_options())
        .assert()
        .success();
    let fields = nix_eval(
        &root,
        "nixosConfigurations",
        &format!("cs: builtins.mapAttrs (n: c: ({FIELDS}) c) cs"),
    )
    .expect("evaluates");
    for host in ["hectic-lab", "bfs.poland.xray"] {
        let allowed = &fields[format!("{host}|x86_64-linux")]["allowedSourceIPs"];
        assert!(
            allowed
                .as_array()
                .is_some_and(|a| a.contains(&"192.0.2.30/32".into())),
            "{host}: {allowed}"
        );
    }
    common::git(&root, &["add", "-A"]);
    common::git(&root, &["commit", "-qm", "add gamma"]);
    let out = nixflip()
        .arg("--flake")
        .arg(&root)
        .args(["promote", "hectic-lab", "--dry-run"])
        .args(common::nix_options())
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hectic-lab is already the primary and every member agrees; nothing to do\n"
    );
}

/// add-host takes the same write flags as promote: `--commit` makes one
/// commit with the new host file and every edit, and says which.
#[test]
fn add_host_commit_makes_one_commit_with_the_new_file() {
    let (_tmp, root) = two_node();
    let out = nixflip()
        .arg("--flake")
        .arg(&root)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .args([
            "add-host",
            "gamma",
            "--address",
            "192.0.2.30",
            "--yes",
            "--commit",
        ])
        .args(common::nix_options())
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(": nixflip: add gamma as a standby of hectic-lab"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("git add "),
        "nothing left to commit: {stdout}"
    );
    let files = common::git(&root, &["show", "--name-only", "--format=%s", "HEAD"]);
    assert!(
        files.starts_with("nixflip: add gamma as a standby of hectic-lab\n"),
        "{files}"
    );
    for file in [
        "flake.nix",
        "nixos/system/gamma/gamma.nix",
        "nixos/system/hectic-lab/hectic-lab.nix",
    ] {
        assert!(
            files.lines().any(|l| l == file),
            "{file} not in the commit: {files}"
        );
    }
    assert_eq!(common::git(&root, &["status", "--porcelain"]), "");
}

#[test]
fn add_host_dry_run_writes_nothing() {
    let (_tmp, root) = two_node();
    let before = files_under(&root);
    let flake = std::fs::read_to_string(root.join("flake.nix")).expect("read");
    nixflip()
        .arg("--flake")
        .arg(&root)
        .args(["add-host", "gamma", "--address", "192.0.2.30", "--dry-run"])
        .args(common::nix_options())
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "+++ b/nixos/system/gamma/gamma.nix",
        ));
    assert_eq!(files_under(&root), before);
    assert_eq!(
        std::fs::read_to_string(root.join("flake.nix")).expect("read"),
        flake
    );
}

#[test]
fn add_host_refuses_without_a_terminal_or_with_a_dirty_tree() {
    let (_tmp, root) = two_node();
    let before = files_under(&root);
    nixflip()
        .arg("--flake")
        .arg(&root)
        .args(["add-host", "gamma", "--address", "192.0.2.30"])
        .args(common::nix_options())
        .assert()
        .code(4)
        .stderr(predicates::str::contains("--yes"));
    assert_eq!(files_under(&root), before);
    let file = root.join("nixos/system/hectic-lab/hectic-lab.nix");
    let mut text = std::fs::read_to_string(&file).expect("read");
    text.push_str("# local edit\n");
    std::fs::write(&file, &text).expect("write");
    nixflip()
        .arg("--flake")
        .arg(&root)
        .args(["add-host", "gamma", "--address", "192.0.2.30", "--yes"])
        .args(common::nix_options())
        .assert()
        .code(4)
        .stderr(predicates::str::contains("--allow-dirty"));
    assert_eq!(files_under(&root), before);
}

#[test]
fn add_host_rejects_bad_input_and_writes_nothing() {
    let (tmp, root) = two_node();
    let before = files_under(&root);
    let cases: &[(&str, &[&str], i32)] = &[
        ("address", &["gamma", "--address", "999.1.2.3"], 2),
        ("address_word", &["gamma", "--address", "not an address"], 2),
        ("address_dns", &["gamma", "--address", "db.example.org"], 2),
        ("name_slash", &["ga/mma", "--address", "192.0.2.30"], 2),
        ("name_quote", &["gam\"ma", "--address", "192.0.2.30"], 2),
        (
            "name_pipe",
            &["gamma|x86_64-linux", "--address", "192.0.2.30"],
            2,
        ),
        (
            "existing",
            &["bfs.poland.xray", "--address", "192.0.2.30"],
            2,
        ),
        (
            "taken_address",
            &["gamma", "--address", "91.198.166.181"],
            2,
        ),
        (
            "primary_role",
            &["gamma", "--address", "192.0.2.30", "--role", "primary"],
            4,
        ),
    ];
    let mut report = String::new();
    for (name, args, code) in cases {
        let out = nixflip()
            .arg("--flake")
            .arg(&root)
            .arg("add-host")
            .args(*args)
            .arg("--yes")
            .args(common::nix_options())
            .assert()
            .code(*code)
            .get_output()
            .clone();
        assert_eq!(files_under(&root), before, "{name}: nothing may be written");
        report.push_str(&format!(
            "== {name}\n{}\n",
            redact(&String::from_utf8_lossy(&out.stderr), tmp.path()).trim_end()
        ));
    }
    insta::assert_snapshot!("add_host_bad_input", report);
}

#[test]
fn add_host_refuses_an_entry_shape_it_cannot_copy() {
    let (_tmp, root) = two_node();
    let flake = root.join("flake.nix");
    let text = std::fs::read_to_string(&flake).expect("read").replace(
        "host \"x86_64-linux\" ./nixos/system/hectic-lab/hectic-lab.nix;",
        "host \"x86_64-linux\" (./nixos/system + \"/hectic-lab/hectic-lab.nix\");",
    );
    std::fs::write(&flake, text).expect("write");
    common::git(&root, &["commit", "-qam", "odd shape"]);
    let before = files_under(&root);
    nixflip()
        .arg("--flake")
        .arg(&root)
        .args(["add-host", "gamma", "--address", "192.0.2.30", "--yes"])
        .args(common::nix_options())
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "cannot copy the nixosConfigurations entry",
        ))
        .stderr(predicates::str::contains(
            "an expression add-host does not rewrite",
        ));
    assert_eq!(files_under(&root), before);
}

#[test]
fn add_host_on_an_init_flake_then_promote_it() {
    let (_tmp, root) = init_cluster();
    common::commit_all(&root);
    nixflip()
        .arg("--flake")
        .arg(&root)
        .args(["add-host", "delta", "--address", "192.0.2.4", "--yes"])
        .args(common::nix_options())
        .assert()
        .success();
    assert!(root.join("hosts/delta.nix").is_file());
    common::git(&root, &["add", "-A"]);
    common::git(&root, &["commit", "-qm", "add delta"]);
    nixflip()
        .arg("--flake")
        .arg(&root)
        .args(["promote", "delta", "--yes"])
        .args(common::nix_options())
        .assert()
        .success();
    let fields = nix_eval(
        &root,
        "nixosConfigurations",
        &format!("cs: builtins.mapAttrs (n: c: ({FIELDS}) c) cs"),
    )
    .expect("evaluates");
    assert_eq!(fields["delta|x86_64-linux"]["role"], "primary");
    assert_eq!(fields["alpha|x86_64-linux"]["peerHost"], "192.0.2.4");
}

// ------------------------------------------------------ the project flake --

/// The project's flake.nix parses, and what does not need nixpkgs evaluates:
/// the module (identical to the template) on both roles, through the checks.
#[test]
fn project_flake_parses_and_its_module_checks_evaluate() {
    let repo = common::repo();
    let status = Std::new("nix-instantiate")
        .args(["--parse", &repo.join("flake.nix").display().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("nix-instantiate");
    assert!(status.success());
    assert_eq!(
        nixflip::generate::MODULE,
        std::fs::read_to_string(repo.join("nix/matrix-cluster.nix")).expect("module"),
        "templates/matrix-cluster.nix must be nix/matrix-cluster.nix (copy it over)"
    );
    // A copy of just what the flake reads (the work tree has target/).
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    for f in [
        "flake.nix",
        "Cargo.toml",
        "Cargo.lock",
        "nix/matrix-cluster.nix",
    ] {
        std::fs::create_dir_all(root.join(f).parent().expect("parent")).expect("mkdir");
        std::fs::copy(repo.join(f), root.join(f)).expect("copy");
    }
    let module_text = nix_eval(
        root,
        "nixosModules",
        "m: builtins.isFunction m.matrix-cluster && builtins.isFunction m.default",
    );
    assert_eq!(module_text, Ok(serde_json::Value::Bool(true)));
    let checks = nix_eval(
        root,
        "checks",
        r#"cs: {
  systems = builtins.attrNames cs;
  linux = builtins.attrNames cs.x86_64-linux;
  darwin = builtins.attrNames cs.aarch64-darwin;
  primary = builtins.isString cs.x86_64-linux.module-primary;
  standby = builtins.isString cs.x86_64-linux.module-standby;
}"#,
    )
    .expect("checks evaluate");
    insta::assert_json_snapshot!("project_flake_checks", checks);
    let apps = nix_eval(root, "apps", "a: builtins.attrNames a.x86_64-linux").expect("apps list");
    assert_eq!(apps, serde_json::json!(["default"]));
}
