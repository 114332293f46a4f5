//! All-or-nothing file writes (DESIGN §9).
//!
//! Every file is first written in full to a temporary file in its own
//! directory (so the final rename is atomic on the same filesystem), with the
//! original's permissions. Only when every temporary file is ready are they
//! renamed into place; if a rename fails, the files already replaced get their
//! original bytes back. No temporary file is left behind either way.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// One file's new content.
#[derive(Clone, Debug)]
pub struct FileWrite {
    pub path: PathBuf,
    pub content: String,
}

/// Write all files or none.
pub fn write_all(writes: &[FileWrite]) -> Result<()> {
    write_all_with(writes, |temp, path| {
        temp.persist(path).map(|_| ()).map_err(|e| e.error)
    })
}

/// Like [`write_all`], but files (and their directories) may not exist yet:
/// for generators. On failure, files created are removed again and files
/// replaced get their bytes back; directories created stay (empty).
pub fn create_all(writes: &[FileWrite]) -> Result<()> {
    for write in writes {
        if let Some(dir) = write.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| Error::Write {
                path: dir.to_path_buf(),
                help: "the directory could not be created; nothing was written".into(),
                source,
            })?;
        }
    }
    let mut staged = Vec::with_capacity(writes.len());
    for write in writes {
        staged.push(if write.path.exists() {
            let (temp, original) = stage(write)?;
            (temp, Some(original))
        } else {
            (stage_new(write)?, None)
        });
    }
    let mut done: Vec<(&Path, Option<Vec<u8>>)> = Vec::new();
    for ((temp, original), write) in staged.into_iter().zip(writes) {
        if let Err(e) = temp.persist(&write.path) {
            let mut restored = true;
            for (path, original) in done.iter().rev() {
                restored &= match original {
                    Some(bytes) => restore(&[(path, bytes.clone())]),
                    None => fs::remove_file(path).is_ok(),
                };
            }
            return Err(Error::Write {
                path: write.path.clone(),
                help: if restored {
                    "no file was changed: the files already written were removed or restored".into()
                } else {
                    "undoing the files already written also failed; check them with `git status`"
                        .into()
                },
                source: e.error,
            });
        }
        done.push((&write.path, original));
    }
    Ok(())
}

/// A temp file holding the content of a file that does not exist yet.
fn stage_new(write: &FileWrite) -> Result<NamedTempFile> {
    let io_err = |source: std::io::Error| Error::Write {
        path: write.path.clone(),
        help: "the directory must be writable; nothing was written".into(),
        source,
    };
    let dir = write
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".nixflip-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io_err)?;
    temp.write_all(write.content.as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .map_err(io_err)?;
    // NamedTempFile is created 0600; a new source file gets the usual 0644.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o644)).map_err(io_err)?;
    }
    Ok(temp)
}

/// `write_all` with the final rename step injectable, so tests can make it
/// fail part-way and prove the rollback.
pub fn write_all_with(
    writes: &[FileWrite],
    mut rename: impl FnMut(NamedTempFile, &Path) -> std::io::Result<()>,
) -> Result<()> {
    let mut staged = Vec::with_capacity(writes.len());
    for write in writes {
        staged.push(stage(write)?);
    }
    let mut done: Vec<(&Path, Vec<u8>)> = Vec::new();
    for ((temp, original), write) in staged.into_iter().zip(writes) {
        if let Err(source) = rename(temp, &write.path) {
            let restored = restore(&done);
            return Err(Error::Write {
                path: write.path.clone(),
                help: if restored {
                    "no file was changed: the files already replaced were restored".into()
                } else {
                    "restoring the files already replaced also failed; check them with `git status`"
                        .into()
                },
                source,
            });
        }
        done.push((&write.path, original));
    }
    Ok(())
}

/// Write the new content next to the target; returns the temp file and the
/// original bytes (for rollback).
fn stage(write: &FileWrite) -> Result<(NamedTempFile, Vec<u8>)> {
    let path = &write.path;
    let io_err = |source: std::io::Error, help: &str| Error::Write {
        path: path.clone(),
        help: help.into(),
        source,
    };
    let metadata =
        fs::metadata(path).map_err(|e| io_err(e, "the file must exist before nixflip edits it"))?;
    if metadata.permissions().readonly() {
        return Err(io_err(
            std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the file is read-only",
            ),
            "make it writable (chmod u+w) if you mean nixflip to edit it; nothing was written",
        ));
    }
    let original = fs::read(path).map_err(|e| io_err(e, "check the file's permissions"))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".nixflip-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io_err(e, "the directory must be writable; nothing was written"))?;
    temp.write_all(write.content.as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .and_then(|()| fs::set_permissions(temp.path(), metadata.permissions()))
        .map_err(|e| io_err(e, "nothing was written"))?;
    Ok((temp, original))
}

