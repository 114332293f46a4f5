//! Decrypting genuine sops files with their test keys, MAC verification, and tamper detection.
//! Tampering operates on modified copies of the text in memory.

mod common;
mod secrets_support;

use nixflip::secrets::{
    decrypt::KeyStatus, AgeIdentities, DecryptReport, MacStatus, SopsError, SopsFile, SopsFormat,
    Unsupported,
};
use secrets_support::{read_fixture, sops_fixture};

fn identities(rel: &str) -> AgeIdentities {
    AgeIdentities::from_file(&sops_fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn decrypt_text(text: &str, format: SopsFormat, key: &str) -> DecryptReport {
    let file = SopsFile::parse(text, format).unwrap();
    file.decrypt(&identities(key)).unwrap()
}

fn decrypt_fixture(rel: &str, key: &str) -> DecryptReport {
    let file = SopsFile::load(&sops_fixture(rel)).unwrap();
    file.decrypt(&identities(key)).unwrap()
}

fn plaintext(report: &DecryptReport) -> serde_json::Value {
    serde_json::from_str(&report.plaintext_json()).unwrap()
}

fn expected_sops_age() -> serde_json::Value {
    serde_json::from_str(&read_fixture("sops-age/secret.json")).unwrap()
}

#[test]
fn sops_age_json_decrypts_to_plaintext() {
    let report = decrypt_fixture("sops-age/secret.enc.json", "sops-age/key.txt");
    report.check().unwrap();
    assert!(report.mac_ok);
    assert!(report.is_ok());
    assert_eq!(
        report.data_key_unwrapped_by,
        "age1je6kjhzuhdjy3fqptpttxjh5k8q46vygzlgtpuq3030c947pc5tqz9dqvr"
    );
    assert!(report.keys.iter().all(|k| k.decrypted && k.encrypted));
    assert_eq!(plaintext(&report), expected_sops_age());
}

#[test]
fn sops_age_yaml_decrypts_to_plaintext() {
    let report = decrypt_fixture("sops-age/secret.enc.yaml", "sops-age/key.txt");
    report.check().unwrap();
    assert!(report.mac_ok);
    // The YAML fixture was written without the JSON fixture's `0word` key; everything else is
    // identical.
    let mut expected = expected_sops_age();
    expected.as_object_mut().unwrap().shift_remove("0word");
    assert_eq!(plaintext(&report), expected);
}

#[test]
fn sops_nix_yaml_decrypts_with_age_key() {
    let report = decrypt_fixture("sops-nix/secrets.yaml", "sops-nix/age-keys.txt");
    report.check().unwrap();
    assert_eq!(
        report.data_key_unwrapped_by,
        "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw"
    );
    let keys: Vec<(String, usize, bool)> = report
        .keys
        .iter()
        .map(|k| (k.display_path(), k.line, k.decrypted))
        .collect();
    insta::assert_debug_snapshot!(keys);
    let tree = plaintext(&report);
    assert!(tree["test_key"].is_string());
    assert_eq!(tree["a_list"].as_array().map(Vec::len), Some(2));
    assert!(tree["nested"]["test"]["file"].is_string());
}

#[test]
fn sops_nix_yaml_decrypts_with_ssh_key_via_ssh_to_age() {
    let ids = identities("sops-nix/ssh-ed25519-key");
    assert_eq!(
        ids.public_recipients(),
        [
            read_fixture("sops-nix/ssh-ed25519-key.pub").trim(),
            "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs"
        ]
    );
    let file = SopsFile::load(&sops_fixture("sops-nix/secrets.yaml")).unwrap();
    let report = file.decrypt(&ids).unwrap();
    report.check().unwrap();
    assert_eq!(
        report.data_key_unwrapped_by,
        "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs"
    );
    // Same plaintext as with the age key.
    let with_age = decrypt_fixture("sops-nix/secrets.yaml", "sops-nix/age-keys.txt");
    assert_eq!(*report.plaintext_json(), *with_age.plaintext_json());
}

#[test]
fn sops_nix_json_is_pgp_only_and_reported_unsupported() {
    // Despite the fixture README's "as above", this file (sops 3.5.0, 2020) has a single PGP
    // recipient and no age recipient, so it cannot be opened with age and must say so.
    let file = SopsFile::load(&sops_fixture("sops-nix/secrets.json")).unwrap();
    assert!(file.age_recipients().is_empty());
    let err = file
        .decrypt(&identities("sops-nix/age-keys.txt"))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            SopsError::Unsupported(Unsupported::NoAgeRecipient { others }) if others == &["pgp"]
        ),
        "{err}"
    );
    insta::assert_snapshot!(err.to_string(), @"unsupported SOPS feature: a file without any age recipient (only pgp)");
}

