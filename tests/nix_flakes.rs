//! The repository's Nix side with the real `nix` and nixpkgs' real module system:
//! - every cluster fixture flake evaluates as its README row says (one test per fixture:
//!   each host's managed fields, snapshotted, and whether its `system.build.toplevel`
//!   evaluates or fails, with the message), the cluster module added and nixpkgs replaced
//!   by the stand-in, as every test evaluates them;
//! - the nixpkgs stand-in (`nix/stand-ins/nixpkgs`) behaves as NixOS where hosts rely on it:
//!   option types merge, undeclared options and failed assertions are errors;
//! - the copies the repository keeps are identical to what they copy.

mod common;

use std::path::Path;

use serde_json::Value;

/// The cluster option's managed fields of a host, as nixflip validates them.
const FIELDS: &str = r#"c: let m = c.config.hectic.generic.matrix-cluster; in {
  inherit (m) role overrideEnableSynapse effectiveSynapse;
  secrets = m.secretsFile != null;
  inherit (m.replication) peerHost allowedSourceIPs;
}"#;

/// What a host's evaluation must give: a value, or an error whose message contains the text.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Is(&'static str),
    Fails(&'static str),
}
use Expect::{Fails, Is};

/// The toplevel of a host that builds.
const BUILDS: Expect = Is("builds");

/// `nix eval` of `apply` on the `nixosConfigurations` of a copy of fixture `name`.
fn eval_fixture(root: &Path, apply: &str) -> Result<Value, String> {
    common::nix_eval(root, "nixosConfigurations", apply)
}

fn fixture_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    common::copy_flake(&format!("fixtures/clusters/{name}"), dir.path());
    dir
}

/// Evaluate every host of fixture `name` and compare with `hosts`: (host, role, toplevel).
fn check_fixture(name: &str, hosts: &[(&str, Expect, Expect)]) {
    let dir = fixture_copy(name);
    let root = dir.path();
    // One evaluation for every host: the fields (when they evaluate) and whether the
    // toplevel does. Failures are looked at one by one below, for their messages.
    let apply = format!(
        r#"cs: builtins.mapAttrs (n: c: let
      fields = builtins.tryEval (builtins.deepSeq (({FIELDS}) c) (({FIELDS}) c));
      toplevel = builtins.tryEval (builtins.deepSeq c.config.system.build.toplevel true);
    in {{
      fields = if fields.success then fields.value else null;
      toplevel = toplevel.success;
    }}) cs"#
    );
    let all = eval_fixture(root, &apply).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut names: Vec<String> = all
        .as_object()
        .expect("an attribute set")
        .keys()
        .map(|k| k.trim_end_matches("|x86_64-linux").to_string())
        .collect();
    names.sort();
    let mut expected: Vec<String> = hosts.iter().map(|(h, _, _)| h.to_string()).collect();
    expected.sort();
    assert_eq!(names, expected, "{name}: the flake's hosts");

    let mut fields = serde_json::Map::new();
    for (host, role, toplevel) in hosts {
        let attr = format!("{host}|x86_64-linux");
        let got = &all[&attr];
        match role {
            Is(role) => assert_eq!(got["fields"]["role"], *role, "{name} {host}: role"),
            Fails(message) => {
                assert!(got["fields"].is_null(), "{name} {host}: role evaluates");
                let err = eval_fixture(
                    root,
                    &format!("cs: cs.{attr:?}.config.hectic.generic.matrix-cluster.role"),
                )
                .expect_err("the role fails");
                assert!(err.contains(message), "{name} {host}: {err}");
            }
        }
        match toplevel {
            Is(_) => assert_eq!(got["toplevel"], true, "{name} {host}: toplevel builds"),
            Fails(message) => {
                assert_eq!(got["toplevel"], false, "{name} {host}: toplevel builds");
                let err = eval_fixture(
                    root,
                    &format!("cs: cs.{attr:?}.config.system.build.toplevel"),
                )
                .expect_err("the toplevel fails");
                assert!(err.contains(message), "{name} {host}: {err}");
            }
        }
        fields.insert(host.to_string(), got["fields"].clone());
    }
    insta::assert_json_snapshot!(format!("fixture_{name}"), fields);
}

