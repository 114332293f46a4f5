//! All-or-nothing file writes.
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
            let (temp, original, target) = stage(write)?;
            (temp, Some(original), target)
        } else {
            (stage_new(write)?, None, write.path.clone())
        });
    }
    let mut done: Vec<(PathBuf, Option<Vec<u8>>)> = Vec::new();
    for ((temp, original, target), write) in staged.into_iter().zip(writes) {
        if let Err(e) = temp.persist(&target) {
            let mut restored = true;
            for (path, original) in done.into_iter().rev() {
                restored &= match original {
                    Some(bytes) => restore(&[(path, bytes)]),
                    None => fs::remove_file(&path).is_ok(),
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
        done.push((target, original));
    }
    Ok(())
}

/// A temp file in `target`'s directory (so the final rename stays on one
/// file system and is atomic), named so that a leftover is recognisable.
fn temp_beside(target: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".nixflip-")
        .suffix(".tmp")
        .tempfile_in(dir)
}

/// Write one file atomically with the given mode, creating or replacing it
/// (a symlink at `path` is replaced, not followed: for files nixflip owns,
/// such as the git hook). Readers never see a half-written file.
pub fn replace_file(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let io_err = |source: std::io::Error| Error::Write {
        path: path.to_path_buf(),
        help: "the directory must be writable; the file was not changed".into(),
        source,
    };
    let mut temp = temp_beside(path).map_err(io_err)?;
    temp.write_all(content)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(io_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(temp.path(), fs::Permissions::from_mode(mode)).map_err(io_err)?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    temp.persist(path).map(|_| ()).map_err(|e| io_err(e.error))
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
    let mut done: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for ((temp, original, target), write) in staged.into_iter().zip(writes) {
        if let Err(source) = rename(temp, &target) {
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
        done.push((target, original));
    }
    Ok(())
}

/// The file a write really lands on: a symlink is followed, so the temp file
/// is created beside the link's target and renamed over it, and the link
/// itself stays a link.
fn resolve(path: &Path) -> Result<PathBuf> {
    fs::canonicalize(path).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        help: "the file must exist before nixflip edits it".into(),
        source,
    })
}

/// Write the new content next to the (resolved) target; returns the temp
/// file, the original bytes (for rollback) and the path to rename over.
fn stage(write: &FileWrite) -> Result<(NamedTempFile, Vec<u8>, PathBuf)> {
    let target = resolve(&write.path)?;
    let path = &write.path;
    let io_err = |source: std::io::Error, help: &str| Error::Write {
        path: path.clone(),
        help: help.into(),
        source,
    };
    let metadata = fs::metadata(&target)
        .map_err(|e| io_err(e, "the file must exist before nixflip edits it"))?;
    if metadata.permissions().readonly() {
        return Err(io_err(
            std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the file is read-only",
            ),
            "make it writable (chmod u+w) if you mean nixflip to edit it; nothing was written",
        ));
    }
    let original = fs::read(&target).map_err(|e| io_err(e, "check the file's permissions"))?;
    let mut temp = temp_beside(&target)
        .map_err(|e| io_err(e, "the directory must be writable; nothing was written"))?;
    temp.write_all(write.content.as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .and_then(|()| fs::set_permissions(temp.path(), metadata.permissions()))
        .map_err(|e| io_err(e, "nothing was written"))?;
    Ok((temp, original, target))
}

fn restore(done: &[(PathBuf, Vec<u8>)]) -> bool {
    let mut ok = true;
    for (path, original) in done.iter().rev() {
        let content = String::from_utf8_lossy(original).into_owned();
        let write = FileWrite {
            path: path.to_path_buf(),
            content,
        };
        ok &= stage(&write)
            .and_then(|(temp, _, path)| {
                temp.persist(&path).map(|_| ()).map_err(|e| Error::Write {
                    path: path.clone(),
                    help: "restoring the original bytes failed".into(),
                    source: e.error,
                })
            })
            .is_ok();
    }
    ok
}

/// Where the lock for a flake lives: inside `.git` when the flake is a git
/// work tree root (never shows up as an untracked file), else in a directory
/// only the user can enter (see [`private_lock_dir`]) under a name derived
/// from the flake's path. Never in the shared temp dir: another user could
/// create the predictable name first and block (or own) the lock.
pub fn lock_path(dir: &Path) -> Result<PathBuf> {
    lock_path_with(dir, |name| std::env::var_os(name))
}

/// [`lock_path`] with the environment injected (for tests).
pub fn lock_path_with(
    dir: &Path,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<PathBuf> {
    if dir.join(".git").is_dir() {
        return Ok(dir.join(".git").join("nixflip.lock"));
    }
    let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&canonical, &mut hasher);
    Ok(private_lock_dir(env)?.join(format!(
        "nixflip-{:016x}.lock",
        std::hash::Hasher::finish(&hasher)
    )))
}

/// `$XDG_RUNTIME_DIR/nixflip`, else `$XDG_CACHE_HOME/nixflip/locks`, else
/// `~/.cache/nixflip/locks`; created with mode 0700 when missing.
fn private_lock_dir(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<PathBuf> {
    let absolute = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
    let dir = if let Some(runtime) = absolute("XDG_RUNTIME_DIR").filter(|p| p.is_dir()) {
        runtime.join("nixflip")
    } else if let Some(cache) = absolute("XDG_CACHE_HOME") {
        cache.join("nixflip").join("locks")
    } else if let Some(home) = absolute("HOME") {
        home.join(".cache").join("nixflip").join("locks")
    } else {
        return Err(Error::usage(
            "no private directory for the lock file: neither XDG_RUNTIME_DIR, XDG_CACHE_HOME nor HOME is set",
            "set HOME (or XDG_RUNTIME_DIR), or run nixflip in a git work tree, whose lock lives in .git",
        ));
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir).map_err(|source| Error::Write {
        path: dir.clone(),
        help: "nixflip keeps the lock of a flake outside git here; make the directory creatable"
            .into(),
        source,
    })?;
    Ok(dir)
}

/// An exclusive lock for the flake at `dir`, held until dropped, so two runs
/// cannot interleave their edits.
pub struct Lock {
    _file: fs::File,
    pub path: PathBuf,
}

pub fn lock(dir: &Path) -> Result<Lock> {
    lock_at(lock_path(dir)?)
}

/// [`lock`] with the environment injected (for tests).
pub fn lock_with(dir: &Path, env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Lock> {
    lock_at(lock_path_with(dir, env)?)
}

fn lock_at(path: PathBuf) -> Result<Lock> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| Error::Write {
            path: path.clone(),
            help: "the lock file's directory must be writable".into(),
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

    fn io(e: std::io::Error) -> Error {
        Error::external(e.to_string(), "")
    }

    #[test]
    fn a_symlink_stays_a_link_and_its_target_gets_the_bytes() -> Result<()> {
        let dir = tempfile::tempdir().map_err(io)?;
        let real = dir.path().join("real");
        fs::create_dir(&real).map_err(io)?;
        let target = real.join("host.nix");
        fs::write(&target, "old").map_err(io)?;
        let link = dir.path().join("link.nix");
        std::os::unix::fs::symlink(&target, &link).map_err(io)?;
        write_all(&[FileWrite {
            path: link.clone(),
            content: "new".into(),
        }])?;
        assert!(fs::symlink_metadata(&link)
            .map_err(io)?
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&target).ok().as_deref(), Some("new"));
        // create_all (generators) follows the link the same way.
        create_all(&[FileWrite {
            path: link.clone(),
            content: "newer".into(),
        }])?;
        assert!(fs::symlink_metadata(&link)
            .map_err(io)?
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&target).ok().as_deref(), Some("newer"));
        // The temp file was made beside the target, and none is left anywhere.
        let count = |d: &Path| fs::read_dir(d).map(|r| r.count()).unwrap_or(0);
        assert_eq!((count(dir.path()), count(&real)), (2, 1));
        Ok(())
    }

    #[test]
    fn a_lock_outside_git_lives_in_a_private_directory() -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let flake = tempfile::tempdir().map_err(io)?;
        let home = tempfile::tempdir().map_err(io)?;
        let runtime = tempfile::tempdir().map_err(io)?;
        let home_only = |name: &str| (name == "HOME").then(|| home.path().as_os_str().to_owned());
        let path = lock_path_with(flake.path(), home_only)?;
        let dir = home.path().join(".cache/nixflip/locks");
        assert_eq!(path.parent(), Some(dir.as_path()));
        let mode = fs::metadata(&dir).map_err(io)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let with_runtime = |name: &str| match name {
            "XDG_RUNTIME_DIR" => Some(runtime.path().as_os_str().to_owned()),
            "HOME" => Some(home.path().as_os_str().to_owned()),
            _ => None,
        };
        let path = lock_path_with(flake.path(), with_runtime)?;
        assert_eq!(
            path.parent(),
            Some(runtime.path().join("nixflip").as_path())
        );
        let first = lock_with(flake.path(), with_runtime)?;
        assert!(matches!(
            lock_with(flake.path(), with_runtime),
            Err(Error::Refused { .. })
        ));
        drop(first);
        assert!(matches!(
            lock_path_with(flake.path(), |_| None),
            Err(Error::Usage { .. })
        ));
        Ok(())
    }

    #[test]
    fn a_failed_rename_restores_links_modes_and_leaves_later_files_alone() -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().map_err(io)?;
        let real = dir.path().join("real.nix");
        fs::write(&real, "a-old").map_err(io)?;
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).map_err(io)?;
        let link = dir.path().join("a.nix");
        std::os::unix::fs::symlink("real.nix", &link).map_err(io)?;
        let (b, c) = (dir.path().join("b.nix"), dir.path().join("c.nix"));
        fs::write(&b, "b-old").map_err(io)?;
        fs::write(&c, "c-old").map_err(io)?;
        let writes: Vec<FileWrite> = [(&link, "a-new"), (&b, "b-new"), (&c, "c-new")]
            .into_iter()
            .map(|(path, content)| FileWrite {
                path: path.clone(),
                content: content.into(),
            })
            .collect();
        let mut renamed = Vec::new();
        let result = write_all_with(&writes, |temp, path| {
            if path.ends_with("b.nix") {
                return Err(std::io::Error::other("injected failure"));
            }
            renamed.push(path.to_path_buf());
            temp.persist(path).map(|_| ()).map_err(|e| e.error)
        });
        match result {
            Err(Error::Write { path, help, .. }) => {
                assert_eq!(path, b);
                assert!(help.contains("restored"), "{help}");
            }
            other => panic!("expected a write error, got {other:?}"),
        }
        // The first file was really replaced (through its link) before the failure...
        assert_eq!(renamed, vec![fs::canonicalize(&real).map_err(io)?]);
        // ...and got its bytes and mode back; the link is still a link.
        assert_eq!(fs::read_to_string(&real).ok().as_deref(), Some("a-old"));
        let mode = fs::metadata(&real).map_err(io)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert!(fs::symlink_metadata(&link)
            .map_err(io)?
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&b).ok().as_deref(), Some("b-old"));
        assert_eq!(fs::read_to_string(&c).ok().as_deref(), Some("c-old"));
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .map_err(io)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a.nix", "b.nix", "c.nix", "real.nix"]);
        Ok(())
    }
}
