//! The cluster side of the SOPS checks: `nixflip secrets check` and the secrets gate of
//! `nixflip promote`, run as the real binary on copies of `examples/two-node`, whose
//! `secrets/cluster.yaml` the real `sops` wrote (`secrets/encrypt-example.sh`); the tests
//! change it with the real `sops` too (another set of recipients, a missing key,
//! `sops updatekeys`).

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use nixflip::secrets::{AgeIdentities, SopsConfig, SopsFile};

const EXAMPLE: &str = "examples/two-node";
const HECTIC: &str = "nixos/system/hectic-lab/hectic-lab.nix";
const BFS: &str = "nixos/system/bfs.poland.xray/bfs.poland.xray.nix";
const SECRETS: &str = "secrets/cluster.yaml";

/// The plaintext of the example's secrets/cluster.yaml, as secrets/encrypt-example.sh has
/// it (fake values; the file decrypts with the example's public test key
/// keys/example-admin.agekey).
const EXAMPLE_PLAINTEXT: &str = r#"matrix:
  secrets: |
    registration_shared_secret: "example-registration-secret-not-real"
    macaroon_secret_key: "example-macaroon-key-not-real"
  signing-key: "ed25519 a_exmp 7XZhg0PqEXAMPLEnotARealSigningKeyXXXXXXXXXXXX"
postgres:
  replication: example-replication-password-not-real
acme:
  porkbun: |
    PORKBUN_API_KEY=pk1_example_not_real
    PORKBUN_SECRET_API_KEY=sk1_example_not_real
"#;

fn nixflip(flake: &Path) -> Command {
    let mut cmd = Command::cargo_bin("nixflip").expect("binary builds");
    cmd.env("NO_COLOR", "1")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
        .arg("--flake")
        .arg(flake);
    cmd
}

/// A copy of the example, edited by `edit`, committed to a fresh git repository.
fn example_copy(edit: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("two-node");
    common::copy_flake(EXAMPLE, &root);
    edit(&root);
    common::commit_all(&root);
    (dir, root)
}

