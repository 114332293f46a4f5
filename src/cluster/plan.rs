//! The flip planner: what every member's options must become when
//! HOST is promoted, as minimal per-file edits.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rnix::SyntaxKind;
use serde::Serialize;

use super::carry::{self, CarryCheck, CarryEdit, Unrewritten};
use super::rules::{host_cidr, parse_networks};
use super::{Cluster, Member, Role, ALLOWED_IPS, OVERRIDE_SYNAPSE, PEER_HOST, ROLE, SECRETS_FILE};
use crate::error::{Error, Result};
use crate::nixedit::{AttrPath, NewValue, Value};

/// One field's change on one host.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub host: String,
    /// Option path relative to the cluster option.
    pub field: String,
    /// The file that gets the edit (where the winning definition is, or the
    /// host file when the field is not defined yet).
    pub file: PathBuf,
    /// The value before, as written ("(unset)" when missing).
    pub old: String,
    /// The value after, as it will be written.
    pub new: String,
    #[serde(skip)]
    pub value: NewValue,
    /// Why, when it is not obvious (e.g. a copied secretsFile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A file's text before and after a rewrite.
#[derive(Clone, Debug)]
pub struct Rewrite {
    pub path: PathBuf,
    pub old: String,
    pub new: String,
}

/// The intended values after the flip, per host, for validation.
/// JSON keys are camelCase like `status` and `diff`; the allowed-IPs list is
/// spelt as the Nix option (`allowedSourceIPs`), as `status` does.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Intended {
    pub role: String,
    pub synapse: bool,
    pub peer_host: Option<String>,
    #[serde(rename = "allowedSourceIPs")]
    pub allowed_source_ips: Vec<String>,
}

/// Entries of a host's `allowedSourceIPs` that cover no member (an
/// operator's network): a flip keeps them, and says so.
#[derive(Clone, Debug, Serialize)]
pub struct Kept {
    pub host: String,
    pub file: PathBuf,
    pub line: usize,
    pub entries: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub new_primary: String,
    pub old_primary: Option<String>,
    /// The new primary is the primary already: the changes are repairs.
    pub already_primary: bool,
    pub standbys: Vec<String>,
    pub changes: Vec<Change>,
    #[serde(rename = "keptSourceIPs")]
    pub kept: Vec<Kept>,
    /// Address-bearing literals outside the cluster options that the flip
    /// does not rewrite, each with the edit that would carry it.
    pub not_rewritten: Vec<Unrewritten>,
    /// Whether the edits of carryable rules are applied
    /// (`--carry-address-rules`).
    pub carry_address_rules: bool,
    /// The text edits that carry rules to the new primary (applied only
    /// with `carry_address_rules`).
    #[serde(skip)]
    pub carries: Vec<CarryEdit>,
    /// What the carried options must hold once evaluated.
    #[serde(skip)]
    pub carry_checks: Vec<CarryCheck>,
    pub intended: BTreeMap<String, Intended>,
}

impl Plan {
    /// Edits grouped by file, in plan order.
    pub fn edits_by_file(&self, option: &AttrPath) -> BTreeMap<PathBuf, Vec<(AttrPath, NewValue)>> {
        let mut out: BTreeMap<PathBuf, Vec<(AttrPath, NewValue)>> = BTreeMap::new();
        for change in &self.changes {
            let field: AttrPath = change
                .field
                .parse()
                .unwrap_or_else(|_| AttrPath::new(vec![change.field.clone()]));
            out.entry(change.file.clone())
                .or_default()
                .push((option.join(&field), change.value.clone()));
        }
        out
    }