fn restore(done: &[(&Path, Vec<u8>)]) -> bool {
    let mut ok = true;
    for (path, original) in done.iter().rev() {
        let content = String::from_utf8_lossy(original).into_owned();
        let write = FileWrite {
            path: path.to_path_buf(),
            content,
        };
        ok &= stage(&write)
            .and_then(|(temp, _)| {
                temp.persist(path).map(|_| ()).map_err(|e| Error::Write {
                    path: path.to_path_buf(),
                    help: String::new(),
                    source: e.error,
                })
            })
            .is_ok();
    }
    ok
}

/// Where the lock for a flake lives: inside `.git` when the flake is a git
/// work tree root (never shows up as an untracked file), else in the temp dir
/// under a name derived from the flake's path.
pub fn lock_path(dir: &Path) -> PathBuf {
    if dir.join(".git").is_dir() {
        return dir.join(".git").join("nixflip.lock");
    }
    let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&canonical, &mut hasher);
    std::env::temp_dir().join(format!(
        "nixflip-{:016x}.lock",
        std::hash::Hasher::finish(&hasher)
    ))
}

/// An exclusive lock for the flake at `dir`, held until dropped, so two runs
/// cannot interleave their edits.
pub struct Lock {
    _file: fs::File,
    pub path: PathBuf,
}

pub fn lock(dir: &Path) -> Result<Lock> {
    let path = lock_path(dir);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| Error::Write {
            path: path.clone(),
            help: "the flake directory must be writable".into(),
            source,
        })?;
    // std's advisory lock (flock on Linux) is released when the process exits,
    // so a crashed run never leaves a stale lock behind.
    match file.try_lock() {
        Ok(()) => Ok(Lock { _file: file, path }),
        Err(_) => Err(Error::refused(
            format!("another nixflip run holds the lock {}", path.display()),
            "wait for it to finish; if no nixflip is running, the lock is released automatically when its process exits",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_rename_restores_the_files_already_replaced() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::external(e.to_string(), ""))?;
        let a = dir.path().join("a.nix");
        let b = dir.path().join("b.nix");
        fs::write(&a, "a-old").map_err(|e| Error::external(e.to_string(), ""))?;
        fs::write(&b, "b-old").map_err(|e| Error::external(e.to_string(), ""))?;
        let writes = vec![
            FileWrite {
                path: a.clone(),
                content: "a-new".into(),
            },
            FileWrite {
                path: b.clone(),
                content: "b-new".into(),
            },
        ];
        let mut calls = 0;
        let result = write_all_with(&writes, |temp, path| {
            calls += 1;
            if calls == 2 {
                return Err(std::io::Error::other("injected failure"));
            }
            temp.persist(path).map(|_| ()).map_err(|e| e.error)
        });
        assert!(result.is_err());
        assert_eq!(fs::read_to_string(&a).ok().as_deref(), Some("a-old"));
        assert_eq!(fs::read_to_string(&b).ok().as_deref(), Some("b-old"));
        let names: Vec<_> = fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "temporary files left behind: {names:?}");
        Ok(())
    }

    #[test]
    fn create_all_makes_directories_and_new_files() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::external(e.to_string(), ""))?;
        let old = dir.path().join("flake.nix");
        fs::write(&old, "old").map_err(|e| Error::external(e.to_string(), ""))?;
        let new = dir.path().join("hosts/gamma/gamma.nix");
        create_all(&[
            FileWrite {
                path: old.clone(),
                content: "edited".into(),
            },
            FileWrite {
                path: new.clone(),
                content: "new".into(),
            },
        ])?;
        assert_eq!(fs::read_to_string(&old).ok().as_deref(), Some("edited"));
        assert_eq!(fs::read_to_string(&new).ok().as_deref(), Some("new"));
        Ok(())
    }

    #[test]
    fn a_second_lock_is_refused_while_the_first_is_held() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::external(e.to_string(), ""))?;
        let first = lock(dir.path())?;
        let second = lock(dir.path());
        assert!(matches!(second, Err(Error::Refused { .. })));
        drop(first);
        assert!(lock(dir.path()).is_ok());
        Ok(())
    }
}
