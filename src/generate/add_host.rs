//! `nixflip add-host NAME --address ADDRESS`: a new standby of the current
//! primary (the disaster-recovery runbook's "provision a new host and import
//! the cluster module with role = standby pointed at the primary").
//!
//! The plan has three parts, all computed in memory:
//! - the new host file, from the host template, with the primary's shared
//!   values (domain, secret files, bucket, secret declarations) copied and
//!   relative paths rebased;
//! - a `nixosConfigurations` entry in `flake.nix`, copied from the primary's
//!   entry (as the flake model found it) with its host file or directory
//!   path (and name) substituted, inserted as a text edit: the rest of
//!   `flake.nix` keeps every byte; the flake model must read the result as
//!   an entry for the new host file, or nothing is written;
//! - for a host imported as a directory (`import ./nixos/system/NAME { … }`),
//!   a copy of the primary's generic `default.nix` in the new directory;
//! - lossless edits of the existing host files: every member's
//!   `allowedSourceIPs` gains the new address, and members whose address was
//!   only inferred from a two-node peerHost get it pinned as `publicIp`
//!   (with three members that inference no longer works).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use rnix::{SyntaxKind, SyntaxNode};

use super::{check_address, check_host_name, render_host, source_cidr, system_host_name, HostFile};
use crate::cluster::discover::normalize;
use crate::cluster::flake::Entry;
use crate::cluster::plan::{covers, rebase_paths, relative_path, Intended};
use crate::cluster::{Cluster, FlakeModel, Member, ALLOWED_IPS, PUBLIC_IP, SECRETS_FILE};
use crate::error::{read_text, Error, Result};
use crate::nixedit::{
    self, path::render_key, syntax, AttrPath, NewValue, NixFile, TextEdit, Value,
};

/// What to add.
#[derive(Clone, Debug)]
pub struct AddHostRequest {
    pub name: String,
    pub address: String,
    /// Where the host file goes (relative to the flake root); default: the
    /// primary's file path with its name replaced.
    pub file: Option<PathBuf>,
}

pub use crate::transaction::FileChange;

#[derive(Clone, Debug)]
pub struct AddHostPlan {
    pub name: String,
    pub primary: String,
    pub primary_address: String,
    pub file: PathBuf,
    pub attr: String,
    pub changes: Vec<FileChange>,
    /// What the operator should know (copied values, values not copied).
    pub notes: Vec<String>,
    /// The managed fields the result must evaluate to.
    pub intended: BTreeMap<String, Intended>,
}

impl AddHostPlan {
    /// The change to prove and write: the new files and edits, the new host
    /// among the members afterwards, every member as intended.
    pub fn change(&self) -> crate::transaction::Change {
        crate::transaction::Change {
            files: self.changes.clone(),
            intended: self.intended.clone(),
            new_members: vec![self.name.clone()],
            commit_message: format!(
                "nixflip: add {} as a standby of {}\n\n{}",
                self.name,
                self.primary,
                self.changes
                    .iter()
                    .map(|c| format!("- {}\n", c.path.display()))
                    .collect::<String>()
            ),
            ..Default::default()
        }
    }
}

