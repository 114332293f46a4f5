//! The scratch flake and the gate that lets Nix start before it is written,
//! with the real `nix`: the gate holds Nix at its configuration read, keeps
//! the user's own configuration files, and notices a Nix that never came;
//! the scratch copy links files without ever writing through a link.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nixflip::eval::{self, default_conf_files_from, Flake, Gate, Scratch};
use nixflip::nixedit::AttrPath;

fn example() -> std::path::PathBuf {
    common::repo().join("examples/two-node")
}

/// How long a process may take to reach a gate (polled, not slept).
const DEADLINE: Duration = Duration::from_secs(20);

/// Whether `cond` holds within [`DEADLINE`], checked every 10 ms.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Whether a thread of process `pid` is blocked opening a FIFO that nothing
/// has opened for writing: the kernel shows it waiting in
/// `wait_for_partner` (Linux's `/proc/PID/task/TID/wchan`).
fn held_at_a_fifo(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("wchan")).is_ok_and(|w| w == "wait_for_partner")
    })
}

/// The processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

/// The line where `nix --verbose --version` lists the user configuration
/// files it reads.
fn user_conf_line(output: &[u8]) -> String {
    String::from_utf8_lossy(output)
        .lines()
        .find_map(|l| l.strip_prefix("User configuration files: "))
        .unwrap_or_else(|| {
            panic!(
                "no user config line in:\n{}",
                String::from_utf8_lossy(output)
            )
        })
        .to_string()
}

#[test]
fn nix_waits_at_the_gate_and_keeps_the_users_config_files() {
    // The gate reads this process's environment, as nixflip's would.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut gate = Gate::new(dir.path()).expect("a FIFO can be made in a temp dir");
    let (name, value) = gate.env();
    let mut child = Command::new("nix")
        .args(["--verbose", "--version"])
        .env(name, value)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("nix runs");
    // Nix gets to its configuration and stops there, at the FIFO.
    assert!(
        eventually(|| held_at_a_fifo(child.id())),
        "nix never waited at the gate: {:?}",
        child.try_wait()
    );
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "nix went past a closed gate"
    );
    gate.open();
    let output = child.wait_with_output().expect("nix finishes");
    assert!(output.status.success());
    let gate_fifo = gate.fifo().to_path_buf();
    assert!(gate.close(), "nix read the FIFO, so it passed the gate");
    // It served its one reader and is gone: a process Nix starts with the
    // same environment is not held there.
    assert!(!gate_fifo.exists());

    // The list Nix reads is the one it reads without the gate, plus the
    // FIFO, which is empty and so changes no setting.
    let gated = user_conf_line(&output.stdout);
    let plain = Command::new("nix")
        .args(["--verbose", "--version"])
        .output()
        .expect("nix runs");
    assert_eq!(
        gated,
        format!("{}:{}", user_conf_line(&plain.stdout), gate_fifo.display())
    );
}

#[test]
fn the_default_config_file_list_is_the_one_nix_computes() {
    let cases = [
        (Some("/h"), None, None),
        (Some("/h"), Some("/x/config"), None),
        (Some("/h"), None, Some("/a::/b")),
        (Some("/h"), Some(""), Some("/etc/xdg")),
    ];
    for (home, config_home, config_dirs) in cases {
        let mut cmd = Command::new("nix");
        cmd.args(["--verbose", "--version"])
            .env_remove("NIX_USER_CONF_FILES")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_CONFIG_DIRS");
        for (var, value) in [
            ("HOME", home),
            ("XDG_CONFIG_HOME", config_home),
            ("XDG_CONFIG_DIRS", config_dirs),
        ] {
            if let Some(value) = value {
                cmd.env(var, value);
            }
        }
        let output = cmd.output().expect("nix runs");
        let ours = default_conf_files_from(
            home.map(String::from),
            config_home.map(String::from),
            config_dirs.map(String::from),
        );
        assert_eq!(
            ours.as_deref(),
            Some(user_conf_line(&output.stdout).as_str()),
            "HOME={home:?} XDG_CONFIG_HOME={config_home:?} XDG_CONFIG_DIRS={config_dirs:?}"
        );
    }
    // A config home with ':' cannot be written in the list: no gate.
    assert_eq!(
        default_conf_files_from(Some("/h".into()), Some("/a:b".into()), None),
        None
    );
}

#[test]
fn a_process_that_never_reads_the_fifo_is_noticed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut gate = Gate::new(dir.path()).expect("gate");
    let (name, value) = gate.env();
    let status = Command::new("true")
        .env(name, value)
        .status()
        .expect("true runs");
    assert!(status.success());
    gate.open();
    assert!(
        !gate.close(),
        "nothing read the FIFO, so nothing was held at the gate"
    );
}

