//! Every command heading of the README (`### \`nixflip CMD [--flag]…\``)
//! names exactly the long options that `nixflip CMD --help` lists, so the
//! documented usage cannot drift from the parser.

mod common;

use std::collections::BTreeSet;

use assert_cmd::Command;

/// Options every command has (global, or clap's own).
const COMMON: &[&str] = &[
    "--help",
    "--version",
    "--flake",
    "--config",
    "--color",
    "--quiet",
    "--verbose",
];

struct Synopsis {
    /// `["secrets", "check"]` for `nixflip secrets check …`.
    command: Vec<String>,
    flags: BTreeSet<String>,
}

fn long_flags(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("--") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '=') {
            continue;
        }
        let name: String = text[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if !name.is_empty() {
            out.insert(format!("--{name}"));
        }
    }
    out
}

fn synopses() -> Vec<Synopsis> {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).expect("README.md");
    readme
        .lines()
        .filter_map(|line| line.strip_prefix("### `nixflip "))
        .filter_map(|rest| rest.split('`').next())
        .map(|usage| {
            let command = usage
                .split_whitespace()
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                .filter(|w| !w.starts_with('-'))
                .map(str::to_string)
                .collect();
            Synopsis {
                command,
                flags: long_flags(usage),
            }
        })
        .collect()
}

#[test]
fn readme_command_headings_name_the_options_of_help() {
    let synopses = synopses();
    assert!(synopses.len() >= 10, "the README's command headings moved");
    // Headings of one command (`status` and `status --live`) together.
    let mut commands: Vec<Vec<String>> = synopses.iter().map(|s| s.command.clone()).collect();
    commands.dedup();
    let mut problems = Vec::new();
    for command in commands {
        let documented: BTreeSet<String> = synopses
            .iter()
            .filter(|s| s.command == command)
            .flat_map(|s| s.flags.iter().cloned())
            .collect();
        let out = Command::cargo_bin("nixflip")
            .expect("binary builds")
            .args(&command)
            .arg("--help")
            .output()
            .expect("runs");
        assert!(out.status.success(), "nixflip {command:?} --help failed");
        let help: BTreeSet<String> = long_flags(&String::from_utf8_lossy(&out.stdout))
            .into_iter()
            .filter(|f| !COMMON.contains(&f.as_str()))
            .collect();
        let name = command.join(" ");
        for flag in help.difference(&documented) {
            problems.push(format!(
                "nixflip {name}: {flag} is in --help, not in the README heading"
            ));
        }
        for flag in documented.difference(&help) {
            if !COMMON.contains(&flag.as_str()) {
                problems.push(format!(
                    "nixflip {name}: {flag} is in the README heading, not in --help"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
