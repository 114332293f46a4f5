//! `scratch` benchmark: what each piece of scratch-copy machinery would save
//! `promote --dry-run`, measured in the same interleaved rounds. It never
//! fails on a figure: it prints them.
//!
//! Every row is the whole of `promote HOST --dry-run` up to Nix's answer, in
//! this process, through the library: load the configuration and the
//! cluster, plan, make the rewrite, make a scratch copy and write the rewrite
//! into it, run the rules on it, run the one `nix eval` (the exact argv
//! nixflip builds) and wait for it, remove the copy. The rows differ only in
//! three pieces, composed here:
//!
//! - gate: Nix is started before the copy exists, held at an empty FIFO
//!   appended to `NIX_USER_CONF_FILES` until the copy is written, so that its
//!   start-up overlaps the copy (without: Nix starts once the copy is written);
//! - janitor: a process (this benchmark started again as `janitor DIR`) that
//!   removes the copy once its stdin closes, so the removal is off nixflip's
//!   path (without: the copy is removed in the process);
//! - early removal: the copy is handed to its remover as soon as Nix has
//!   printed its answer, while Nix is still exiting (without: once Nix has
//!   exited).
//!
//! The saving of a piece is the median of its per-round differences: the
//! row with every piece but that one, minus the row with all three. A piece
//! that saves under 5 ms on the example is not worth its machinery.
//!
//! Run with `cargo bench --bench scratch` (`NIXFLIP_BENCH_RUNS` rounds,
//! default 15, after one warm-up round).

mod common;

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::flakes::{copy_tree, generate_cluster, overrides};
use common::{run_checked, runs};
use nixflip::cluster::plan::plan_promote;
use nixflip::cluster::{rules, Cluster};
use nixflip::eval::{self, Flake, Scratch};
use nixflip::transaction::Change;

/// A piece saving less than this on the example is not worth keeping.
const WORTH_MS: f64 = 5.0;

#[derive(Clone, Copy)]
struct Pieces {
    gate: bool,
    janitor: bool,
    early_removal: bool,
}

const ALL: Pieces = Pieces {
    gate: true,
    janitor: true,
    early_removal: true,
};

/// The rows: all pieces, each piece left out, none.
const VARIANTS: [(&str, Pieces); 5] = [
    ("gate + janitor + early removal", ALL),
    ("without the gate", Pieces { gate: false, ..ALL }),
    (
        "without the janitor",
        Pieces {
            janitor: false,
            ..ALL
        },
    ),
    (
        "without early removal",
        Pieces {
            early_removal: false,
            ..ALL
        },
    ),
    (
        "none of them",
        Pieces {
            gate: false,
            janitor: false,
            early_removal: false,
        },
    ),
];

/// `nix` by absolute path, as nixflip starts it.
fn nix_path() -> PathBuf {
    PathBuf::from(run_checked(Command::new("sh").args(["-c", "command -v nix"])).trim())
}

/// The user configuration files Nix reads here, as it reports them.
fn user_conf_files(nix: &Path) -> String {
    let out = run_checked(Command::new(nix).args(["--verbose", "--version"]));
    out.lines()
        .find_map(|l| l.strip_prefix("User configuration files: "))
        .expect("nix --verbose --version lists its user configuration files")
        .to_string()
}

/// The FIFO Nix is held at, and the thread that opens it.
struct Gate {
    fifo: PathBuf,
    conf_files: OsString,
    opener: Option<std::thread::JoinHandle<()>>,
}

impl Gate {
    fn new(dir: &Path, user_conf: &str) -> Gate {
        let fifo = dir.join("gate.conf");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .expect("mkfifo");
        let conf_files = format!("{user_conf}:{}", fifo.display()).into();
        Gate {
            fifo,
            conf_files,
            opener: None,
        }
    }