#[test]
fn an_unopened_gate_is_dropped_without_waiting() {
    let scratch = Scratch::new().expect("scratch");
    let option: AttrPath = "hectic.generic.matrix-cluster".parse().expect("option");
    let hosts = [("hectic-lab".to_string(), None)];
    // Nix starts and waits at the gate; dropping the pending evaluation
    // kills it and frees the gate's opener (this test would hang otherwise).
    let pending =
        eval::start(Flake::ScratchBeingWritten(&scratch), &option, &hosts, &[]).expect("start");
    drop(pending);
    // And an opened gate whose Nix is killed before it gets there.
    let mut pending =
        eval::start(Flake::ScratchBeingWritten(&scratch), &option, &hosts, &[]).expect("start");
    pending.open_gate().expect("open");
    drop(pending);
}

#[test]
fn a_gated_evaluation_reads_the_flake_written_after_nix_started() {
    let mut scratch = Scratch::new().expect("scratch");
    let option: AttrPath = "hectic.generic.matrix-cluster".parse().expect("option");
    let hosts = [
        ("hectic-lab".to_string(), None),
        ("bfs.poland.xray".to_string(), None),
    ];
    let mut pending = eval::start(
        Flake::ScratchBeingWritten(&scratch),
        &option,
        &hosts,
        &common::nix_overrides(),
    )
    .expect("start");
    // Nix is running, held at the gate before it looks for flake.nix, which
    // does not exist yet.
    let flake = scratch.flake().display().to_string();
    assert!(
        eventually(|| processes_mentioning(&flake).into_iter().any(held_at_a_fifo)),
        "no nix evaluating {flake} waits at the gate"
    );
    assert!(!scratch.flake().join("flake.nix").exists());
    scratch.copy_from(&example()).expect("copy");
    pending.open_gate().expect("open");
    // Nix read the gate's FIFO: it was held there, and its answer is not a
    // second run's.
    assert!(pending.answered().expect("nix answers"));
    let answers = pending.finish().expect("nix eval of the scratch flake");
    let roles: Vec<(&str, &str)> = answers
        .iter()
        .map(|(host, (_, fields))| (host.as_str(), fields.role.as_str()))
        .collect();
    assert_eq!(
        roles,
        [("bfs.poland.xray", "standby"), ("hectic-lab", "primary")]
    );
}

#[test]
fn the_scratch_copy_links_files_and_never_writes_through_a_link() {
    let user = tempfile::tempdir().expect("temp dir");
    common::copy_tree(&example(), user.path());
    std::fs::write(user.path().join("flake.lock"), "{ \"version\": 7 }\n").expect("lock");
    let host = Path::new("nixos/system/hectic-lab/hectic-lab.nix");
    let before = std::fs::read(user.path().join(host)).expect("host file");

    let scratch = Scratch::copy_of(user.path()).expect("scratch copy");
    let inode = |root: &Path, rel: &str| std::fs::metadata(root.join(rel)).expect("stat").ino();
    // Same file system (both under the temp dir): unchanged files are links.
    let module = "nixos/module/matrix-cluster.nix";
    assert_eq!(inode(user.path(), module), inode(scratch.flake(), module));
    // Nix may rewrite the lock file, so it is a copy.
    assert_ne!(
        inode(user.path(), "flake.lock"),
        inode(scratch.flake(), "flake.lock")
    );
    assert_eq!(
        std::fs::read(scratch.flake().join("flake.lock")).expect("lock copy"),
        b"{ \"version\": 7 }\n"
    );

    scratch.write(host, "# rewritten\n").expect("write");
    assert_eq!(
        std::fs::read(user.path().join(host)).expect("host file"),
        before,
        "the user's file is untouched"
    );
    assert_eq!(
        std::fs::read_to_string(scratch.flake().join(host)).expect("scratch file"),
        "# rewritten\n"
    );
    drop(scratch);
    assert_eq!(
        std::fs::read(user.path().join(host)).expect("host file"),
        before,
        "removing the scratch copy leaves the user's file"
    );
}

/// nixflip killed before it opened the gate leaves Nix blocked opening the
/// FIFO; the janitor's sweep releases it before it removes the copy.
#[test]
fn the_sweep_releases_a_reader_held_at_the_gate() {
    let scratch = Scratch::new().expect("scratch");
    let dir = scratch
        .flake()
        .parent()
        .expect("the flake is in the scratch directory")
        .to_path_buf();
    let gate = Gate::new(&dir).expect("gate");
    // A reader that, like Nix, opens the FIFO and reads it to the end.
    let mut reader = Command::new("cat")
        .arg(gate.fifo())
        .stdout(Stdio::null())
        .spawn()
        .expect("cat runs");
    assert!(
        eventually(|| held_at_a_fifo(reader.id())),
        "the reader never waited at the gate"
    );
    assert!(reader.try_wait().expect("try_wait").is_none(), "held");
    // The gate is never opened (nixflip is gone): the janitor sweeps.
    assert_eq!(eval::sweep(&dir), 0);
    let released = eventually(|| reader.try_wait().expect("try_wait").is_some());
    assert!(released, "the reader is still held at the gate");
    assert!(!dir.exists(), "the scratch directory is gone");
    // Only scratch directories are swept.
    let other = tempfile::tempdir().expect("temp dir");
    assert_eq!(eval::sweep(other.path()), 2);
    assert!(other.path().exists());
}