#[test]
fn native_ssh_recipient_decrypts_with_ssh_key() {
    let report = decrypt_fixture(
        "sops-nix/secrets-native-ssh.yaml",
        "sops-nix/ssh-ed25519-key",
    );
    report.check().unwrap();
    assert_eq!(
        report.data_key_unwrapped_by,
        read_fixture("sops-nix/ssh-ed25519-key.pub").trim()
    );
    assert!(plaintext(&report)["test_key"].is_string());
}

#[test]
fn wrong_key_is_a_clear_error() {
    let file = SopsFile::load(&sops_fixture("sops-age/secret.enc.yaml")).unwrap();
    let err = file
        .decrypt(&identities("sops-nix/age-keys.txt"))
        .unwrap_err();
    insta::assert_snapshot!(err.to_string());
    let err = file.decrypt(&AgeIdentities::new()).unwrap_err();
    assert!(matches!(err, SopsError::NoIdentity));
}

#[test]
fn identities_from_env() {
    let key_file = sops_fixture("sops-age/key.txt");
    let ids = AgeIdentities::from_env_with(|name| {
        (name == "SOPS_AGE_KEY_FILE").then(|| key_file.clone().into_os_string())
    })
    .unwrap();
    assert_eq!(
        ids.public_recipients(),
        ["age1je6kjhzuhdjy3fqptpttxjh5k8q46vygzlgtpuq3030c947pc5tqz9dqvr"]
    );
    let inline = read_fixture("sops-nix/age-keys.txt");
    let ids = AgeIdentities::from_env_with(|name| {
        (name == "SOPS_AGE_KEY").then(|| inline.clone().into())
    })
    .unwrap();
    assert_eq!(ids.len(), 1);
    let err = AgeIdentities::from_env_with(|_| None).unwrap_err();
    assert!(matches!(err, SopsError::NoIdentity));
    // Bad identity text: the message names the line, not its content.
    let err = AgeIdentities::parse("# c\nAGE-SECRET-KEY-1NOTAKEY\n", "test").unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"cannot read age identity from test: line 2 is not an age identity (AGE-SECRET-KEY-1…)");
    assert!(!err.to_string().contains("NOTAKEY"));
}

// ------------------------------------------------------------------ tampering

fn tampered(rel: &str, key: &str, edit: impl Fn(&str) -> String) -> DecryptReport {
    let text = read_fixture(rel);
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit changed the text");
    let format = if rel.ends_with(".json") {
        SopsFormat::Json
    } else {
        SopsFormat::Yaml
    };
    decrypt_text(&edited, format, key)
}

#[test]
fn changed_ciphertext_is_caught() {
    let report = tampered("sops-nix/secrets.yaml", "sops-nix/age-keys.txt", |t| {
        t.replace("data:2mP+IAdczoEr0g==", "data:3mP+IAdczoEr0g==")
    });
    assert!(!report.mac_ok);
    assert_eq!(report.mac, MacStatus::Incomplete);
    assert!(matches!(report.keys[0].status, KeyStatus::Failed(_)));
    assert!(!report.keys[0].decrypted);
    insta::assert_snapshot!(report.check().unwrap_err().to_string());
}