/// Plan adding `req` to `cluster` as a standby of its primary.
pub fn plan_add_host(cluster: &Cluster, req: &AddHostRequest) -> Result<AddHostPlan> {
    check_host_name(&req.name)?;
    check_address(&req.address)?;
    check_member_addresses(cluster)?;
    if cluster.member(&req.name).is_some() {
        return Err(Error::usage(
            format!("`{}` is already a member of the cluster", req.name),
            "pick another name; to rebuild a lost host, keep its file and reinstall the machine",
        ));
    }
    if let Some(m) = cluster
        .members
        .iter()
        .find(|m| m.address.as_deref() == Some(req.address.as_str()))
    {
        return Err(Error::usage(
            format!("{} is already the address of {}", req.address, m.name),
            "every member needs its own address",
        ));
    }
    let primary = cluster.primary().ok_or_else(|| {
        Error::usage(
            "the cluster has no single primary to point the new standby at",
            "run `nixflip check` and fix NF001 first",
        )
    })?;
    let primary_address = primary.address.clone().ok_or_else(|| {
        Error::usage(
            format!("the address of the primary {} is unknown", primary.name),
            format!(
                "set publicIp in its file, or [hosts.\"{}\"] address in nixflip.toml",
                primary.name
            ),
        )
    })?;

    let entry = primary_entry(cluster, primary)?;
    let entry_text = read_text(&cluster.root.join(&entry.place.file))?;
    let entry_file = NixFile::parse(entry.place.file.display().to_string(), entry_text.clone())?;
    let node = binding_at(&entry_file, entry)?;
    let host = host_reference(primary, entry, &entry_file, &node)?;
    let file = match &req.file {
        Some(f) if f.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) => {
            return Err(Error::usage(
                format!("--file {}: not a relative path inside the flake", f.display()),
                "pass a path relative to the flake root, such as hosts/NAME.nix",
            ))
        }
        Some(f) => normalize(f),
        None => derive_file(&primary.file, &primary.name, &req.name).ok_or_else(|| {
            Error::usage(
                format!(
                    "cannot derive a file name for {} from the primary's file {} (it does not contain the name {})",
                    req.name,
                    primary.file.display(),
                    primary.name
                ),
                "pass --file PATH (relative to the flake root)",
            )
        })?,
    };
    if file.extension().and_then(|e| e.to_str()) != Some("nix")
        || file
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(Error::usage(
            format!("{} is not a .nix file inside the flake", file.display()),
            "pass a relative path such as hosts/NAME.nix",
        ));
    }
    if cluster.root.join(&file).exists() {
        return Err(Error::usage(
            format!("{} already exists", file.display()),
            "nixflip never overwrites a host file; pass --file for another path, or remove it",
        ));
    }
    let mut notes = Vec::new();
    let mut changes = Vec::new();
    // A host imported as a directory: its generic default.nix is copied.
    let primary_dir = primary.file.parent().unwrap_or(Path::new("")).to_path_buf();
    let new_dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    if let HostRef::Dir(_) = host {
        if cluster.root.join(&new_dir).exists() {
            return Err(Error::usage(
                format!("{} already exists", new_dir.display()),
                "the new host gets a directory of its own, as the primary has; remove it or pick another name",
            ));
        }
        let generic = primary_dir.join("default.nix");
        let text = read_text(&cluster.root.join(&generic))?;
        let copied = copy_generic(&generic, &text, &primary.name, &req.name)?;
        notes.push(if copied == text {
            format!(
                "{} is a copy of {} (byte for byte)",
                new_dir.join("default.nix").display(),
                generic.display()
            )
        } else {
            format!(
                "{} is a copy of {} with {} renamed",
                new_dir.join("default.nix").display(),
                generic.display(),
                primary.name
            )
        });
        changes.push(FileChange {
            path: new_dir.join("default.nix"),
            old: None,
            new: copied,
        });
        let left = host_only_files(
            &cluster.root,
            &primary_dir,
            &[generic, primary.file.clone()],
        );
        if !left.is_empty() {
            notes.push(format!(
                "not copied from {} (host-only files of {}): {}; give {} its own where it needs them",
                primary_dir.display(),
                primary.name,
                left.join(", "),
                req.name
            ));
        }
    }
    let (flake_new, attr) = insert_entry(
        &entry_file,
        entry,
        &node,
        &host,
        &primary.name,
        &req.name,
        &file,
    )?;
    let host_text = render_host(&host_file(
        cluster,
        primary,
        &primary_address,
        req,
        &file,
        &mut notes,
    )?)?;
    changes.insert(
        0,
        FileChange {
            path: file.clone(),
            old: None,
            new: host_text,
        },
    );
    changes.push(FileChange {
        path: entry.place.file.clone(),
        old: Some(entry_text),
        new: flake_new,
    });
    verify_entry(cluster, &changes, &attr, &file)?;
    changes.extend(member_edits(cluster, req, &mut notes)?);

    let mut intended = BTreeMap::new();
    let new_cidr = source_cidr(&req.address);
    for m in &cluster.members {
        let primary_here = m.name == primary.name;
        intended.insert(
            m.name.clone(),
            Intended {
                role: if primary_here { "primary" } else { "standby" }.into(),
                synapse: m.effective_synapse().unwrap_or(primary_here),
                peer_host: None,
                allowed_source_ips: vec![new_cidr.clone()],
            },
        );
    }
    intended.insert(
        req.name.clone(),
        Intended {
            role: "standby".into(),
            synapse: false,
            peer_host: Some(primary_address.clone()),
            allowed_source_ips: others(cluster, &req.name),
        },
    );
    Ok(AddHostPlan {
        name: req.name.clone(),
        primary: primary.name.clone(),
        primary_address,
        file,
        attr,
        changes,
        notes,
        intended,
    })
}

/// The new host's allowedSourceIPs list every member's address, so each must
/// be an IP (a DNS name pinned in nixflip.toml is no CIDR).
fn check_member_addresses(cluster: &Cluster) -> Result<()> {
    for m in &cluster.members {
        if let Some(address) = &m.address {
            if address.parse::<std::net::IpAddr>().is_err() {
                return Err(Error::usage(
                    format!("the address of {} is `{address}` (from {}), not an IP address", m.name, m.address_source.as_deref().unwrap_or("discovery")),
                    format!("allowedSourceIPs needs an IP address; pin {}'s IP in nixflip.toml: [hosts.\"{}\"] address = \"…\"", m.name, m.name),
                ));
            }
        }
    }
    Ok(())
}

/// Every existing member's address as a replication source.
fn others(cluster: &Cluster, name: &str) -> Vec<String> {
    cluster
        .members
        .iter()
        .filter(|m| m.name != name)
        .filter_map(|m| m.address.as_deref().map(source_cidr))
        .collect()
}

/// Every member's allowedSourceIPs gains the new address; members whose
/// address only a two-node inference gave get it pinned as publicIp.
fn member_edits(
    cluster: &Cluster,
    req: &AddHostRequest,
    notes: &mut Vec<String>,
) -> Result<Vec<FileChange>> {
    let mut by_file: BTreeMap<PathBuf, Vec<(AttrPath, NewValue)>> = BTreeMap::new();
    let field = |key: &str| -> Result<AttrPath> {
        let rel: AttrPath = key
            .parse()
            .map_err(|e| {
                Error::usage(
                    format!("{key}: {e}"),
                    "this field name is built into nixflip, so this is a bug: please report it with the command you ran",
                )
            })?;
        Ok(cluster.option.join(&rel))
    };
    // Every member admits the new host, not only the primary: the cluster
    // stays symmetric, so a later promote is a pure flip (and promoting the
    // primary stays a no-op). A member without a list gets the whole one.
    let cidr = source_cidr(&req.address);
    for m in &cluster.members {
        let current = match (m.allowed_ips(), m.def(ALLOWED_IPS)) {
            (Some(list), _) => list,
            (None, Some(_)) => Vec::new(), // not a literal: the editor refuses it, naming the span
            (None, None) => others(cluster, &m.name),
        };
        if current.contains(&cidr) || covers(&current, std::slice::from_ref(&req.address)) {
            continue;
        }
        let mut list: Vec<Value> = current.into_iter().map(Value::String).collect();
        list.push(Value::String(cidr.clone()));
        let file = m
            .def(ALLOWED_IPS)
            .map_or_else(|| m.file.clone(), |d| d.file.clone());
        by_file
            .entry(file)
            .or_default()
            .push((field(ALLOWED_IPS)?, NewValue::Literal(Value::List(list))));
    }
    for m in &cluster.members {
        let inferred = m
            .address_source
            .as_deref()
            .is_some_and(|s| s.starts_with("peerHost of"));
        if let (true, Some(address)) = (inferred, &m.address) {
            notes.push(format!(
                "{}: publicIp = \"{address}\" is written, because with three or more members its address can no longer be inferred from a peer's peerHost",
                m.name
            ));
            by_file.entry(m.file.clone()).or_default().push((
                field(PUBLIC_IP)?,
                NewValue::Literal(Value::String(address.clone())),
            ));
        }
    }
    let mut out = Vec::new();
    for (path, edits) in by_file {
        let old = read_text(&cluster.root.join(&path))?;
        let edited = nixedit::set_many(&path.display().to_string(), &old, &edits)?;
        if edited.changed {
            out.push(FileChange {
                path,
                old: Some(old),
                new: edited.text,
            });
        }
    }
    Ok(out)
}

