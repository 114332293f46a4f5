//! Reading a flake at a git revision straight from the object database: no
//! checkout, no temporary work tree. One `git ls-tree` per revision lists the
//! files under the flake root, and one `git cat-file --batch` process reads
//! every blob nixflip needs, for both revisions at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Blobs larger than this are not diffed (a reviewer cannot read them in a
/// comment anyway), but `.nix` files are always read, whatever their size.
pub const MAX_DIFF_BYTES: u64 = 1024 * 1024;

/// One file of a tree: its blob id and size.
#[derive(Clone, Debug)]
pub struct Entry {
    pub oid: String,
    pub size: u64,
}

/// The files of a flake at a revision, by path relative to the flake root.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    pub entries: BTreeMap<PathBuf, Entry>,
}

/// Run git in `dir` (see [`crate::git::bytes`]).
pub fn git_bytes(dir: &Path, args: &[&str], stdin: Option<Vec<u8>>) -> Result<Vec<u8>> {
    crate::git::bytes(dir, args, stdin)
}

fn git_text(dir: &Path, args: &[&str]) -> Result<String> {
    git_bytes(dir, args, None).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The flake root's path inside its repository (`""` at the top, else
/// `dir/sub/`), or a usage error when the flake is not in a git work tree.
pub fn show_prefix(root: &Path) -> Result<String> {
    git_text(root, &["rev-parse", "--show-prefix"])
        .map(|p| p.trim().to_string())
        .map_err(|_| {
            Error::usage(
                format!("{} is not inside a git repository", root.display()),
                "nixflip diff compares git revisions: run it in the flake's repository",
            )
        })
}

/// Resolve `rev` to a commit id; an unknown revision is bad input (exit 2).
pub fn resolve_commit(root: &Path, rev: &str) -> Result<String> {
    let unknown = || {
        Error::usage(
            format!("unknown revision `{rev}`: git has no commit by that name"),
            "check the name, and fetch it first (in CI: actions/checkout with `fetch-depth: 0`, then use origin/BRANCH)",
        )
    };
    if rev.is_empty() || rev.starts_with('-') {
        return Err(unknown());
    }
    let spec = format!("{rev}^{{commit}}");
    git_text(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    )
    .map(|id| id.trim().to_string())
    .map_err(|_| unknown())
}

/// The files under the flake root at `commit`. A revision where the flake
/// directory does not exist yet has an empty tree.
pub fn ls_tree(root: &Path, commit: &str, prefix: &str) -> Result<Tree> {
    let treeish = format!("{commit}:{}", prefix.trim_end_matches('/'));
    if git_bytes(root, &["cat-file", "-e", &treeish], None).is_err() {
        return Ok(Tree::default());
    }
    let out = git_bytes(
        root,
        &["ls-tree", "-r", "-z", "-l", "--full-tree", &treeish],
        None,
    )?;
    let mut entries = BTreeMap::new();
    for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let record = String::from_utf8_lossy(record);
        // `<mode> SP <type> SP <oid> SP+ <size> TAB <path>`
        let Some((meta, path)) = record.split_once('\t') else {
            continue;
        };
        let fields: Vec<&str> = meta.split_whitespace().collect();
        let [mode, kind, oid, size] = fields.as_slice() else {
            continue;
        };
        // Symlinks and submodules are not files nixflip reads.
        if *kind != "blob" || *mode == "120000" {
            continue;
        }
        entries.insert(
            PathBuf::from(path),
            Entry {
                oid: (*oid).to_string(),
                size: size.parse().unwrap_or(0),
            },
        );
    }
    Ok(Tree { entries })
}

/// The files under the flake root as they are staged (the git index, or the
/// index file git names in `GIT_INDEX_FILE` while a commit runs its hooks).
/// Sizes are not listed (0). A path with a merge conflict is bad input: the
/// index holds no one version of it.
pub fn ls_index(root: &Path) -> Result<Tree> {
    // Run in the flake root, ls-files lists the paths under it, relative to it.
    let out = git_bytes(root, &["ls-files", "--stage", "-z", "--", "."], None)?;
    let mut entries = BTreeMap::new();
    for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let record = String::from_utf8_lossy(record);
        // `<mode> SP <oid> SP <stage> TAB <path>`
        let Some((meta, path)) = record.split_once('\t') else {
            continue;
        };
        let fields: Vec<&str> = meta.split_whitespace().collect();
        let [mode, oid, stage] = fields.as_slice() else {
            continue;
        };
        if *stage != "0" {
            return Err(Error::usage(
                format!("{path} has a merge conflict in the index"),
                "resolve it and `git add` the result; the staged cluster has no one version of that file until then",
            ));
        }
        // Symlinks and submodules are not files nixflip reads.
        if *mode == "120000" || *mode == "160000" {
            continue;
        }
        entries.insert(
            PathBuf::from(path),
            Entry {
                oid: (*oid).to_string(),
                size: 0,
            },
        );
    }
    Ok(Tree { entries })
}

/// Read blobs by id with one `git cat-file --batch` process.
pub fn cat_blobs(root: &Path, oids: &BTreeSet<String>) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    if oids.is_empty() {
        return Ok(out);
    }
    let input: String = oids.iter().map(|o| format!("{o}\n")).collect();
    let bytes = git_bytes(root, &["cat-file", "--batch"], Some(input.into_bytes()))?;
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        // `<oid> SP <type> SP <size> LF <contents> LF`, or `<oid> SP missing LF`.
        let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
            break;
        };
        let header = String::from_utf8_lossy(&rest[..nl]).into_owned();
        rest = &rest[nl + 1..];
        let fields: Vec<&str> = header.split(' ').collect();
        let [oid, _kind, size] = fields.as_slice() else {
            continue; // `missing`: cannot happen for ids ls-tree listed
        };
        let size: usize = size.parse().map_err(|_| {
            Error::external(
                format!("git cat-file gave an unreadable header: {header}"),
                "check the repository with `git fsck`",
            )
        })?;
        if rest.len() < size {
            return Err(Error::external(
                "git cat-file --batch output ended early",
                "check the repository with `git fsck`",
            ));
        }
        out.insert((*oid).to_string(), rest[..size].to_vec());
        rest = rest.get(size + 1..).unwrap_or_default();
    }
    Ok(out)
}

/// Paths (relative to the flake root) that differ between the work tree and
/// `commit`: tracked changes, plus untracked files git does not ignore.
pub fn worktree_changes(root: &Path, commit: &str) -> Result<BTreeSet<PathBuf>> {
    let mut out = BTreeSet::new();
    let diff = git_bytes(
        root,
        &[
            "diff",
            "--relative",
            "--name-only",
            "-z",
            "--no-renames",
            "--no-ext-diff",
            commit,
            "--",
            ".",
        ],
        None,
    )?;
    let untracked = git_bytes(
        root,
        &[
            "ls-files",
            "-z",
            "--others",
            "--exclude-standard",
            "--",
            ".",
        ],
        None,
    )?;
    for name in diff
        .split(|b| *b == 0)
        .chain(untracked.split(|b| *b == 0))
        .filter(|n| !n.is_empty())
    {
        out.insert(PathBuf::from(String::from_utf8_lossy(name).into_owned()));
    }
    Ok(out)
}
