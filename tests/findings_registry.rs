//! The registry of findings is the one source of the README's finding tables,
//! of `nixflip explain`, and of every id the rules emit.

mod common;

use std::collections::BTreeSet;

use assert_cmd::Command;
use nixflip::findings::{self, Family};
use regex::Regex;

fn readme() -> String {
    std::fs::read_to_string(common::repo().join("README.md")).expect("README.md")
}

#[test]
fn readme_cluster_table_is_the_registry() {
    let table = findings::markdown_table(Family::Cluster);
    assert!(
        readme().contains(&table),
        "README.md's cluster findings table differs from the registry (src/findings.rs); \
         it should read:\n{table}"
    );
}

#[test]
fn readme_secrets_table_is_the_registry() {
    let table = findings::markdown_table(Family::Secrets);
    assert!(
        readme().contains(&table),
        "README.md's SOPS findings table differs from the registry (src/findings.rs); \
         it should read:\n{table}"
    );
}

#[test]
fn readme_live_table_is_the_registry() {
    let table = findings::markdown_table(Family::Live);
    assert!(
        readme().contains(&table),
        "README.md's live findings table differs from the registry (src/findings.rs); \
         it should read:\n{table}"
    );
}

/// Every `"NFnnn"` string literal in the library names a registered rule, and
/// every registered rule is emitted somewhere.
#[test]
fn every_id_in_the_source_is_registered_and_every_rule_is_used() {
    let literal = Regex::new(r#""(NF\d{3})""#).expect("regex");
    let mut used = BTreeSet::new();
    let mut stack = vec![common::repo().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("findings.rs")
            {
                let text = std::fs::read_to_string(&path).expect("read source");
                // Unit tests build findings with made-up ids; only the code counts.
                let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
                for c in literal.captures_iter(code) {
                    used.insert(c[1].to_string());
                }
            }
        }
    }
    let registered: BTreeSet<String> = findings::RULES.iter().map(|r| r.id.to_string()).collect();
    let unregistered: Vec<_> = used.difference(&registered).collect();
    let unused: Vec<_> = registered.difference(&used).collect();
    assert!(
        unregistered.is_empty(),
        "emitted but not in src/findings.rs: {unregistered:?}"
    );
    assert!(
        unused.is_empty(),
        "registered but emitted nowhere: {unused:?}"
    );
}

#[test]
fn explain_prints_the_registered_explanation() {
    let out = Command::cargo_bin("nixflip")
        .expect("binary")
        .args(["explain", "nf003"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn explain_of_an_unknown_id_is_bad_input_listing_the_ids() {
    let out = Command::cargo_bin("nixflip")
        .expect("binary")
        .env("NO_COLOR", "1")
        .args(["explain", "NF999"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no finding has the id `NF999`"), "{stderr}");
    assert!(stderr.contains("NF001, NF002"), "{stderr}");
}
