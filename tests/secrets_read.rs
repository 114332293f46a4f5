//! Reading genuine sops files without decrypting: keys, recipients, metadata, unsupported
//! features, ssh-to-age.

mod secrets_support;

use std::fmt::Write as _;
use std::path::Path;

use nixflip::secrets::{
    ssh_public_key_to_age, EncType, NodeKind, RecipientKind, SopsError, SopsFile, SopsFormat,
    Unsupported,
};
use secrets_support::{read_fixture, sops_fixture};

const FILES: [&str; 5] = [
    "sops-nix/secrets.yaml",
    "sops-nix/secrets.json",
    "sops-nix/secrets-native-ssh.yaml",
    "sops-age/secret.enc.yaml",
    "sops-age/secret.enc.json",
];

fn load(rel: &str) -> SopsFile {
    SopsFile::load(&sops_fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A listing of what nixflip sees in a file (no values).
fn listing(rel: &str) -> String {
    let file = load(rel);
    let m = file.metadata();
    let mut out = String::new();
    writeln!(out, "format: {:?}", file.format()).unwrap();
    writeln!(out, "keys:").unwrap();
    for k in file.keys() {
        writeln!(out, "  {} (line {})", k.display_path(), k.line).unwrap();
    }
    writeln!(out, "age recipients:").unwrap();
    for r in m.age_recipients() {
        writeln!(out, "  {} [{:?}] (line {})", r.recipient, r.kind, r.line).unwrap();
    }
    writeln!(out, "key groups: {}", m.key_groups.len()).unwrap();
    writeln!(out, "other keys: {:?}", m.other_keys()).unwrap();
    writeln!(out, "lastmodified: {:?}", m.lastmodified).unwrap();
    writeln!(out, "version: {:?}", m.version).unwrap();
    writeln!(out, "unencrypted_suffix: {:?}", m.unencrypted_suffix).unwrap();
    writeln!(out, "encrypted_suffix: {:?}", m.encrypted_suffix).unwrap();
    writeln!(out, "unencrypted_regex: {:?}", m.unencrypted_regex).unwrap();
    writeln!(out, "encrypted_regex: {:?}", m.encrypted_regex).unwrap();
    writeln!(out, "mac_only_encrypted: {}", m.mac_only_encrypted).unwrap();
    writeln!(out, "shamir_threshold: {:?}", m.shamir_threshold).unwrap();
    writeln!(out, "mac present: {}", m.mac.is_some()).unwrap();
    writeln!(out, "unsupported: {:?}", file.unsupported()).unwrap();
    out
}

#[test]
fn every_fixture_reads() {
    for rel in FILES {
        let file = load(rel);
        assert!(!file.keys().is_empty(), "{rel} has keys");
        assert!(file.metadata().mac.is_some(), "{rel} has a mac");
        if rel == "sops-nix/secrets.json" {
            // PGP only (see recipients_match_readme_table).
            assert!(file.decryption_blocker().is_some());
        } else {
            assert!(
                !file.age_recipients().is_empty(),
                "{rel} has age recipients"
            );
            assert!(file.decryption_blocker().is_none(), "{rel} is supported");
        }
        for k in file.keys() {
            let enc = file
                .enc_value(&k.path)
                .unwrap_or_else(|| panic!("{rel}: {} is encrypted", k.display_path()))
                .unwrap_or_else(|e| panic!("{rel}: {}: {e}", k.display_path()));
            assert_eq!(enc.iv.len(), 32);
            assert_eq!(enc.tag.len(), 16);
        }
    }
}

#[test]
fn listing_sops_nix_yaml() {
    insta::assert_snapshot!(listing("sops-nix/secrets.yaml"));
}

#[test]
fn listing_sops_nix_json() {
    insta::assert_snapshot!(listing("sops-nix/secrets.json"));
}

#[test]
fn listing_sops_nix_native_ssh() {
    insta::assert_snapshot!(listing("sops-nix/secrets-native-ssh.yaml"));
}

#[test]
fn listing_sops_age_yaml() {
    insta::assert_snapshot!(listing("sops-age/secret.enc.yaml"));
}

#[test]
fn listing_sops_age_json() {
    insta::assert_snapshot!(listing("sops-age/secret.enc.json"));
}

#[test]
fn recipients_match_readme_table() {
    let sops_nix = [
        "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw",
        "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs",
    ];
    assert_eq!(load("sops-nix/secrets.yaml").age_recipients(), sops_nix);
    assert_eq!(load("sops-nix/secrets.yaml").metadata().other_keys().pgp, 2);
    // The JSON file (sops 3.5.0) predates age support: one PGP recipient, no age recipient.
    let json = load("sops-nix/secrets.json");
    assert!(json.age_recipients().is_empty());
    assert_eq!(json.metadata().other_keys().pgp, 1);

    let pubkey = read_fixture("sops-nix/ssh-ed25519-key.pub");
    let native = load("sops-nix/secrets-native-ssh.yaml");
    assert_eq!(native.age_recipients(), [pubkey.trim()]);
    assert_eq!(native.metadata().age[0].kind, RecipientKind::SshEd25519);

    let sops_age = [
        "age1je6kjhzuhdjy3fqptpttxjh5k8q46vygzlgtpuq3030c947pc5tqz9dqvr",
        "age19j4d6v9j7rx5fs629fu387qz4zmlpsqjexa4s08tkfrrmfdl5cwqjlaupd",
        "age13runq29jhy9kfpaegczrzttykerswh0qprq59msgd754yermtfmsa3hwg2",
    ];
    assert_eq!(load("sops-age/secret.enc.yaml").age_recipients(), sops_age);
    assert_eq!(load("sops-age/secret.enc.json").age_recipients(), sops_age);
}

#[test]
fn key_lookup_and_sops_nix_keys() {
    let file = load("sops-nix/secrets.yaml");
    assert!(file.has_key(&["test_key"]));
    assert!(file.has_key(&["nested", "test", "file"]));
    assert!(!file.has_key(&["nested", "missing"]));
    assert!(!file.has_key(&["sops"]), "metadata is not a secret key");
    assert_eq!(
        file.lookup_sops_nix_key("nested/test/file"),
        Some((7, NodeKind::Leaf))
    );
    assert_eq!(
        file.lookup_sops_nix_key("nested/test"),
        Some((6, NodeKind::Map))
    );
    assert_eq!(
        file.lookup_sops_nix_key("a_list"),
        Some((2, NodeKind::List))
    );
    assert_eq!(file.lookup_sops_nix_key("nested/nope"), None);
    assert_eq!(file.top_level_keys(), ["test_key", "a_list", "nested"]);

    let json = load("sops-age/secret.enc.json");
    assert_eq!(
        json.lookup(&["complex", "value"]),
        Some((9, NodeKind::Leaf))
    );
    assert_eq!(
        json.lookup(&["complex", "array", "2"]).map(|l| l.1),
        Some(NodeKind::Leaf)
    );
    let enc = json.enc_value(&["int"]).unwrap().unwrap();
    assert_eq!(
        enc.value_type,
        EncType::Float,
        "sops' JSON store types numbers as float"
    );
    let yaml = load("sops-age/secret.enc.yaml");
    let enc = yaml.enc_value(&["int"]).unwrap().unwrap();
    assert_eq!(enc.value_type, EncType::Int);
    assert_eq!(
        yaml.enc_value(&["boolean"]).unwrap().unwrap().value_type,
        EncType::Bool
    );
}

#[test]
fn format_from_extension() {
    assert_eq!(
        SopsFormat::from_path(Path::new("a/secrets.json")),
        SopsFormat::Json
    );
    assert_eq!(
        SopsFormat::from_path(Path::new("a/secrets.yaml")),
        SopsFormat::Yaml
    );
    assert_eq!(
        SopsFormat::from_path(Path::new("a/secrets.yml")),
        SopsFormat::Yaml
    );
}

#[test]
fn ssh_to_age_matches_readme() {
    let pubkey = read_fixture("sops-nix/ssh-ed25519-key.pub");
    assert_eq!(
        ssh_public_key_to_age(&pubkey).unwrap(),
        "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs"
    );
    // With a comment, too.
    assert_eq!(
        ssh_public_key_to_age(&format!("{} root@host\n", pubkey.trim())).unwrap(),
        "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs"
    );
}

#[test]
fn not_sops_and_bad_input_errors() {
    let err = SopsFile::parse("a: 1\n", SopsFormat::Yaml).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"not a SOPS file: there is no top-level `sops` metadata section");
    let err = SopsFile::parse("a: [1\n", SopsFormat::Yaml).unwrap_err();
    assert!(matches!(err, SopsError::Yaml { .. }), "{err}");
    let err = SopsFile::parse("{\"a\": 1,}", SopsFormat::Json).unwrap_err();
    assert!(matches!(err, SopsError::Json { .. }), "{err}");
    let err =
        SopsFile::parse("sops:\n  age:\n    - recipient: age1x\n", SopsFormat::Yaml).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"invalid sops metadata field `sops.age[0].enc` at line 3: missing");
}

