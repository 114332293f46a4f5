//! The scratch copy of a flake that validation writes into: the user's
//! tree is never where nixflip evaluates a rewrite, nor what it removes.
//!
//! Files are hard links to the user's files where the file system allows
//! (a copy otherwise): making and removing a link costs a fraction of a
//! copy, and unlinking never frees data blocks. A link shares its bytes with
//! the user's file, so nothing may write into one: nixflip replaces a file
//! of the copy only through [`Scratch::write`], which unlinks it first, and
//! `flake.lock`, the one file Nix itself may rewrite, is always a copy.
//!
//! The copy is `flake/` in a temporary directory (`nixflip-scratch-*`).
//!
//! In the `nixflip` binary (see [`enable_janitor`]) a scratch copy is
//! watched by a janitor from its first fill on: `nixflip janitor DIR`
//! (hidden), started in its own process group with a pipe from this process
//! as its stdin. When the pipe closes (nixflip is done with the copy, exits,
//! crashes, is killed, or the operator presses Ctrl-C) the janitor removes
//! the directory. So no scratch copy outlives a run, and removing one, which
//! benches/scratch.rs measures at 14-35 ms on a busy disk file system, never
//! holds up the operator's prompt.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What a scratch directory is called; the janitor removes nothing else.
const PREFIX: &str = "nixflip-scratch-";

