//! Finding the flake, its `.nix` files, and the host files among them.
//!
//! A host file is a file that defines something under the cluster option and
//! is not itself imported (by a relative path, or as `self.nixosModules.X`)
//! from another such file: an imported file (say `pin-role.nix`) belongs to
//! the host that imports it. A directory with a `flake.nix` of its own is
//! another flake and is never scanned into this one.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rnix::SyntaxKind;

use super::flake::FLAKE_NIX;
use crate::error::{Error, Result};
use crate::nixedit::NixFile;

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
/// [`is_skipped`] names, the configured exclusions, and directories that are
/// flakes of their own (they hold a `flake.nix`).
pub fn nix_files(root: &Path, exclude: &[String]) -> Vec<PathBuf> {
    let excluded = |rel: &Path| {
        exclude
            .iter()
            .any(|e| rel.starts_with(e.trim_end_matches('/')))
    };
    // walkdir does not follow symlinks by default: a `result` link of
    // `nix build` is never entered, and `is_skipped` drops it as a file.
    let walk = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|entry| {
            let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
            let kind = entry.file_type();
            let nested_flake = kind.is_dir() && entry.path().join("flake.nix").is_file();
            !(is_skipped(rel, kind.is_symlink()) || excluded(rel) || nested_flake)
        });
    let mut out: Vec<PathBuf> = walk
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_file())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".nix"))
        .filter_map(|entry| entry.path().strip_prefix(root).ok().map(Path::to_path_buf))
        .collect();
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

/// The directories (relative to the flake root) that hold a `flake.nix` of
/// their own among `paths`: other flakes, not part of this one.
pub fn nested_flakes<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) -> BTreeSet<PathBuf> {
    paths
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "flake.nix"))
        .filter_map(|p| p.parent())
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .collect()
}

