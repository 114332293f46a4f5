//! The fuzz targets' cases, shared by `fuzz/` (`cargo +nightly fuzz run
//! TARGET`) and `tests/fuzz_corpus.rs` (which replays the committed corpus
//! on stable Rust): the same bytes are the same case to both.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use nixflip::cluster::{rules, Cluster};
use nixflip::config::{self, Loaded};
use nixflip::nixedit::invariants::{self, Operation};

/// `get`, `set` or `unset` on a case decoded from `data`
/// (`invariants::Case::from_bytes`); panics when a guarantee breaks.
pub fn editor(operation: Operation, data: &[u8]) {
    if let Err(broken) = invariants::run(operation, data) {
        panic!("{operation:?}: {broken}");
    }
}

/// A fixture flake held in memory: `check` runs on it with one file's text
/// replaced.
pub struct Flake {
    root: PathBuf,
    files: Vec<(PathBuf, String)>,
    config: Loaded,
    /// The fixture's cluster, parsed once: a case re-parses only the file
    /// it replaces (as promote's rewrites do), so a run spends its time on
    /// the input rather than on the fixture's unchanged files.
    base: Cluster,
}

impl Flake {
    /// The repository's example flake (`examples/two-node`).
    pub fn fixture() -> Flake {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("examples/two-node");
        let root = if root.is_dir() {
            root
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/two-node")
        };
        Flake::load(&root)
    }

    pub fn load(root: &Path) -> Flake {
        let mut files = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .flatten()
                .map(|e| e.path())
                .collect();
            entries.sort();
            for path in entries {
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "nix") {
                    let text = std::fs::read_to_string(&path).expect("fixture text");
                    let rel = path.strip_prefix(root).expect("under root").to_path_buf();
                    files.push((rel, text));
                }
            }
        }
        files.sort();
        let config = config::load(root, None).expect("the fixture's nixflip.toml loads");
        let base = Cluster::from_texts(root, files.clone(), config.clone())
            .expect("the fixture flake is a cluster");
        Flake {
            root: root.to_path_buf(),
            files,
            config,
            base,
        }
    }

    /// Replace the file `data[0]` picks with the rest of `data` and run
    /// discovery and the rules: any answer is fine, a panic is not.
    pub fn check(&self, data: &[u8]) {
        let Some((&pick, text)) = data.split_first() else {
            return;
        };
        let Some((file, _)) = self.files.get(usize::from(pick) % self.files.len().max(1)) else {
            return;
        };
        let rewrite = (file.clone(), String::from_utf8_lossy(text).into_owned());
        if let Ok(cluster) = self
            .base
            .with_rewrites(&self.root, [rewrite], self.config.clone())
        {
            let findings = rules::check(&cluster);
            for member in &cluster.members {
                let _ = (
                    member.role(),
                    member.effective_synapse(),
                    member.allowed_ips(),
                );
            }
            let _ = findings.len();
        }
    }
}
