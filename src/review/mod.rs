//! The role diff between two revisions of the cluster flake:
//! what a change does to each member, which findings it brings or fixes, and
//! the file diffs. Both revisions are read from git objects ([`git`]); the
//! head may also be the work tree. Rendering is in [`crate::render::review`].

pub mod git;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cluster::addresses::Reference;
use crate::cluster::{
    rules, Cluster, Finding, Member, Role, Severity, ALLOWED_IPS, PEER_HOST, ROLE,
};
use crate::config::{self, Loaded};
use crate::error::{Error, Result, EXIT_BAD_INPUT};

/// The hidden line that lets the bot find its own pull-request comment.
pub const MARKER: &str = "<!-- nixflip:diff -->";

/// Which revisions to compare.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The flake root (in a git work tree).
    pub root: &'a Path,
    pub base: &'a str,
    /// `None`: the work tree (files read from disk).
    pub head: Option<&'a str>,
    /// `--config FILE`: used for both sides instead of each side's own
    /// `nixflip.toml`.
    pub config: Option<&'a Path>,
}

/// A value before and after; `None` where the host is not a member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Change {
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Change {
    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostStatus {
    /// A member only in the head.
    Added,
    /// A member only in the base.
    Removed,
    /// A cluster option (or the address) changed.
    Changed,
    /// One of its files changed, but no cluster option did.
    Edited,
    Unchanged,
}

/// Another cluster option that changed on a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One member, before and after.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostDiff {
    pub host: String,
    pub status: HostStatus,
    pub role: Change,
    /// Effective Synapse: `on`, `off`, or `?` when it cannot be read.
    pub synapse: Change,
    pub peer_host: Change,
    #[serde(rename = "allowedSourceIPs")]
    pub allowed_source_ips: Change,
    pub address: Change,
    /// Every other cluster option whose winning definition changed.
    pub fields: Vec<FieldChange>,
    /// The host's files (flake-relative) that changed.
    pub files: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingStatus {
    /// Not in the base: this change brings it.
    New,
    /// Already in the base.
    Existing,
}

/// A finding of the head revision, marked new or already present.
#[derive(Clone, Debug, Serialize)]
pub struct ReviewedFinding {
    #[serde(flatten)]
    pub finding: Finding,
    pub status: FindingStatus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Added,
    Modified,
    Deleted,
}

/// One changed file under the flake root.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileDiff {
    /// Relative to the flake root.
    pub path: PathBuf,
    pub status: FileStatus,
    /// Members this file belongs to (in either revision).
    pub hosts: Vec<String>,
    /// Members that import it as a module (in either revision).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imported_by: Vec<String>,
    /// Unified diff with repository-relative `a/` `b/` headers, when text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Why there is no diff (binary, too large).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a module is to the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleKind {
    /// It declares the cluster option (`nix/matrix-cluster.nix`).
    Cluster,
    /// Several members import it.
    Shared,
}

/// A changed file that members import: the cluster module, or a module
/// they share.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleChange {
    pub path: PathBuf,
    pub kind: ModuleKind,
    /// The members that import it (in either revision).
    pub imported_by: Vec<String>,
    /// Whether every member (of the head, or of the base when the head has
    /// none) imports it.
    pub every_member: bool,
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// The revisions as the user named them (`work tree` for the work tree).
    pub base: String,
    pub head: String,
    /// The flake root's path in the repository (`""` or `dir/`).
    pub prefix: String,
    /// One line: "promotes X; Y becomes standby".
    pub summary: String,
    /// Whether any member changed at all.
    pub touches_cluster: bool,
    /// Error findings in the head.
    pub errors: usize,
    pub warnings: usize,
    pub hosts: Vec<HostDiff>,
    /// Changed modules the members import.
    pub modules: Vec<ModuleChange>,
    pub findings: Vec<ReviewedFinding>,
    /// Findings of the base that the head no longer has.
    pub resolved: Vec<Finding>,
    pub files: Vec<FileDiff>,
}

impl Review {
    pub fn new_findings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.status == FindingStatus::New)
            .count()
    }
}

/// A file's content on one side.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Content {
    Absent,
    Text(String),
    Binary,
    TooLarge(u64),
}