/// Whether this process is the `nixflip` binary, which can start itself as
/// a janitor (see [`enable_janitor`]).
static JANITOR_ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Let scratch copies be watched by a janitor: called by the `nixflip`
/// binary, whose `janitor` subcommand it is. A library user (a test binary,
/// say) does not get one: its scratch copies are removed on drop or on a
/// thread.
pub fn enable_janitor() {
    JANITOR_ENABLED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// A temporary directory holding a copy of the flake. Removed on drop: by
/// the janitor once one watches it, else in place.
pub struct Scratch {
    /// `None` once handed to the janitor.
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    flake: PathBuf,
    /// The janitor's stdin and process, once one watches the copy.
    janitor: Option<(std::io::PipeWriter, duct::Handle)>,
}

impl Scratch {
    /// An empty scratch flake, to be filled with [`Scratch::copy_from`].
    pub fn new() -> Result<Scratch> {
        let cannot = |e: std::io::Error| {
            Error::external(
                format!("cannot create a scratch directory: {e}"),
                "check TMPDIR",
            )
        };
        // Owner only: the copy lists the flake's files (hard links keep
        // each file's own mode).
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .map_err(cannot)?;
        let path = dir.path().to_path_buf();
        let flake = path.join("flake");
        Ok(Scratch {
            dir: Some(dir),
            path,
            flake,
            janitor: None,
        })
    }

    /// A scratch flake holding a copy of the flake at `root`.
    pub fn copy_of(root: &Path) -> Result<Scratch> {
        let mut scratch = Scratch::new()?;
        scratch.copy_from(root)?;
        Ok(scratch)
    }

    /// Where the copy of the flake is.
    pub fn flake(&self) -> &Path {
        &self.flake
    }

    /// The scratch directory, which holds the copy.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// Have a janitor watch the scratch directory from now on (see the
    /// module's comment); [`Scratch::copy_from`] starts one if none runs.
    /// Where none can be started, the copy is still removed on drop.
    pub fn watch(&mut self) {
        if self.janitor.is_none() && JANITOR_ENABLED.load(std::sync::atomic::Ordering::Relaxed) {
            self.janitor = start_janitor(&self.path).ok();
        }
    }

    /// Copy the flake at `root` in, skipping `.git`, the `result*` symlinks of
    /// `nix build`, a `target` build directory at the root and nixflip's
    /// lock. Everything else is copied, since the flake may import any of it.
    /// A janitor watches the copy from now on (see the module's comment).
    pub fn copy_from(&mut self, root: &Path) -> Result<()> {
        self.watch();
        if !self.flake.is_dir() {
            std::fs::create_dir(&self.flake).map_err(|e| {
                Error::external(
                    format!("cannot create the scratch flake: {e}"),
                    "check TMPDIR",
                )
            })?;
        }
        copy_tree(root, &self.flake, true)
    }

    /// Put `text` at `rel` in the copy as a new file: whatever was there (a
    /// link to the user's file) is unlinked first, never written through. A
    /// file new to the flake gets its directories.
    pub fn write(&self, rel: &Path, text: &str) -> Result<()> {
        let path = self.flake().join(rel);
        let cannot = |e: std::io::Error| {
            Error::external(
                format!("cannot write the scratch copy of {}: {e}", rel.display()),
                "check TMPDIR",
            )
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(cannot)?;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(cannot(e)),
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(cannot)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(cannot)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some((stdin, process)) = self.janitor.take() {
            // A janitor that already ended cannot do it: then the directory
            // is removed here, as it is without one.
            if matches!(process.try_wait(), Ok(None)) {
                // The directory is the janitor's now; closing its stdin
                // says so.
                if let Some(dir) = self.dir.take() {
                    let _ = dir.keep();
                }
            }
            drop(stdin);
        }
    }
}

/// Start `nixflip janitor DIR` with a pipe as its stdin; the write end is
/// returned (close-on-exec: no other child keeps the janitor waiting).
fn start_janitor(dir: &Path) -> std::io::Result<(std::io::PipeWriter, duct::Handle)> {
    let exe = std::env::current_exe()?;
    let (reader, writer) = std::io::pipe()?;
    let process = duct::cmd(exe, [std::ffi::OsStr::new("janitor"), dir.as_os_str()])
        .stdin_file(reader)
        .stdout_null()
        .stderr_null()
        .unchecked()
        // Its own process group: the Ctrl-C that stops nixflip must not
        // stop the janitor too.
        .before_spawn(|cmd| {
            std::os::unix::process::CommandExt::process_group(cmd, 0);
            Ok(())
        })
        .start()?;
    Ok((writer, process))
}

/// `nixflip janitor DIR`: wait until stdin closes, then [`sweep`] DIR.
/// Exit code.
pub fn janitor(dir: &Path) -> i32 {
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    sweep(dir)
}

/// Remove DIR, a scratch copy (a directory named like one, and nothing
/// else). Exit code.
pub fn sweep(dir: &Path) -> i32 {
    let is_scratch = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(PREFIX));
    if !is_scratch {
        return crate::error::EXIT_BAD_INPUT;
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(_) => crate::error::EXIT_EXTERNAL,
    }
}

fn copy_tree(from: &Path, to: &Path, at_root: bool) -> Result<()> {
    let io = |path: &Path, e: std::io::Error| {
        Error::external(
            format!("cannot copy {} into the scratch flake: {e}", path.display()),
            "check permissions",
        )
    };
    for entry in std::fs::read_dir(from).map_err(|e| io(from, e))?.flatten() {
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        let src = entry.path();
        let dst = to.join(&name);
        let kind = entry.file_type().map_err(|e| io(&src, e))?;
        if name_str == ".git"
            || (kind.is_symlink() && crate::cluster::discover::is_result_link_name(&name_str))
            || (at_root && (name_str == "target" || name_str == ".nixflip.lock"))
        {
            continue;
        }
        if kind.is_dir() {
            std::fs::create_dir(&dst).map_err(|e| io(&dst, e))?;
            copy_tree(&src, &dst, false)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&src).map_err(|e| io(&src, e))?;
            std::os::unix::fs::symlink(target, &dst).map_err(|e| io(&dst, e))?;
        } else if name_str == "flake.lock" || std::fs::hard_link(&src, &dst).is_err() {
            // Nix may rewrite a lock file in place; other files it only reads.
            // A link can fail (another file system, a file not ours): copy.
            std::fs::copy(&src, &dst).map_err(|e| io(&src, e))?;
        }
    }
    Ok(())
}