#[test]
fn unsupported_features_are_reported() {
    // PGP only.
    let pgp_only = "a: ENC[AES256_GCM,data:oOQ=,iv:5P+1UQyIYOW8xXgsvTXC17msGcA6IGB3N8n+pstfqjo=,tag:ox4rgjbb8c0vYZ2XmwRgpg==,type:str]\nsops:\n  pgp:\n    - fp: ABC\n      enc: x\n  kms: []\n  lastmodified: \"2020-01-01T00:00:00Z\"\n  mac: x\n  version: 3.7.1\n";
    let file = SopsFile::parse(pgp_only, SopsFormat::Yaml).unwrap();
    assert_eq!(
        file.decryption_blocker(),
        Some(Unsupported::NoAgeRecipient {
            others: vec!["pgp"]
        })
    );
    // KMS only, JSON.
    let kms_only = r#"{"a": "", "sops": {"kms": [{"arn": "arn:aws:kms:x", "enc": "x"}], "age": null, "version": "3.9.0"}}"#;
    let file = SopsFile::parse(kms_only, SopsFormat::Json).unwrap();
    assert_eq!(
        file.decryption_blocker(),
        Some(Unsupported::NoAgeRecipient {
            others: vec!["kms"]
        })
    );
    // Shamir across key groups.
    let shamir = "a: b\nsops:\n  shamir_threshold: 2\n  key_groups:\n    - age:\n        - recipient: age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw\n          enc: x\n    - age:\n        - recipient: age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs\n          enc: y\n";
    let file = SopsFile::parse(shamir, SopsFormat::Yaml).unwrap();
    assert_eq!(file.age_recipients().len(), 2);
    assert_eq!(file.metadata().key_groups.len(), 2);
    let blocker = file.decryption_blocker().unwrap();
    insta::assert_snapshot!(SopsError::Unsupported(blocker).to_string(), @"unsupported SOPS feature: Shamir secret sharing of the data key across 2 key groups (shamir_threshold 2)");
    // A single key group is fine.
    let one_group = "a: b\nsops:\n  key_groups:\n    - age:\n        - recipient: age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw\n          enc: x\n";
    let file = SopsFile::parse(one_group, SopsFormat::Yaml).unwrap();
    assert_eq!(file.metadata().key_groups[0].age.len(), 1);
    assert_eq!(file.decryption_blocker(), None);
    // Post-quantum recipient only.
    let pq = format!(
        "a: b\nsops:\n  age:\n    - recipient: age1pq1{}\n      enc: x\n",
        "q".repeat(1900)
    );
    let file = SopsFile::parse(&pq, SopsFormat::Yaml).unwrap();
    assert_eq!(file.metadata().age[0].kind, RecipientKind::PostQuantum);
    assert!(matches!(
        file.decryption_blocker(),
        Some(Unsupported::PostQuantumRecipient { .. })
    ));
}

#[test]
fn every_sops_file_in_the_shared_directory_is_covered() {
    // Every .yaml/.json under fixtures/sops is either a SOPS file listed in FILES (and read by
    // the tests above) or the plaintext sops-age/secret.json.
    let base = sops_fixture("");
    let mut seen = Vec::new();
    for dir in std::fs::read_dir(&base).unwrap().flatten() {
        if !dir.file_type().unwrap().is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.ends_with(".yaml") || name.ends_with(".json")) {
                continue;
            }
            let rel = format!("{}/{name}", dir.file_name().to_string_lossy());
            if rel == "sops-age/secret.json" {
                let text = read_fixture(&rel);
                assert!(
                    SopsFile::parse(&text, SopsFormat::Json).is_err(),
                    "plaintext"
                );
                continue;
            }
            assert!(FILES.contains(&rel.as_str()), "{rel} is not in FILES");
            load(&rel);
            seen.push(rel);
        }
    }
    assert_eq!(seen.len(), FILES.len());
}