    /// The files' texts after the plan's edits, and (with
    /// `carry_address_rules`) the carried rules: only files that change.
    pub fn rewrites(&self, cluster: &Cluster) -> Result<Vec<Rewrite>> {
        let mut by_file = self.edits_by_file(&cluster.option);
        let mut inserts: BTreeMap<PathBuf, Vec<crate::nixedit::TextEdit>> = BTreeMap::new();
        if self.carry_address_rules {
            for carry in &self.carries {
                match carry {
                    CarryEdit::Set { file, path, value } => by_file
                        .entry(file.clone())
                        .or_default()
                        .push((path.clone(), value.clone())),
                    CarryEdit::Insert { file, edit } => {
                        by_file.entry(file.clone()).or_default();
                        inserts.entry(file.clone()).or_default().push(edit.clone());
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (path, changes) in by_file {
            let file = cluster.sources.get(&path).ok_or_else(|| {
                Error::usage(
                    format!("{} is not a parsed file of the flake", path.display()),
                    "the plan names a file nixflip did not read, which is a bug: please report it with `nixflip status --json`",
                )
            })?;
            let name = path.display().to_string();
            // Text insertions first (their offsets are the original file's),
            // then the attribute edits, which look their paths up again.
            let start = match inserts.get(&path) {
                Some(edits) => crate::nixedit::apply_edits(file.text(), edits),
                None => file.text().to_string(),
            };
            let edited = crate::nixedit::set_many(&name, &start, &changes)?;
            if edited.text != file.text() {
                out.push(Rewrite {
                    path,
                    old: file.text().to_string(),
                    new: edited.text,
                });
            }
        }
        Ok(out)
    }

    /// The commit message of the flip: the subject states it, the body lists
    /// every field that changes.
    pub fn commit_message(&self) -> String {
        let mut subject = format!("nixflip: promote {} to primary", self.new_primary);
        if let Some(old) = &self.old_primary {
            subject.push_str(&format!("; {old} becomes standby"));
        }
        let mut body = String::new();
        for c in &self.changes {
            body.push_str(&format!(
                "- {}: {} {} -> {}\n",
                c.host, c.field, c.old, c.new
            ));
        }
        format!("{subject}\n\n{body}")
    }

    pub fn is_noop(&self) -> bool {
        self.changes.is_empty() && (!self.carry_address_rules || self.carries.is_empty())
    }
}

/// An unknown host: list the members and suggest the closest name.
pub fn unknown_host(cluster: &Cluster, name: &str) -> Error {
    let names: Vec<&str> = cluster.members.iter().map(|m| m.name.as_str()).collect();
    let closest = names
        .iter()
        .min_by_key(|n| strsim::levenshtein(n, name))
        .filter(|n| strsim::levenshtein(n, name) <= 3);
    Error::usage(
        format!(
            "`{name}` is not a member of the cluster (members: {})",
            names.join(", ")
        ),
        match closest {
            Some(c) => format!("did you mean `{c}`?"),
            None => "host names come from the host files' names; see `nixflip status`".into(),
        },
    )
}

/// Plan promoting `name` to primary; `carry_address_rules`: carry the old
/// primary's hand-written firewall rules and pg_hba lines to it.
pub fn plan_promote(cluster: &Cluster, name: &str, carry_address_rules: bool) -> Result<Plan> {
    let new = cluster
        .member(name)
        .ok_or_else(|| unknown_host(cluster, name))?;
    for m in &cluster.members {
        if let Role::Invalid(expr) = m.role() {
            return Err(Error::usage(
                format!("{}'s role is `{expr}`, which nixflip cannot read", m.name),
                "fix it first (`nixflip check` shows where); nixflip will not guess a role",
            ));
        }
        if m.address.is_none() {
            return Err(Error::usage(
                format!("the address of {} is unknown, so peerHost and allowedSourceIPs cannot be planned", m.name),
                format!("set publicIp in its file, or [hosts.\"{}\"] address = \"…\" in nixflip.toml", m.name),
            ));
        }
    }
    let old = cluster.primaries().into_iter().find(|m| m.name != new.name);
    let standbys: Vec<&Member> = cluster
        .members
        .iter()
        .filter(|m| m.name != new.name && old.is_none_or(|o| o.name != m.name))
        .collect();
    let mut planned = Planned::default();
    let profiles = &cluster.config.config.profile;

    let new_peer = old
        .and_then(|o| o.address.clone())
        .or_else(|| new.peer_host().map(str::to_string));
    plan_member(
        cluster,
        new,
        "primary",
        new_peer.as_deref(),
        &profiles.primary,
        &mut planned,
    )?;
    if !new.has_secrets_file() {
        if let Some(source) = old.filter(|o| o.has_secrets_file()) {
            planned.changes.push(copy_secrets_file(source, new)?);
        }
    }
    for m in old.into_iter().chain(standbys.iter().copied()) {
        plan_member(
            cluster,
            m,
            "standby",
            new.address.as_deref(),
            &profiles.standby,
            &mut planned,
        )?;
    }
    let carried = match old {
        Some(old) => carry::plan(cluster, new, old)?,
        None => carry::Carried::default(),
    };
    Ok(Plan {
        new_primary: new.name.clone(),
        old_primary: old.map(|o| o.name.clone()),
        already_primary: new.is_primary(),
        standbys: standbys.iter().map(|m| m.name.clone()).collect(),
        changes: planned.changes,
        kept: planned.kept,
        not_rewritten: carried.not_rewritten,
        carry_address_rules,
        carries: carried.edits,
        carry_checks: carried.checks,
        intended: planned.intended,
    })
}

/// What planning the members adds up to.
#[derive(Default)]
struct Planned {
    changes: Vec<Change>,
    kept: Vec<Kept>,
    intended: BTreeMap<String, Intended>,
}

fn plan_member(
    cluster: &Cluster,
    m: &Member,
    role: &str,
    peer: Option<&str>,
    profile: &toml::Table,
    out: &mut Planned,
) -> Result<()> {
    let primary = role == "primary";
    let changes = &mut out.changes;
    let mut want = |field: &str, value: Value, note: Option<String>| {
        if let Some(change) = change_for(m, field, value, note) {
            changes.push(change);
        }
    };
    want(ROLE, Value::String(role.into()), None);
    for (key, value) in profile {
        want(
            key,
            toml_literal(key, value)?,
            Some(format!("[profile.{role}]")),
        );
    }
    // An override that contradicts the new role is turned around, so the
    // flip stays a pure flip (and flipping back restores the bytes).
    let synapse_from_profile = profile.contains_key(OVERRIDE_SYNAPSE);
    if !synapse_from_profile {
        if let Some(Value::Bool(forced)) = m.literal(OVERRIDE_SYNAPSE) {
            if *forced != primary {
                want(OVERRIDE_SYNAPSE, Value::Bool(primary), None);
            }
        }
    }
    if let Some(peer) = peer {
        want(PEER_HOST, Value::String(peer.into()), None);
    }
    let others = other_addresses(cluster, m);
    // An entry that covers no member (an operator's network) is none of the
    // flip's business: it stays, after the members.
    let operator = operator_entries(cluster, m);
    if let (false, Some(def)) = (operator.is_empty(), m.def(ALLOWED_IPS)) {
        out.kept.push(Kept {
            host: m.name.clone(),
            file: def.file.clone(),
            line: def.line,
            entries: operator.clone(),
        });
    }
    let wanted: Vec<String> = others.iter().chain(&operator).cloned().collect();
    let current: Option<BTreeSet<String>> = m.allowed_ips().map(|l| l.into_iter().collect());
    if current.as_ref() != Some(&wanted.iter().cloned().collect()) {
        let list = Value::List(wanted.into_iter().map(Value::String).collect());
        let note = (!operator.is_empty())
            .then(|| format!("keeps {} (covers no member)", operator.join(", ")));
        want(ALLOWED_IPS, list, note);
    }
    let synapse = match profile.get(OVERRIDE_SYNAPSE).and_then(toml::Value::as_bool) {
        Some(b) => b,
        None => primary,
    };
    out.intended.insert(
        m.name.clone(),
        Intended {
            role: role.into(),
            synapse,
            peer_host: peer.map(str::to_string),
            allowed_source_ips: others,
        },
    );
    Ok(())
}

/// The change that makes `field` hold `value`, or `None` when it already does.
fn change_for(m: &Member, field: &str, value: Value, note: Option<String>) -> Option<Change> {
    let def = m.def(field);
    if def.and_then(|d| d.value.as_ref()) == Some(&value) {
        return None;
    }
    Some(Change {
        host: m.name.clone(),
        field: field.into(),
        file: def.map_or_else(|| m.file.clone(), |d| d.file.clone()),
        old: def.map_or_else(
            || "(unset)".into(),
            |d| {
                d.value
                    .as_ref()
                    .map_or_else(|| d.expr.clone(), |v| v.render_inline())
            },
        ),
        new: value.render_inline(),
        value: NewValue::Literal(value),
        note,
    })
}

/// Every other member's address as a host network (/32 or /128), in member order.
fn other_addresses(cluster: &Cluster, m: &Member) -> Vec<String> {
    cluster
        .members
        .iter()
        .filter(|o| o.name != m.name)
        .filter_map(|o| o.address.as_deref())
        .map(|a| {
            a.parse::<IpAddr>()
                .map(host_cidr)
                .unwrap_or_else(|_| a.to_string())
        })
        .collect()
}

/// `m`'s `allowedSourceIPs` entries that are networks holding no member's
/// address, in their order.
fn operator_entries(cluster: &Cluster, m: &Member) -> Vec<String> {
    let members: Vec<IpAddr> = cluster.members.iter().filter_map(Member::ip).collect();
    m.allowed_ips()
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| {
            let nets = parse_networks(std::slice::from_ref(entry));
            !nets.is_empty()
                && nets
                    .iter()
                    .all(|n| !members.iter().any(|ip| n.contains(ip)))
        })
        .collect()
}

/// Whether `allowed` covers every address in `addresses` (for validation).
pub fn covers(allowed: &[String], addresses: &[String]) -> bool {
    let nets = parse_networks(allowed);
    addresses.iter().all(|a| {
        let ip = a.split('/').next().and_then(|s| s.parse::<IpAddr>().ok());
        ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip)))
    })
}