#[test]
fn value_moved_to_another_key_is_caught() {
    // Swap the encrypted values of `secret` and `string` (different AAD paths).
    let report = tampered("sops-age/secret.enc.yaml", "sops-age/key.txt", |t| {
        let lines: Vec<&str> = t.lines().collect();
        let secret = lines[0].strip_prefix("secret: ").unwrap();
        let string = lines[1].strip_prefix("string: ").unwrap();
        let mut out = vec![format!("secret: {string}"), format!("string: {secret}")];
        out.extend(lines[2..].iter().map(|l| l.to_string()));
        out.join("\n") + "\n"
    });
    let err = report.check().unwrap_err();
    assert!(matches!(err, SopsError::ValueNotDecrypted { .. }));
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn swapped_list_items_fail_the_mac() {
    // List items share an AAD path, so each still decrypts; only the MAC catches the swap.
    let report = tampered("sops-nix/secrets.yaml", "sops-nix/age-keys.txt", |t| {
        let a = "ENC[AES256_GCM,data:oOQ=,iv:5P+1UQyIYOW8xXgsvTXC17msGcA6IGB3N8n+pstfqjo=,tag:ox4rgjbb8c0vYZ2XmwRgpg==,type:str]";
        let b = "ENC[AES256_GCM,data:mYU=,iv:LbGS8DjM6Vnr2nU7QokzQlg0gL+XMWhqbN+ypP7ZIZo=,tag:CFrhnZv6lYGJOVso+2YBFg==,type:str]";
        t.replace(a, "@A@").replace(b, a).replace("@A@", b)
    });
    assert!(report.keys.iter().all(|k| k.decrypted));
    assert_eq!(report.mac, MacStatus::Mismatch);
    let err = report.check().unwrap_err();
    assert!(matches!(err, SopsError::MacMismatch));
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn removed_key_fails_the_mac() {
    let report = tampered("sops-age/secret.enc.yaml", "sops-age/key.txt", |t| {
        t.lines()
            .filter(|l| !l.starts_with("string: "))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    });
    assert!(report.keys.iter().all(|k| k.decrypted));
    assert_eq!(report.mac, MacStatus::Mismatch);
    let err = report.check().unwrap_err();
    assert!(matches!(err, SopsError::MacMismatch));
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn removed_key_fails_the_mac_json() {
    let report = tampered("sops-age/secret.enc.json", "sops-age/key.txt", |t| {
        t.lines()
            .filter(|l| !l.trim_start().starts_with("\"0word\""))
            .collect::<Vec<_>>()
            .join("\n")
    });
    // Every remaining value still decrypts: only the MAC notices the missing key, and the
    // operator is told so in words.
    assert!(report.keys.iter().all(|k| k.decrypted));
    assert_eq!(report.mac, MacStatus::Mismatch);
    let err = report.check().unwrap_err();
    assert!(matches!(err, SopsError::MacMismatch));
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn reordered_keys_fail_the_mac() {
    let report = tampered("sops-age/secret.enc.yaml", "sops-age/key.txt", |t| {
        let lines: Vec<&str> = t.lines().collect();
        let mut out = vec![lines[1], lines[0]];
        out.extend(&lines[2..]);
        out.join("\n") + "\n"
    });
    assert!(report.keys.iter().all(|k| k.decrypted));
    assert_eq!(report.mac, MacStatus::Mismatch);
    assert!(matches!(report.check(), Err(SopsError::MacMismatch)));
}

#[test]
fn edited_lastmodified_is_caught() {
    let report = tampered("sops-nix/secrets.yaml", "sops-nix/age-keys.txt", |t| {
        t.replace(
            "lastmodified: \"2021-09-30T19:49:41Z\"",
            "lastmodified: \"2021-09-30T19:49:42Z\"",
        )
    });
    assert!(report.keys.iter().all(|k| k.decrypted));
    assert_eq!(report.mac, MacStatus::StoredMacUndecryptable);
    let err = report.check().unwrap_err();
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn removed_mac_is_reported() {
    let report = tampered(
        "sops-nix/secrets-native-ssh.yaml",
        "sops-nix/ssh-ed25519-key",
        |t| {
            t.lines()
                .filter(|l| !l.trim_start().starts_with("mac: "))
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        },
    );
    assert_eq!(report.mac, MacStatus::Missing("sops.mac"));
    assert!(report.check().is_err());
}

#[test]
fn unencrypted_suffix_leaves_are_plaintext_and_in_the_mac() {
    // Adding a plaintext `_unencrypted` key changes the MAC input: sops hashes plaintext leaves
    // too (unless mac_only_encrypted).
    let report = tampered("sops-age/secret.enc.yaml", "sops-age/key.txt", |t| {
        format!("note_unencrypted: hello\n{t}")
    });
    assert_eq!(report.keys[0].status, KeyStatus::Plaintext);
    assert!(!report.keys[0].encrypted);
    assert_eq!(report.mac, MacStatus::Mismatch);
    assert_eq!(plaintext(&report)["note_unencrypted"], "hello");
}

#[test]
fn debug_output_never_shows_values() {
    let report = decrypt_fixture("sops-age/secret.enc.json", "sops-age/key.txt");
    let debug = format!("{report:?}");
    assert!(!debug.contains("this is a secret"));
    assert!(!debug.contains("gotta match go"));
    assert!(debug.contains("<redacted>"));
    let ids = identities("sops-age/key.txt");
    assert!(!format!("{ids:?}").contains("AGE-SECRET-KEY"));
}

// ------------------------------------------------------------------ files the real sops writes

/// Recipients of the genuine sops-age fixture (the first one's key is sops-age/key.txt).
fn sops_age_recipients() -> Vec<String> {
    SopsFile::load(&sops_fixture("sops-age/secret.enc.yaml"))
        .unwrap()
        .age_recipients()
        .iter()
        .map(|r| r.to_string())
        .collect()
}

/// `plaintext` (in `input_type`: yaml or json) encrypted by the real `sops` to the age
/// `recipients`, as SOPS YAML.
fn sops_yaml(plaintext: &str, input_type: &str, recipients: &[String]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join(format!("plain.{input_type}"));
    std::fs::write(&input, plaintext).expect("write the plaintext");
    let out = common::sops(dir.path())
        .args([
            "encrypt",
            "--input-type",
            input_type,
            "--output-type",
            "yaml",
        ])
        .args(["--age", &recipients.join(",")])
        .arg(&input)
        .output()
        .expect("sops runs");
    assert!(
        out.status.success(),
        "sops encrypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("sops writes UTF-8")
}

#[test]
fn real_sops_yaml_of_the_genuine_plaintext_decrypts() {
    // sops-age/secret.json is the plaintext of the genuine files; today's sops, encrypting it
    // anew as YAML, must decrypt (with the genuine key) to the same tree, MAC verified.
    let recipients = sops_age_recipients();
    let text = sops_yaml(&read_fixture("sops-age/secret.json"), "json", &recipients);
    assert!(!text.contains("this is a secret"));
    let file = SopsFile::parse(&text, SopsFormat::Yaml).unwrap();
    assert_eq!(file.age_recipients(), recipients);
    assert!(file.metadata().lastmodified.is_some());
    let report = file.decrypt(&identities("sops-age/key.txt")).unwrap();
    report.check().unwrap();
    assert_eq!(plaintext(&report), expected_sops_age());
    // The same keys in the same order as the file an older sops wrote from this plaintext.
    let genuine = SopsFile::load(&sops_fixture("sops-age/secret.enc.json")).unwrap();
    let ours: Vec<Vec<String>> = file.keys().into_iter().map(|k| k.path).collect();
    let theirs: Vec<Vec<String>> = genuine.keys().into_iter().map(|k| k.path).collect();
    assert_eq!(ours, theirs);
}

#[test]
fn real_sops_to_an_ssh_recipient_decrypts_with_the_ssh_key() {
    let pubkey = read_fixture("sops-nix/ssh-ed25519-key.pub");
    let text = sops_yaml("a:\n  b: secret\n", "yaml", &[pubkey.trim().to_string()]);
    let report = decrypt_text(&text, SopsFormat::Yaml, "sops-nix/ssh-ed25519-key");
    report.check().unwrap();
    assert_eq!(
        plaintext(&report),
        serde_json::json!({"a": {"b": "secret"}})
    );
}

#[test]
fn real_sops_unencrypted_suffix_is_plaintext_under_the_mac() {
    let recipients = sops_age_recipients();
    let text = sops_yaml(
        "public_unencrypted: hello\nsecret: world\nlist:\n  - one\n  - k: v\n",
        "yaml",
        &recipients[..1],
    );
    assert!(
        text.starts_with("public_unencrypted: hello\nsecret: ENC[AES256_GCM,"),
        "{text}"
    );
    let report = decrypt_text(&text, SopsFormat::Yaml, "sops-age/key.txt");
    report.check().unwrap();
    assert_eq!(report.keys[0].status, KeyStatus::Plaintext);
    assert_eq!(report.keys[1].status, KeyStatus::Decrypted);
    assert_eq!(
        plaintext(&report),
        serde_json::json!({"public_unencrypted": "hello", "secret": "world", "list": ["one", {"k": "v"}]})
    );
    // The plaintext leaf is covered by the MAC.
    let edited = text.replace("public_unencrypted: hello", "public_unencrypted: hullo");
    let report = decrypt_text(&edited, SopsFormat::Yaml, "sops-age/key.txt");
    assert_eq!(report.mac, MacStatus::Mismatch);
}
