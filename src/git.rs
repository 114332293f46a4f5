//! Running git: argv only (no shell), in a given directory, with git's own
//! message carried into the error (exit 3, an external command failed).

use std::ffi::OsStr;
use std::path::Path;

use crate::error::{Error, Result};

/// Variables naming paths that git reads relative to its working directory.
/// A commit runs its hooks with `GIT_INDEX_FILE=.git/index` (relative to
/// the top of the work tree), so a git run in another directory (a flake in
/// a subdirectory) must get them made absolute, or it reads another index.
const PATH_VARIABLES: [&str; 5] = [
    "GIT_DIR",
    "GIT_INDEX_FILE",
    "GIT_WORK_TREE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
];

/// Run `git ARGS` in `dir`, feeding `stdin` when given; its stdout.
pub fn bytes<S: AsRef<OsStr>>(dir: &Path, args: &[S], stdin: Option<Vec<u8>>) -> Result<Vec<u8>> {
    let mut cmd = duct::cmd("git", args)
        .dir(dir)
        .stdout_capture()
        .stderr_capture()
        .unchecked();
    if let Ok(here) = std::env::current_dir() {
        for name in PATH_VARIABLES {
            if let Some(value) = std::env::var_os(name) {
                let path = Path::new(&value);
                if path.is_relative() && !value.is_empty() {
                    cmd = cmd.env(name, here.join(path));
                }
            }
        }
    }
    if let Some(input) = stdin {
        cmd = cmd.stdin_bytes(input);
    }
    let output = cmd
        .run()
        .map_err(|e| Error::external(format!("cannot run git: {e}"), "install git"))?;
    if !output.status.success() {
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        return Err(Error::external(
            format!(
                "git {} failed: {}",
                shown.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            "see git's message",
        ));
    }
    Ok(output.stdout)
}

/// Run `git ARGS` in `dir`; its stdout as text.
pub fn text<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Result<String> {
    bytes(dir, args, None).map(|b| String::from_utf8_lossy(&b).into_owned())
}
