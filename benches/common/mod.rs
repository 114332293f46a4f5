//! A plain timing harness shared by the benchmarks: run a closure N times,
//! take the median, and print a table of ratios against a baseline measured
//! in the same run. A missed target is printed, never turned into a failure.

#![allow(dead_code)]

pub mod flakes;
pub mod module;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Timed runs per operation (after one untimed warm-up run).
/// `NIXFLIP_BENCH_RUNS` overrides it.
pub fn runs() -> usize {
    std::env::var("NIXFLIP_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(15)
}

pub struct Sample {
    pub name: String,
    pub median: Duration,
    pub min: Duration,
    pub max: Duration,
}

/// One warm-up call, then `runs` timed calls; the closure panics on failure.
pub fn measure(name: &str, runs: usize, mut f: impl FnMut()) -> Sample {
    f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    Sample {
        name: name.to_string(),
        median: times[times.len() / 2],
        min: times[0],
        max: times[times.len() - 1],
    }
}

/// An operation to time: a name and a closure that panics on failure.
pub type Op<'a> = (&'a str, Box<dyn FnMut() + 'a>);

/// Time several operations in rounds: one warm-up call of each, then `runs`
/// rounds that each call every operation once, in order. On a shared machine
/// whose load changes during the run, every operation (the baseline too) sees
/// the same conditions, so the ratios stay meaningful. Samples come back in
/// the order of `ops`.
pub fn measure_rounds(runs: usize, mut ops: Vec<Op<'_>>) -> Vec<Sample> {
    for (_, f) in ops.iter_mut() {
        f();
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); ops.len()];
    for _ in 0..runs {
        for (i, (_, f)) in ops.iter_mut().enumerate() {
            let start = Instant::now();
            f();
            times[i].push(start.elapsed());
        }
    }
    ops.iter()
        .zip(times)
        .map(|((name, _), mut t)| {
            t.sort();
            Sample {
                name: name.to_string(),
                median: t[t.len() / 2],
                min: t[0],
                max: t[t.len() - 1],
            }
        })
        .collect()
}

/// Run a command to completion with stdout discarded; panic unless it succeeds.
pub fn run_quiet(cmd: &mut Command) {
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// Run a command once, capturing output, to check it does what is measured.
pub fn run_checked(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `target/release/nixflip`, when built (honours `CARGO_TARGET_DIR`).
pub fn release_binary() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target.join("release").join("nixflip");
    bin.is_file().then_some(bin)
}

/// `nix-instantiate`, when on PATH.
pub fn have_nix_instantiate() -> bool {
    Command::new("nix-instantiate")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Print the samples with their ratio to `baseline`; rows named in
/// `targets` get PASS (ratio <= 1) or MISS next to them.
pub fn report(title: &str, baseline: Option<&Sample>, samples: &[Sample], targets: &[&str]) {
    println!();
    println!("== {title} ==");
    println!(
        "{:<58} {:>10} {:>10} {:>10} {:>9}  target",
        "operation", "median ms", "min ms", "max ms", "ratio"
    );
    let rows = baseline.into_iter().chain(samples.iter());
    for s in rows {
        let ratio = baseline.map(|b| s.median.as_secs_f64() / b.median.as_secs_f64());
        let ratio_text = ratio.map_or_else(|| "-".to_string(), |r| format!("{r:.3}"));
        let verdict = match (ratio, targets.contains(&s.name.as_str())) {
            (Some(r), true) if r <= 1.0 => "PASS (<= 1.0)",
            (Some(_), true) => "MISS (> 1.0)",
            (None, true) => "n/a (no baseline)",
            _ => "",
        };
        println!(
            "{:<58} {:>10.3} {:>10.3} {:>10.3} {:>9}  {verdict}",
            s.name,
            ms(s.median),
            ms(s.min),
            ms(s.max),
            ratio_text
        );
    }
    if let Some(b) = baseline {
        println!("(ratio = median / median of `{}`)", b.name);
    }
}

/// A temp dir for the generated input; kept (and its path printed) when
/// `NIXFLIP_BENCH_KEEP` is set, so the input can be profiled by hand.
pub fn temp_dir() -> (Option<tempfile::TempDir>, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    if std::env::var_os("NIXFLIP_BENCH_KEEP").is_some() {
        let path = dir.keep();
        println!("keeping the generated input in {}", path.display());
        (None, path)
    } else {
        let path = dir.path().to_path_buf();
        (Some(dir), path)
    }
}