/// One test per fixture: its hosts, their roles and toplevels.
macro_rules! fixture_flakes {
    ($($name:ident: [$(($host:literal, $role:expr, $toplevel:expr)),* $(,)?]),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_fixture(stringify!($name), &[$(($host, $role, $toplevel)),*]);
            }
        )*

        /// The fixtures that have a test above.
        const FIXTURES: &[&str] = &[$(stringify!($name)),*];
    };
}

const NOT_AN_ENUM: &str = r#"A definition for option `hectic.generic.matrix-cluster.role' is not of type `one of "primary", "standby"'"#;

fixture_flakes! {
    nf001_two_primaries: [("alpha", Is("primary"), BUILDS), ("beta", Is("primary"), BUILDS)],
    nf002_standby_peerhost_not_primary: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    nf003_allowed_ips_miss_standby: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    nf004_standby_synapse_forced_on: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    nf005_synapse_without_secrets: [
        ("alpha", Is("primary"), Fails("Failed assertions:\n       - hectic.generic.matrix-cluster: Synapse runs on this host (role = \"primary\"), so secretsFile must be set.")),
        ("beta", Is("standby"), BUILDS),
    ],
    nf006_shared_domain_differs: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    nf007_role_not_allowed: [("alpha", Is("primary"), BUILDS), ("beta", Fails(NOT_AN_ENUM), Fails(NOT_AN_ENUM))],
    nf008_address_unknown: [
        ("alpha", Is("primary"), BUILDS),
        ("beta", Is("standby"), BUILDS),
        ("gamma", Is("standby"), BUILDS),
    ],
    nf009_allowed_ips_not_an_ip: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    nf101_allowed_lists_own_address: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    nf102_proxy_points_at_standby: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    three_node: [
        ("alpha", Is("primary"), BUILDS),
        ("beta", Is("standby"), BUILDS),
        ("gamma", Is("standby"), BUILDS),
    ],
    mkforce_role_in_second_module: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    mkforce_role_hidden_in_flake: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    copy_secrets_file: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    ipv6_standby: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    loopback_pair: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    live_pair: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    shared_module_sets_domain: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    duplicate_host_name: [("alpha", Is("primary"), BUILDS), ("alpha-standby", Is("standby"), BUILDS)],
    hand_written_admission: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
    nf106_primary_admits_no_standby: [("alpha", Is("standby"), BUILDS), ("beta", Is("primary"), BUILDS)],
    nf107_pg_rule_admits_non_member: [("alpha", Is("primary"), BUILDS), ("beta", Is("standby"), BUILDS)],
}