impl Content {
    fn from_bytes(bytes: Vec<u8>) -> Content {
        // git's own test: a NUL in the first 8000 bytes means binary.
        if bytes.iter().take(8000).any(|b| *b == 0) {
            return Content::Binary;
        }
        match String::from_utf8(bytes) {
            Ok(text) => Content::Text(text),
            Err(_) => Content::Binary,
        }
    }
}

/// One side of the comparison.
struct Side {
    label: String,
    cluster: Cluster,
}

impl Side {
    /// Each member's name and every file its configuration reads that
    /// nixflip follows (see [`Cluster::files_used_by`]).
    fn used(&self) -> Vec<(String, BTreeSet<PathBuf>)> {
        self.cluster
            .members
            .iter()
            .map(|m| (m.name.clone(), self.cluster.files_used_by(m)))
            .collect()
    }
}

/// Build both cluster models and compare them.
pub fn review(request: &Request) -> Result<Review> {
    let root = request.root;
    let prefix = git::show_prefix(root)?;
    let base_commit = git::resolve_commit(root, request.base)?;
    let head_commit = request
        .head
        .map(|h| git::resolve_commit(root, h))
        .transpose()?;
    let base_tree = git::ls_tree(root, &base_commit, &prefix)?;
    let head_tree = head_commit
        .as_deref()
        .map(|c| git::ls_tree(root, c, &prefix))
        .transpose()?;
    let changed: BTreeSet<PathBuf> = match &head_tree {
        Some(head) => changed_paths(&base_tree, head),
        None => git::worktree_changes(root, &base_commit)?,
    };

    // Every blob either side needs, read by one `git cat-file --batch`.
    let mut wanted = BTreeSet::new();
    for tree in std::iter::once(&base_tree).chain(head_tree.as_ref()) {
        for (path, entry) in &tree.entries {
            if is_read(path) || changed.contains(path) && entry.size <= git::MAX_DIFF_BYTES {
                wanted.insert(entry.oid.clone());
            }
        }
    }
    let blobs = git::cat_blobs(root, &wanted)?;

    let base_label = request.base.to_string();
    let base = Side {
        cluster: cluster_at(root, &base_tree, &blobs, request.config, &base_label)?,
        label: base_label,
    };
    let head = match (&head_tree, request.head) {
        (Some(tree), Some(label)) => Side {
            cluster: cluster_at(root, tree, &blobs, request.config, label)?,
            label: label.to_string(),
        },
        _ => {
            let label = "work tree".to_string();
            let cluster = config::load(root, request.config)
                .and_then(|loaded| Cluster::load(root, loaded))
                .map_err(|e| at_revision(e, &label))?;
            Side { cluster, label }
        }
    };

    let contents = |tree: Option<&git::Tree>, path: &Path| match tree {
        Some(tree) => tree_content(tree, &blobs, path),
        None => disk_content(&root.join(path)),
    };
    let mut files = Vec::new();
    let mut used = base.used();
    used.extend(head.used());
    for path in &changed {
        let old = tree_content(&base_tree, &blobs, path);
        let new = contents(head_tree.as_ref(), path);
        if let Some(file) = file_diff(&base, &head, &used, &prefix, path, old, new) {
            files.push(file);
        }
    }
    Ok(compare(&base, &head, prefix, files))
}

/// The label of the index in diagnostics and in the config's file name.
const INDEX: &str = "(index)";

/// The cluster as it is staged: every file under the flake root read from
/// the git index (one `git ls-files`, one `git cat-file --batch`), so a
/// pre-commit check judges what the commit will hold, whatever the work tree
/// says. Its own staged `nixflip.toml` applies unless `config` overrides it.
pub fn cluster_in_index(root: &Path, config: Option<&Path>) -> Result<Cluster> {
    git::show_prefix(root).map_err(|_| {
        Error::usage(
            format!("{} is not inside a git repository", root.display()),
            "--staged reads the git index: run it in the flake's repository, or drop --staged to check the files as they are",
        )
    })?;
    let tree = git::ls_index(root)?;
    let wanted: BTreeSet<String> = tree
        .entries
        .iter()
        .filter(|(path, _)| is_read(path))
        .map(|(_, entry)| entry.oid.clone())
        .collect();
    let blobs = git::cat_blobs(root, &wanted)?;
    cluster_at(root, &tree, &blobs, config, INDEX)
}

