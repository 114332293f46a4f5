//! Editor benchmark: nixflip `get`/`set` on a ~1 MB `.nix` file against
//! `nix-instantiate --parse` of the same file, measured in the same run.
//!
//! Target: nixflip's `set` takes no longer than Nix's own parser takes to
//! parse the file (ratio <= 1.0). A miss is printed, never a failure.
//!
//! Run with `cargo bench --bench editor` (see benches/run.sh).

mod common;

use std::process::Command;

use nixflip::nixedit::{self, AttrPath, NewValue, NixFile, Value};

use common::module::{generate, DEEP_PATH, OLD_PEER};

const NEW_PEER: &str = "203.0.113.77";

fn main() {
    // `cargo bench` passes --bench; a filter argument is ignored.
    let runs = common::runs();
    let text = generate(960);
    let (_guard, dir) = common::temp_dir();
    let file = dir.join("big.nix");
    std::fs::write(&file, &text).expect("write big.nix");
    let path: AttrPath = DEEP_PATH.parse().expect("attr path");
    let new = NewValue::Literal(Value::String(NEW_PEER.into()));

    // Sanity: the file parses, the path is found, the edit is what we expect.
    let parsed = NixFile::parse("big.nix", text.clone()).expect("big.nix parses");
    let bindings = parsed.bindings().len();
    let found = parsed.get(&path).expect("deep path found");
    assert_eq!(found.value, Some(Value::String(OLD_PEER.into())));
    let edited = nixedit::set(&parsed, &path, &new).expect("set");
    assert!(edited.changed);
    assert_eq!(
        edited.text.len(),
        text.len() - OLD_PEER.len() + NEW_PEER.len()
    );
    assert_eq!(
        edited.text.replacen(NEW_PEER, OLD_PEER, 1).len(),
        text.len()
    );
    let lines = text.lines().count();
    drop(parsed);

    println!(
        "editor bench: {} ({} bytes, {} lines, {} bindings seen by nixflip, path {DEEP_PATH} at line {}), {runs} runs each, {} CPUs",
        file.display(),
        text.len(),
        lines,
        bindings,
        found.line,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    // Every operation and the baseline are timed in interleaved rounds
    // (common::measure_rounds), so a change of machine load during the run
    // hits all of them alike.
    const BASELINE: &str = "nix-instantiate --parse FILE";
    const IN_SET: &str = "nixflip set (in-process: parse + set + verify)";
    const BIN_SET: &str = "nixflip set FILE PATH VALUE --diff (release binary)";
    const BIN_GET: &str = "nixflip get FILE PATH (release binary)";
    let pre = NixFile::parse("big.nix", text.clone()).expect("parse");
    let bin = common::release_binary();
    let value = format!("\"{NEW_PEER}\"");
    let (file, value) = (&file, &value);
    let mut ops: Vec<common::Op> = Vec::new();
    let have_nix = common::have_nix_instantiate();
    if have_nix {
        common::run_checked(Command::new("nix-instantiate").arg("--parse").arg(file));
        ops.push((
            BASELINE,
            Box::new(move || {
                common::run_quiet(Command::new("nix-instantiate").arg("--parse").arg(file))
            }),
        ));
    } else {
        println!("note: nix-instantiate is not on PATH; no baseline, no ratios");
    }
    // Phases, in process: what the operations below are made of.
    ops.push((
        "phase: rnix::Root::parse only",
        Box::new(|| {
            let root = rnix::Root::parse(&text);
            assert!(root.errors().is_empty());
        }),
    ));
    ops.push((
        "phase: NixFile::parse (parse; bindings walked lazily)",
        Box::new(|| {
            NixFile::parse("big.nix", text.clone()).expect("parse");
        }),
    ));
    ops.push((
        "phase: nixedit::set on a parsed file",
        Box::new(|| {
            let e = nixedit::set(&pre, &path, &new).expect("set");
            assert!(e.changed);
        }),
    ));
    // The operations.
    ops.push((
        "nixflip get (in-process: parse + lookup)",
        Box::new(|| {
            let f = NixFile::parse("big.nix", text.clone()).expect("parse");
            let found = f.get(&path).expect("get");
            assert!(found.value.is_some());
        }),
    ));
    ops.push((
        IN_SET,
        Box::new(|| {
            let f = NixFile::parse("big.nix", text.clone()).expect("parse");
            let e = nixedit::set(&f, &path, &new).expect("set");
            assert!(e.changed);
        }),
    ));
    let mut targets = vec![IN_SET];
    match &bin {
        Some(bin) => {
            let set_cmd = move || {
                let mut c = Command::new(bin);
                c.args(["--color", "never", "set"])
                    .arg(file)
                    .args([DEEP_PATH, value, "--diff"]);
                c
            };
            let diff = common::run_checked(&mut set_cmd());
            assert!(
                diff.contains(NEW_PEER),
                "the binary's diff does not show the new value:\n{diff}"
            );
            ops.push((BIN_SET, Box::new(move || common::run_quiet(&mut set_cmd()))));
            ops.push((
                BIN_GET,
                Box::new(move || {
                    common::run_quiet(Command::new(bin).arg("get").arg(file).arg(DEEP_PATH))
                }),
            ));
            targets.push(BIN_SET);
        }
        None => println!(
            "note: target/release/nixflip is not built; run `cargo build --release` (benches/run.sh does) to time the binary"
        ),
    }

    let mut samples = common::measure_rounds(runs, ops);
    let baseline = have_nix.then(|| samples.remove(0));
    common::report(
        "editor: ~1 MB module, deep path get/set",
        baseline.as_ref(),
        &samples,
        &targets,
    );
}
