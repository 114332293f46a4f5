//! `.sops.yaml` creation rules: first match wins, recipient forms, missing/extra recipients.

mod secrets_support;

use std::path::Path;

use nixflip::secrets::sops_yaml::{diff_recipients, relative_path};
use nixflip::secrets::{compare_recipients, SopsConfig, SopsError, SopsFile};
use secrets_support::sops_fixture;

const A: &str = "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw";
const B: &str = "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs";
const C: &str = "age1je6kjhzuhdjy3fqptpttxjh5k8q46vygzlgtpuq3030c947pc5tqz9dqvr";

fn sample() -> SopsConfig {
    let text = format!(
        r#"
keys:
  - &admin {A}
  - &host_b {B}
creation_rules:
  - path_regex: secrets/host-b/[^/]+\.yaml$
    key_groups:
      - age:
          - *admin
          - *host_b
  - path_regex: secrets/[^/]+\.(yaml|json)$
    age: >-
      {A},
      {C}
  - path_regex: secrets/list\.yaml$
    age:
      - {B}
  - age: {A}
"#
    );
    SopsConfig::parse(&text).unwrap()
}

#[test]
fn first_matching_rule_wins() {
    let cfg = sample();
    assert_eq!(cfg.rules.len(), 4);
    let rule = cfg.rule_for("secrets/host-b/db.yaml").unwrap();
    assert_eq!(rule.index, 0);
    assert_eq!(rule.age, [A, B]);
    assert_eq!(rule.key_groups, 1);
    // Rule 2 would match too, but rule 1 comes first.
    let rule = cfg.rule_for("secrets/list.yaml").unwrap();
    assert_eq!(rule.index, 1);
    assert_eq!(rule.age, [A, C]);
    // A rule without path_regex matches everything that reaches it.
    let rule = cfg.rule_for("other/thing.yaml").unwrap();
    assert_eq!(rule.index, 3);
    assert_eq!(rule.age, [A]);
    // The regex is searched, not anchored (as Go's MatchString).
    assert_eq!(cfg.rule_for("x/secrets/a.json").unwrap().index, 1);
}

#[test]
fn no_rule_matches() {
    let cfg =
        SopsConfig::parse("creation_rules:\n  - path_regex: ^only/\n    age: age1x\n").unwrap();
    assert!(cfg.rule_for("elsewhere/a.yaml").is_none());
    assert!(SopsConfig::parse("{}\n").unwrap().rules.is_empty());
}

#[test]
fn paths_relative_to_config_dir() {
    let cfg = sample();
    let rule = cfg
        .rule_for_path(
            Path::new("/flake"),
            Path::new("/flake/secrets/host-b/x.yaml"),
        )
        .unwrap();
    assert_eq!(rule.index, 0);
    assert_eq!(
        relative_path(Path::new("/flake"), Path::new("/flake/secrets/a.yaml")),
        "secrets/a.yaml"
    );
}

#[test]
fn recipients_compared_with_the_genuine_file() {
    let file = SopsFile::load(&sops_fixture("sops-nix/secrets.yaml")).unwrap();
    // Exactly the file's recipients: no difference.
    let cfg = SopsConfig::parse(&format!(
        "creation_rules:\n  - path_regex: secrets\\.yaml$\n    age: {B},{A}\n"
    ))
    .unwrap();
    let rule = cfg.rule_for("secrets.yaml").unwrap();
    assert!(compare_recipients(&file, rule).is_empty());

    // A new host added to the rule but `sops updatekeys` forgotten, and host B removed.
    let cfg = SopsConfig::parse(&format!(
        "creation_rules:\n  - path_regex: secrets\\.yaml$\n    key_groups:\n      - age:\n          - {A}\n          - {C}\n"
    ))
    .unwrap();
    let diff = compare_recipients(&file, cfg.rule_for("secrets.yaml").unwrap());
    assert_eq!(diff.missing, [C]);
    assert_eq!(diff.extra, [B]);
    insta::assert_debug_snapshot!(diff);
}

#[test]
fn ssh_recipients_in_rules() {
    let file = SopsFile::load(&sops_fixture("sops-nix/secrets-native-ssh.yaml")).unwrap();
    let pubkey = std::fs::read_to_string(sops_fixture("sops-nix/ssh-ed25519-key.pub")).unwrap();
    // The rule writes the key with a comment; comments are ignored.
    let cfg = SopsConfig::parse(&format!(
        "creation_rules:\n  - age: {} root@host\n",
        pubkey.trim()
    ))
    .unwrap();
    let rule = cfg.rule_for("secrets-native-ssh.yaml").unwrap();
    assert_eq!(rule.age, [pubkey.trim()]);
    assert!(compare_recipients(&file, rule).is_empty());
    let diff = diff_recipients(&[A], &[pubkey.trim()]);
    assert_eq!(diff.missing, [pubkey.trim()]);
    assert_eq!(diff.extra, [A]);
}

#[test]
fn bad_config_errors() {
    let err = SopsConfig::parse("creation_rules:\n  - path_regex: '(unclosed'\n").unwrap_err();
    assert!(matches!(err, SopsError::SopsYaml { .. }));
    insta::assert_snapshot!(err.to_string());
    let err = SopsConfig::parse("creation_rules: 3\n").unwrap_err();
    insta::assert_snapshot!(err.to_string(), @".sops.yaml: `creation_rules` must be a list");
}
