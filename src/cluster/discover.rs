//! Finding the flake, its `.nix` files, and the host files among them.
//!
//! A host file is a file that defines something under the cluster option and
//! is not itself imported (by a relative path) from another such file: an
//! imported file (say `pin-role.nix`) belongs to the host that imports it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rnix::SyntaxKind;

use crate::error::{Error, Result};
use crate::nixedit::{EditError, NixFile};

/// Walk up from `start` to the nearest directory holding `flake.nix`.
pub fn find_flake_root(start: &Path) -> Result<PathBuf> {
    let start = std::fs::canonicalize(start).map_err(|source| Error::Read {
        path: start.to_path_buf(),
        source,
    })?;
    let mut dir = if start.is_file() {
        start.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        start.clone()
    };
    loop {
        if dir.join("flake.nix").is_file() {
            return Ok(dir);
        }
        if !dir.pop() {
            return Err(Error::usage(
                format!(
                    "no flake.nix in {} or any parent directory",
                    start.display()
                ),
                "run nixflip inside the flake, or pass --flake DIR",
            ));
        }
    }
}

/// Every `.nix` file under `root`, relative, sorted; skipping what
/// [`is_skipped`] names and the configured exclusions.
pub fn nix_files(root: &Path, exclude: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            if is_skipped(&rel, kind.is_symlink()) {
                continue;
            }
            if exclude
                .iter()
                .any(|e| rel.starts_with(e.trim_end_matches('/')))
            {
                continue;
            }
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && name.ends_with(".nix") {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

/// Whether discovery scans `rel` (a path relative to the flake root): the
/// same skips as [`nix_files`], for file lists that do not come from a walk.
/// Git does not follow symlinks, so no component of such a path is a
/// `result` link of `nix build`.
pub fn is_scanned(rel: &Path, exclude: &[String]) -> bool {
    let mut prefix = PathBuf::new();
    let skipped = rel.components().any(|c| {
        prefix.push(c);
        is_skipped(&prefix, false)
    });
    rel.extension().is_some_and(|e| e == "nix")
        && !skipped
        && !exclude
            .iter()
            .any(|e| rel.starts_with(e.trim_end_matches('/')))
}

/// Whether the entry at `rel` (relative to the flake root) is left out of
/// discovery. Only what is never configuration: hidden entries (`.git`,
/// `.direnv`), `node_modules`, the `result`/`result-*` symlinks `nix build`
/// leaves, and a Rust build directory `target` at the flake root. A real
/// directory named `resultsdb` or `hosts/target` is scanned like any other.
pub fn is_skipped(rel: &Path, is_symlink: bool) -> bool {
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let at_root = rel.components().count() == 1;
    name.starts_with('.')
        || name == "node_modules"
        || (is_symlink && is_result_link_name(&name))
        || (at_root && name == "target")
}

/// `result`, `result-man`, `result-2`: the names `nix build` gives its links.
pub fn is_result_link_name(name: &str) -> bool {
    name == "result" || name.starts_with("result-")
}

/// The parsed files of a flake, by path relative to the root.
pub struct Sources {
    pub root: PathBuf,
    pub files: BTreeMap<PathBuf, NixFile>,
}

impl Sources {
    /// Read and parse the flake's `.nix` files. A file that does not parse is
    /// an error when it mentions the cluster option (it may be a host file);
    /// others are skipped, since nixflip has nothing to say about them.
    pub fn load(root: &Path, exclude: &[String], option_hint: &str) -> Result<Sources> {
        let paths = nix_files(root, exclude);
        // Reading and parsing are independent per file: spread them over the
        // cores. Results come back in `paths` order, so errors and the
        // outcome do not depend on thread timing.
        let parsed = parallel_map(&paths, |rel| -> Result<_> {
            let text = crate::error::read_text(&root.join(rel))?;
            let parse = rnix::Root::parse(&text);
            Ok((text, parse))
        });
        let mut entries = Vec::with_capacity(paths.len());
        for (rel, result) in paths.into_iter().zip(parsed) {
            let (text, parse) = result?;
            entries.push((rel, text, parse));
        }
        Sources::from_parsed(root, entries, option_hint)
    }

    /// Parse files given as (path relative to `root`, text), e.g. read from a
    /// git revision; the same parse-error rule as [`Sources::load`].
    pub fn from_texts(
        root: &Path,
        texts: impl IntoIterator<Item = (PathBuf, String)>,
        option_hint: &str,
    ) -> Result<Sources> {
        let texts: Vec<(PathBuf, String)> = texts.into_iter().collect();
        let parses = parallel_map(&texts, |(_, text)| rnix::Root::parse(text));
        let entries = texts
            .into_iter()
            .zip(parses)
            .map(|((rel, text), parse)| (rel, text, parse))
            .collect();
        Sources::from_parsed(root, entries, option_hint)
    }

    fn from_parsed(
        root: &Path,
        entries: Vec<(PathBuf, String, rnix::Parse<rnix::Root>)>,
        option_hint: &str,
    ) -> Result<Sources> {
        let mut files = BTreeMap::new();
        for (rel, text, parse) in entries {
            let mentions = text.contains(option_hint);
            match NixFile::from_parse(rel.display().to_string(), text, parse) {
                Ok(file) => {
                    files.insert(rel, file);
                }
                Err(e @ EditError::Parse { .. }) => {
                    if mentions {
                        return Err(e.into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Sources {
            root: root.to_path_buf(),
            files,
        })
    }

    /// Relative-path imports of a file (`imports = [ ./a.nix ../b ];`),
    /// resolved to files of this flake.
    pub fn imports_of(&self, rel: &Path) -> Vec<PathBuf> {
        let Some(file) = self.files.get(rel) else {
            return Vec::new();
        };
        let dir = rel.parent().unwrap_or(Path::new(""));
        let mut out = Vec::new();
        let imports = ["imports".to_string()];
        let walk = file.walk_under(&imports);
        for binding in walk.bindings.iter().filter(|b| b.path == imports) {
            for node in binding
                .inner
                .descendants()
                .filter(|n| n.kind() == SyntaxKind::NODE_PATH_REL)
            {
                let text = node.text().to_string();
                let joined = normalize(&dir.join(&text));
                let candidate = if self.files.contains_key(&joined) {
                    joined
                } else {
                    joined.join("default.nix")
                };
                if self.files.contains_key(&candidate) {
                    out.push(candidate);
                }
            }
        }
        out
    }

    /// Files reachable from `start` through relative imports (including it).
    pub fn closure(&self, start: &Path) -> BTreeSet<PathBuf> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.to_path_buf()];
        while let Some(file) = stack.pop() {
            if seen.insert(file.clone()) {
                stack.extend(self.imports_of(&file));
            }
        }
        seen
    }
}

/// `f` over `items` on up to one thread per core (in contiguous chunks, the
/// first on this thread), results in the order of `items`.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    // A thread costs more than parsing a handful of host files: a small
    // flake (the common two- or three-node cluster) stays on this thread.
    const MIN_ITEMS_PER_THREAD: usize = 8;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len() / MIN_ITEMS_PER_THREAD);
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    let (first, rest) = items.split_at(chunk);
    std::thread::scope(|scope| {
        let workers: Vec<_> = rest
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut results: Vec<R> = first.iter().map(f).collect();
        for worker in workers {
            match worker.join() {
                Ok(more) => results.extend(more),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

/// `a/./b/../c` → `a/c`, without touching the filesystem.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A host's name from its file: the stem, or the directory for `default.nix`.
pub fn host_name(rel: &Path) -> String {
    let stem = rel
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if stem == "default" {
        if let Some(dir) = rel.parent().and_then(Path::file_name) {
            return dir.to_string_lossy().into_owned();
        }
    }
    stem
}
