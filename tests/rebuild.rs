//! `nixflip rebuild` end to end, on temporary copies of the example flake and
//! the cluster fixtures.
//!
//! FAKE: there is no NixOS host (and usually no `nixos-rebuild`) where these
//! tests run, so each test writes a recording stand-in for `nixos-rebuild`
//! into a temporary directory put first on PATH. It is the only fake here:
//! the binary, the flake discovery, the config and the ordering are real. The
//! fake appends its argv (one line per call, each argument in brackets) to
//! the file named by NIXFLIP_FAKE_LOG, and exits with NIXFLIP_FAKE_EXIT
//! (default 1) when one of its arguments equals NIXFLIP_FAKE_FAIL_TARGET.

mod common;

use std::path::PathBuf;

use assert_cmd::Command;

const FAKE_NIXOS_REBUILD: &str = r#"#!/bin/sh
# Recording fake nixos-rebuild (nixflip tests): logs argv, fails on request.
printf '[%s] ' "$@" >> "$NIXFLIP_FAKE_LOG"
printf '\n' >> "$NIXFLIP_FAKE_LOG"
for arg in "$@"; do
  if [ -n "$NIXFLIP_FAKE_FAIL_TARGET" ] && [ "$arg" = "$NIXFLIP_FAKE_FAIL_TARGET" ]; then
    echo "fake nixos-rebuild: failing for $arg" >&2
    exit "${NIXFLIP_FAKE_EXIT:-1}"
  fi
done
echo "fake nixos-rebuild: ok"
"#;

/// A temporary copy of a flake plus a bin directory holding the fake.
struct Env {
    _dir: tempfile::TempDir,
    flake: PathBuf,
    bin: PathBuf,
    log: PathBuf,
}