fn toml_literal(key: &str, value: &toml::Value) -> Result<Value> {
    let json = serde_json::to_value(value).map_err(|e| {
        Error::usage(
            format!("[profile] `{key}`: {e}"),
            "profile values are literals: strings, booleans, numbers, lists",
        )
    })?;
    Value::from_json(&json).map_err(|e| {
        Error::usage(
            format!("[profile] `{key}`: {e}"),
            "profile values are literals: strings, booleans, numbers, lists",
        )
    })
}

/// Copy the old primary's `secretsFile` expression to the new primary, with
/// relative paths rebased so they name the same file from the new location.
fn copy_secrets_file(from: &Member, to: &Member) -> Result<Change> {
    let def = from.def(SECRETS_FILE).ok_or_else(|| {
        Error::usage(
            format!("{} has no secretsFile to copy to {}", from.name, to.name),
            format!(
                "set secretsFile for {} in {} by hand, then promote again",
                to.name,
                to.file.display()
            ),
        )
    })?;
    let from_dir = def.file.parent().unwrap_or(Path::new(""));
    let to_dir = to.file.parent().unwrap_or(Path::new(""));
    let expr = rebase_paths(&def.expr, from_dir, to_dir);
    Ok(Change {
        host: to.name.clone(),
        field: SECRETS_FILE.into(),
        file: to.file.clone(),
        old: "(unset)".into(),
        new: expr.clone(),
        value: NewValue::Expr(expr),
        note: Some(format!(
            "copied from {} ({}:{}): Synapse needs it wherever it runs",
            from.name,
            def.file.display(),
            def.line
        )),
    })
}

