//! The consistency rules on the fixture flakes: each rule fires on its own
//! fixture and on nothing else; the clean clusters and the example are clean.

mod common;

use std::path::Path;

use nixflip::cluster::{rules, Cluster};
use nixflip::render::FindingDiagnostic;

fn load(dir: &Path) -> Cluster {
    let loaded = nixflip::config::load(dir, None)
        .unwrap_or_else(|e| panic!("config of {}: {e}", dir.display()));
    Cluster::load(dir, loaded).unwrap_or_else(|e| panic!("cluster {}: {e}", dir.display()))
}

fn fixture(name: &str) -> std::path::PathBuf {
    common::repo().join("fixtures/clusters").join(name)
}

fn ids(cluster: &Cluster) -> Vec<&'static str> {
    let mut ids: Vec<_> = rules::check(cluster).iter().map(|f| f.id).collect();
    ids.dedup();
    ids
}

fn rendered(cluster: &Cluster) -> String {
    rules::check(cluster)
        .into_iter()
        .map(|finding| {
            let text = cluster
                .sources
                .text(&finding.file)
                .unwrap_or_default()
                .to_string();
            let src = miette::NamedSource::new(finding.file.display().to_string(), text);
            common::render(&FindingDiagnostic { finding, src })
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One test per rule fixture: the rule fires there, and no other rule does.
macro_rules! rule_fires_alone {
    ($($test:ident: $fixture:literal => $id:literal,)*) => {$(
        #[test]
        fn $test() {
            let cluster = load(&fixture($fixture));
            assert_eq!(ids(&cluster), vec![$id], "{}", rendered(&cluster));
            insta::assert_snapshot!($fixture, rendered(&cluster));
        }
    )*};
}

rule_fires_alone! {
    nf001_fires_alone: "nf001_two_primaries" => "NF001",
    nf002_fires_alone: "nf002_standby_peerhost_not_primary" => "NF002",
    nf003_fires_alone: "nf003_allowed_ips_miss_standby" => "NF003",
    nf004_fires_alone: "nf004_standby_synapse_forced_on" => "NF004",
    nf005_fires_alone: "nf005_synapse_without_secrets" => "NF005",
    nf006_fires_alone: "nf006_shared_domain_differs" => "NF006",
    nf007_fires_alone: "nf007_role_not_allowed" => "NF007",
    nf008_fires_alone: "nf008_address_unknown" => "NF008",
    nf009_fires_alone: "nf009_allowed_ips_not_an_ip" => "NF009",
    nf101_fires_alone: "nf101_allowed_lists_own_address" => "NF101",
    nf102_fires_alone: "nf102_proxy_points_at_standby" => "NF102",
    nf106_fires_alone: "nf106_primary_admits_no_standby" => "NF106",
    nf107_fires_alone: "nf107_pg_rule_admits_non_member" => "NF107",
}

/// One test per clean flake: no finding at all.
macro_rules! clean {
    ($($test:ident: $dir:expr,)*) => {$(
        #[test]
        fn $test() {
            let cluster = load(&$dir);
            assert_eq!(ids(&cluster), Vec::<&str>::new(), "{}", rendered(&cluster));
        }
    )*};
}

clean! {
    three_node_is_clean: fixture("three_node"),
    ipv6_standby_is_clean: fixture("ipv6_standby"),
    copy_secrets_file_is_clean: fixture("copy_secrets_file"),
    mkforce_role_hidden_in_flake_is_clean: fixture("mkforce_role_hidden_in_flake"),
    hand_written_admission_is_clean: fixture("hand_written_admission"),
    the_example_is_clean: common::repo().join("examples/two-node"),
}

#[test]
fn a_role_pinned_in_a_second_module_is_reported_and_wins() {
    let cluster = load(&fixture("mkforce_role_in_second_module"));
    assert_eq!(ids(&cluster), vec!["NF104"]);
    let beta = cluster.member("beta").expect("beta is a member");
    let winner = beta.def("role").expect("role defined");
    assert_eq!(winner.file, Path::new("hosts/beta/pin-role.nix"));
    assert_eq!(winner.priority, 50);
    assert_eq!(
        beta.files.len(),
        2,
        "pin-role.nix belongs to beta, not a host of its own"
    );
    insta::assert_snapshot!("mkforce_role_in_second_module", rendered(&cluster));
}

#[test]
fn discovery_handles_every_host_file_layout() {
    // hosts/NAME.nix, hosts/NAME/default.nix and machines/NAME/NAME.nix.
    let three = load(&fixture("three_node"));
    let names: Vec<_> = three
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.file.display().to_string()))
        .collect();
    insta::assert_debug_snapshot!("three_node_members", names);
    let example = load(&common::repo().join("examples/two-node"));
    let summary: Vec<_> = example
        .members
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                m.address.clone(),
                m.address_source.clone(),
                m.is_primary(),
            )
        })
        .collect();
    insta::assert_debug_snapshot!("example_members", summary);
}