/// Files read on every side whatever changed: the ones discovery may parse,
/// and the config.
fn is_read(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "nix") || path == Path::new("nixflip.toml")
}

fn changed_paths(base: &git::Tree, head: &git::Tree) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for (path, entry) in &base.entries {
        if head.entries.get(path).is_none_or(|h| h.oid != entry.oid) {
            out.insert(path.clone());
        }
    }
    for path in head.entries.keys() {
        if !base.entries.contains_key(path) {
            out.insert(path.clone());
        }
    }
    out
}

fn tree_content(tree: &git::Tree, blobs: &BTreeMap<String, Vec<u8>>, path: &Path) -> Content {
    match tree.entries.get(path) {
        None => Content::Absent,
        Some(entry) if entry.size > git::MAX_DIFF_BYTES && !is_read(path) => {
            Content::TooLarge(entry.size)
        }
        Some(entry) => blobs
            .get(&entry.oid)
            .map_or(Content::Absent, |b| Content::from_bytes(b.clone())),
    }
}

fn disk_content(path: &Path) -> Content {
    match std::fs::metadata(path) {
        Err(_) => Content::Absent,
        Ok(meta) if !meta.is_file() => Content::Absent,
        Ok(meta) if meta.len() > git::MAX_DIFF_BYTES => Content::TooLarge(meta.len()),
        Ok(_) => std::fs::read(path).map_or(Content::Absent, Content::from_bytes),
    }
}

