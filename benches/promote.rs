//! `promote` benchmark: `nixflip promote HOST --dry-run` against
//! one bare `nix eval --json` of the same managed fields for all members,
//! measured in the same run.
//!
//! Target: nixflip's total within 1.25x of that bare evaluation, i.e.
//! everything nixflip adds (discovery, planning, the scratch copy, the
//! rewrite, the rules, the diff) costs under a quarter of one evaluation.
//!
//! Second part: a generated 10-host cluster. A `nix` wrapper on PATH (it
//! logs its argv, then runs the real `nix`) counts the Nix processes one
//! `promote --dry-run` starts: it must be one, not one per host. The timings
//! of one 10-host evaluation and of ten one-host evaluations show what that
//! saves.
//!
//! Run with `cargo bench --bench promote` after `cargo build --release`
//! (see benches/run.sh). A miss is printed, never a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::flakes::{copy_tree, generate_cluster, overrides, repo};
use common::{measure_rounds, release_binary, run_checked, run_quiet, runs, Sample};
use nixflip::eval;
use nixflip::nixedit::AttrPath;

const OPTION: &str = "hectic.generic.matrix-cluster";
const TARGET: f64 = 1.25;

/// The exact `nix eval` argv nixflip runs for `hosts` (zero config: no
/// pinned attributes), so the baseline evaluates the same fields.
fn bare_eval(root: &Path, hosts: &[&str], overrides: &[String]) -> Command {
    let option: AttrPath = OPTION.parse().expect("option path");
    let hosts: Vec<(String, Option<String>)> =
        hosts.iter().map(|h| (h.to_string(), None)).collect();
    let mut cmd = Command::new("nix");
    cmd.args(eval::eval_args(
        eval::Flake::Own(root),
        &option,
        &hosts,
        overrides,
    ));
    cmd
}

fn promote_dry_run(bin: &Path, root: &Path, host: &str, overrides: &[String]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--flake")
        .arg(root)
        .args(["promote", host, "--dry-run", "--color", "never"])
        .args(overrides.iter().map(|o| format!("--nix-option={o}")));
    cmd
}

/// A `nix` on PATH that logs each invocation and runs the real one.
fn counting_nix(dir: &Path, log: &Path) -> PathBuf {
    let real = run_checked(Command::new("sh").args(["-c", "command -v nix"]));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let script = format!(
        "#!/bin/sh\necho \"$1 $2 $3 $4\" >> '{}'\nexec '{}' \"$@\"\n",
        log.display(),
        real.trim()
    );
    let path = bin.join("nix");
    std::fs::write(&path, script).expect("wrapper");
    run_quiet(Command::new("chmod").arg("+x").arg(&path));
    bin
}

fn print_table(title: &str, baseline: &Sample, rows: &[(&Sample, Option<f64>)]) {
    println!("\n{title}");
    println!(
        "{:<58} {:>10} {:>10} {:>10} {:>7}  target",
        "operation", "median ms", "min ms", "max ms", "ratio"
    );
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    for (sample, target) in std::iter::once(&(baseline, None)).chain(rows.iter()) {
        let ratio = ms(sample.median) / ms(baseline.median);
        let verdict = match target {
            Some(t) if ratio <= *t => format!("<= {t:.2} PASS"),
            Some(t) => format!("<= {t:.2} MISS"),
            None => String::new(),
        };
        println!(
            "{:<58} {:>10.1} {:>10.1} {:>10.1} {:>7.3}  {verdict}",
            sample.name,
            ms(sample.median),
            ms(sample.min),
            ms(sample.max),
            ratio
        );
    }
}

fn main() {
    let Some(bin) = release_binary() else {
        println!(
            "promote bench: target/release/nixflip not built; run `cargo build --release` first"
        );
        return;
    };
    if Command::new("nix").arg("--version").output().is_err() {
        println!("promote bench: `nix` not found; nothing to compare against");
        return;
    }
    let runs = runs();
    let work = tempfile::tempdir().expect("temp dir");
    let overrides = overrides();
    let overrides = &overrides;

    // Part 1: the example flake.
    let two = work.path().join("two-node");
    copy_tree(&repo().join("examples/two-node"), &two);
    let hosts = ["hectic-lab", "bfs.poland.xray"];
    // Check once that both do what is measured.
    run_checked(&mut bare_eval(&two, &hosts, overrides));
    let plan = run_checked(&mut promote_dry_run(
        &bin,
        &two,
        "bfs.poland.xray",
        overrides,
    ));
    assert!(
        plan.contains("primary"),
        "unexpected promote output:\n{plan}"
    );
    let samples = measure_rounds(
        runs,
        vec![
            (
                "nix eval --json (managed fields, 2 hosts)",
                Box::new(|| run_quiet(&mut bare_eval(&two, &hosts, overrides))),
            ),
            (
                "nixflip promote bfs.poland.xray --dry-run",
                Box::new(|| {
                    run_quiet(&mut promote_dry_run(
                        &bin,
                        &two,
                        "bfs.poland.xray",
                        overrides,
                    ))
                }),
            ),
        ],
    );
    print_table(
        &format!("examples/two-node ({runs} runs, interleaved)"),
        &samples[0],
        &[(&samples[1], Some(TARGET))],
    );

    // Part 2: ten hosts, one Nix process.
    let ten = work.path().join("ten-node");
    let names = generate_cluster(&ten, 10);
    let log = work.path().join("nix-calls.log");
    let wrapper = counting_nix(work.path(), &log);
    let path = format!(
        "{}:{}",
        wrapper.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run_checked(promote_dry_run(&bin, &ten, "node-03", overrides).env("PATH", &path));
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    let count = calls.lines().count();
    println!(
        "\n10-host cluster: `nixflip promote node-03 --dry-run` started {count} nix process(es):"
    );
    for line in calls.lines() {
        println!("  nix {line} …");
    }
    println!(
        "  {}",
        if count == 1 {
            "one process for all hosts: PASS"
        } else {
            "expected exactly one: MISS"
        }
    );

    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    run_checked(&mut bare_eval(&ten, &refs, overrides));
    let samples = measure_rounds(
        runs,
        vec![
            (
                "nix eval --json (managed fields, 10 hosts, 1 process)",
                Box::new(|| run_quiet(&mut bare_eval(&ten, &refs, overrides))),
            ),
            (
                "nixflip promote node-03 --dry-run (10 hosts)",
                Box::new(|| run_quiet(&mut promote_dry_run(&bin, &ten, "node-03", overrides))),
            ),
            (
                "nix eval --json once per host (10 processes)",
                Box::new(|| {
                    for name in &refs {
                        run_quiet(&mut bare_eval(&ten, &[name], overrides));
                    }
                }),
            ),
        ],
    );
    print_table(
        &format!("generated 10-host cluster ({runs} runs, interleaved)"),
        &samples[0],
        &[(&samples[1], Some(TARGET)), (&samples[2], None)],
    );
}