/// The host file: the template, filled from the primary's file.
fn host_file(
    cluster: &Cluster,
    primary: &Member,
    primary_address: &str,
    req: &AddHostRequest,
    file: &Path,
    notes: &mut Vec<String>,
) -> Result<HostFile> {
    let source_text = read_text(&cluster.root.join(&primary.file))?;
    let source = NixFile::parse(primary.file.display().to_string(), source_text)?;
    let from_dir = primary.file.parent().unwrap_or(Path::new("")).to_path_buf();
    let to_dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    // A value of the primary's cluster options as Nix source for the new
    // file; `None` when it comes from a module the new host imports too
    // (a shared module): it is not written twice.
    let own_dir = from_dir.file_name().and_then(|n| n.to_str()) == Some(primary.name.as_str());
    let own = |f: &Path| f == primary.file || (own_dir && f.starts_with(&from_dir));
    let mut from_shared: Vec<String> = Vec::new();
    let mut copy = |key: &str| -> Option<Option<String>> {
        let def = primary.def(key)?;
        if !own(&def.file) {
            from_shared.push(format!("{key} ({})", def.file.display()));
            return Some(None);
        }
        Some(Some(match &def.value {
            Some(v) => v.render_inline(),
            None => rebase_paths(
                &def.expr,
                def.file.parent().unwrap_or(Path::new("")),
                &to_dir,
            ),
        }))
    };
    let domain = primary
        .literal("matrixDomain")
        .and_then(Value::as_str)
        .map(str::to_string);
    let domain_expr = copy("matrixDomain").ok_or_else(|| {
        Error::usage(
            format!("the primary {} does not set matrixDomain", primary.name),
            "set it there first: every member needs the same one",
        )
    })?;
    let extra: Vec<String> = [
        "objectStorage.s3.bucket",
        "objectStorage.s3.region",
        "objectStorage.s3.endpoint",
        "objectStorage.s3.prefix",
    ]
    .iter()
    .filter_map(|k| copy(k).flatten().map(|v| format!("{k} = {v};")))
    .collect();
    let replication_extra: Vec<String> = ["peerPort", "sslMode"]
        .iter()
        .filter_map(|k| {
            copy(&format!("replication.{k}"))
                .flatten()
                .map(|v| format!("{k} = {v};"))
        })
        .collect();
    let secrets_file = copy(SECRETS_FILE).unwrap_or_else(|| Some("null".into()));
    let signing_key_file = copy("signingKeyFile").unwrap_or_else(|| Some("null".into()));
    let password_file = copy("replication.passwordFile").unwrap_or_else(|| Some("null".into()));
    if !from_shared.is_empty() {
        notes.push(format!(
            "not written into {}'s file, because it imports the module that sets them too: {}",
            req.name,
            from_shared.join(", ")
        ));
    }
    let (imports, dropped) = imports(&source, &from_dir, &to_dir, &primary.name);
    for d in dropped {
        notes.push(format!(
            "not copied from {}'s imports: {d} (it lives in {}'s own directory; add {}'s own)",
            primary.name, primary.name, req.name
        ));
    }
    let tail = secret_declarations(&source, &from_dir, &to_dir);
    if !tail.is_empty() {
        notes.push(format!(
            "copied {}'s secret declarations (sops.*): the copied secret paths refer to them",
            primary.name
        ));
    }
    // `let` bindings of the primary's module that the copied text uses
    // (`sopsFile = clusterSopsFile;`) come along, or the copy would not
    // evaluate.
    let mut used_text: Vec<String> = tail.clone();
    used_text.extend(imports.iter().cloned());
    used_text.extend(extra.iter().cloned());
    used_text.extend(replication_extra.iter().cloned());
    used_text.extend(
        [
            &domain_expr,
            &secrets_file,
            &signing_key_file,
            &password_file,
        ]
        .into_iter()
        .flatten()
        .cloned(),
    );
    let lets = let_bindings(&source, &used_text.join("\n"), &from_dir, &to_dir);
    let state_version = source
        .lookup(&AttrPath::new(vec!["system".into(), "stateVersion".into()]))
        .ok()
        .flatten()
        .and_then(|b| Value::from_node(&b.inner))
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "25.11".into());
    Ok(HostFile {
        name: req.name.clone(),
        role: "standby".into(),
        domain: domain.or_else(|| domain_expr.clone()).unwrap_or_default(),
        address: req.address.clone(),
        peer: primary_address.to_string(),
        allowed: others(cluster, &req.name),
        header: header(&source),
        lets,
        imports,
        hostname: system_host_name(&req.name),
        state_version,
        domain_expr,
        secrets_file,
        signing_key_file,
        password_file,
        replication_extra,
        extra,
        tail,
    })
}

