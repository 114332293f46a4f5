//! Large-file benchmark: the release binary's `set` and `unset` on generated
//! modules of 1 to 50 MB against `nix-instantiate --parse` of the same file,
//! timed in the same interleaved rounds, with each process's peak memory.
//!
//! Targets: every operation takes at most 1.0x the time and 1.5x the peak
//! memory of Nix's parse of the same file. A miss is printed, never a
//! failure. Each process runs under GNU time (`/usr/bin/time -f`), which
//! reports its wall time, CPU time and peak resident memory.
//!
//!     cargo build --release && cargo bench --bench large
//!     NIXFLIP_BENCH_SIZES=1,5 NIXFLIP_BENCH_RUNS=3 cargo bench --bench large

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::module::{generate, DEEP_PATH};

/// One measured process: wall seconds, CPU seconds, peak KB.
#[derive(Clone, Copy, Debug)]
struct Run {
    wall: f64,
    cpu: f64,
    peak_kb: u64,
}

const TIME: &str = "/usr/bin/time";

/// Run `argv` under GNU time, stdout discarded; panics unless it succeeds.
fn timed(argv: &[String]) -> Run {
    // Wall time measured here (GNU time rounds to 10 ms), the rest by it.
    let start = std::time::Instant::now();
    let out = Command::new(TIME)
        .args(["-f", "@@ %U %S %M"])
        .args(argv)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {TIME}: {e}"));
    let wall = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{argv:?} failed:\n{stderr}");
    let line = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("@@ "))
        .unwrap_or_else(|| panic!("no timing from {TIME}:\n{stderr}"));
    let f: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    Run {
        wall,
        cpu: f[0] + f[1],
        peak_kb: f[2] as u64,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn sizes() -> Vec<usize> {
    std::env::var("NIXFLIP_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1, 5, 20, 50])
}

/// The operations timed on one file, as argv vectors.
fn operations(bin: &Path, file: &Path) -> Vec<(&'static str, Vec<String>)> {
    let s = |x: &str| x.to_string();
    let bin = bin.display().to_string();
    let file = file.display().to_string();
    vec![
        (
            "nix-instantiate --parse FILE",
            vec![s("nix-instantiate"), s("--parse"), file.clone()],
        ),
        (
            "set DEEP.PATH (new file on stdout)",
            vec![
                bin.clone(),
                s("set"),
                file.clone(),
                s(DEEP_PATH),
                s("\"203.0.113.77\""),
            ],
        ),
        (
            "set a new top-level path (insert)",
            vec![
                bin.clone(),
                s("set"),
                file.clone(),
                s("zzz.added"),
                s("\"x\""),
            ],
        ),
        (
            "unset a top-level binding",
            vec![bin.clone(), s("unset"), file.clone(), s("services.app-3")],
        ),
        ("get DEEP.PATH", vec![bin, s("get"), file, s(DEEP_PATH)]),
    ]
}

fn main() {
    let runs = common::runs().min(15);
    let Some(bin) = common::release_binary() else {
        println!("target/release/nixflip is not built; run `cargo build --release` first");
        return;
    };
    if !Path::new(TIME).is_file() || !common::have_nix_instantiate() {
        println!("this benchmark needs GNU time ({TIME}, Debian's `time`) and nix-instantiate");
        return;
    }
    let (_guard, dir) = common::temp_dir();
    println!(
        "large-file bench: {runs} interleaved rounds per size, {} CPUs, release binary {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        bin.display()
    );
    println!();
    println!(
        "{:>6}  {:<38} {:>9} {:>9} {:>9} {:>7} {:>7}  target",
        "size", "operation", "wall s", "cpu s", "peak MB", "time", "memory"
    );
    for mb in sizes() {
        let text = generate(mb * 1_000_000 / 1_100);
        let file: PathBuf = dir.join(format!("big{mb}.nix"));
        std::fs::write(&file, &text).expect("write the module");
        let ops = operations(&bin, &file);
        let mut samples: Vec<Vec<Run>> = vec![Vec::new(); ops.len()];
        // One warm-up of each (the file into the page cache), then rounds.
        for (_, argv) in &ops {
            timed(argv);
        }
        for _ in 0..runs {
            for (i, (_, argv)) in ops.iter().enumerate() {
                samples[i].push(timed(argv));
            }
        }
        let summary: Vec<(f64, f64, f64)> = samples
            .iter()
            .map(|s| {
                (
                    median(s.iter().map(|r| r.wall).collect()),
                    median(s.iter().map(|r| r.cpu).collect()),
                    median(s.iter().map(|r| r.peak_kb as f64).collect()),
                )
            })
            .collect();
        let (base_wall, _, base_peak) = summary[0];
        for (i, ((name, _), (wall, cpu, peak))) in ops.iter().zip(&summary).enumerate() {
            let time_ratio = wall / base_wall;
            let mem_ratio = peak / base_peak;
            let verdict = if i == 0 {
                ""
            } else if time_ratio <= 1.0 && mem_ratio <= 1.5 {
                "PASS (<= 1.0x time, <= 1.5x memory)"
            } else {
                "MISS"
            };
            println!(
                "{:>4}MB  {:<38} {:>9.3} {:>9.3} {:>9.1} {:>7.3} {:>7.3}  {verdict}",
                mb,
                name,
                wall,
                cpu,
                peak / 1024.0,
                time_ratio,
                mem_ratio
            );
        }
        println!(
            "        ({} bytes; ratios: median wall time and median peak memory / those of nix-instantiate --parse)",
            text.len()
        );
    }
}