/// The cluster model of a revision, from its blobs; its own `nixflip.toml`
/// unless `--config` overrides it.
fn cluster_at(
    root: &Path,
    tree: &git::Tree,
    blobs: &BTreeMap<String, Vec<u8>>,
    config_override: Option<&Path>,
    label: &str,
) -> Result<Cluster> {
    let text_of = |entry: &git::Entry| {
        blobs
            .get(&entry.oid)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let loaded = match (config_override, tree.entries.get(Path::new("nixflip.toml"))) {
        (Some(path), _) => config::load(root, Some(path))?,
        (None, Some(entry)) => config::from_text(
            PathBuf::from(format!("{label}:nixflip.toml")),
            text_of(entry).unwrap_or_default(),
            &|file: &Path| {
                tree.entries
                    .contains_key(&crate::cluster::discover::normalize(file))
            },
            root,
        )
        .map_err(|e| at_revision(e, label))?,
        (None, None) => Loaded::default(),
    };
    let texts = tree
        .entries
        .iter()
        .filter(|(path, _)| path.extension().is_some_and(|e| e == "nix"))
        .filter_map(|(path, entry)| text_of(entry).map(|t| (path.clone(), t)));
    Cluster::from_texts(root, texts, loaded).map_err(|e| at_revision(e, label))
}

/// Name the revision in a bad-input diagnostic, so a reader knows whether
/// the base or the head is broken.
fn at_revision(error: Error, label: &str) -> Error {
    if error.exit_code() != EXIT_BAD_INPUT {
        return error;
    }
    let place = match label {
        "work tree" => "in the work tree".to_string(),
        INDEX => "in the git index (what is staged)".to_string(),
        _ => format!("at revision `{label}`"),
    };
    Error::caused(
        EXIT_BAD_INPUT,
        AtRevision {
            place,
            source: error,
        },
    )
}

/// One side's cluster could not be read (a host file or `nixflip.toml`
/// that does not parse, say); the inner error says why.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot read the cluster {place}")]
#[diagnostic(code(nixflip::diff::revision))]
pub struct AtRevision {
    /// "at revision `X`" or "in the work tree".
    pub place: String,
    #[source]
    #[diagnostic_source]
    source: Error,
}

/// Where the cluster could not be read, when that is what `error` says
/// (so the PR bot can post that instead of a diff).
pub fn unreadable(error: &Error) -> Option<&str> {
    error
        .downcast_ref::<AtRevision>()
        .map(|at| at.place.as_str())
}

fn file_diff(
    base: &Side,
    head: &Side,
    used: &[(String, BTreeSet<PathBuf>)],
    prefix: &str,
    path: &Path,
    old: Content,
    new: Content,
) -> Option<FileDiff> {
    let status = match (&old, &new) {
        (Content::Absent, Content::Absent) => return None,
        (Content::Absent, _) => FileStatus::Added,
        (_, Content::Absent) => FileStatus::Deleted,
        _ if old == new => return None,
        _ => FileStatus::Modified,
    };
    let hosts: BTreeSet<String> = [&base.cluster, &head.cluster]
        .iter()
        .flat_map(|c| c.members.iter())
        .filter(|m| m.files.iter().any(|f| f == path))
        .map(|m| m.name.clone())
        .collect();
    let own = |name: &String| {
        [&base.cluster, &head.cluster]
            .iter()
            .filter_map(|c| c.member(name))
            .any(|m| m.file == path)
    };
    let imported_by: BTreeSet<String> = used
        .iter()
        .filter(|(name, files)| files.contains(path) && !own(name))
        .map(|(name, _)| name.clone())
        .collect();
    let shown = format!("{prefix}{}", path.display());
    let text = |c: &Content| match c {
        Content::Text(t) => Some(t.clone()),
        Content::Absent => Some(String::new()),
        _ => None,
    };
    let (diff, note) = match (text(&old), text(&new)) {
        (Some(a), Some(b)) => (Some(crate::textdiff::unified(&shown, &a, &b)), None),
        _ => {
            let why = [&old, &new].iter().find_map(|c| match c {
                Content::TooLarge(size) => Some(format!("too large to show ({size} bytes)")),
                Content::Binary => Some("binary file".to_string()),
                _ => None,
            });
            (None, why)
        }
    };
    Some(FileDiff {
        path: path.to_path_buf(),
        status,
        hosts: hosts.into_iter().collect(),
        imported_by: imported_by.into_iter().collect(),
        diff,
        note,
    })
}

/// Compare two cluster models (and the changed files) into a [`Review`].
fn compare(base: &Side, head: &Side, prefix: String, mut files: Vec<FileDiff>) -> Review {
    let names: BTreeSet<&str> = base
        .cluster
        .members
        .iter()
        .chain(&head.cluster.members)
        .map(|m| m.name.as_str())
        .collect();
    let modules = module_changes(base, head, &files);
    // A module is reported once, as such, not as an edit of every member's
    // files; a file only one member imports (no cluster module) is that
    // member's, like the files it defines options in.
    for f in &mut files {
        if modules.iter().any(|m| m.path == f.path) {
            f.hosts.clear();
        } else {
            let mut importers = std::mem::take(&mut f.imported_by);
            importers.retain(|h| !f.hosts.contains(h));
            f.hosts.extend(importers);
            f.hosts.sort();
        }
    }
    let hosts: Vec<HostDiff> = names
        .into_iter()
        .map(|name| {
            host_diff(
                name,
                base.cluster.member(name),
                head.cluster.member(name),
                &files,
            )
        })
        .collect();
    let mut head_findings = rules::check(&head.cluster);
    head_findings.extend(removed_addresses_in_use(base, head));
    let (findings, resolved) = mark_findings(&rules::check(&base.cluster), head_findings);
    // Members' files first, then modules they import, then other `.nix`
    // files: when a comment must be cut, what matters most is kept.
    files.sort_by_key(|f| {
        let nix = f.path.extension().is_some_and(|e| e == "nix");
        (
            f.hosts.is_empty(),
            f.imported_by.is_empty(),
            !nix,
            f.path.clone(),
        )
    });
    let errors = findings
        .iter()
        .filter(|f| f.finding.severity == crate::cluster::Severity::Error)
        .count();
    let touches_cluster =
        hosts.iter().any(|h| h.status != HostStatus::Unchanged) || !modules.is_empty();
    Review {
        base: base.label.clone(),
        head: head.label.clone(),
        prefix,
        summary: summary(&hosts, &modules),
        touches_cluster,
        errors,
        warnings: findings.len() - errors,
        hosts,
        modules,
        findings,
        resolved,
        files,
    }
}

/// Changed files that members import as modules: a file that declares the
/// cluster option (the cluster module), or one several members import.
fn module_changes(base: &Side, head: &Side, files: &[FileDiff]) -> Vec<ModuleChange> {
    let mut out = Vec::new();
    for f in files.iter().filter(|f| !f.imported_by.is_empty()) {
        let importers: BTreeSet<String> = f.imported_by.iter().cloned().collect();
        let declares = [&head.cluster, &base.cluster]
            .iter()
            .any(|c| declares_option(c, &f.path));
        let kind = if declares {
            ModuleKind::Cluster
        } else if importers.len() >= 2 {
            ModuleKind::Shared
        } else {
            continue;
        };
        let side = if head.cluster.members.is_empty() {
            &base.cluster
        } else {
            &head.cluster
        };
        let every_member =
            !side.members.is_empty() && side.members.iter().all(|m| importers.contains(&m.name));
        out.push(ModuleChange {
            path: f.path.clone(),
            kind,
            imported_by: importers.into_iter().collect(),
            every_member,
        });
    }
    out
}

/// Whether `path` declares options under the cluster option
/// (`options.hectic.generic.matrix-cluster = { … };`).
fn declares_option(cluster: &Cluster, path: &Path) -> bool {
    let mut declared = vec!["options".to_string()];
    declared.extend(cluster.option.keys().iter().cloned());
    cluster.sources.get(path).is_some_and(|file| {
        file.bindings()
            .iter()
            .any(|b| b.declaration && b.path.starts_with(&declared))
    })
}

/// NF110: the address of a member the head removed, still written in the
/// head (a proxy URL, a `peerHost`, an `allowedSourceIPs` entry). The removed
/// member's own files are not looked at.
fn removed_addresses_in_use(base: &Side, head: &Side) -> Vec<Finding> {
    let mut out = Vec::new();
    for gone in base
        .cluster
        .members
        .iter()
        .filter(|m| head.cluster.member(&m.name).is_none())
    {
        let Some(address) = &gone.address else {
            continue;
        };
        let primary = head
            .cluster
            .primary()
            .and_then(|p| {
                p.address
                    .clone()
                    .map(|a| format!(" (the primary is at {a})"))
            })
            .unwrap_or_default();
        for used in crate::cluster::addresses::address_uses(&head.cluster, address, &gone.files) {
            let owner = head
                .cluster
                .members
                .iter()
                .find(|m| m.files.contains(&used.file))
                .map(|m| m.name.clone());
            let (severity, what, help) = match used.kind {
                Reference::Endpoint => (
                    Severity::Error,
                    "as the host of an endpoint: whatever connects there reaches a host that is no longer a member",
                    format!("point it at a member{primary}, or at a name that follows the primary (DNS)"),
                ),
                Reference::Exact => (
                    Severity::Error,
                    "as a whole value (a peerHost, an upstream)",
                    format!("point it at a member{primary}, or remove it"),
                ),
                Reference::Network => (
                    Severity::Warning,
                    "as a network: it still admits that address (an allowedSourceIPs entry, a firewall rule)",
                    "remove the entry: the address may be given to someone else".to_string(),
                ),
            };
            out.push(Finding {
                id: "NF110",
                severity,
                host: owner,
                file: used.file,
                line: used.line,
                column: used.column,
                span: Some((used.span.start, used.span.end)),
                message: format!(
                    "{} is removed from the cluster, but its address {address} is still used here, {what}",
                    gone.name
                ),
                help,
            });
        }
    }
    out
}

fn role_text(m: &Member) -> String {
    match m.role() {
        Role::Primary => "primary".into(),
        Role::Standby => "standby".into(),
        Role::Invalid(expr) => one_line(&expr),
        Role::Missing => "(unset)".into(),
    }
}

fn synapse_text(m: &Member) -> String {
    match m.effective_synapse() {
        Some(true) => "on".into(),
        Some(false) => "off".into(),
        None => "?".into(),
    }
}

/// A cluster option's winning value as Nix text (the literal, or the
/// expression as written), on one line.
fn field_text(m: &Member, key: &str) -> String {
    match m.def(key) {
        None => "(unset)".into(),
        Some(def) => def
            .value
            .as_ref()
            .map_or_else(|| one_line(&def.expr), |v| v.render_inline()),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn change(
    base: Option<&Member>,
    head: Option<&Member>,
    value: impl Fn(&Member) -> String,
) -> Change {
    Change {
        before: base.map(&value),
        after: head.map(&value),
    }
}

fn host_diff(
    name: &str,
    base: Option<&Member>,
    head: Option<&Member>,
    files: &[FileDiff],
) -> HostDiff {
    let role = change(base, head, role_text);
    let synapse = change(base, head, synapse_text);
    let peer_host = change(base, head, |m| {
        m.peer_host()
            .map_or_else(|| field_text(m, PEER_HOST), str::to_string)
    });
    let allowed_source_ips = change(base, head, |m| {
        m.allowed_ips()
            .map_or_else(|| field_text(m, ALLOWED_IPS), |ips| ips.join(", "))
    });
    let address = change(base, head, |m| {
        m.address.clone().unwrap_or_else(|| "?".into())
    });
    let mut fields = Vec::new();
    if let (Some(b), Some(h)) = (base, head) {
        let keys: BTreeSet<&String> = b.defs.keys().chain(h.defs.keys()).collect();
        // An attribute set on the path (`replication = { … };`) is shown
        // through the options inside it, not as one big value.
        let is_set = |key: &str| {
            let inner = format!("{key}.");
            keys.iter().any(|k| k.starts_with(&inner))
        };
        for key in &keys {
            if [ROLE, PEER_HOST, ALLOWED_IPS].contains(&key.as_str())
                || key.is_empty()
                || is_set(key)
            {
                continue;
            }
            let (before, after) = (field_text(b, key), field_text(h, key));
            if before != after {
                fields.push(FieldChange {
                    field: (*key).clone(),
                    before: Some(before),
                    after: Some(after),
                });
            }
        }
    }
    let host_files: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.hosts.iter().any(|h| h == name))
        .map(|f| f.path.clone())
        .collect();
    let status = match (base, head) {
        (None, _) => HostStatus::Added,
        (_, None) => HostStatus::Removed,
        _ if [&role, &synapse, &peer_host, &allowed_source_ips, &address]
            .iter()
            .any(|c| c.changed())
            || !fields.is_empty() =>
        {
            HostStatus::Changed
        }
        _ if !host_files.is_empty() => HostStatus::Edited,
        _ => HostStatus::Unchanged,
    };
    HostDiff {
        host: name.to_string(),
        status,
        role,
        synapse,
        peer_host,
        allowed_source_ips,
        address,
        fields,
        files: host_files,
    }
}

/// Head findings marked new or existing, matched by rule id, host and
/// message (lines shift, so they are not part of the match); plus the base
/// findings the head no longer has.
fn mark_findings(base: &[Finding], head: Vec<Finding>) -> (Vec<ReviewedFinding>, Vec<Finding>) {
    type Key = (&'static str, Option<String>, String);
    let key = |f: &Finding| -> Key { (f.id, f.host.clone(), f.message.clone()) };
    let mut unmatched: BTreeMap<Key, Vec<&Finding>> = BTreeMap::new();
    for f in base {
        unmatched.entry(key(f)).or_default().push(f);
    }
    let reviewed = head
        .into_iter()
        .map(|finding| {
            let status = match unmatched.get_mut(&key(&finding)).and_then(Vec::pop) {
                Some(_) => FindingStatus::Existing,
                None => FindingStatus::New,
            };
            ReviewedFinding { finding, status }
        })
        .collect();
    let mut resolved: Vec<Finding> = unmatched.into_values().flatten().cloned().collect();
    resolved.sort_by(|a, b| (&a.file, a.line, a.id).cmp(&(&b.file, b.line, b.id)));
    (reviewed, resolved)
}

/// "promotes X; Y becomes standby; changes peerHost on Z; changes the
/// cluster module `…`, imported by every member".
fn summary(hosts: &[HostDiff], modules: &[ModuleChange]) -> String {
    let changed = |h: &&HostDiff| h.status == HostStatus::Changed;
    let promoted = |h: &HostDiff| {
        h.role.after.as_deref() == Some("primary") && h.role.before.as_deref() != Some("primary")
    };
    let demoted = |h: &HostDiff| {
        h.role.before.as_deref() == Some("primary") && h.role.after.as_deref() == Some("standby")
    };
    let mut parts = Vec::new();
    for h in hosts.iter().filter(changed).filter(|h| promoted(h)) {
        parts.push(format!("promotes {}", h.host));
    }
    for h in hosts.iter().filter(changed).filter(|h| demoted(h)) {
        parts.push(format!("{} becomes standby", h.host));
    }
    for h in hosts.iter().filter(|h| h.status == HostStatus::Added) {
        let role = h.role.after.as_deref().unwrap_or("?");
        parts.push(format!("adds {} as {role}", h.host));
    }
    for h in hosts.iter().filter(|h| h.status == HostStatus::Removed) {
        parts.push(format!("removes {}", h.host));
    }
    for h in hosts
        .iter()
        .filter(changed)
        .filter(|h| !promoted(h) && !demoted(h))
    {
        if h.role.changed() {
            parts.push(format!(
                "changes the role of {} from {} to {}",
                h.host,
                h.role.before.as_deref().unwrap_or("?"),
                h.role.after.as_deref().unwrap_or("?")
            ));
            continue;
        }
        let mut what: Vec<&str> = Vec::new();
        for (name, c) in [
            ("Synapse", &h.synapse),
            ("peerHost", &h.peer_host),
            ("allowedSourceIPs", &h.allowed_source_ips),
            ("address", &h.address),
        ] {
            if c.changed() {
                what.push(name);
            }
        }
        what.extend(h.fields.iter().map(|f| f.field.as_str()));
        parts.push(format!("changes {} on {}", what.join(", "), h.host));
    }
    let edited: Vec<&str> = hosts
        .iter()
        .filter(|h| h.status == HostStatus::Edited)
        .map(|h| h.host.as_str())
        .collect();
    if !edited.is_empty() {
        parts.push(format!(
            "edits the files of {} without changing a cluster option",
            edited.join(", ")
        ));
    }
    for m in modules {
        let what = match m.kind {
            ModuleKind::Cluster => "the cluster module",
            ModuleKind::Shared => "the shared module",
        };
        let by = if m.every_member {
            "every member".to_string()
        } else {
            m.imported_by.join(", ")
        };
        parts.push(format!(
            "changes {what} `{}`, imported by {by}",
            m.path.display()
        ));
    }
    let primaries = |after: bool| -> Vec<&str> {
        hosts
            .iter()
            .filter(|h| {
                let side = if after { &h.role.after } else { &h.role.before };
                side.as_deref() == Some("primary")
            })
            .map(|h| h.host.as_str())
            .collect()
    };
    let (before, after) = (primaries(false), primaries(true));
    let members_after = hosts.iter().filter(|h| h.role.after.is_some()).count();
    if before.len() != after.len() && members_after > 0 {
        match after.len() {
            0 => parts.push("leaves no primary".into()),
            1 => {}
            n => parts.push(format!("leaves {n} primaries ({})", after.join(", "))),
        }
    }
    if parts.is_empty() {
        "touches no cluster member".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Severity;

    fn finding(id: &'static str, host: &str, message: &str, line: usize) -> Finding {
        Finding {
            id,
            severity: Severity::Error,
            host: Some(host.into()),
            file: PathBuf::from(format!("{host}.nix")),
            line,
            column: 1,
            span: None,
            message: message.into(),
            help: String::new(),
        }
    }

    #[test]
    fn findings_match_by_id_host_and_message_not_line() {
        let base = vec![
            finding("NF002", "a", "streams from x", 10),
            finding("NF101", "b", "lists itself", 4),
        ];
        let head = vec![
            // The line moved: still the same finding.
            finding("NF002", "a", "streams from x", 12),
            // Same rule and host, new message: new.
            finding("NF002", "a", "streams from y", 12),
        ];
        let (reviewed, resolved) = mark_findings(&base, head);
        let statuses: Vec<FindingStatus> = reviewed.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [FindingStatus::Existing, FindingStatus::New]);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].id, "NF101");
    }

    #[test]
    fn a_finding_present_once_matches_once() {
        let base = vec![finding("NF001", "a", "two primaries", 1)];
        let head = vec![
            finding("NF001", "a", "two primaries", 1),
            finding("NF001", "a", "two primaries", 9),
        ];
        let (reviewed, _) = mark_findings(&base, head);
        let new = reviewed
            .iter()
            .filter(|r| r.status == FindingStatus::New)
            .count();
        assert_eq!(new, 1);
    }
}