/// The bindings of the `let` around the primary's module body that `used`
/// refers to (and those they refer to), in their order, rebased, as lines.
fn let_bindings(file: &NixFile, used: &str, from_dir: &Path, to_dir: &Path) -> Vec<String> {
    let mut node = file.root().children().next();
    while let Some(n) = node.clone().map(|n| syntax::unparen(&n)) {
        if n.kind() != SyntaxKind::NODE_LAMBDA {
            break;
        }
        node = n.children().last();
    }
    let Some(let_in) = node.filter(|n| n.kind() == SyntaxKind::NODE_LET_IN) else {
        return Vec::new();
    };
    let bindings: Vec<(Vec<String>, SyntaxNode)> = let_in
        .children()
        .filter_map(|b| match b.kind() {
            SyntaxKind::NODE_ATTRPATH_VALUE => syntax::binding_keys(&b)
                .and_then(|k| k.first().cloned())
                .map(|k| (vec![k], b)),
            SyntaxKind::NODE_INHERIT => Some((
                b.children()
                    .filter(|c| c.kind() != SyntaxKind::NODE_INHERIT_FROM)
                    .filter_map(|c| syntax::attr_key(&c))
                    .collect(),
                b,
            )),
            _ => None,
        })
        .collect();
    let words = |text: &str| -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '\'' || c == '-'))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut wanted = words(used);
    let mut taken = vec![false; bindings.len()];
    loop {
        let mut grew = false;
        for (i, (names, node)) in bindings.iter().enumerate() {
            if !taken[i] && names.iter().any(|n| wanted.contains(n)) {
                taken[i] = true;
                wanted.extend(words(&node.text().to_string()));
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    let mut lines = Vec::new();
    for ((_, node), _) in bindings.iter().zip(&taken).filter(|(_, t)| **t) {
        let wrapped = rebase_paths(&format!("{{ {} }}", node.text()), from_dir, to_dir);
        let text = wrapped
            .strip_prefix("{ ")
            .and_then(|t| t.strip_suffix(" }"))
            .unwrap_or(&wrapped)
            .to_string();
        let indent = line_indent(file.text(), node_range(node).start);
        for (i, line) in text.lines().enumerate() {
            lines.push(if i == 0 {
                line.to_string()
            } else {
                line.strip_prefix(indent.as_str())
                    .unwrap_or(line.trim_start())
                    .to_string()
            });
        }
    }
    lines
}

/// The module's function headers as written: `{ inputs, flake, self }: { config, … }:`.
fn header(file: &NixFile) -> String {
    let mut params = Vec::new();
    let mut node = file.root().children().next();
    while let Some(n) = node.map(|n| syntax::unparen(&n)) {
        if n.kind() != SyntaxKind::NODE_LAMBDA {
            break;
        }
        if let Some(param) = n.children().next() {
            params.push(param.text().to_string());
        }
        node = n.children().last();
    }
    if params.is_empty() {
        return "{ config, lib, pkgs, ... }:".into();
    }
    format!("{}:", params.join(": "))
}

/// The primary's `imports`, rebased to the new file; paths inside the
/// primary's own directory (hardware configuration and the like) are
/// host-specific and dropped.
fn imports(
    file: &NixFile,
    from_dir: &Path,
    to_dir: &Path,
    primary: &str,
) -> (Vec<String>, Vec<String>) {
    let Ok(Some(binding)) = file.lookup(&AttrPath::new(vec!["imports".into()])) else {
        return (Vec::new(), Vec::new());
    };
    let own_dir = from_dir.file_name().and_then(|n| n.to_str()) == Some(primary);
    let (mut kept, mut dropped) = (Vec::new(), Vec::new());
    for item in binding.inner.children() {
        let text = item.text().to_string();
        let inside_own = item.kind() == SyntaxKind::NODE_PATH_REL
            && own_dir
            && normalize(&from_dir.join(&text)).starts_with(from_dir);
        if inside_own {
            dropped.push(text);
        } else {
            kept.push(rebase_paths(&text, from_dir, to_dir));
        }
    }
    (kept, dropped)
}

/// Top-level `sops…` bindings of the primary's module body, as lines.
fn secret_declarations(file: &NixFile, from_dir: &Path, to_dir: &Path) -> Vec<String> {
    let mut seen: Vec<Range<usize>> = Vec::new();
    let mut lines = Vec::new();
    for b in file.bindings() {
        if b.prefix_len != 0 || b.conditional || b.path.first().map(String::as_str) != Some("sops")
        {
            continue;
        }
        let range = node_range(&b.node);
        if seen
            .iter()
            .any(|r| r.start <= range.start && range.end <= r.end)
        {
            continue;
        }
        seen.push(range.clone());
        // Rebase inside a set, so the binding parses on its own.
        let wrapped = rebase_paths(&format!("{{ {} }}", b.node.text()), from_dir, to_dir);
        let text = wrapped
            .strip_prefix("{ ")
            .and_then(|t| t.strip_suffix(" }"))
            .unwrap_or(&wrapped)
            .to_string();
        let indent = line_indent(file.text(), range.start);
        for (i, line) in text.lines().enumerate() {
            lines.push(if i == 0 {
                line.to_string()
            } else {
                line.strip_prefix(indent.as_str())
                    .unwrap_or(line.trim_start())
                    .to_string()
            });
        }
    }
    lines
}

fn node_range(node: &SyntaxNode) -> Range<usize> {
    let r = node.text_range();
    usize::from(r.start())..usize::from(r.end())
}

fn line_indent(text: &str, offset: usize) -> String {
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    text[start..offset]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

/// `primary`'s file path with the primary's name replaced by `new` (as a
/// directory or as the file stem); None when the name does not occur.
pub fn derive_file(primary_file: &Path, old: &str, new: &str) -> Option<PathBuf> {
    let mut changed = false;
    let mut out = PathBuf::new();
    for c in primary_file.components() {
        let part = c.as_os_str().to_string_lossy();
        if part == old {
            out.push(new);
            changed = true;
        } else if part == format!("{old}.nix") {
            out.push(format!("{new}.nix"));
            changed = true;
        } else {
            out.push(part.as_ref());
        }
    }
    changed.then_some(out)
}

/// How the primary's entry names its host.
enum HostRef {
    /// A path literal to the host file: `host "x86_64-linux" ./hosts/a.nix`.
    File(SyntaxNode),
    /// A path literal to the host's directory, whose `default.nix` leads to
    /// the host file: `import ./nixos/system/a { … }`.
    Dir(SyntaxNode),
    /// Only the host's name, from which a helper builds the path:
    /// `mkHost "a" { … }`.
    Name,
}

/// The primary's entry, as the flake model found it.
fn primary_entry<'a>(cluster: &'a Cluster, primary: &Member) -> Result<&'a Entry> {
    let Some(attr) = &primary.attr else {
        return Err(cluster.no_entry_error(primary));
    };
    cluster.flake.entry(attr).ok_or_else(|| {
        Error::usage(
            format!(
                "add-host copies the primary's nixosConfigurations entry, and nixflip cannot read the entry `{attr}` in flake.nix"
            ),
            "write the new host's entry and file by hand (copy the primary's), then run `nixflip check`",
        )
    })
}

/// The `NAME = VALUE;` binding of `entry` in its file.
fn binding_at(file: &NixFile, entry: &Entry) -> Result<SyntaxNode> {
    file.root()
        .descendants()
        .find(|n| n.kind() == SyntaxKind::NODE_ATTRPATH_VALUE && node_range(n) == entry.place.span)
        .ok_or_else(|| {
            unrecognised_at(
                file,
                entry.place.span.start,
                &entry.attr,
                "it is not written as `NAME = VALUE;` (an `inherit`?)".into(),
            )
        })
}

/// Which part of the entry names the primary's host file (or directory).
fn host_reference(
    primary: &Member,
    entry: &Entry,
    file: &NixFile,
    node: &SyntaxNode,
) -> Result<HostRef> {
    let value = syntax::binding_value(node)
        .ok_or_else(|| unrecognised(file, entry, "the entry has no value".into()))?;
    let dir = entry.place.file.parent().unwrap_or(Path::new(""));
    let primary_dir = primary.file.parent().unwrap_or(Path::new(""));
    let own_dir = primary_dir.file_name().and_then(|n| n.to_str()) == Some(primary.name.as_str());
    let mut found = Vec::new();
    for path in value.descendants().filter(|n| {
        matches!(
            n.kind(),
            SyntaxKind::NODE_PATH_REL | SyntaxKind::NODE_PATH_ABS | SyntaxKind::NODE_PATH_HOME
        )
    }) {
        let text = path.text().to_string();
        let resolved = (path.kind() == SyntaxKind::NODE_PATH_REL
            && path.children().next().is_none())
        .then(|| normalize(&dir.join(&text)));
        match resolved {
            Some(p) if p == primary.file => found.push(HostRef::File(path.clone())),
            Some(p)
                if p == primary_dir
                    && !p.as_os_str().is_empty()
                    && entry.files.contains(&p.join("default.nix")) =>
            {
                found.push(HostRef::Dir(path.clone()))
            }
            Some(p) if own_dir && p.starts_with(primary_dir) => {
                return Err(unrecognised(
                    file,
                    entry,
                    format!("{text} is in {}'s own directory, besides the host file", primary.name),
                ))
            }
            Some(_) => {} // shared by every host (a common module, say): kept
            None => {
                return Err(unrecognised(
                    file,
                    entry,
                    format!("the path {text} is not a plain relative path, so nixflip cannot tell whether it is the host's"),
                ))
            }
        }
    }
    match found.len() {
        0 => {
            let names_host = value.descendants().any(|n| {
                n.kind() == SyntaxKind::NODE_STRING
                    && syntax::static_string(&n).as_deref() == Some(primary.name.as_str())
            });
            if names_host && entry.files.contains(&primary.file) {
                Ok(HostRef::Name)
            } else if let Some(expr) = value.descendants().find(|n| {
                matches!(n.kind(), SyntaxKind::NODE_BIN_OP | SyntaxKind::NODE_STRING)
                    && n.text().to_string().contains(primary.name.as_str())
            }) {
                Err(unrecognised(
                    file,
                    entry,
                    format!(
                        "the host file comes from `{}`, an expression add-host does not rewrite",
                        expr.text()
                    ),
                ))
            } else {
                Err(unrecognised(
                    file,
                    entry,
                    format!(
                        "its value names neither the host file {} nor its directory nor the host's name as a string",
                        primary.file.display()
                    ),
                ))
            }
        }
        1 => Ok(found.remove(0)),
        n => Err(unrecognised(
            file,
            entry,
            format!("its value refers to the host {n} times; add-host needs exactly one"),
        )),
    }
}

/// Insert a copy of `node` (the primary's entry) for the new host after the
/// last entry of its set: the attribute name, the path to the host (file or
/// directory) and string literals equal to the primary's name are
/// substituted. The `=` lines up with the entries' when they align it.
#[allow(clippy::too_many_arguments)]
fn insert_entry(
    file: &NixFile,
    entry: &Entry,
    node: &SyntaxNode,
    host: &HostRef,
    old_name: &str,
    new: &str,
    new_file: &Path,
) -> Result<(String, String)> {
    let base = usize::from(node.text_range().start());
    let attr = match entry.attr.split_once('|') {
        Some((_, system)) => format!("{new}|{system}"),
        None => new.to_string(),
    };
    let local = |n: &SyntaxNode| {
        let r = node_range(n);
        r.start - base..r.end - base
    };
    let attrpath = syntax::binding_attrpath(node)
        .ok_or_else(|| unrecognised(file, entry, "the entry has no name".into()))?;
    let key = attrpath
        .children()
        .last()
        .ok_or_else(|| unrecognised(file, entry, "the entry has no name".into()))?;
    let mut edits = vec![TextEdit {
        range: local(&key),
        replacement: render_key(&attr),
    }];
    let dir = entry.place.file.parent().unwrap_or(Path::new(""));
    match host {
        HostRef::File(path) => edits.push(TextEdit {
            range: local(path),
            replacement: relative_path(new_file, dir),
        }),
        HostRef::Dir(path) => edits.push(TextEdit {
            range: local(path),
            replacement: relative_path(new_file.parent().unwrap_or(Path::new("")), dir),
        }),
        HostRef::Name => {}
    }
    let value = syntax::binding_value(node)
        .ok_or_else(|| unrecognised(file, entry, "the entry has no value".into()))?;
    for s in value
        .descendants()
        .filter(|n| n.kind() == SyntaxKind::NODE_STRING)
    {
        if syntax::static_string(&s).as_deref() == Some(old_name) {
            edits.push(TextEdit {
                range: local(&s),
                replacement: crate::nixedit::value::render_string(new),
            });
        }
    }
    // Keep the `=` where the entries align it.
    let siblings: Vec<SyntaxNode> = node
        .parent()
        .iter()
        .flat_map(|p| p.children())
        .filter(|c| c.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
        .collect();
    let text = file.text();
    let indent = line_indent(text, base);
    if let (Some(col), Some(assign)) = (
        nixedit::aligned_column(text, &siblings, node),
        node.children_with_tokens()
            .find(|t| t.kind() == SyntaxKind::TOKEN_ASSIGN),
    ) {
        let key_end = usize::from(attrpath.text_range().end()) - base;
        let assign_at = usize::from(assign.text_range().start()) - base;
        let width = indent.chars().count() + render_key(&attr).chars().count();
        let pad = if col > width { col - width } else { 1 };
        edits.push(TextEdit {
            range: key_end..assign_at,
            replacement: " ".repeat(pad),
        });
    }
    let copy = nixedit::apply_edits(&node.text().to_string(), &edits);
    // After the last entry of the same set, on a line of its own.
    let last = siblings
        .iter()
        .rfind(|c| entries_share_group(c, node))
        .cloned()
        .unwrap_or_else(|| node.clone());
    let end = node_range(&last).end;
    let eol = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let at = if newline == "\r\n" && text[..eol].ends_with('\r') {
        eol - 1
    } else {
        eol
    };
    let insertion = TextEdit {
        range: at..at,
        replacement: format!("{newline}{indent}{copy}"),
    };
    Ok((nixedit::apply_edits(text, &[insertion]), attr))
}

/// Whether `node` is an entry like `entry` (same set, same key depth).
fn entries_share_group(node: &SyntaxNode, entry: &SyntaxNode) -> bool {
    let keys = syntax::binding_keys(node).unwrap_or_default();
    let entry_keys = syntax::binding_keys(entry).unwrap_or_default();
    keys.len() == entry_keys.len()
        && keys[..keys.len().saturating_sub(1)] == entry_keys[..entry_keys.len().saturating_sub(1)]
}

/// A copy of the primary's generic `default.nix` for the new host's
/// directory: byte-identical when it names no host; a path or string naming
/// the primary is rewritten; any other mention of the primary is refused.
fn copy_generic(rel: &Path, text: &str, old: &str, new: &str) -> Result<String> {
    let file = NixFile::parse(rel.display().to_string(), text.to_string())?;
    let mut edits = Vec::new();
    for node in file.root().descendants() {
        match node.kind() {
            SyntaxKind::NODE_PATH_REL if node.children().next().is_none() => {
                let path = node.text().to_string();
                let renamed: Vec<String> = path
                    .split('/')
                    .map(|part| {
                        if part == old {
                            new.to_string()
                        } else if part == format!("{old}.nix") {
                            format!("{new}.nix")
                        } else {
                            part.to_string()
                        }
                    })
                    .collect();
                let renamed = renamed.join("/");
                if renamed != path {
                    edits.push(TextEdit {
                        range: node_range(&node),
                        replacement: renamed,
                    });
                }
            }
            SyntaxKind::NODE_STRING if syntax::static_string(&node).as_deref() == Some(old) => {
                edits.push(TextEdit {
                    range: node_range(&node),
                    replacement: crate::nixedit::value::render_string(new),
                });
            }
            _ => {}
        }
    }
    let copied = nixedit::apply_edits(text, &edits);
    let reparsed = NixFile::parse(rel.display().to_string(), copied.clone())?;
    let left = reparsed
        .root()
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .find(|t| t.kind() != SyntaxKind::TOKEN_COMMENT && t.text().contains(old));
    if let Some(token) = left {
        let (line, _) = reparsed.position(usize::from(token.text_range().start()));
        return Err(Error::usage(
            format!(
                "{}:{line}: the primary's default.nix names {old} in `{}`, which nixflip cannot rewrite for {new}",
                rel.display(),
                token.text()
            ),
            "make default.nix generic (name = builtins.baseNameOf ./.;), or add the host by hand",
        ));
    }
    Ok(copied)
}

/// Everything in the primary's directory besides the files add-host copies
/// or writes: host-only files the operator must provide for the new host.
fn host_only_files(root: &Path, dir: &Path, copied: &[PathBuf]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter(|e| !copied.contains(&dir.join(e.file_name())))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                format!("{name}/")
            } else {
                name
            }
        })
        .collect();
    out.sort();
    out
}

