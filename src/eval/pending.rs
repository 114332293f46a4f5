//! The one `nix eval` process, running while nixflip does its own checks.

use std::collections::BTreeMap;

use super::{parse_answers, Evaluated};
use crate::error::{Error, Result};

/// A `nix eval` running in the background: nixflip's own checks of the
/// rewrite run while Nix evaluates, so they add (almost) nothing to the wall
/// time. Dropping it unfinished kills the process, so a scratch flake is
/// never deleted under a running Nix.
pub struct Pending {
    /// Nix (stdout and stderr are captured by duct).
    nix: Option<duct::Handle>,
}

impl Pending {
    pub(super) fn spawn(args: Vec<String>) -> Result<Pending> {
        let nix = duct::cmd(nix_program(), &args)
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .start()
            .map_err(cannot_run_nix)?;
        Ok(Pending { nix: Some(nix) })
    }

    /// Wait for Nix to exit and read its answer.
    pub fn finish(mut self) -> Result<BTreeMap<String, (String, Evaluated)>> {
        // Nix stays in `self` until it has exited: an early return kills it
        // (on drop), so no scratch copy is removed under a running Nix.
        let Some(nix) = &self.nix else {
            return Err(Error::external(
                "nix eval was already collected",
                "please report this",
            ));
        };
        let output = nix.wait().map_err(cannot_run_nix)?.clone();
        self.nix = None;
        parse_answers(&output)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(nix) = self.nix.take() {
            // Best effort: the process may have exited already.
            let _ = nix.kill();
        }
    }
}

/// `nix` as found on `PATH`, or the bare name when it is not there (the
/// spawn then fails with the "not installed" message). duct hands the child
/// a complete environment, and with that the standard library can only
/// start a program given by path with `posix_spawn`; a bare name costs a
/// full `fork` of nixflip (half a millisecond) before Nix even starts.
/// (A string, not a `Path`: duct runs a one-component `Path` from the
/// current directory, and a flake often has a `nix/` directory.)
fn nix_program() -> std::ffi::OsString {
    use std::os::unix::fs::PermissionsExt;
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join("nix"))
            .find(|candidate| {
                std::fs::metadata(candidate)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    });
    found.map_or_else(|| "nix".into(), std::path::PathBuf::into_os_string)
}

fn cannot_run_nix(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::external(
            "`nix` is not installed or not on PATH".to_string(),
            "install Nix (Debian: apt-get install nix-bin), or pass --no-eval to skip validation",
        )
    } else {
        Error::external(
            format!("cannot run nix: {e}"),
            "check that `nix --version` works",
        )
    }
}
