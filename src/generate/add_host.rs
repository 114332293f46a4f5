//! `nixflip add-host NAME --address ADDRESS`: a new standby of the current
//! primary (the disaster-recovery runbook's "provision a new host and import
//! the cluster module with role = standby pointed at the primary").
//!
//! The plan has three parts, all computed in memory:
//! - the new host file, from the host template, with the primary's shared
//!   values (domain, secret files, bucket, secret declarations) copied and
//!   relative paths rebased;
//! - a `nixosConfigurations` entry in `flake.nix`, copied from the primary's
//!   entry with its host file path (and name) substituted, inserted as a
//!   text edit: the rest of `flake.nix` keeps every byte;
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
use crate::cluster::plan::{covers, rebase_paths, Intended};
use crate::cluster::{Cluster, Member, ALLOWED_IPS, PUBLIC_IP, SECRETS_FILE};
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
    /// The managed fields the result must evaluate to (§7).
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

    let flake_text = read_text(&cluster.root.join("flake.nix"))?;
    let flake = NixFile::parse("flake.nix", flake_text.clone())?;
    let entry = find_entry(&flake, primary)?;
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
    let (flake_new, attr) = insert_entry(&flake, &entry, &primary.file, &req.name, &file)?;
    let mut notes = Vec::new();
    let host_text = render_host(&host_file(
        cluster,
        primary,
        &primary_address,
        req,
        &file,
        &mut notes,
    )?)?;

    let mut changes = vec![
        FileChange {
            path: file.clone(),
            old: None,
            new: host_text,
        },
        FileChange {
            path: "flake.nix".into(),
            old: Some(flake_text),
            new: flake_new,
        },
    ];
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
    // A value of the primary's cluster options as Nix source for the new file.
    let copy = |key: &str| -> Option<String> {
        let def = primary.def(key)?;
        Some(match &def.value {
            Some(v) => v.render_inline(),
            None => rebase_paths(
                &def.expr,
                def.file.parent().unwrap_or(Path::new("")),
                &to_dir,
            ),
        })
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
    let extra = [
        "objectStorage.s3.bucket",
        "objectStorage.s3.region",
        "objectStorage.s3.endpoint",
        "objectStorage.s3.prefix",
    ]
    .iter()
    .filter_map(|k| copy(k).map(|v| format!("{k} = {v};")))
    .collect();
    let replication_extra = ["peerPort", "sslMode"]
        .iter()
        .filter_map(|k| copy(&format!("replication.{k}")).map(|v| format!("{k} = {v};")))
        .collect();
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
        domain: domain.unwrap_or_else(|| domain_expr.clone()),
        address: req.address.clone(),
        peer: primary_address.to_string(),
        allowed: others(cluster, &req.name),
        header: header(&source),
        imports,
        hostname: system_host_name(&req.name),
        state_version,
        domain_expr,
        secrets_file: copy(SECRETS_FILE).unwrap_or_else(|| "null".into()),
        signing_key_file: copy("signingKeyFile").unwrap_or_else(|| "null".into()),
        password_file: copy("replication.passwordFile").unwrap_or_else(|| "null".into()),
        replication_extra,
        extra,
        tail,
    })
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

/// The primary's `nixosConfigurations` entry in flake.nix.
struct Entry {
    /// The `KEY = VALUE;` node.
    node: SyntaxNode,
    /// The attribute name (`hectic-lab|x86_64-linux`) and its key node.
    name: String,
    key: SyntaxNode,
    value: SyntaxNode,
}