/// Every fixture directory has a test above, and carries no copy of the cluster module
/// (tests add `nix/matrix-cluster.nix`) nor anything else under `nix/`.
#[test]
fn every_fixture_has_a_test_and_no_copy_of_the_module() {
    let dir = common::repo().join("fixtures/clusters");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures/clusters")
        .flatten()
        .filter(|e| e.path().join("flake.nix").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut tested: Vec<String> = FIXTURES.iter().map(|n| n.to_string()).collect();
    tested.sort();
    assert_eq!(
        found, tested,
        "add each fixture to fixture_flakes! in tests/nix_flakes.rs (fixtures/clusters/README.md)"
    );
    for name in &found {
        assert!(
            !dir.join(name).join("nix").exists(),
            "fixtures/clusters/{name}/nix/: fixtures carry no module or evaluator; \
             tests add nix/matrix-cluster.nix (fixtures/clusters/README.md)"
        );
    }
}

/// Writing the role `"primary"` into beta's host file of a copy leaves beta a standby:
/// a `mkForce` elsewhere wins (what promote's validation must catch).
fn beta_stays_standby_after_its_file_says_primary(name: &str, file: &str) {
    let dir = fixture_copy(name);
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    let flipped = text.replace("role = \"standby\";", "role = \"primary\";");
    assert_ne!(text, flipped, "{name}: {file} sets role = \"standby\"");
    std::fs::write(&path, flipped).expect("write");
    let role = eval_fixture(
        dir.path(),
        r#"cs: cs."beta|x86_64-linux".config.hectic.generic.matrix-cluster.role"#,
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(role, "standby", "{name}");
}

#[test]
fn a_role_forced_in_the_flake_wins_over_the_host_file() {
    beta_stays_standby_after_its_file_says_primary(
        "mkforce_role_hidden_in_flake",
        "hosts/beta.nix",
    );
}

#[test]
fn a_role_forced_in_a_second_module_wins_over_the_host_file() {
    beta_stays_standby_after_its_file_says_primary(
        "mkforce_role_in_second_module",
        "hosts/beta/default.nix",
    );
}

// ------------------------------------------------------------------- the stand-in

/// `nix eval --impure` of `expr`, in which `lib` is the stand-in flake's `lib` and
/// `system` builds a host from a list of modules.
fn stand_in(expr: &str) -> Result<Value, String> {
    let out = std::process::Command::new("nix")
        .args(["--extra-experimental-features", "nix-command flakes"])
        .args(["eval", "--impure", "--json", "--expr"])
        .arg(format!(
            "let lib = (builtins.getFlake \"path:{}\").lib; \
             system = modules: lib.nixosSystem {{ system = \"x86_64-linux\"; inherit modules; }}; \
             in {expr}",
            common::nixpkgs_stand_in().display()
        ))
        .output()
        .expect("nix runs (Debian: apt-get install nix-bin)");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("JSON"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn stand_in_lib_is_nixpkgs_lib_with_nixos_system() {
    let got = stand_in(
        r#"{
          modules = builtins.isFunction lib.evalModules;
          nixosSystem = builtins.isFunction lib.nixosSystem;
          release = lib.trivial.release;
        }"#,
    )
    .expect("evaluates");
    assert_eq!(got["modules"], true);
    assert_eq!(got["nixosSystem"], true);
    let shared = std::fs::read_to_string(common::shared_dir().join("nixpkgs-lib/lib/.version"))
        .expect("nixpkgs-lib/lib/.version");
    assert_eq!(got["release"], shared.trim());
}

#[test]
fn stand_in_system_takes_special_args_and_gives_pkgs() {
    let got = stand_in(
        r#"let s = lib.nixosSystem {
          system = "aarch64-linux";
          specialArgs.greeting = "hi";
          modules = [ ({ greeting, pkgs, ... }: {
            networking.hostName = greeting;
            environment.systemPackages = [ pkgs.openssl ];
          }) ];
        }; in {
          host = s.config.networking.hostName;
          openssl = "${builtins.head s.config.environment.systemPackages}";
          system = s.pkgs.system;
        }"#,
    )
    .expect("evaluates");
    assert_eq!(got["host"], "hi");
    assert_eq!(got["system"], "aarch64-linux");
    let openssl = got["openssl"].as_str().expect("a path");
    assert!(
        openssl.starts_with("/nix/store/") && openssl.ends_with("-openssl-3.4.1"),
        "{openssl}"
    );
}

#[test]
fn stand_in_merges_lines_lists_and_units_as_nixos_does() {
    let got = stand_in(
        r#"let c = (system [
          { networking.firewall.extraCommands = "first"; networking.firewall.allowedTCPPorts = [ 22 ]; }
          { networking.firewall.extraCommands = "second"; networking.firewall.allowedTCPPorts = [ 443 ]; }
          { systemd.services.x = { description = "x"; wantedBy = [ "a.target" ]; }; }
          { systemd.services.x = { script = "echo"; wantedBy = [ "b.target" ]; }; }
          { services.postgresql.settings.wal_level = "replica"; }
          { services.postgresql.settings.max_wal_senders = 10; }
        ]).config; in {
          commands = c.networking.firewall.extraCommands;
          ports = c.networking.firewall.allowedTCPPorts;
          unit = { inherit (c.systemd.services.x) description script wantedBy; };
          pg = c.services.postgresql.settings;
        }"#,
    )
    .expect("evaluates");
    let commands = got["commands"].as_str().expect("lines");
    let mut lines: Vec<&str> = commands.lines().collect();
    lines.sort();
    assert_eq!(lines, ["first", "second"]);
    let mut ports: Vec<u64> = got["ports"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    ports.sort();
    assert_eq!(ports, [22, 443]);
    assert_eq!(got["unit"]["description"], "x");
    assert_eq!(got["unit"]["script"], "echo");
    assert_eq!(got["unit"]["wantedBy"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        got["pg"],
        serde_json::json!({"max_wal_senders": 10, "port": 5432, "wal_level": "replica"})
    );
}

#[test]
fn stand_in_refuses_an_option_nixos_does_not_have() {
    let err =
        stand_in(r#"(system [ { services.nginxx.enable = true; } ]).config.networking.hostName"#)
            .expect_err("an unknown option");
    assert!(
        err.contains("The option `services.nginxx' does not exist."),
        "{err}"
    );
}

#[test]
fn stand_in_refuses_a_host_name_nixos_refuses() {
    let err = stand_in(
        r#"(system [ { networking.hostName = "bfs.poland.xray"; } ]).config.networking.hostName"#,
    )
    .expect_err("a host name with dots");
    assert!(
        err.contains("A definition for option `networking.hostName' is not of type"),
        "{err}"
    );
}

#[test]
fn stand_in_toplevel_fails_with_the_failed_assertions() {
    let err = stand_in(
        r#"(system [ {
          assertions = [
            { assertion = true; message = "holds"; }
            { assertion = false; message = "the first failure"; }
            { assertion = false; message = "the second failure"; }
          ];
        } ]).config.system.build.toplevel"#,
    )
    .expect_err("failed assertions");
    assert!(
        err.contains("Failed assertions:\n       - the first failure\n       - the second failure"),
        "{err}"
    );
    assert!(!err.contains("holds"), "{err}");
}