/// Rewrite relative path literals in `expr` (written in `from_dir`) so they
/// point at the same files when written in `to_dir`.
pub fn rebase_paths(expr: &str, from_dir: &Path, to_dir: &Path) -> String {
    let parsed = rnix::Root::parse(expr);
    let mut edits = Vec::new();
    for node in parsed
        .syntax()
        .descendants()
        .filter(|n| n.kind() == SyntaxKind::NODE_PATH_REL)
    {
        if node.children().next().is_some() {
            continue; // interpolated path: leave it alone
        }
        let target = super::discover::normalize(&from_dir.join(node.text().to_string()));
        let rebased = relative_path(&target, to_dir);
        let range = node.text_range();
        edits.push(crate::nixedit::TextEdit {
            range: usize::from(range.start())..usize::from(range.end()),
            replacement: rebased,
        });
    }
    crate::nixedit::apply_edits(expr, &edits)
}

/// `target` (relative to the flake root) as a Nix relative path from `dir`.
pub fn relative_path(target: &Path, dir: &Path) -> String {
    let t: Vec<_> = target.components().collect();
    let d: Vec<_> = dir.components().collect();
    let common = t.iter().zip(&d).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); d.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    let joined = parts.join("/");
    if joined.starts_with("..") {
        joined
    } else {
        format!("./{joined}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_rebased_to_the_target_directory() {
        assert_eq!(
            rebase_paths(
                "../secrets/x.yaml",
                Path::new("hosts"),
                Path::new("machines/beta")
            ),
            "../../secrets/x.yaml"
        );
        assert_eq!(
            rebase_paths("./s.yaml", Path::new("a"), Path::new("a")),
            "./s.yaml"
        );
        assert_eq!(
            rebase_paths("./s.yaml", Path::new("a/b"), Path::new("a")),
            "./b/s.yaml"
        );
        assert_eq!(
            rebase_paths(
                "config.sops.secrets.\"x\".path",
                Path::new("a"),
                Path::new("b")
            ),
            "config.sops.secrets.\"x\".path"
        );
    }
}