    /// Let Nix through: its read of the FIFO ends, empty.
    fn open(&mut self) {
        let fifo = self.fifo.clone();
        self.opener = Some(std::thread::spawn(move || {
            drop(std::fs::OpenOptions::new().write(true).open(&fifo));
            let _ = std::fs::remove_file(&fifo);
        }));
    }

    fn join(mut self) {
        if let Some(opener) = self.opener.take() {
            opener.join().expect("the opener ends once Nix has read");
        }
    }
}

/// A process that removes `dir` once its stdin closes.
struct Janitor {
    stdin: std::process::ChildStdin,
    process: Child,
}

impl Janitor {
    fn start(dir: &Path) -> Janitor {
        let mut process = Command::new(std::env::current_exe().expect("own path"))
            .arg("janitor")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the janitor");
        let stdin = process.stdin.take().expect("piped stdin");
        Janitor { stdin, process }
    }
}

/// `janitor DIR`: wait until stdin closes, then remove DIR, or the
/// directory named on stdin (where the copy was handed over).
fn janitor_main(dir: &Path) -> ! {
    let mut handed = String::new();
    let _ = std::io::stdin().read_to_string(&mut handed);
    let dir = if handed.is_empty() {
        dir
    } else {
        Path::new(&handed)
    };
    let code = i32::from(std::fs::remove_dir_all(dir).is_err());
    std::process::exit(code)
}

/// The scratch copy's remover once nixflip is done with it: the janitor is
/// handed the directory (moved aside first, so that the copy's own drop
/// finds nothing left), or a thread drops it, or it is dropped here.
enum Removing {
    /// The janitor, to be reaped once the timing is done; and the directory
    /// it removes.
    Janitor(Child, PathBuf),
    Thread(std::thread::JoinHandle<()>),
    Done,
}

fn hand_off(scratch: Scratch, janitor: Option<Janitor>, early: bool) -> Removing {
    match janitor {
        Some(janitor) => {
            let dir = scratch.dir().to_path_buf();
            let handed = dir.with_extension("handed");
            std::fs::rename(&dir, &handed).expect("hand the copy over");
            drop(scratch);
            let mut stdin = janitor.stdin;
            std::io::Write::write_all(&mut stdin, handed.as_os_str().as_encoded_bytes())
                .expect("tell the janitor");
            drop(stdin);
            Removing::Janitor(janitor.process, handed)
        }
        None if early => Removing::Thread(std::thread::spawn(move || drop(scratch))),
        None => {
            drop(scratch);
            Removing::Done
        }
    }
}

/// `promote HOST --dry-run` up to Nix's answer, with `pieces`. Returns a
/// janitor still at work (nixflip would have exited by now), to be reaped
/// outside the timing.
fn promote(flake: &Input, pieces: Pieces) -> Option<(Child, PathBuf)> {
    let root = flake.root.as_path();
    let loaded = nixflip::config::load(root, None).expect("config");
    let cluster = Cluster::load(root, loaded).expect("cluster");
    let plan = plan_promote(&cluster, &flake.host, false).expect("plan");
    let change = Change::promote(&cluster, &plan).expect("change");
    let mut scratch = Scratch::new().expect("scratch");
    let dir = scratch.dir().to_path_buf();
    let args = eval::eval_args(
        Flake::Scratch(&scratch),
        &cluster.option,
        &eval::member_hosts(&cluster),
        &eval::configured_nix_args(&cluster, &flake.nix_args),
    );
    let spawn = |gate: Option<&Gate>| {
        let mut cmd = Command::new(&flake.nix);
        cmd.args(&args).stdout(Stdio::piped()).stderr(Stdio::null());
        if let Some(gate) = gate {
            cmd.env("NIX_USER_CONF_FILES", &gate.conf_files);
        }
        cmd.spawn().expect("nix runs")
    };
    let mut gate = pieces.gate.then(|| Gate::new(&dir, &flake.user_conf));
    let early_child = gate.as_ref().map(|g| spawn(Some(g)));
    let mut janitor = pieces.janitor.then(|| Janitor::start(&dir));
    scratch.copy_from(root).expect("copy");
    for f in &change.files {
        scratch.write(&f.path, &f.new).expect("write");
    }
    if let Some(gate) = &mut gate {
        gate.open();
    }
    let mut child = early_child.unwrap_or_else(|| spawn(None));
    let after = cluster
        .with_rewrites(
            scratch.flake(),
            change.files.iter().map(|f| (f.path.clone(), f.new.clone())),
            cluster.config.clone(),
        )
        .expect("rewritten cluster");
    std::hint::black_box(rules::check(&after));
    // Nix's answer is one line, printed before it exits.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    while answer.last() != Some(&b'\n') {
        let n = stdout.read(&mut buf).expect("read nix");
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let mut scratch = Some(scratch);
    let mut removing = Removing::Done;
    if pieces.early_removal {
        if let Some(s) = scratch.take() {
            removing = hand_off(s, janitor.take(), true);
        }
    }
    stdout.read_to_end(&mut answer).expect("read nix");
    let status = child.wait().expect("nix exits");
    assert!(status.success(), "nix eval failed");
    assert!(answer.starts_with(b"{"), "unexpected answer");
    if let Some(gate) = gate {
        gate.join();
    }
    if let Some(s) = scratch {
        removing = hand_off(s, janitor.take(), false);
    }
    match removing {
        Removing::Janitor(process, dir) => Some((process, dir)),
        Removing::Thread(t) => {
            t.join().expect("removal");
            None
        }
        Removing::Done => None,
    }
}

