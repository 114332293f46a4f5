//! `nixflip completions SHELL` and `nixflip man`: generated from the same
//! clap definition as the parser, so every subcommand appears in both.

use assert_cmd::Command;

fn nixflip() -> Command {
    let mut cmd = Command::cargo_bin("nixflip").expect("binary builds");
    cmd.env("NO_COLOR", "1");
    cmd
}

const SUBCOMMANDS: &[&str] = &[
    "get", "set", "status", "check", "promote", "rebuild", "failover", "rejoin",
];

#[test]
fn bash_completions_name_every_subcommand_and_global_flag() {
    let out = nixflip()
        .args(["completions", "bash"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("complete -F _nixflip"), "{script}");
    for word in SUBCOMMANDS.iter().chain(&["--flake", "--dry-run"]) {
        assert!(script.contains(word), "bash completion lacks {word}");
    }
}

#[test]
fn zsh_and_fish_completions_are_generated() {
    for (shell, marker) in [("zsh", "#compdef nixflip"), ("fish", "complete -c nixflip")] {
        let out = nixflip()
            .args(["completions", shell])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(marker),
            "{shell}"
        );
    }
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let out = nixflip()
        .args(["completions", "tcsh"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
}

#[test]
fn man_page_is_roff_and_lists_the_subcommands() {
    let out = nixflip().arg("man").output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.starts_with(".ie"), "{}", &page[..page.len().min(200)]);
    assert!(page.contains(".TH nixflip 1"), "no title header");
    for word in SUBCOMMANDS {
        assert!(page.contains(word), "man page lacks {word}");
    }
}

/// The one page lists every subcommand itself; it never points at
/// `nixflip-COMMAND(1)` pages, which are not installed.
#[test]
fn man_page_refers_to_no_other_nixflip_page() {
    let out = nixflip().arg("man").output().expect("runs");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        !page.contains("nixflip\\-"),
        "refers to a nixflip-COMMAND page"
    );
    for usage in [
        "nixflip promote [OPTIONS] <HOST>",
        "nixflip hook install",
        "nixflip secrets check",
    ] {
        assert!(page.contains(usage), "COMMANDS lacks {usage}");
    }
}