#[test]
fn stand_in_toplevel_fails_on_a_type_error_anywhere() {
    // Nothing reads the port, but building the system would.
    let err = stand_in(
        r#"(system [ { services.postgresql.settings.port = 70000; } ]).config.system.build.toplevel"#,
    )
    .expect_err("a type error");
    assert!(
        err.contains("A definition for option `services.postgresql.settings.port' is not of type `16 bit unsigned integer"),
        "{err}"
    );
}

#[test]
fn stand_in_toplevel_of_a_good_system_is_a_store_path_and_prints_its_warnings() {
    let out = std::process::Command::new("nix")
        .args(["--extra-experimental-features", "nix-command flakes"])
        .args(["eval", "--impure", "--raw", "--expr"])
        .arg(format!(
            "((builtins.getFlake \"path:{}\").lib.nixosSystem {{ modules = [ \
               {{ networking.hostName = \"alpha\"; warnings = [ \"mind the gap\" ]; }} ]; }})\
             .config.system.build.toplevel",
            common::nixpkgs_stand_in().display()
        ))
        .output()
        .expect("nix runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let path = String::from_utf8_lossy(&out.stdout);
    assert!(
        path.starts_with("/nix/store/") && path.ends_with("-nixos-system-alpha"),
        "{path}"
    );
    assert!(stderr.contains("mind the gap"), "{stderr}");
}

// --------------------------------------------------------------------- the copies

fn assert_same_file(copy: &str, original: &str) {
    let repo = common::repo();
    let read = |rel: &str| std::fs::read(repo.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(
        read(copy) == read(original),
        "{copy} must be a copy of {original}: copy it over"
    );
}

#[test]
fn the_example_carries_the_cluster_module() {
    assert_same_file(
        "examples/two-node/nixos/module/matrix-cluster.nix",
        "nix/matrix-cluster.nix",
    );
}

#[test]
fn the_operator_fixture_carries_the_cluster_module() {
    assert_same_file(
        "fixtures/operator_flake/nixos/module/generic/matrix-cluster.nix",
        "nix/matrix-cluster.nix",
    );
}

#[test]
fn init_writes_the_cluster_module() {
    assert_same_file("templates/matrix-cluster.nix", "nix/matrix-cluster.nix");
}

#[test]
fn init_writes_the_example_ci_workflow() {
    assert_same_file(
        "templates/ci/github-actions.yml",
        "examples/ci/github-actions.yml",
    );
}