#[test]
fn ipv6_standby_is_covered_by_a_128() {
    let cluster = load(&fixture("ipv6_standby"));
    let beta = cluster
        .members
        .iter()
        .find(|m| !m.is_primary())
        .expect("a standby");
    let ip = beta.ip().expect("the standby's address is known");
    assert!(ip.is_ipv6(), "standby address {ip}");
    // The primary's list holds the host network that covers it, and NF003
    // (which judges that containment) stays quiet.
    let primary = cluster.primary().expect("one primary");
    let allowed = primary.allowed_ips().expect("a literal list");
    let cidr = rules::host_cidr(ip);
    assert_eq!(cidr, "2001:db8::20/128");
    assert!(allowed.contains(&cidr), "{allowed:?}");
    assert!(rules::parse_networks(&allowed)
        .iter()
        .any(|n| n.prefix_len() == 128 && n.contains(&ip)));
    assert!(!ids(&cluster).contains(&"NF003"));
}

#[test]
fn two_files_giving_one_host_name_are_refused_with_the_key_that_settles_it() {
    let dir = fixture("duplicate_host_name");
    let loaded = nixflip::config::load(&dir, None).expect("config");
    let Err(error) = Cluster::load(&dir, loaded) else {
        panic!("two files named alpha must be an error");
    };
    assert_eq!(error.exit_code(), 2);
    insta::assert_snapshot!("duplicate_host_name", common::render(&error));
}

/// File lists from a git revision (the pull-request review) follow the same
/// rule as the directory walk: only a root `target` and hidden entries are
/// left out; git holds no `result` symlinks to follow.
#[test]
fn revision_file_lists_skip_only_what_is_never_configuration() {
    use nixflip::cluster::discover::is_scanned;
    for scanned in [
        "machines/resultsdb/gamma.nix",
        "result/host.nix",
        "hosts/target/alpha.nix",
        "hosts/result-2.nix",
    ] {
        assert!(is_scanned(Path::new(scanned), &[]), "{scanned}");
    }
    for skipped in [
        "target/stray.nix",
        ".git/x.nix",
        "node_modules/a.nix",
        "vendor/a.nix",
        "README.md",
    ] {
        assert!(
            !is_scanned(Path::new(skipped), &["vendor/".to_string()]),
            "{skipped}"
        );
    }
}

/// Discovery parses only the files that name the option at once; the others
/// are parsed when asked for. Both must still count: a role pinned in a file
/// reached only through an import chain whose middle file never names the
/// option, and an endpoint at a standby in a file that never names it.
#[test]
fn files_that_never_name_the_option_still_take_part() {
    let host = |role: &str, addr: &str, peer: &str, extra: &str| {
        format!(
            r#"{{ ... }}: {{
  imports = [ {extra} ];
  hectic.generic.matrix-cluster = {{
    enable = true;
    role = "{role}";
    publicIp = "{addr}";
    secretsFile = "/run/secrets/s";
    replication.peerHost = "{peer}";
    replication.allowedSourceIPs = [ "{peer}/32" ];
  }};
}}
"#
        )
    };
    let texts = vec![
        (
            "hosts/alpha.nix".into(),
            host("primary", "10.0.0.1", "10.0.0.2", "./common.nix"),
        ),
        (
            "hosts/beta.nix".into(),
            host("standby", "10.0.0.2", "10.0.0.1", ""),
        ),
        // Names no cluster option: parsed only because alpha imports it.
        (
            "hosts/common.nix".into(),
            "{ ... }: { imports = [ ./pin.nix ]; networking.firewall.enable = true; }\n".into(),
        ),
        (
            "hosts/pin.nix".into(),
            "{ lib, ... }: { hectic.generic.matrix-cluster.role = lib.mkForce \"standby\"; }\n"
                .into(),
        ),
        // Names no cluster option either, but proxies to the standby.
        (
            "proxy.nix".into(),
            "{ ... }: { services.nginx.virtualHosts.m.locations.\"/\".proxyPass = \"http://10.0.0.2:8008\"; }\n"
                .into(),
        ),
        // Does not parse and names nothing: ignored, as before.
        ("broken.nix".into(), "{ this is = not nix".into()),
        // Names the option only through an escape: still a host.
        (
            "hosts/gamma.nix".into(),
            "{ ... }: { hectic.generic.\"matrix-c\\luster\" = { enable = true; role = \"standby\"; publicIp = \"10.0.0.3\"; replication.peerHost = \"10.0.0.1\"; }; }\n".into(),
        ),
    ];
    let loaded = nixflip::config::load(Path::new("/nonexistent"), None).expect("default config");
    let cluster = Cluster::from_texts(Path::new("/flake"), texts, loaded).expect("cluster");
    let alpha = cluster.member("alpha").expect("alpha is a member");
    let alpha_files: Vec<String> = alpha
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        alpha_files.contains(&"hosts/pin.nix".to_string()),
        "the pin behind common.nix belongs to alpha: {alpha_files:?}"
    );
    assert!(
        cluster.member("gamma").is_some(),
        "an escaped key still names the option"
    );
    let findings = rules::check(&cluster);
    let nf102: Vec<_> = findings.iter().filter(|f| f.id == "NF102").collect();
    assert_eq!(nf102.len(), 1, "{findings:#?}");
    assert_eq!(nf102[0].file, Path::new("proxy.nix"));
    assert!(
        findings.iter().any(|f| f.id == "NF001"),
        "alpha's mkForce standby leaves no primary: {findings:#?}"
    );
}