/// Every `nixosConfigurations` entry: `nixosConfigurations = { "a" = …; }` or
/// `nixosConfigurations."a" = …;`.
fn entries(file: &NixFile) -> Vec<Entry> {
    let mut out = Vec::new();
    for node in file
        .root()
        .descendants()
        .filter(|n| n.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
    {
        let Some(keys) = syntax::binding_keys(&node) else {
            continue;
        };
        let n = keys.len();
        if n >= 2 && keys[n - 2] == "nixosConfigurations" {
            out.extend(entry(&node, &keys[n - 1]));
        } else if keys.last().map(String::as_str) == Some("nixosConfigurations") {
            let Some(set) = syntax::binding_value(&node).map(|v| syntax::unparen(&v)) else {
                continue;
            };
            if set.kind() != SyntaxKind::NODE_ATTR_SET {
                continue;
            }
            for child in set
                .children()
                .filter(|c| c.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
            {
                if let Some([name]) = syntax::binding_keys(&child).as_deref() {
                    out.extend(entry(&child, name));
                }
            }
        }
    }
    out
}

fn entry(node: &SyntaxNode, name: &str) -> Option<Entry> {
    Some(Entry {
        node: node.clone(),
        name: name.to_string(),
        key: syntax::binding_attrpath(node)?.children().last()?,
        value: syntax::binding_value(node)?,
    })
}

fn find_entry(flake: &NixFile, primary: &Member) -> Result<Entry> {
    let all = entries(flake);
    let matches = |e: &&Entry| match &primary.attr {
        Some(attr) => &e.name == attr,
        None => e.name == primary.name || e.name.starts_with(&format!("{}|", primary.name)),
    };
    let found: Vec<&Entry> = all.iter().filter(matches).collect();
    match found.as_slice() {
        [_] => {}
        [] => {
            return Err(Error::usage(
                format!(
                    "flake.nix has no nixosConfigurations entry for the primary {} (entries: {})",
                    primary.name,
                    all.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
                format!("add-host copies the primary's entry; pin it in nixflip.toml: [hosts.\"{}\"] attr = \"…\"", primary.name),
            ))
        }
        _ => {
            return Err(Error::usage(
                format!("flake.nix has several nixosConfigurations entries for {}", primary.name),
                format!("pin the right one in nixflip.toml: [hosts.\"{}\"] attr = \"…\"", primary.name),
            ))
        }
    }
    all.into_iter()
        .find(|e| matches(&e))
        .ok_or_else(|| {
            Error::usage(
                "internal: the primary's nixosConfigurations entry was found, then not found again",
                "this is a bug in nixflip: please report it with your flake.nix; meanwhile add the host's entry by hand",
            )
        })
}

/// Insert a copy of `entry` for the new host after the last entry of its
/// group: the key's host name and the path to the host file are substituted
/// (and string literals equal to the primary's name). Anything else that
/// would need changing is refused with a diagnostic at the entry.
fn insert_entry(
    flake: &NixFile,
    entry: &Entry,
    primary_file: &Path,
    new: &str,
    file: &Path,
) -> Result<(String, String)> {
    let base = usize::from(entry.node.text_range().start());
    let old_name = entry
        .name
        .split('|')
        .next()
        .unwrap_or(&entry.name)
        .to_string();
    let attr = match entry.name.split_once('|') {
        Some((_, system)) => format!("{new}|{system}"),
        None => new.to_string(),
    };
    let local = |n: &SyntaxNode| {
        let r = node_range(n);
        r.start - base..r.end - base
    };
    let mut edits = vec![TextEdit {
        range: local(&entry.key),
        replacement: render_key(&attr),
    }];
    let paths: Vec<SyntaxNode> = entry
        .value
        .descendants()
        .filter(|n| {
            matches!(
                n.kind(),
                SyntaxKind::NODE_PATH_REL | SyntaxKind::NODE_PATH_ABS | SyntaxKind::NODE_PATH_HOME
            )
        })
        .collect();
    let [path] = paths.as_slice() else {
        return Err(unrecognised(
            flake,
            entry,
            format!(
                "its value has {} path literals; add-host needs exactly one, the host file's",
                paths.len()
            ),
        ));
    };
    if path.kind() != SyntaxKind::NODE_PATH_REL || path.children().next().is_some() {
        return Err(unrecognised(
            flake,
            entry,
            "the host file is not a plain relative path".into(),
        ));
    }
    // flake.nix is at the root, so its relative paths are root-relative.
    if normalize(Path::new(&path.text().to_string())) != normalize(primary_file) {
        return Err(unrecognised(
            flake,
            entry,
            format!(
                "its path {} is not the primary's host file {}",
                path.text(),
                primary_file.display()
            ),
        ));
    }
    edits.push(TextEdit {
        range: local(path),
        replacement: format!("./{}", file.display()),
    });
    for s in entry
        .value
        .descendants()
        .filter(|n| n.kind() == SyntaxKind::NODE_STRING)
    {
        if syntax::static_string(&s).as_deref() == Some(old_name.as_str()) {
            edits.push(TextEdit {
                range: local(&s),
                replacement: crate::nixedit::value::render_string(new),
            });
        }
    }
    let copy = nixedit::apply_edits(&entry.node.text().to_string(), &edits);
    // After the last entry of the same attribute set, on a line of its own.
    let parent = entry.node.parent();
    let last = parent
        .iter()
        .flat_map(|p| p.children())
        .filter(|c| c.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
        .filter(|c| entries_share_group(c, entry))
        .last()
        .unwrap_or_else(|| entry.node.clone());
    let text = flake.text();
    let end = node_range(&last).end;
    let eol = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let at = if newline == "\r\n" && text[..eol].ends_with('\r') {
        eol - 1
    } else {
        eol
    };
    let indent = line_indent(text, base);
    let insertion = TextEdit {
        range: at..at,
        replacement: format!("{newline}{indent}{copy}"),
    };
    let result = nixedit::apply_edits(text, &[insertion]);
    // Prove the edit: the result parses, and the new entry is there once.
    let reparsed = NixFile::parse("flake.nix", result.clone())?;
    let count = entries(&reparsed).iter().filter(|e| e.name == attr).count();
    if count != 1 {
        return Err(Error::usage(
            format!("flake.nix would have {count} entries named {attr}"),
            "remove the existing entry first",
        ));
    }
    Ok((result, attr))
}

/// Whether `node` is a nixosConfigurations entry like `entry` (same set).
fn entries_share_group(node: &SyntaxNode, entry: &Entry) -> bool {
    let keys = syntax::binding_keys(node).unwrap_or_default();
    let entry_keys = syntax::binding_keys(&entry.node).unwrap_or_default();
    keys.len() == entry_keys.len()
        && keys[..keys.len().saturating_sub(1)] == entry_keys[..entry_keys.len().saturating_sub(1)]
}

fn unrecognised(flake: &NixFile, entry: &Entry, why: String) -> Error {
    let (line, _) = flake.position(node_range(&entry.node).start);
    Error::usage(
        format!(
            "flake.nix:{line}: cannot recognise the shape of the nixosConfigurations entry `{}` to copy it: {why}",
            entry.name
        ),
        "write the new host's entry and file by hand (copy the primary's), then run `nixflip check`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(flake: &str, primary_file: &str) -> Result<(String, String)> {
        let file = NixFile::parse("flake.nix", flake)?;
        let all = entries(&file);
        let entry = all
            .iter()
            .find(|e| e.name.starts_with("alpha"))
            .ok_or_else(|| Error::usage("no entry", "the test flake needs an `alpha…` entry"))?;
        insert_entry(
            &file,
            entry,
            Path::new(primary_file),
            "gamma",
            Path::new("hosts/gamma.nix"),
        )
    }

    #[test]
    fn entries_are_copied_in_the_nested_form() -> Result<()> {
        let flake = "{ outputs = { self, nixpkgs }: {\n  nixosConfigurations = {\n    alpha = mk \"alpha\" ./hosts/alpha.nix; # primary\n    beta = mk \"beta\" ./hosts/beta.nix;\n  };\n}; }\n";
        let (text, attr) = insert(flake, "hosts/alpha.nix")?;
        assert_eq!(attr, "gamma");
        assert_eq!(
            text,
            "{ outputs = { self, nixpkgs }: {\n  nixosConfigurations = {\n    alpha = mk \"alpha\" ./hosts/alpha.nix; # primary\n    beta = mk \"beta\" ./hosts/beta.nix;\n    gamma = mk \"gamma\" ./hosts/gamma.nix;\n  };\n}; }\n"
        );
        Ok(())
    }

    #[test]
    fn entries_are_copied_in_the_dotted_form() -> Result<()> {
        let flake = "{ outputs = { self }: {\n  nixosConfigurations.\"alpha|x86_64-linux\" = lib.nixosSystem { modules = [ ./alpha.nix ]; };\n  packages = { };\n}; }\n";
        let (text, attr) = insert(flake, "alpha.nix")?;
        assert_eq!(attr, "gamma|x86_64-linux");
        assert!(text.contains("  nixosConfigurations.\"alpha|x86_64-linux\" = lib.nixosSystem { modules = [ ./alpha.nix ]; };\n  nixosConfigurations.\"gamma|x86_64-linux\" = lib.nixosSystem { modules = [ ./hosts/gamma.nix ]; };\n  packages"), "{text}");
        Ok(())
    }

    #[test]
    fn an_entry_without_the_host_file_is_refused() {
        let flake = "{ outputs = _: { nixosConfigurations.alpha = mk ./a.nix ./b.nix; }; }";
        let err = insert(flake, "a.nix")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("2 path literals"), "{err}");
        let flake = "{ outputs = _: { nixosConfigurations.alpha = mk ./other.nix; }; }";
        let err = insert(flake, "a.nix")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("is not the primary's host file"), "{err}");
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