/// A flake to promote a host of.
struct Input {
    name: String,
    root: PathBuf,
    host: String,
    nix: PathBuf,
    user_conf: String,
    nix_args: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The bare `nix eval` of the same fields in the flake itself: the scale.
fn bare_eval(flake: &Input) {
    let root = flake.root.as_path();
    let loaded = nixflip::config::load(root, None).expect("config");
    let cluster = Cluster::load(root, loaded).expect("cluster");
    let args = eval::eval_args(
        Flake::Own(root),
        &cluster.option,
        &eval::member_hosts(&cluster),
        &eval::configured_nix_args(&cluster, &flake.nix_args),
    );
    let out = Command::new(&flake.nix)
        .args(&args)
        .stderr(Stdio::null())
        .output()
        .expect("nix runs");
    assert!(out.status.success(), "bare nix eval failed");
}

/// One warm-up round, then `runs` rounds of the bare evaluation and every
/// variant, in order; the times of each call in ms: the bare evaluation's,
/// and by variant.
fn measure(flake: &Input, runs: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut bare = Vec::with_capacity(runs);
    let mut times = vec![Vec::with_capacity(runs); VARIANTS.len()];
    for round in 0..=runs {
        let start = Instant::now();
        bare_eval(flake);
        if round > 0 {
            bare.push(ms(start.elapsed()));
        }
        for (i, (_, pieces)) in VARIANTS.iter().enumerate() {
            let start = Instant::now();
            let janitor = promote(flake, *pieces);
            let took = start.elapsed();
            if let Some((mut process, dir)) = janitor {
                let done = process.wait().expect("janitor exits");
                assert!(
                    done.success() && !dir.exists(),
                    "the janitor removed the copy"
                );
            }
            if round > 0 {
                times[i].push(ms(took));
            }
        }
    }
    (bare, times)
}

/// The work each piece can take off promote's path, timed alone: the
/// scratch copy with the rewrite in it (all a gate can overlap with Nix's
/// start-up), and its removal (all a janitor or early removal can move off
/// the path). A piece saves at most that, less its own cost. Medians of
/// `rounds` calls, in ms.
fn phases(flake: &Input, rounds: usize) -> (f64, f64) {
    let root = flake.root.as_path();
    let loaded = nixflip::config::load(root, None).expect("config");
    let cluster = Cluster::load(root, loaded).expect("cluster");
    let plan = plan_promote(&cluster, &flake.host, false).expect("plan");
    let change = Change::promote(&cluster, &plan).expect("change");
    let (mut copy, mut removal) = (Vec::new(), Vec::new());
    for round in 0..=rounds {
        let start = Instant::now();
        let mut scratch = Scratch::new().expect("scratch");
        scratch.copy_from(root).expect("copy");
        for f in &change.files {
            scratch.write(&f.path, &f.new).expect("write");
        }
        let copied = start.elapsed();
        let start = Instant::now();
        drop(scratch);
        let removed = start.elapsed();
        if round > 0 {
            copy.push(ms(copied));
            removal.push(ms(removed));
        }
    }
    (median(copy), median(removal))
}

fn report(flake: &Input, baseline: f64, times: &[Vec<f64>], runs: usize) {
    println!(
        "\n== {}: promote {} --dry-run, in-process ({runs} rounds, interleaved) ==",
        flake.name, flake.host
    );
    println!(
        "{:<40} {:>10} {:>10} {:>10}",
        "variant", "median ms", "min ms", "ratio"
    );
    println!(
        "{:<40} {:>10.1} {:>10} {:>10.3}",
        "bare nix eval --json (same argv)", baseline, "", 1.0
    );
    for ((name, _), t) in VARIANTS.iter().zip(times) {
        let min = t.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{:<40} {:>10.1} {:>10.1} {:>10.3}",
            name,
            median(t.clone()),
            min,
            median(t.clone()) / baseline
        );
    }
    println!(
        "saving of each piece (per-round differences, without it - all three; median [quartiles]):"
    );
    let pieces = [
        (1, "gate"),
        (2, "janitor"),
        (3, "early removal"),
        (4, "all three"),
    ];
    for (i, piece) in pieces {
        let mut diffs: Vec<f64> = times[i].iter().zip(&times[0]).map(|(w, a)| w - a).collect();
        diffs.sort_by(f64::total_cmp);
        let quartile = |q: usize| diffs[(diffs.len() - 1) * q / 4];
        let saving = quartile(2);
        let verdict = match i {
            4 => "",
            _ if saving >= WORTH_MS => "worth keeping (>= 5 ms)",
            _ => "under 5 ms",
        };
        println!(
            "  {piece:<14} {saving:>7.2} ms  [{:>6.2}, {:>6.2}]  {verdict}",
            quartile(1),
            quartile(3)
        );
    }
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let [_, command, dir] = args.as_slice() {
        if command == "janitor" {
            janitor_main(Path::new(dir));
        }
    }
    if Command::new("nix").arg("--version").output().is_err() {
        println!("scratch bench: `nix` not found; install nix-bin");
        std::process::exit(1);
    }
    let runs = runs();
    let nix = nix_path();
    let user_conf = user_conf_files(&nix);
    let work = tempfile::tempdir().expect("temp dir");
    let nix_args = overrides();

    let two = work.path().join("two-node");
    copy_tree(&common::flakes::repo().join("examples/two-node"), &two);
    let ten = work.path().join("ten-node");
    generate_cluster(&ten, 10);
    let inputs = [
        Input {
            name: "examples/two-node".into(),
            root: two,
            host: "bfs.poland.xray".into(),
            nix: nix.clone(),
            user_conf: user_conf.clone(),
            nix_args: nix_args.clone(),
        },
        Input {
            name: "generated 10-host cluster".into(),
            root: ten,
            host: "node-03".into(),
            nix,
            user_conf,
            nix_args,
        },
    ];
    for flake in &inputs {
        let (bare, times) = measure(flake, runs);
        report(flake, median(bare), &times, runs);
        let rounds = runs * 10;
        let (copy, removal) = phases(flake, rounds);
        println!("what the pieces can take off the path, timed alone ({rounds} calls, medians):");
        println!(
            "  scratch copy + rewrite (a gate overlaps at most this)           {copy:>7.2} ms"
        );
        println!("  removal of the copy (a janitor or early removal hides at most this) {removal:>7.2} ms");
    }
}
