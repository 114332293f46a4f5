//! `promote` and the addresses written outside the cluster options: the
//! plan's "not rewritten" list, `--carry-address-rules`, operator networks
//! in `allowedSourceIPs`, and repairs when the host is already primary. Real
//! binary, real `nix eval`, on copies of `fixtures/clusters/hand_written_admission`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;

const FIXTURE: &str = "fixtures/clusters/hand_written_admission";

fn nixflip(flake: &Path) -> Command {
    let mut cmd = Command::cargo_bin("nixflip").expect("binary builds");
    cmd.env("NO_COLOR", "1").arg("--flake").arg(flake);
    cmd
}

/// A committed copy of `rel`, with `change` applied before the commit.
fn scratch_with(rel: &str, change: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("flake");
    common::copy_flake(rel, &root);
    change(&root);
    common::commit_all(&root);
    (dir, root)
}

/// Every file under `root` (except .git) with its bytes.
fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
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
                let rel = entry
                    .path()
                    .strip_prefix(root)
                    .expect("prefix")
                    .to_path_buf();
                out.push((rel, std::fs::read(entry.path()).expect("read")));
            }
        }
    }
    out.sort();
    out
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).expect("read")
}

fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One option of one host, as `nix eval` computes it.
fn eval_option(root: &Path, host: &str, path: &str) -> serde_json::Value {
    let out = Std::new("nix")
        .args([
            "--extra-experimental-features",
            "nix-command flakes",
            "eval",
            "--json",
        ])
        .args(common::nix_overrides())
        .arg(format!("path:{}#nixosConfigurations", root.display()))
        .arg("--apply")
        .arg(format!("cs: cs.\"{host}|x86_64-linux\".config.{path}"))
        .output()
        .expect("nix runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn the_plan_lists_literals_it_does_not_rewrite_with_their_edits() {
    let (_dir, root) = scratch_with(FIXTURE, |_| {});
    let out = run_ok(
        nixflip(&root)
            .args(["promote", "beta", "--dry-run", "--no-eval"])
            .args(common::nix_options()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: 3 literal(s) outside the cluster options"),
        "{stderr}"
    );
    insta::assert_snapshot!(
        "promote_lists_unrewritten_literals",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn carry_address_rules_gives_the_new_primary_the_old_primarys_rules() {
    let (_dir, root) = scratch_with(FIXTURE, |_| {});
    let alpha_before = read(&root, "hosts/alpha.nix");
    let beta_before = read(&root, "hosts/beta.nix");
    let others = |root: &Path| {
        let mut files = tree(root);
        files.retain(|(p, _)| !p.starts_with("hosts"));
        files
    };
    let untouched = others(&root);
    let out = run_ok(
        nixflip(&root)
            .args([
                "promote",
                "beta",
                "--carry-address-rules",
                "--yes",
                "--format",
                "json",
            ])
            .args(common::nix_options()),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(others(&root), untouched, "only the two host files change");

    // The old primary's copies stay: only its role changed.
    assert_eq!(
        read(&root, "hosts/alpha.nix"),
        alpha_before.replace("role = \"primary\";", "role = \"standby\";")
    );
    // The new primary got its role and the two carried rules, nothing else.
    let beta = read(&root, "hosts/beta.nix");
    let expected = beta_before
        .replace("role = \"standby\";", "role = \"primary\";")
        .replace(
            "  networking.firewall.allowedTCPPorts = [ 22 443 ];\n",
            "  networking.firewall.allowedTCPPorts = [ 22 443 ];\n  networking.firewall.extraInputRules = \"ip saddr 198.51.100.10/32 tcp dport 5432 accept\";\n",
        )
        .replace(
            "proxyPass = \"http://198.51.100.10:8008\";\n",
            "proxyPass = \"http://198.51.100.10:8008\";\n  services.postgresql.authentication = \"hostssl replication replicator 198.51.100.10/32 scram-sha-256\";\n",
        );
    assert_eq!(beta, expected);

    // As Nix sees it, the new primary admits the new standby.
    let rules = eval_option(&root, "beta", "networking.firewall.extraInputRules");
    assert!(
        rules.as_str().is_some_and(|r| r
            .lines()
            .any(|l| l == "ip saddr 198.51.100.10/32 tcp dport 5432 accept")),
        "{rules}"
    );
    let hba = eval_option(&root, "beta", "services.postgresql.authentication");
    assert!(
        hba.as_str().is_some_and(|h| h
            .lines()
            .any(|l| l == "hostssl replication replicator 198.51.100.10/32 scram-sha-256")),
        "{hba}"
    );

    // The proxy is listed with the exact edit: run it, and nothing is left.
    let listed = json["plan"]["notRewritten"].as_array().expect("list");
    let proxy = listed
        .iter()
        .find(|n| n["action"] == "edit")
        .expect("the proxy is listed as an edit");
    assert_eq!(proxy["hosts"], serde_json::json!(["beta"]));
    let command = proxy["edit"]["command"].as_str().expect("a command");
    let bin = Path::new(env!("CARGO_BIN_EXE_nixflip"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let edit = Std::new("sh")
        .args(["-c", command])
        .current_dir(&root)
        .env("PATH", path)
        .output()
        .expect("sh runs");
    assert!(
        edit.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&edit.stderr)
    );
    let check = run_ok(nixflip(&root).args(["check"]));
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "nixflip check: 0 errors, 0 warnings in 2 members\n",
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn without_carrying_the_flipped_cluster_warns_nf106() {
    let (_dir, root) = scratch_with(FIXTURE, |_| {});
    run_ok(
        nixflip(&root)
            .args(["promote", "beta", "--yes"])
            .args(common::nix_options()),
    );
    let out = run_ok(nixflip(&root).args(["check", "--format", "json"]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ids: Vec<&str> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert_eq!(ids, ["NF106", "NF106", "NF102"], "{json:#}");
}

#[test]
fn carrying_twice_adds_nothing_the_new_primary_already_has() {
    let (_dir, root) = scratch_with(FIXTURE, |root| {
        // beta already has one of the two rules, in a string of its own.
        let beta = root.join("hosts/beta.nix");
        let text = std::fs::read_to_string(&beta).expect("read");
        let with_rule = text.replace(
            "  networking.firewall.allowedTCPPorts = [ 22 443 ];\n",
            "  networking.firewall.allowedTCPPorts = [ 22 443 ];\n  networking.firewall.extraInputRules = ''\n    tcp dport 9100 accept\n    ip saddr 198.51.100.10/32 tcp dport 5432 accept\n  '';\n",
        );
        std::fs::write(&beta, with_rule).expect("write");
    });
    let before = read(&root, "hosts/beta.nix");
    run_ok(
        nixflip(&root)
            .args(["promote", "beta", "--carry-address-rules", "--yes"])
            .args(common::nix_options()),
    );
    let after = read(&root, "hosts/beta.nix");
    assert_eq!(
        after,
        before
            .replace("role = \"standby\";", "role = \"primary\";")
            .replace(
                "proxyPass = \"http://198.51.100.10:8008\";\n",
                "proxyPass = \"http://198.51.100.10:8008\";\n  services.postgresql.authentication = \"hostssl replication replicator 198.51.100.10/32 scram-sha-256\";\n",
            ),
        "the firewall rule beta has is not added again"
    );
}

#[test]
fn a_carried_line_is_appended_to_the_new_primarys_own_rules() {
    let (_dir, root) = scratch_with(FIXTURE, |root| {
        let beta = root.join("hosts/beta.nix");
        let text = std::fs::read_to_string(&beta).expect("read");
        let with_rules = text.replace(
            "  networking.firewall.allowedTCPPorts = [ 22 443 ];\n",
            "  networking.firewall.allowedTCPPorts = [ 22 443 ];\n  services.postgresql.authentication = ''\n    local all all peer\n  '';\n",
        );
        std::fs::write(&beta, with_rules).expect("write");
    });
    let before = read(&root, "hosts/beta.nix");
    run_ok(
        nixflip(&root)
            .args(["promote", "beta", "--carry-address-rules", "--yes"])
            .args(common::nix_options()),
    );
    let after = read(&root, "hosts/beta.nix");
    assert_eq!(
        after,
        before
            .replace("role = \"standby\";", "role = \"primary\";")
            .replace(
                "    local all all peer\n",
                "    local all all peer\n    hostssl replication replicator 198.51.100.10/32 scram-sha-256\n",
            )
            .replace(
                "  networking.firewall.allowedTCPPorts = [ 22 443 ];\n",
                "  networking.firewall.allowedTCPPorts = [ 22 443 ];\n  networking.firewall.extraInputRules = \"ip saddr 198.51.100.10/32 tcp dport 5432 accept\";\n",
            ),
    );
}

#[test]
fn an_operator_network_is_kept_through_promote_and_back() {
    let (_dir, root) = scratch_with(FIXTURE, |_| {});
    let alpha = read(&root, "hosts/alpha.nix");
    let beta = read(&root, "hosts/beta.nix");
    let out = run_ok(
        nixflip(&root)
            .args(["promote", "beta", "--yes"])
            .args(common::nix_options()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("keeps 10.0.0.0/8 (covers no member").count(),
        2,
        "{stdout}"
    );
    for host in ["alpha", "beta"] {
        assert!(
            read(&root, &format!("hosts/{host}.nix")).contains("\"10.0.0.0/8\" ]"),
            "{host} keeps the operator network"
        );
    }
    common::git(&root, &["commit", "-qam", "flip"]);
    run_ok(
        nixflip(&root)
            .args(["promote", "alpha", "--yes"])
            .args(common::nix_options()),
    );
    assert_eq!(read(&root, "hosts/alpha.nix"), alpha);
    assert_eq!(read(&root, "hosts/beta.nix"), beta);
}

#[test]
fn a_rewritten_list_keeps_the_operator_network_after_the_members() {
    let (_dir, root) = scratch_with(FIXTURE, |root| {
        let beta = root.join("hosts/beta.nix");
        let text = std::fs::read_to_string(&beta).expect("read");
        let operator_only = text.replace(
            "allowedSourceIPs = [ \"198.51.100.10/32\" \"10.0.0.0/8\" ];",
            "allowedSourceIPs = [ \"10.0.0.0/8\" ];",
        );
        std::fs::write(&beta, operator_only).expect("write");
    });
    let out = run_ok(
        nixflip(&root)
            .args(["promote", "beta", "--yes"])
            .args(common::nix_options()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("note: keeps 10.0.0.0/8 (covers no member)"),
        "{stdout}"
    );
    assert!(read(&root, "hosts/beta.nix")
        .contains("allowedSourceIPs = [ \"198.51.100.10/32\" \"10.0.0.0/8\" ];"));
}

#[test]
fn promoting_the_primary_that_needs_repairs_lists_them() {
    let (_dir, root) = scratch_with("examples/two-node", |root| {
        let standby = root.join("nixos/system/bfs.poland.xray/bfs.poland.xray.nix");
        let text = std::fs::read_to_string(&standby).expect("read");
        let broken = text.replace(
            "replication.allowedSourceIPs = [ \"128.140.75.58/32\" ];",
            "replication.allowedSourceIPs = [ ];",
        );
        assert_ne!(text, broken);
        std::fs::write(&standby, broken).expect("write");
    });
    let out = run_ok(
        nixflip(&root)
            .args(["promote", "hectic-lab", "--dry-run"])
            .args(common::nix_options()),
    );
    insta::assert_snapshot!(
        "promote_primary_with_repairs",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_carried_rule_that_does_not_evaluate_on_the_new_primary_fails_validation() {
    let (_dir, root) = scratch_with(FIXTURE, |root| {
        // A definition nixflip does not edit wins over beta's rules.
        let flake = root.join("flake.nix");
        let text = std::fs::read_to_string(&flake).expect("read");
        let forced = text.replace(
            "host [ ./hosts/beta.nix ]",
            "host [ ./hosts/beta.nix { networking.firewall.extraInputRules = nixpkgs.lib.mkForce \"\"; } ]",
        );
        assert_ne!(text, forced);
        std::fs::write(&flake, forced).expect("write");
    });
    let before = tree(&root);
    let out = nixflip(&root)
        .args(["promote", "beta", "--carry-address-rules", "--yes"])
        .args(common::nix_options())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "beta: carried rule should be networking.firewall.extraInputRules holding `ip saddr 198.51.100.10/32 tcp dport 5432 accept`"
        ),
        "{stderr}"
    );
    assert_eq!(tree(&root), before, "nothing is written");
}