/// The copied entry must lead to the new host file, as the flake model
/// reads the result: otherwise nothing is written.
fn verify_entry(cluster: &Cluster, changes: &[FileChange], attr: &str, file: &Path) -> Result<()> {
    let sources = cluster.sources.with_texts(
        &cluster.root,
        changes.iter().map(|c| (c.path.clone(), c.new.clone())),
    )?;
    let model = FlakeModel::read(&sources, &cluster.config.config);
    let entries: Vec<&Entry> = model.entries.iter().filter(|e| e.attr == attr).collect();
    match entries.as_slice() {
        [one] if one.files.iter().any(|f| f == file) => Ok(()),
        [one] => Err(Error::usage(
            format!(
                "{}:{}: the copied entry `{attr}` would not build {} (it leads to: {})",
                one.place.file.display(),
                one.place.line,
                file.display(),
                if one.files.is_empty() {
                    "nothing nixflip can follow".to_string()
                } else {
                    one.files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            "write the new host's entry and file by hand (copy the primary's), then run `nixflip check`",
        )),
        _ => Err(Error::usage(
            format!("flake.nix would have {} entries named {attr}", entries.len()),
            "remove the existing entry first",
        )),
    }
}

fn unrecognised(file: &NixFile, entry: &Entry, why: String) -> Error {
    unrecognised_at(file, entry.place.span.start, &entry.attr, why)
}

fn unrecognised_at(file: &NixFile, offset: usize, attr: &str, why: String) -> Error {
    let (line, _) = file.position(offset);
    Error::usage(
        format!(
            "{}:{line}: cannot copy the nixosConfigurations entry `{attr}` for the new host: {why}",
            file.name()
        ),
        "write the new host's entry and file by hand (copy the primary's), then run `nixflip check`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "hectic.generic.matrix-cluster";

    fn host(role: &str, ip: &str, peer: &str) -> String {
        format!(
            "{{ ... }}: {{\n  {CLUSTER} = {{\n    enable = true;\n    role = \"{role}\";\n    matrixDomain = \"example.org\";\n    publicIp = \"{ip}\";\n    secretsFile = \"/run/secrets/s\";\n    replication.peerHost = \"{peer}\";\n    replication.allowedSourceIPs = [ \"{peer}/32\" ];\n  }};\n}}\n"
        )
    }

    /// Plan adding gamma to a flake made of `files` (alpha is primary).
    fn plan(files: &[(&str, String)]) -> Result<AddHostPlan> {
        let dir = tempfile::tempdir().map_err(|e| Error::usage(e.to_string(), "tempdir"))?;
        for (rel, text) in files {
            let path = dir.path().join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::usage(e.to_string(), "mkdir"))?;
            }
            std::fs::write(&path, text).map_err(|e| Error::usage(e.to_string(), "write"))?;
        }
        let cluster = Cluster::load(dir.path(), crate::config::Loaded::default())?;
        plan_add_host(
            &cluster,
            &AddHostRequest {
                name: "gamma".into(),
                address: "10.0.0.3".into(),
                file: None,
            },
        )
    }

    fn change<'a>(plan: &'a AddHostPlan, path: &str) -> &'a str {
        plan.changes
            .iter()
            .find(|c| c.path == Path::new(path))
            .map(|c| c.new.as_str())
            .unwrap_or_default()
    }

    fn two(alpha: &'static str, beta: &'static str) -> Vec<(&'static str, String)> {
        vec![
            (alpha, host("primary", "10.0.0.1", "10.0.0.2")),
            (beta, host("standby", "10.0.0.2", "10.0.0.1")),
        ]
    }

    #[test]
    fn entries_are_copied_in_the_nested_form() -> Result<()> {
        let mut files = two("hosts/alpha.nix", "hosts/beta.nix");
        files.push(("flake.nix", "{ outputs = { self, nixpkgs }: let mk = n: f: nixpkgs.lib.nixosSystem { modules = [ f ]; }; in {\n  nixosConfigurations = {\n    alpha = mk \"alpha\" ./hosts/alpha.nix; # primary\n    beta = mk \"beta\" ./hosts/beta.nix;\n  };\n}; }\n".into()));
        let plan = plan(&files)?;
        assert_eq!(plan.attr, "gamma");
        assert!(change(&plan, "flake.nix").contains("    beta = mk \"beta\" ./hosts/beta.nix;\n    gamma = mk \"gamma\" ./hosts/gamma.nix;\n  };"));
        Ok(())
    }

    #[test]
    fn entries_are_copied_in_the_dotted_form() -> Result<()> {
        let mut files = two("alpha.nix", "beta.nix");
        files.push(("flake.nix", "{ outputs = { self, nixpkgs }: {\n  nixosConfigurations.\"alpha|x86_64-linux\" = nixpkgs.lib.nixosSystem { modules = [ ./alpha.nix ]; };\n  nixosConfigurations.\"beta|x86_64-linux\" = nixpkgs.lib.nixosSystem { modules = [ ./beta.nix ]; };\n  packages = { };\n}; }\n".into()));
        let plan = plan(&files)?;
        assert_eq!(plan.attr, "gamma|x86_64-linux");
        let flake = change(&plan, "flake.nix");
        assert!(flake.contains("  nixosConfigurations.\"beta|x86_64-linux\" = nixpkgs.lib.nixosSystem { modules = [ ./beta.nix ]; };\n  nixosConfigurations.\"gamma|x86_64-linux\" = nixpkgs.lib.nixosSystem { modules = [ ./gamma.nix ]; };\n  packages"), "{flake}");
        Ok(())
    }

    #[test]
    fn aligned_entries_stay_aligned_and_merged_sets_keep_their_side() -> Result<()> {
        let mut files = two("hosts/alpha.nix", "hosts/beta.nix");
        files.push(("flake.nix", "{ outputs = { self, nixpkgs }: let host = f: nixpkgs.lib.nixosSystem { modules = [ f ]; }; in {\n  nixosConfigurations = {\n    \"alpha|x86_64-linux\"       = host ./hosts/alpha.nix;\n    \"longer-name|x86_64-linux\" = host ./hosts/beta.nix;\n  } // {\n    other = host ./hosts/other.nix;\n  };\n}; }\n".into()));
        files.push(("hosts/other.nix", "{ }".into()));
        let plan = plan(&files)?;
        let flake = change(&plan, "flake.nix");
        assert!(flake.contains("    \"longer-name|x86_64-linux\" = host ./hosts/beta.nix;\n    \"gamma|x86_64-linux\"       = host ./hosts/gamma.nix;\n  } // {"), "{flake}");
        Ok(())
    }

    #[test]
    fn a_helper_given_only_the_name_is_copied_and_proven() -> Result<()> {
        let mut files = two("hosts/alpha.nix", "hosts/beta.nix");
        files.push(("flake.nix", "{ outputs = { self, nixpkgs }: let mkHost = name: { system ? \"x86_64-linux\" }: nixpkgs.lib.nixosSystem { inherit system; modules = [ ./hosts/${name}.nix ]; }; in {\n  nixosConfigurations.alpha = mkHost \"alpha\" { };\n  nixosConfigurations.beta = mkHost \"beta\" { };\n}; }\n".into()));
        let plan = plan(&files)?;
        assert!(change(&plan, "flake.nix")
            .contains("  nixosConfigurations.gamma = mkHost \"gamma\" { };\n"));
        assert_eq!(plan.file, Path::new("hosts/gamma.nix"));
        Ok(())
    }

    #[test]
    fn an_entry_that_does_not_lead_to_the_new_file_is_refused() {
        // The helper ignores the name it is given: a copy would build alpha again.
        let mut files = two("hosts/alpha.nix", "hosts/beta.nix");
        files.push(("flake.nix", "{ outputs = { self, nixpkgs }: let mkHost = name: nixpkgs.lib.nixosSystem { modules = [ ./hosts/alpha.nix ]; }; in {\n  nixosConfigurations.alpha = mkHost \"alpha\";\n  nixosConfigurations.beta = nixpkgs.lib.nixosSystem { modules = [ ./hosts/beta.nix ]; };\n}; }\n".into()));
        let err = plan(&files)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("the copied entry `gamma` would not build hosts/gamma.nix (it leads to: hosts/alpha.nix)"), "{err}");
        // Two entries build alpha's file and neither is named after it.
        let mut files = two("hosts/alpha.nix", "hosts/beta.nix");
        files.push(("flake.nix", "{ outputs = { self, nixpkgs }: {\n  nixosConfigurations.one = nixpkgs.lib.nixosSystem { modules = [ ./hosts/alpha.nix ]; };\n  nixosConfigurations.two = nixpkgs.lib.nixosSystem { modules = [ ./hosts/alpha.nix ]; };\n  nixosConfigurations.beta = nixpkgs.lib.nixosSystem { modules = [ ./hosts/beta.nix ]; };\n}; }\n".into()));
        let err = plan(&files)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("several nixosConfigurations entries build alpha's file"),
            "{err}"
        );
        // A second file of the host in the entry.
        let mut files = two("hosts/alpha/alpha.nix", "hosts/beta.nix");
        files.push(("hosts/alpha/hw.nix", "{ }".into()));
        files.push(("flake.nix", "{ outputs = { self, nixpkgs }: {\n  nixosConfigurations.alpha = nixpkgs.lib.nixosSystem { modules = [ ./hosts/alpha/alpha.nix ./hosts/alpha/hw.nix ]; };\n  nixosConfigurations.beta = nixpkgs.lib.nixosSystem { modules = [ ./hosts/beta.nix ]; };\n}; }\n".into()));
        let err = plan(&files)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("flake.nix:2: cannot copy the nixosConfigurations entry `alpha` for the new host: ./hosts/alpha/hw.nix is in alpha's own directory"), "{err}");
    }

    #[test]
    fn a_generic_default_nix_naming_the_host_is_renamed_or_refused() -> Result<()> {
        let text =
            "{ self, ... }: self.lib.nixosSystem { modules = [ (import ./alpha.nix { }) ]; }\n";
        let copied = copy_generic(Path::new("h/alpha/default.nix"), text, "alpha", "gamma")?;
        assert_eq!(
            copied,
            "{ self, ... }: self.lib.nixosSystem { modules = [ (import ./gamma.nix { }) ]; }\n"
        );
        let generic = "{ self, ... }: let name = builtins.baseNameOf ./.; in import ./${name}.nix { } # alpha\n";
        assert_eq!(
            copy_generic(Path::new("d.nix"), generic, "alpha", "gamma")?,
            generic
        );
        let err = copy_generic(
            Path::new("d.nix"),
            "{ }: { x = \"alpha.example.org\"; }",
            "alpha",
            "gamma",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("names alpha in `alpha.example.org`"), "{err}");
        Ok(())
    }

    #[test]
    fn file_names_follow_the_primary() {
        assert_eq!(
            derive_file(
                Path::new("nixos/system/hectic-lab/hectic-lab.nix"),
                "hectic-lab",
                "gamma"
            ),
            Some(PathBuf::from("nixos/system/gamma/gamma.nix"))
        );
        assert_eq!(
            derive_file(Path::new("hosts/alpha/default.nix"), "alpha", "gamma"),
            Some(PathBuf::from("hosts/gamma/default.nix"))
        );
        assert_eq!(
            derive_file(Path::new("hosts/one.nix"), "alpha", "gamma"),
            None
        );
    }
}
