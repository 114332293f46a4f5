//! The scratch copy of a flake that validation writes into: the user's
//! tree is never where nixflip evaluates a rewrite.
//!
//! Files are hard links to the user's files where the file system allows
//! (a copy otherwise): making and removing a link costs a fraction of a
//! copy, and unlinking never frees data blocks. A link shares its bytes with
//! the user's file, so nothing may write into one: nixflip replaces a file
//! of the copy only through [`Scratch::write`], which unlinks it first, and
//! `flake.lock`, the one file Nix itself may rewrite, is always a copy.

use std::path::Path;

use crate::error::{Error, Result};

/// A scratch directory being removed; dropping this waits until it is gone,
/// so that nixflip never exits with part of it left behind. (It waits for
/// the removal, not for the thread's own exit.)
pub struct Removal(std::sync::mpsc::Receiver<()>);

impl Drop for Removal {
    fn drop(&mut self) {
        // Err: the thread ended without a word (it panicked); nothing to
        // wait for either way.
        let _ = self.0.recv();
    }
}

/// A temporary directory holding a copy of the flake. Removed on drop.
pub struct Scratch {
    dir: tempfile::TempDir,
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
        let dir = tempfile::Builder::new()
            .prefix("nixflip-scratch-")
            .tempdir()
            .map_err(cannot)?;
        Ok(Scratch { dir })
    }

    /// A scratch flake holding a copy of the flake at `root`.
    pub fn copy_of(root: &Path) -> Result<Scratch> {
        let scratch = Scratch::new()?;
        scratch.copy_from(root)?;
        Ok(scratch)
    }

    /// Where the copy of the flake is.
    pub fn flake(&self) -> &Path {
        self.dir.path()
    }

    /// Remove the scratch directory on another thread: on some file systems
    /// that is a millisecond or more of metadata operations, which need not
    /// hold up the output. Dropping the returned [`Removal`] waits for it.
    pub fn remove_in_background(self) -> Removal {
        let (done, removal) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(self);
            let _ = done.send(());
        });
        Removal(removal)
    }

    /// Copy the flake at `root` in, skipping `.git`, the `result*` symlinks of
    /// `nix build`, a `target` build directory at the root and nixflip's
    /// lock. Everything else is copied, since the flake may import any of it.
    pub fn copy_from(&self, root: &Path) -> Result<()> {
        copy_tree(root, self.flake(), true)
    }

    /// Put `text` at `rel` in the copy as a new file: whatever was there (a
    /// link to the user's file) is unlinked first, never written through.
    pub fn write(&self, rel: &Path, text: &str) -> Result<()> {
        let path = self.flake().join(rel);
        let cannot = |e: std::io::Error| {
            Error::external(
                format!("cannot write the scratch copy of {}: {e}", rel.display()),
                "check TMPDIR",
            )
        };
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