fn edit_file(root: &Path, rel: &str, from: &str, to: &str) {
    let path = root.join(rel);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{rel} contains {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
}

/// The example's recipients, in the order of its .sops.yaml rule.
fn rule_recipients(root: &Path) -> Vec<String> {
    let config = SopsConfig::load(&root.join(".sops.yaml")).expect(".sops.yaml");
    config.rule_for(SECRETS).expect("a rule").age.clone()
}

/// Encrypt the example's secrets file anew with the real `sops`: to `recipients`, or to
/// those of its `.sops.yaml` rule.
fn reencrypt(root: &Path, plaintext: &str, recipients: Option<&[String]>) {
    common::sops_encrypt(root, SECRETS, plaintext, recipients);
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn tmp(text: &str, root: &Path) -> String {
    text.replace(&root.display().to_string(), "TMP")
}

// ------------------------------------------------------------------ the example

#[test]
fn example_secrets_file_is_genuine_format_and_decrypts_with_the_example_key() {
    let root = common::repo().join(EXAMPLE);
    let file = SopsFile::load(&root.join(SECRETS)).expect("reads");
    assert_eq!(file.age_recipients(), rule_recipients(&root));
    let keys: Vec<String> = file.keys().iter().map(|k| k.display_path()).collect();
    assert_eq!(
        keys,
        [
            "matrix.secrets",
            "matrix.signing-key",
            "postgres.replication",
            "acme.porkbun"
        ]
    );
    let ids = AgeIdentities::from_file(&root.join("keys/example-admin.agekey")).expect("key");
    let report = file.decrypt(&ids).expect("decrypts");
    report
        .check()
        .expect("every value decrypts and the MAC verifies");
    let plain: serde_json::Value = serde_json::from_str(&report.plaintext_json()).expect("json");
    let expected = serde_json::json!({
        "matrix": {
            "secrets": "registration_shared_secret: \"example-registration-secret-not-real\"\nmacaroon_secret_key: \"example-macaroon-key-not-real\"\n",
            "signing-key": "ed25519 a_exmp 7XZhg0PqEXAMPLEnotARealSigningKeyXXXXXXXXXXXX",
        },
        "postgres": { "replication": "example-replication-password-not-real" },
        "acme": { "porkbun": "PORKBUN_API_KEY=pk1_example_not_real\nPORKBUN_SECRET_API_KEY=sk1_example_not_real\n" },
    });
    assert_eq!(plain, expected);
}

#[test]
fn example_is_clean() {
    let root = common::repo().join(EXAMPLE);
    let out = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stderr, "");
    insta::assert_snapshot!("example_clean", out.stdout);
}

#[test]
fn example_json() {
    let root = common::repo().join(EXAMPLE);
    let out = run(nixflip(&root).args(["secrets", "check", "--format", "json"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    json["flake"] = "FLAKE".into();
    insta::assert_json_snapshot!("example_json", json);
}

#[test]
fn decrypt_with_the_example_key_never_prints_values() {
    let root = common::repo().join(EXAMPLE);
    let out = run(nixflip(&root).args([
        "secrets",
        "check",
        "--decrypt",
        "--age-key",
        &root.join("keys/example-admin.agekey").display().to_string(),
    ]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("secrets/cluster.yaml: 4/4 values decrypted, MAC verified"),
        "{}",
        out.stdout
    );
    for secret in ["not-real", "not_real", "7XZhg0Pq"] {
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
    }
    // The same through SOPS_AGE_KEY_FILE.
    let out = run(nixflip(&root)
        .env("SOPS_AGE_KEY_FILE", root.join("keys/example-admin.agekey"))
        .args(["secrets", "check", "--decrypt"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn decrypt_without_a_key_is_bad_input() {
    let root = common::repo().join(EXAMPLE);
    let out = run(nixflip(&root).args(["secrets", "check", "--decrypt"]));
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("--decrypt needs an age identity"),
        "{}",
        out.stderr
    );
}

#[test]
fn decrypt_catches_an_edited_lastmodified() {
    let (_dir, root) = example_copy(|root| {
        let file = SopsFile::load(&root.join(SECRETS)).expect("reads");
        let stamp = file.metadata().lastmodified.clone().expect("lastmodified");
        // One second later (the stamp is RFC 3339 with seconds, ending in `Z`).
        let later = match stamp.strip_suffix("0Z") {
            Some(rest) => format!("{rest}1Z"),
            None => format!("{}0Z", &stamp[..stamp.len() - 2]),
        };
        edit_file(root, SECRETS, &stamp, &later);
    });
    let key = root.join("keys/example-admin.agekey");
    let out = run(nixflip(&root).args([
        "secrets",
        "check",
        "--decrypt",
        "--age-key",
        &key.display().to_string(),
    ]));
    assert_eq!(out.code, Some(1));
    insta::assert_snapshot!("decrypt_edited_lastmodified", tmp(&out.stderr, &root));
    // Without --decrypt nothing can notice: key names and recipients are unchanged.
    let out = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

/// An identity file that exists but cannot be read is an I/O failure
/// (exit 3); one that is not there is bad input (exit 2).
#[test]
fn unreadable_age_key_is_exit_3_and_a_missing_one_exit_2() {
    let (_dir, root) = example_copy(|_| {});
    let out = run(nixflip(&root).args(["secrets", "check", "--age-key", "/proc/self/mem"]));
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    let missing = root.join("no-such.agekey");
    let out = run(nixflip(&root).args([
        "secrets",
        "check",
        "--age-key",
        &missing.display().to_string(),
    ]));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

// ------------------------------------------------------------------ findings

#[test]
fn missing_recipient() {
    let (_dir, root) = example_copy(|root| {
        let mut recipients = rule_recipients(root);
        recipients.pop(); // bfs.poland.xray, last in the rule
        reencrypt(root, EXAMPLE_PLAINTEXT, Some(&recipients));
    });
    let out = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(out.code, Some(1));
    insta::assert_snapshot!("missing_recipient", tmp(&out.stderr, &root));
    let gh = run(nixflip(&root).args(["secrets", "check", "--format", "github"]));
    assert_eq!(gh.code, Some(1));
    insta::assert_snapshot!("missing_recipient_github", gh.stdout);
}

#[test]
fn missing_key() {
    let (_dir, root) = example_copy(|root| {
        let plaintext = EXAMPLE_PLAINTEXT.replace(
            "postgres:\n  replication: example-replication-password-not-real\n",
            "",
        );
        reencrypt(root, &plaintext, None);
    });
    let out = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(out.code, Some(1));
    insta::assert_snapshot!("missing_key", tmp(&out.stderr, &root));
}

#[test]
fn undeclared_secret() {
    let (_dir, root) = example_copy(|root| {
        edit_file(
            root,
            BFS,
            "  sops.secrets.\"postgres/replication\" = { owner = \"postgres\"; };\n",
            "",
        );
    });
    let out = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(out.code, Some(1));
    insta::assert_snapshot!("undeclared_secret", tmp(&out.stderr, &root));
}

#[test]
fn recipients_differ_from_the_sops_yaml_rule() {
    // A new recipient in .sops.yaml without `sops updatekeys`.
    let (_dir, root) = example_copy(|root| {
        edit_file(
            root,
            ".sops.yaml",
            "          - *bfs_poland_xray\n",
            "          - *bfs_poland_xray\n          - age1je6kjhzuhdjy3fqptpttxjh5k8q46vygzlgtpuq3030c947pc5tqz9dqvr\n",
        );
    });
    let out = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(out.code, Some(1));
    insta::assert_snapshot!("rule_differs", tmp(&out.stderr, &root));
}

#[test]
fn unknown_host_key_is_a_warning() {
    let (_dir, root) = example_copy(|root| {
        std::fs::remove_file(root.join("nixflip.toml")).expect("rm");
    });
    let out = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stderr.matches("NF206\n").count(), 2, "{}", out.stderr);
}

#[test]
fn cluster_without_sops_is_not_checked() {
    let root = common::repo().join("fixtures/clusters/copy_secrets_file");
    let out = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("no SOPS configuration"),
        "{}",
        out.stdout
    );
}

// ------------------------------------------------------------------ config

#[test]
fn config_errors_name_the_key_and_line() {
    let (_dir, root) = example_copy(|root| {
        let path = root.join("nixflip.toml");
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str("\n[profile.primary]\nsecrets = \"matrix/secrets\"\n");
        std::fs::write(path, text).expect("write");
    });
    let out = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(out.code, Some(2));
    insta::assert_snapshot!("config_secrets_not_a_list", tmp(&out.stderr, &root));

    let (_dir, root) = example_copy(|root| {
        edit_file(root, "nixflip.toml", "age = \"age18k3j", "age = \"age28k3j");
    });
    let out = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("hosts.\"bfs.poland.xray\".age"),
        "{}",
        out.stderr
    );
}

#[test]
fn profile_secrets_list_what_the_primary_needs() {
    // acme/porkbun is declared only on hectic-lab: listing it makes the primary's needs explicit.
    let (_dir, root) = example_copy(|root| {
        let path = root.join("nixflip.toml");
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str("\n[profile.primary]\nsecrets = [\"matrix/secrets\", \"matrix/signing-key\", \"postgres/replication\", \"acme/porkbun\"]\n");
        std::fs::write(path, text).expect("write");
    });
    let out = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = run(nixflip(&root).args(["promote", "bfs.poland.xray", "--yes", "--no-eval"]));
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.stderr.contains("`acme/porkbun`"), "{}", out.stderr);
    // `secrets` is not an option value: the plan does not try to write it.
    assert!(!out.stdout.contains("secrets  "), "{}", out.stdout);
}

// ------------------------------------------------------------------ the promote gate

fn without_signing_key_on_bfs(root: &Path) {
    // The standby does not need the signing key, so the cluster is clean as it is; the
    // secret is only missing once bfs.poland.xray becomes primary.
    edit_file(
        root,
        BFS,
        "  sops.secrets.\"matrix/signing-key\" = { owner = \"matrix-synapse\"; };\n",
        "",
    );
    edit_file(
        root,
        BFS,
        "  hectic.generic.matrix-cluster.signingKeyFile               = config.sops.secrets.\"matrix/signing-key\".path;\n",
        "",
    );
}

#[test]
fn promote_refuses_then_succeeds_once_fixed() {
    let (_dir, root) = example_copy(without_signing_key_on_bfs);
    let clean = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(clean.code, Some(0), "{}", clean.stderr);
    let before = std::fs::read_to_string(root.join(BFS)).expect("read");

    let refused = run(nixflip(&root)
        .args(["promote", "bfs.poland.xray", "--yes"])
        .args(common::nix_options()));
    assert_eq!(refused.code, Some(4), "{}", refused.stderr);
    insta::assert_snapshot!("promote_refused_undeclared", tmp(&refused.stderr, &root));
    assert_eq!(
        std::fs::read_to_string(root.join(BFS)).expect("read"),
        before
    );

    // Fix: declare the secret on bfs.poland.xray (as the help says), then promote.
    edit_file(
        &root,
        BFS,
        "  sops.secrets.\"postgres/replication\"",
        "  sops.secrets.\"matrix/signing-key\" = { owner = \"matrix-synapse\"; };\n  sops.secrets.\"postgres/replication\"",
    );
    common::git(&root, &["commit", "-qam", "declare the signing key"]);
    let ok = run(nixflip(&root)
        .args(["promote", "bfs.poland.xray", "--yes"])
        .args(common::nix_options()));
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert!(
        ok.stdout.contains("nix eval: every member evaluates"),
        "{}",
        ok.stdout
    );
}

#[test]
fn promote_refuses_a_new_primary_that_is_not_a_recipient() {
    let (_dir, root) = example_copy(|root| {
        let mut recipients = rule_recipients(root);
        recipients.pop();
        reencrypt(root, EXAMPLE_PLAINTEXT, Some(&recipients));
    });
    let refused = run(nixflip(&root)
        .args(["promote", "bfs.poland.xray", "--yes", "--dry-run"])
        .args(common::nix_options()));
    assert_eq!(refused.code, Some(4), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("`sops updatekeys secrets/cluster.yaml`"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("NF203"), "{}", refused.stderr);
    // Fixed the way the help says, with the example operator's key.
    let updated = common::sops(&root)
        .env("SOPS_AGE_KEY_FILE", root.join("keys/example-admin.agekey"))
        .args(["updatekeys", "--yes", SECRETS])
        .output()
        .expect("sops runs");
    assert!(
        updated.status.success(),
        "{}",
        String::from_utf8_lossy(&updated.stderr)
    );
    assert_eq!(
        SopsFile::load(&root.join(SECRETS))
            .expect("reads")
            .age_recipients(),
        rule_recipients(&root)
    );
    common::git(&root, &["commit", "-qam", "sops updatekeys"]);
    let ok = run(nixflip(&root).args(["promote", "bfs.poland.xray", "--yes", "--no-eval"]));
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
}

#[test]
fn skip_secrets_warns_and_proceeds() {
    let (_dir, root) = example_copy(without_signing_key_on_bfs);
    let out = run(nixflip(&root)
        .args(["promote", "bfs.poland.xray", "--yes", "--skip-secrets"])
        .args(common::nix_options()));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "warning: --skip-secrets: bfs.poland.xray will be primary without secrets it needs"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`matrix/signing-key`"),
        "{}",
        out.stderr
    );
    let after = std::fs::read_to_string(root.join(BFS)).expect("read");
    assert!(
        after
            .lines()
            .any(|l| l.contains("matrix-cluster.role ") && l.contains("\"primary\"")),
        "{after}"
    );
    let old = std::fs::read_to_string(root.join(HECTIC)).expect("read");
    assert!(old.contains("\"standby\""), "{old}");
}

// ------------------------------------------------------------------ declaration forms

#[test]
fn declarations_in_every_form() {
    // bfs.poland.xray's declarations rewritten into nested, dotted-field, mkIf and renamed forms,
    // with sopsFile as a path literal and as `self + "/…"`; all of it must read the same.
    let (_dir, root) = example_copy(|root| {
        edit_file(
            root,
            BFS,
            "  sops.defaultSopsFile = ../../../secrets/cluster.yaml;\n  sops.secrets.\"matrix/secrets\" = { owner = \"matrix-synapse\"; };\n  sops.secrets.\"matrix/signing-key\" = { owner = \"matrix-synapse\"; };\n  sops.secrets.\"postgres/replication\" = { owner = \"postgres\"; };\n",
            "  sops = {\n    secrets = {\n      \"matrix/secrets\".sopsFile = self + \"/secrets/cluster.yaml\";\n      signing = lib.mkIf true {\n        key = \"matrix/signing-key\";\n        sopsFile = ../../../secrets/cluster.yaml;\n      };\n    };\n  };\n  sops.secrets.\"postgres/replication\".sopsFile = \"${self}/secrets/cluster.yaml\";\n",
        );
        edit_file(
            root,
            BFS,
            "config.sops.secrets.\"matrix/signing-key\".path",
            "config.sops.secrets.signing.path",
        );
    });
    let out = run(nixflip(&root).args(["secrets", "check", "--format", "json"]));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let bfs: Vec<(String, String, String)> = json["declarations"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|d| d["host"] == "bfs.poland.xray")
        .map(|d| {
            (
                d["name"].as_str().unwrap_or("").to_string(),
                d["key"].as_str().unwrap_or("").to_string(),
                d["sopsFile"]["path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let file = "secrets/cluster.yaml".to_string();
    assert_eq!(
        bfs,
        [
            (
                "matrix/secrets".into(),
                "matrix/secrets".into(),
                file.clone()
            ),
            (
                "postgres/replication".into(),
                "postgres/replication".into(),
                file.clone()
            ),
            ("signing".into(), "matrix/signing-key".into(), file.clone()),
        ]
    );
    // `signing` stands for the signing key the primary needs (same file and key as
    // hectic-lab's `matrix/signing-key`), so the example stays clean, and promoting works.
    let bfs_member = json["members"]
        .as_array()
        .expect("list")
        .iter()
        .find(|m| m["host"] == "bfs.poland.xray")
        .expect("bfs");
    assert_eq!(
        bfs_member["declared"],
        serde_json::json!(["matrix/secrets", "postgres/replication", "signing"])
    );
    let out = run(nixflip(&root)
        .args(["promote", "bfs.poland.xray", "--yes"])
        .args(common::nix_options()));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

// ------------------------------------------------------------------ the genuine sops files

fn shared_sops(rel: &str) -> String {
    let base = match std::env::var_os("NIXFLIP_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => common::repo().join("../shared"),
    };
    let path = base.join("fixtures/sops").join(rel);
    std::fs::canonicalize(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .display()
        .to_string()
}

#[test]
fn genuine_sops_files_in_a_cluster() {
    // The hosts read the genuine sops-written files in place (absolute path literals):
    // bfs.poland.xray, by the fixture's ssh host key, is a recipient of sops-nix/secrets.yaml
    // (through ssh-to-age) and of secrets-native-ssh.yaml (a native ssh-ed25519 recipient);
    // hectic-lab reads the PGP-only secrets.json, which is unsupported.
    let pubkey = std::fs::read_to_string(shared_sops("sops-nix/ssh-ed25519-key.pub")).expect("pub");
    let (_dir, root) = example_copy(|root| {
        std::fs::remove_file(root.join(".sops.yaml")).expect("rm");
        edit_file(
            root,
            BFS,
            "  sops.defaultSopsFile = ../../../secrets/cluster.yaml;\n  sops.secrets.\"matrix/secrets\" = { owner = \"matrix-synapse\"; };\n  sops.secrets.\"matrix/signing-key\" = { owner = \"matrix-synapse\"; };\n  sops.secrets.\"postgres/replication\" = { owner = \"postgres\"; };\n",
            &format!(
                "  sops.defaultSopsFile = {};\n  sops.secrets.\"matrix/secrets\" = {{ key = \"test_key\"; }};\n  sops.secrets.\"matrix/signing-key\" = {{ key = \"nested/test/file\"; }};\n  sops.secrets.\"postgres/replication\" = {{ key = \"test_key\"; sopsFile = {}; }};\n  sops.secrets.gone = {{ key = \"no/such/key\"; }};\n",
                shared_sops("sops-nix/secrets.yaml"),
                shared_sops("sops-nix/secrets-native-ssh.yaml")
            ),
        );
        edit_file(
            root,
            HECTIC,
            "sops.defaultSopsFile = ../../../secrets/cluster.yaml;",
            &format!(
                "sops.defaultSopsFile = {};",
                shared_sops("sops-nix/secrets.json")
            ),
        );
        edit_file(
            root,
            "nixflip.toml",
            "age = \"age18k3j320rh02p542n26mny9x5cdjv9zayvu39jnjmurg2mxrjlqzs74u2e6\"",
            &format!("ssh_host_key = \"{}\"", pubkey.trim()),
        );
    });
    let out = run(nixflip(&root).args(["secrets", "check", "--format", "json"]));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let findings = json["findings"].as_array().expect("list");
    let about = |host: &str| -> Vec<String> {
        findings
            .iter()
            .filter(|f| f["host"] == host)
            .map(|f| format!("{} {}", f["id"].as_str().unwrap_or(""), f["line"]))
            .collect()
    };
    // bfs.poland.xray: only the key that is not in the file (line 34 of its host file).
    assert_eq!(about("bfs.poland.xray"), ["NF201 34"]);
    let unsupported: Vec<&serde_json::Value> =
        findings.iter().filter(|f| f["id"] == "NF205").collect();
    assert_eq!(unsupported.len(), 1, "{findings:?}");
    assert!(unsupported[0]["file"]
        .as_str()
        .unwrap_or("")
        .ends_with("sops-nix/secrets.json"));
    assert!(unsupported[0]["message"]
        .as_str()
        .unwrap_or("")
        .contains("a file without any age recipient (only pgp)"));
    assert_eq!(unsupported[0]["severity"], "error");
    let bfs = json["members"]
        .as_array()
        .expect("list")
        .iter()
        .find(|m| m["host"] == "bfs.poland.xray")
        .expect("bfs");
    assert_eq!(
        bfs["recipient"],
        "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs"
    );

    // With the fixture's ssh key, both of bfs.poland.xray's files decrypt and verify; the
    // PGP-only file is not attempted (NF205 says why).
    let out = run(nixflip(&root).args([
        "secrets",
        "check",
        "--age-key",
        &shared_sops("sops-nix/ssh-ed25519-key"),
    ]));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("sops-nix/secrets.yaml: 4/4 values decrypted, MAC verified"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("sops-nix/secrets-native-ssh.yaml: 1/1 values decrypted, MAC verified"),
        "{}",
        out.stdout
    );
    assert!(!out.stderr.contains("NF208"), "{}", out.stderr);
}

#[test]
fn ssh_host_key_from_a_file() {
    let (_dir, root) = example_copy(|root| {
        let toml = std::fs::read_to_string(root.join("nixflip.toml")).expect("read");
        let line = toml
            .lines()
            .find(|l| l.starts_with("ssh_host_key = "))
            .expect("hectic-lab's key");
        let key = line
            .trim_start_matches("ssh_host_key = \"")
            .trim_end_matches('"');
        std::fs::write(root.join("keys/hectic-lab.pub"), format!("{key}\n")).expect("write");
        edit_file(
            root,
            "nixflip.toml",
            line,
            "ssh_host_key_file = \"keys/hectic-lab.pub\"",
        );
    });
    let out = run(nixflip(&root).args(["secrets", "check", "--format", "json"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        json["members"][1]["recipientSource"],
        "hosts.\"hectic-lab\".ssh_host_key_file, via ssh-to-age"
    );
    // A file that holds no ssh-ed25519 key is a configuration error naming the key.
    std::fs::write(root.join("keys/hectic-lab.pub"), "not a key\n").expect("write");
    let out = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .contains("hosts.\"hectic-lab\".ssh_host_key_file"),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_sops_file_is_one_finding_per_host() {
    let (_dir, root) = example_copy(|root| {
        std::fs::remove_file(root.join(SECRETS)).expect("rm");
    });
    let out = run(nixflip(&root).args(["secrets", "check"]));
    assert_eq!(out.code, Some(1));
    insta::assert_snapshot!("missing_sops_file", tmp(&out.stderr, &root));
    let refused = run(nixflip(&root).args(["promote", "bfs.poland.xray", "--yes", "--no-eval"]));
    assert_eq!(refused.code, Some(4), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("`matrix/secrets`, `matrix/signing-key`, `postgres/replication` (NF207"),
        "{}",
        refused.stderr
    );
}

#[test]
fn promote_refuses_a_new_primary_whose_file_is_unsupported() {
    // bfs.poland.xray reads the genuine PGP-only sops-nix/secrets.json: nixflip cannot show
    // that it can decrypt it, so promoting it is refused (NF205, and NF201 for the keys).
    let (_dir, root) = example_copy(|root| {
        edit_file(
            root,
            BFS,
            "sops.defaultSopsFile = ../../../secrets/cluster.yaml;",
            &format!(
                "sops.defaultSopsFile = {};",
                shared_sops("sops-nix/secrets.json")
            ),
        );
    });
    let refused = run(nixflip(&root).args(["promote", "bfs.poland.xray", "--yes", "--no-eval"]));
    assert_eq!(refused.code, Some(4), "{}", refused.stderr);
    assert!(refused.stderr.contains("(NF205, "), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("a file without any age recipient (only pgp)"),
        "{}",
        refused.stderr
    );
    // hectic-lab does not read that file: the file's findings do not concern it.
    let config = nixflip::config::load(&root, None).expect("config");
    let cluster = nixflip::cluster::Cluster::load(&root, config).expect("cluster");
    let report = nixflip::cluster::secrets::check(&cluster);
    let ids = |host: &str| -> Vec<&str> {
        report
            .blocking_for(host)
            .iter()
            .map(|f| f.finding.id)
            .collect()
    };
    assert!(ids("bfs.poland.xray").contains(&"NF205"));
    assert_eq!(ids("hectic-lab"), Vec::<&str>::new());
}

#[test]
fn switchover_preflight_refuses_a_new_primary_without_its_secrets_before_any_host() {
    let (_dir, root) = example_copy(without_signing_key_on_bfs);
    let before = std::fs::read_to_string(root.join(BFS)).expect("read");
    let refused = run(nixflip(&root).args(["switchover", "bfs.poland.xray", "--dry-run"]));
    // Refused in the pre-flight, before any ssh: the example's hosts are
    // not reachable from here, and reaching for them would fail with 3.
    assert_eq!(refused.code, Some(4), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("bfs.poland.xray would become primary without secrets it needs"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("matrix/signing-key"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("ssh"), "{}", refused.stderr);
    assert_eq!(
        std::fs::read_to_string(root.join(BFS)).expect("read"),
        before
    );
}
