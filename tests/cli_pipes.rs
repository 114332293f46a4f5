//! Every command whose reader goes away early (`nixflip diff … | head -1`,
//! `nixflip status | true`) stops quietly: the exit status and the stderr it
//! has with a reader, no panic, no extra message.
//!
//! Each command runs twice on a copy of the example flake: once with stdout
//! read to the end, once with stdout the write end of a pipe whose read end
//! is already closed, so that the very first write finds the pipe gone.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A git repository holding a copy of `examples/two-node`, committed.
fn flake() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("flake");
    common::copy_tree(&common::repo().join("examples/two-node"), &root);
    common::commit_all(&root);
    (tmp, root)
}

fn nixflip(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nixflip"));
    cmd.args(args)
        .current_dir(root)
        .env("NO_COLOR", "1")
        .env_remove("NIXFLIP_COLOR")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Run with stdout read to the end.
fn with_reader(root: &Path, args: &[&str]) -> Output {
    nixflip(root, args)
        .stdout(Stdio::piped())
        .output()
        .expect("nixflip runs")
}

/// Run with stdout a pipe nobody reads any more.
fn with_closed_stdout(root: &Path, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    nixflip(root, args)
        .stdout(Stdio::from(writer))
        .output()
        .expect("nixflip runs")
}

/// The command prints something with a reader, and without one it exits
/// the same way with the same stderr.
fn quiet_when_closed(args: &[&str]) {
    let (_tmp, root) = flake();
    let read = with_reader(&root, args);
    assert!(
        !read.stdout.is_empty(),
        "nixflip {args:?} printed nothing on stdout, so the test shows nothing: {}",
        String::from_utf8_lossy(&read.stderr)
    );
    // The same starting point for the second run: a command that writes
    // (`init`) must meet the same tree.
    let (_tmp2, root2) = flake();
    let closed = with_closed_stdout(&root2, args);
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "nixflip {args:?} with stdout closed:\n{stderr}"
    );
    assert_eq!(
        closed.status.code(),
        read.status.code(),
        "nixflip {args:?}: exit status with stdout closed differs; stderr:\n{stderr}"
    );
    assert_eq!(
        stderr.replace(root2.to_str().unwrap_or_default(), "ROOT"),
        String::from_utf8_lossy(&read.stderr).replace(root.to_str().unwrap_or_default(), "ROOT"),
        "nixflip {args:?}: stderr differs with stdout closed"
    );
}

const HOST: &str = "nixos/system/hectic-lab/hectic-lab.nix";
const OPTION: &str = "hectic.generic.matrix-cluster.role";

macro_rules! closed_stdout_tests {
    ($($name:ident: [$($arg:expr),* $(,)?];)*) => {$(
        #[test]
        fn $name() {
            quiet_when_closed(&[$($arg),*]);
        }
    )*};
}

closed_stdout_tests! {
    get_json: ["get", HOST, OPTION, "--option", "--json"];
    set_prints_the_file: ["set", HOST, OPTION, "\"standby\"", "--option"];
    set_diff: ["set", HOST, OPTION, "\"standby\"", "--option", "--diff"];
    unset_prints_the_file: ["unset", HOST, OPTION, "--option"];
    status: ["status"];
    status_json: ["status", "--json"];
    check_text: ["check"];
    check_json: ["check", "--format", "json"];
    diff_text: ["diff", "--base", "HEAD"];
    diff_json: ["diff", "--base", "HEAD", "--format", "json"];
    promote_dry_run: ["promote", "bfs.poland.xray", "--dry-run", "--no-eval"];
    promote_dry_run_json: ["promote", "bfs.poland.xray", "--dry-run", "--no-eval", "--format", "json"];
    add_host_dry_run: ["add-host", "node-03", "--address", "10.9.8.7", "--dry-run", "--no-eval"];
    rebuild_dry_run: ["rebuild", "--dry-run"];
    explain: ["explain", "NF001"];
    completions_bash: ["completions", "bash"];
    completions_zsh: ["completions", "zsh"];
    man: ["man"];
    secrets_check_json: ["secrets", "check", "--format", "json"];
    help: ["--help"];
    version: ["--version"];
    init_summary: ["init", "fresh", "--domain", "example.org", "--primary", "a=10.0.0.1", "--standby", "b=10.0.0.2"];
}

/// The shell's own `| head -1`: the reader takes one line and goes away
/// while nixflip is still writing. With `pipefail` the pipeline's status is
/// nixflip's.
#[test]
fn a_shell_pipeline_into_head_sees_nixflip_succeed() {
    let (_tmp, root) = flake();
    let out = Command::new("bash")
        .args([
            "-c",
            "set -o pipefail; \"$0\" man | head -1; \"$0\" completions bash | head -1",
            env!("CARGO_BIN_EXE_nixflip"),
        ])
        .current_dir(&root)
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.is_empty(), "stderr:\n{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}
