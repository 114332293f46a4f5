//! The one `nix eval` process, running while nixflip does its own checks.

use std::collections::BTreeMap;
use std::io::Read;

use super::{parse_answers, Evaluated, Gate};
use crate::error::{Error, Result};

/// A `nix eval` running in the background: nixflip's own checks of the
/// rewrite run while Nix evaluates, so they add (almost) nothing to the wall
/// time. Dropping it unfinished kills the process, so a scratch flake is
/// never deleted under a running Nix.
pub struct Pending {
    /// Nix, with its stdout ours to read (stderr is captured by duct).
    nix: Option<duct::ReaderHandle>,
    /// What Nix has printed so far.
    stdout: Vec<u8>,
    /// Holds Nix before it reads the flake (see [`super::Flake::ScratchBeingWritten`]).
    gate: Option<Gate>,
    /// Whether Nix is known to have waited at the gate.
    passed_gate: bool,
    /// The arguments, to evaluate again if the gate did not hold.
    args: Vec<String>,
}

impl Pending {
    pub(super) fn spawn(args: Vec<String>, gate: Option<Gate>) -> Result<Pending> {
        let mut cmd = duct::cmd(nix_program(), &args).stderr_capture().unchecked();
        if let Some(gate) = &gate {
            let (name, value) = gate.env();
            cmd = cmd.env(name, value);
        }
        let nix = cmd.reader().map_err(cannot_run_nix)?;
        Ok(Pending {
            nix: Some(nix),
            stdout: Vec::new(),
            gate,
            passed_gate: false,
            args,
        })
    }

    /// Nix to be started when the gate would open (no gate could be made).
    pub(super) fn not_started(args: Vec<String>) -> Pending {
        Pending {
            nix: None,
            stdout: Vec::new(),
            gate: None,
            passed_gate: false,
            args,
        }
    }

    /// The flake is complete: let Nix read it (see
    /// [`super::Flake::ScratchBeingWritten`]). Never blocks.
    pub fn open_gate(&mut self) -> Result<()> {
        match &mut self.gate {
            Some(gate) => gate.open(),
            None if self.nix.is_none() => {
                *self = Pending::spawn(std::mem::take(&mut self.args), None)?;
            }
            None => {}
        }
        Ok(())
    }

    /// Wait until Nix has printed its answer (it is one line), which is
    /// before it has exited: tearing down a Nix process takes a few
    /// milliseconds. `true` when Nix will not read the flake again, so a
    /// scratch copy may be removed while it exits; `false` when the answer
    /// may still have to be computed again (see [`Pending::finish`]).
    pub fn answered(&mut self) -> Result<bool> {
        self.open_gate()?;
        let Some(nix) = &self.nix else {
            return Ok(false);
        };
        let mut buf = [0u8; 8192];
        while self.stdout.last() != Some(&b'\n') {
            let n = (&*nix).read(&mut buf).map_err(cannot_run_nix)?;
            if n == 0 {
                break;
            }
            self.stdout.extend_from_slice(&buf[..n]);
        }
        if let Some(gate) = &mut self.gate {
            self.passed_gate = gate.passed();
        }
        Ok(self.gate.is_none() || self.passed_gate)
    }

    /// Wait for Nix to exit and read its answer.
    pub fn finish(mut self) -> Result<BTreeMap<String, (String, Evaluated)>> {
        // Never wait on a Nix that waits at the gate.
        self.open_gate()?;
        // Nix stays in `self` until it has exited: an early return kills it
        // (on drop), so no scratch copy is removed under a running Nix.
        let Some(nix) = &self.nix else {
            return Err(Error::external(
                "nix eval was already collected",
                "please report this",
            ));
        };
        (&*nix)
            .read_to_end(&mut self.stdout)
            .map_err(cannot_run_nix)?;
        let Some(done) = nix.try_wait().map_err(cannot_run_nix)? else {
            return Err(Error::external(
                "nix eval did not finish after closing its output",
                "please report this",
            ));
        };
        let output = std::process::Output {
            status: done.status,
            stdout: std::mem::take(&mut self.stdout),
            stderr: done.stderr.clone(),
        };
        self.nix = None;
        if let Some(gate) = self.gate.take() {
            if !(self.passed_gate || gate.close()) {
                // This Nix did not read the gate's FIFO, so it may have read
                // the flake before it was complete: evaluate again, now.
                return Pending::spawn(std::mem::take(&mut self.args), None)?.finish();
            }
        }
        parse_answers(&output)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(nix) = self.nix.take() {
            // Best effort: the process may have exited already. The gate, if
            // any, is dropped after this and frees its opener and FIFO.
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