fn env(source: &str) -> Env {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let base = std::fs::canonicalize(dir.path()).unwrap_or_else(|e| panic!("canonicalize: {e}"));
    let flake = base.join("flake");
    common::copy_flake(source, &flake);
    let bin = base.join("bin");
    std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("mkdir bin: {e}"));
    let fake = bin.join("nixos-rebuild");
    std::fs::write(&fake, FAKE_NIXOS_REBUILD).unwrap_or_else(|e| panic!("write fake: {e}"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod fake: {e}"));
    Env {
        log: base.join("calls.log"),
        _dir: dir,
        flake,
        bin,
    }
}

impl Env {
    /// `nixflip --flake FLAKE rebuild ARGS…` with the fake first on PATH and
    /// stdin not a terminal.
    fn rebuild(&self, args: &[&str]) -> Command {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.bin.clone()];
        dirs.extend(std::env::split_paths(&path));
        let mut cmd = Command::cargo_bin("nixflip").unwrap_or_else(|e| panic!("binary: {e}"));
        cmd.arg("--flake")
            .arg(&self.flake)
            .arg("rebuild")
            .args(args)
            .env(
                "PATH",
                std::env::join_paths(dirs).unwrap_or_else(|e| panic!("PATH: {e}")),
            )
            .env("NIXFLIP_FAKE_LOG", &self.log)
            .env_remove("NIXFLIP_FAKE_FAIL_TARGET")
            .env("NO_COLOR", "1")
            .write_stdin("");
        cmd
    }

    /// The fake's log with the temporary flake path replaced by `[FLAKE]`;
    /// `None` when the fake never ran.
    fn calls(&self) -> Option<String> {
        std::fs::read_to_string(&self.log)
            .ok()
            .map(|text| self.redact(&text))
    }

    fn redact(&self, text: &str) -> String {
        text.replace(&self.flake.display().to_string(), "[FLAKE]")
    }

    fn write_config(&self, text: &str) {
        std::fs::write(self.flake.join("nixflip.toml"), text)
            .unwrap_or_else(|e| panic!("write nixflip.toml: {e}"));
    }
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Whether `haystack` contains `needle`, ignoring whitespace: miette wraps
/// diagnostics at the terminal width, anywhere.
fn mentions(haystack: &str, needle: &str) -> bool {
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    squash(haystack).contains(&squash(needle))
}

#[test]
fn two_node_primary_first_with_exact_argv() {
    let env = env("examples/two-node");
    let output = env
        .rebuild(&["--yes"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    insta::assert_snapshot!("two_node_calls", env.calls().unwrap_or_default());
    insta::assert_snapshot!("two_node_stdout", env.redact(&stdout(&output)));
    // nixos-rebuild's own output reaches the operator on stderr.
    assert!(stderr(&output).contains("fake nixos-rebuild: ok"));
}

#[test]
fn dry_run_prints_commands_and_runs_nothing() {
    let env = env("examples/two-node");
    let output = env
        .rebuild(&["--dry-run"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_eq!(env.calls(), None, "--dry-run must not run nixos-rebuild");
    insta::assert_snapshot!("two_node_dry_run", env.redact(&stdout(&output)));
}

#[test]
fn first_failure_stops_the_rest_and_prints_resume() {
    let env = env("examples/two-node");
    let output = env
        .rebuild(&["--yes", "--nixos-rebuild-arg", "--show-trace"])
        .env("NIXFLIP_FAKE_FAIL_TARGET", "root@128.140.75.58")
        .env("NIXFLIP_FAKE_EXIT", "42")
        .assert()
        .code(3)
        .get_output()
        .clone();
    let calls = env.calls().unwrap_or_default();
    assert_eq!(
        calls.lines().count(),
        1,
        "the standby must not run: {calls}"
    );
    insta::assert_snapshot!("two_node_failure_stdout", env.redact(&stdout(&output)));
    assert!(stderr(&output).contains("fake nixos-rebuild: failing for root@128.140.75.58"));
}

#[test]
fn resume_command_continues_from_the_failed_host() {
    let env = env("fixtures/clusters/three_node");
    let output = env
        .rebuild(&["--yes", "--action", "boot"])
        .env("NIXFLIP_FAKE_FAIL_TARGET", "root@198.51.100.20") // beta
        .assert()
        .code(3)
        .get_output()
        .clone();
    let text = stdout(&output);
    let resume = text
        .lines()
        .find_map(|l| l.strip_prefix("resume with: "))
        .unwrap_or_else(|| panic!("no resume command in:\n{text}"));
    assert_eq!(
        env.redact(resume),
        "nixflip --flake [FLAKE] rebuild beta gamma --action boot"
    );
    // Run what it says (the fake no longer fails): beta, then gamma.
    std::fs::remove_file(&env.log).unwrap_or_else(|e| panic!("rm log: {e}"));
    let args: Vec<&str> = resume
        .split(' ')
        .skip_while(|a| *a != "rebuild")
        .skip(1)
        .collect();
    env.rebuild(&[args.as_slice(), &["--yes"]].concat())
        .assert()
        .code(0);
    insta::assert_snapshot!("three_node_resumed_calls", env.calls().unwrap_or_default());
}

#[test]
fn non_terminal_stdin_without_yes_is_refused() {
    let env = env("examples/two-node");
    let output = env.rebuild(&[]).assert().code(4).get_output().clone();
    assert_eq!(env.calls(), None);
    assert!(stderr(&output).contains("--yes"), "{}", stderr(&output));
}

#[test]
fn unsafe_target_in_config_is_refused_before_anything_runs() {
    let env = env("examples/two-node");
    env.write_config("[hosts.\"bfs.poland.xray\"]\ntarget = \"-oProxyCommand=x\"\n");
    let output = env
        .rebuild(&["--yes"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert_eq!(env.calls(), None, "nothing may run, not even the primary");
    let err = stderr(&output);
    assert!(mentions(&err, "hosts.\"bfs.poland.xray\".target"), "{err}");
    assert!(mentions(&err, "starts with '-'"), "{err}");
}

#[test]
fn unknown_host_suggests_the_closest_member() {
    let env = env("examples/two-node");
    let output = env
        .rebuild(&["--yes", "hectic-lab", "bfs.poland"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert_eq!(env.calls(), None);
    let err = stderr(&output);
    assert!(mentions(&err, "`bfs.poland` is not a member"), "{err}");
    assert!(mentions(&err, "did you mean `bfs.poland.xray`?"), "{err}");
    assert!(
        mentions(&err, "members: bfs.poland.xray, hectic-lab"),
        "{err}"
    );
}

#[test]
fn missing_nixos_rebuild_says_how_to_get_it() {
    let env = env("examples/two-node");
    let empty = env.flake.join("no-such-bin");
    let output = env
        .rebuild(&["--yes"])
        .env("PATH", &empty)
        .assert()
        .code(3)
        .get_output()
        .clone();
    let err = stderr(&output);
    assert!(mentions(&err, "`nixos-rebuild` is not on PATH"), "{err}");
    assert!(mentions(&err, "nix run nixpkgs#nixos-rebuild"), "{err}");
}

#[test]
fn three_node_primary_then_standbys_alphabetically() {
    let env = env("fixtures/clusters/three_node");
    env.rebuild(&["--yes"]).assert().code(0);
    insta::assert_snapshot!("three_node_calls", env.calls().unwrap_or_default());
}

#[test]
fn selected_hosts_keep_role_order() {
    let env = env("fixtures/clusters/three_node");
    let output = env
        .rebuild(&["--dry-run", "gamma", "alpha"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let hosts: Vec<String> = stdout(&output)
        .lines()
        .map(|l| {
            l.split('#')
                .nth(1)
                .and_then(|rest| rest.split('|').next())
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(hosts, ["alpha", "gamma"]);
}

#[test]
fn config_defaults_and_pins_shape_the_command() {
    let env = env("examples/two-node");
    env.write_config(
        r#"[hosts."hectic-lab"]
attr = "hectic-lab|x86_64-linux"
target = "deploy@hectic.example.org"

[rebuild]
action = "boot"
build_host = "builder@10.0.0.5"
use_remote_sudo = true
extra_args = ["--option", "connect-timeout", "5"]
"#,
    );
    let output = env
        .rebuild(&["--dry-run", "hectic-lab"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    insta::assert_snapshot!("config_defaults_dry_run", env.redact(&stdout(&output)));
    // Flags win over the config: --sudo replaces use_remote_sudo, args replace extra_args.
    let output = env
        .rebuild(&[
            "--dry-run",
            "hectic-lab",
            "--action",
            "test",
            "--sudo",
            "--nixos-rebuild-arg",
            "--show-trace",
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_eq!(
        env.redact(&stdout(&output)),
        "nixos-rebuild test --flake '[FLAKE]#hectic-lab|x86_64-linux' --target-host \
         deploy@hectic.example.org --build-host builder@10.0.0.5 --sudo --show-trace\n"
    );
}

#[test]
fn ambiguous_flake_attribute_names_the_config_key() {
    let env = env("examples/two-node");
    let flake_nix = env.flake.join("flake.nix");
    let text = std::fs::read_to_string(&flake_nix).unwrap_or_else(|e| panic!("read: {e}"));
    let text = text.replace(
        "nixosConfigurations = {",
        "nixosConfigurations = {\n        \"hectic-lab|aarch64-linux\" = host \"aarch64-linux\" ./nixos/system/hectic-lab/hectic-lab.nix;",
    );
    std::fs::write(&flake_nix, text).unwrap_or_else(|e| panic!("write: {e}"));
    let output = env
        .rebuild(&["--dry-run"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr(&output);
    assert!(
        mentions(
            &err,
            "several nixosConfigurations entries build hectic-lab's file"
        ) && mentions(&err, "`hectic-lab|aarch64-linux` builds it")
            && mentions(&err, "`hectic-lab|x86_64-linux` builds it"),
        "{err}"
    );
    assert!(mentions(&err, "[hosts.\"hectic-lab\"] attr"), "{err}");
}

#[test]
fn bad_action_is_a_usage_error() {
    let env = env("examples/two-node");
    env.rebuild(&["--dry-run", "--action", "build-vm"])
        .assert()
        .code(2);
    assert_eq!(env.calls(), None);
}

#[test]
fn consistency_errors_are_refused_unless_ignored() {
    let env = env("fixtures/clusters/nf001_two_primaries");
    let output = env
        .rebuild(&["--yes"])
        .assert()
        .code(4)
        .get_output()
        .clone();
    assert_eq!(env.calls(), None);
    assert!(mentions(&stderr(&output), "--ignore-findings"));
    env.rebuild(&["--dry-run", "--ignore-findings"])
        .assert()
        .code(0);
    assert_eq!(env.calls(), None);
}

#[test]
fn uri_targets_lose_the_scheme_and_a_port_is_refused() {
    let env = env("examples/two-node");
    env.write_config("[hosts.\"hectic-lab\"]\ntarget = \"ssh://deploy@hectic.example.org\"\n");
    let output = env
        .rebuild(&["--dry-run", "hectic-lab"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let out = stdout(&output);
    assert!(
        out.contains("--target-host deploy@hectic.example.org"),
        "{out}"
    );
    // A port cannot travel in --target-host: refused before anything runs.
    env.write_config("[hosts.\"hectic-lab\"]\ntarget = \"ssh://deploy@hectic.example.org:2222\"\n");
    let output = env
        .rebuild(&["--yes", "hectic-lab"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert_eq!(env.calls(), None);
    let err = stderr(&output);
    assert!(mentions(&err, "has a port"), "{err}");
    assert!(mentions(&err, "NIX_SSHOPTS"), "{err}");
}