/// Whether `rel` lies inside one of the `nested` flakes.
pub fn in_nested_flake(rel: &Path, nested: &BTreeSet<PathBuf>) -> bool {
    nested.iter().any(|dir| rel.starts_with(dir))
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

/// The `.nix` files of a flake, by path relative to the root.
///
/// Only files whose text mentions the cluster option (its last key) can
/// define it; they are parsed at once. Every other file (an evaluator, a
/// package set, a big module that never names the option) is parsed only
/// when something asks for it: an import chain through it, or a rule that
/// found something to look at in its text.
pub struct Sources {
    pub root: PathBuf,
    /// The option's last key: what a file must contain to define the option.
    hint: String,
    files: BTreeMap<PathBuf, Source>,
    /// `nixosModules` names with a known file (from the flake model), for
    /// `self.nixosModules.X` imports.
    modules: BTreeMap<String, PathBuf>,
}

/// An import of `self.nixosModules.NAME` (or `inputs.self.nixosModules.NAME`).
#[derive(Clone, Debug)]
pub struct ModuleImport {
    pub name: String,
    /// The import's byte range in the importing file.
    pub span: std::ops::Range<usize>,
    /// Its file, when the flake model knows it.
    pub file: Option<PathBuf>,
}

/// One file: its text, and its parse once made (`None`: it does not parse,
/// and it does not mention the option, so nixflip has nothing to say).
#[derive(Clone)]
struct Source {
    mentions: bool,
    /// The text while no parse holds it.
    text: Option<String>,
    parsed: OnceCell<Option<NixFile>>,
}

impl Source {
    fn parsed(file: NixFile, mentions: bool) -> Source {
        Source {
            mentions,
            text: None,
            parsed: OnceCell::from(Some(file)),
        }
    }

    fn unparsed(text: String) -> Source {
        Source {
            mentions: false,
            text: Some(text),
            parsed: OnceCell::new(),
        }
    }

    fn file(&self, rel: &Path) -> Option<&NixFile> {
        self.parsed
            .get_or_init(|| {
                let text = self.text.clone().unwrap_or_default();
                NixFile::parse(rel.display().to_string(), text).ok()
            })
            .as_ref()
    }

    fn text(&self) -> &str {
        match (self.parsed.get(), &self.text) {
            (Some(Some(file)), _) => file.text(),
            (_, Some(text)) => text,
            (_, None) => "",
        }
    }
}

impl Sources {
    /// Read the flake's `.nix` files and parse `flake.nix` and those that
    /// mention the option (its last key, `option_hint`). Either not parsing
    /// is an error (a host file, or the file that lists the hosts).
    pub fn load(root: &Path, exclude: &[String], option_hint: &str) -> Result<Sources> {
        let paths = nix_files(root, exclude);
        // Reading a file is cheap: only a big flake spreads it over threads.
        let read = parallel_map(
            &paths,
            |_| 1,
            8,
            |rel| crate::error::read_text(&root.join(rel)),
        );
        let mut texts = Vec::with_capacity(paths.len());
        for (rel, text) in paths.into_iter().zip(read) {
            texts.push((rel, text?));
        }
        Sources::from_texts(root, texts, option_hint)
    }

    /// The same from files given as (path relative to `root`, text), e.g.
    /// read from a git revision.
    pub fn from_texts(
        root: &Path,
        texts: impl IntoIterator<Item = (PathBuf, String)>,
        option_hint: &str,
    ) -> Result<Sources> {
        let texts: Vec<(PathBuf, String)> = texts.into_iter().collect();
        // Each text with whether it names the option (decided once) and
        // whether it is parsed now: those, and `flake.nix`, which every
        // command reads to find the hosts, so that a syntax error there is
        // reported rather than read as a flake without hosts.
        let named: Vec<(&str, bool, bool)> = texts
            .iter()
            .map(|(rel, text)| {
                let mentions = names_option(text, option_hint);
                let eager = mentions || rel == Path::new(FLAKE_NIX);
                (text.as_str(), mentions, eager)
            })
            .collect();
        // A thread pays for itself from about this much text to parse.
        const MIN_BYTES_PER_THREAD: usize = 8 * 1024;
        let parses = parallel_map(
            &named,
            |&(text, _, eager)| if eager { text.len() } else { 0 },
            MIN_BYTES_PER_THREAD,
            |&(text, _, eager)| eager.then(|| rnix::Root::parse(text)),
        );
        let mentions: Vec<bool> = named.iter().map(|&(_, mentions, _)| mentions).collect();
        let entries = texts
            .into_iter()
            .zip(mentions)
            .zip(parses)
            .map(|(((rel, text), mentions), parse)| (rel, text, mentions, parse))
            .collect();
        Sources::from_parsed(root, entries, option_hint)
    }

    fn from_parsed(
        root: &Path,
        entries: Vec<(PathBuf, String, bool, Option<rnix::Parse<rnix::Root>>)>,
        option_hint: &str,
    ) -> Result<Sources> {
        let mut files = BTreeMap::new();
        for (rel, text, mentions, parse) in entries {
            let source = match parse {
                Some(parse) => Source::parsed(
                    NixFile::from_parse(rel.display().to_string(), text, parse)?,
                    mentions,
                ),
                None => Source::unparsed(text),
            };
            files.insert(rel, source);
        }
        Ok(Sources {
            root: root.to_path_buf(),
            hint: option_hint.to_string(),
            files,
            modules: BTreeMap::new(),
        })
    }

    /// The files of `nixosModules` names (from the flake model): imports of
    /// `self.nixosModules.X` lead there.
    pub fn set_modules(&mut self, modules: BTreeMap<String, PathBuf>) {
        self.modules = modules;
    }

    /// These sources with some files' texts replaced (or added), rooted at
    /// `root`: unchanged files keep their parse. A new text that does not
    /// parse is an error.
    pub fn with_texts(
        &self,
        root: &Path,
        texts: impl IntoIterator<Item = (PathBuf, String)>,
    ) -> Result<Sources> {
        let mut files = self.files.clone();
        for (rel, text) in texts {
            let mentions = names_option(&text, &self.hint);
            let file = NixFile::parse(rel.display().to_string(), text)?;
            files.insert(rel, Source::parsed(file, mentions));
        }
        Ok(Sources {
            root: root.to_path_buf(),
            hint: self.hint.clone(),
            files,
            modules: self.modules.clone(),
        })
    }

    /// The parsed file at `rel`; `None` when there is none, or it does not
    /// parse (and does not mention the option).
    pub fn get(&self, rel: &Path) -> Option<&NixFile> {
        let (rel, source) = self.files.get_key_value(rel)?;
        source.file(rel)
    }

    /// The text of the file at `rel`, without parsing it.
    pub fn text(&self, rel: &Path) -> Option<&str> {
        self.files.get(rel).map(Source::text)
    }

    /// Every file's path and text, without parsing.
    pub fn texts(&self) -> impl Iterator<Item = (&PathBuf, &str)> {
        self.files.iter().map(|(rel, s)| (rel, s.text()))
    }

    /// The files that mention the option (all parsed): the only ones that
    /// can define it.
    pub fn mentioning(&self) -> impl Iterator<Item = (&PathBuf, &NixFile)> {
        self.files
            .iter()
            .filter(|(_, s)| s.mentions)
            .filter_map(|(rel, s)| s.file(rel).map(|f| (rel, f)))
    }

    /// Imports of a file that lead to files of this flake: relative paths
    /// (`imports = [ ./a.nix ../b ];`) and `self.nixosModules.X` whose file
    /// the flake model knows.
    pub fn imports_of(&self, rel: &Path) -> Vec<PathBuf> {
        let Some(file) = self.get(rel) else {
            return Vec::new();
        };
        let dir = rel.parent().unwrap_or(Path::new(""));
        let mut out = Vec::new();
        let imports = ["imports".to_string()];
        let walk = file.walk_under(&imports);
        for binding in walk.bindings.iter().filter(|b| b.path == imports) {
            for m in module_imports_in(&binding.inner) {
                if let Some(path) = self.modules.get(&m.0) {
                    if self.get(path).is_some() && !out.contains(path) {
                        out.push(path.clone());
                    }
                }
            }
            for node in binding
                .inner
                .descendants()
                .filter(|n| n.kind() == SyntaxKind::NODE_PATH_REL)
            {
                let text = node.text().to_string();
                let joined = normalize(&dir.join(&text));
                let candidate = if self.get(&joined).is_some() {
                    joined
                } else {
                    joined.join("default.nix")
                };
                if self.get(&candidate).is_some() {
                    out.push(candidate);
                }
            }
        }
        out
    }

    /// The `self.nixosModules.X` imports of a file, each with its file when
    /// the flake model knows it.
    pub fn module_imports(&self, rel: &Path) -> Vec<ModuleImport> {
        let Some(file) = self.get(rel) else {
            return Vec::new();
        };
        let imports = ["imports".to_string()];
        let walk = file.walk_under(&imports);
        let mut out = Vec::new();
        for binding in walk.bindings.iter().filter(|b| b.path == imports) {
            for (name, span) in module_imports_in(&binding.inner) {
                out.push(ModuleImport {
                    file: self.modules.get(&name).cloned(),
                    name,
                    span,
                });
            }
        }
        out
    }

    /// Files reachable from `start` through imports (including it).
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

/// `self.nixosModules.NAME` and `inputs.self.nixosModules.NAME` under `node`,
/// with their byte ranges.
fn module_imports_in(node: &rnix::SyntaxNode) -> Vec<(String, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    for select in node
        .descendants()
        .filter(|n| n.kind() == SyntaxKind::NODE_SELECT)
    {
        let mut children = select.children();
        let (Some(base), Some(attrpath)) = (children.next(), children.next()) else {
            continue;
        };
        if base.kind() != SyntaxKind::NODE_IDENT {
            continue;
        }
        let keys: Option<Vec<String>> = attrpath
            .children()
            .map(|a| crate::nixedit::syntax::attr_key(&a))
            .collect();
        let Some(keys) = keys else { continue };
        let rest: Vec<&str> = match base.text().to_string().as_str() {
            "self" => keys.iter().map(String::as_str).collect(),
            "inputs" if keys.first().map(String::as_str) == Some("self") => {
                keys[1..].iter().map(String::as_str).collect()
            }
            _ => continue,
        };
        if let ["nixosModules", name] = rest.as_slice() {
            let r = select.text_range();
            out.push((
                name.to_string(),
                usize::from(r.start())..usize::from(r.end()),
            ));
        }
    }
    out
}

/// Whether `text` may define something under the option whose last key is
/// `hint`: a definition names every key of its path. A key may be written
/// with escapes (`"matrix-c\luster"` is `matrix-cluster`), so a text with
/// backslashes is also looked at without them.
fn names_option(text: &str, hint: &str) -> bool {
    text.contains(hint) || (text.contains('\\') && text.replace('\\', "").contains(hint))
}

/// `f` over `items`, spread over up to one thread per core when the work
/// (the sum of `weight`) pays for them: every thread gets at least
/// `min_per_thread` of it. Items are dealt heaviest first to the least loaded
/// thread, so one big file does not leave a core idle while another parses
/// alone; the first share runs on this thread. Results come back in the
/// order of `items`, so errors and outcomes never depend on thread timing.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    min_per_thread: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let weights: Vec<usize> = items.iter().map(weight).collect();
    let total: usize = weights.iter().sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(total / min_per_thread.max(1))
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weights[i]));
    let mut shares: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); threads];
    for i in order {
        if let Some(lightest) = shares.iter_mut().min_by_key(|(load, _)| *load) {
            lightest.0 += weights[i];
            lightest.1.push(i);
        }
    }
    let mut results: Vec<Option<R>> = items.iter().map(|_| None).collect();
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> = shares[1..]
            .iter()
            .map(|(_, share)| {
                scope.spawn(move || share.iter().map(|&i| (i, f(&items[i]))).collect::<Vec<_>>())
            })
            .collect();
        for &i in &shares[0].1 {
            results[i] = Some(f(&items[i]));
        }
        for worker in workers {
            match worker.join() {
                Ok(done) => {
                    for (i, result) in done {
                        results[i] = Some(result);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every index is dealt to exactly one share"))
        .collect()
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
