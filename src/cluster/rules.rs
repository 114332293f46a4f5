//! Consistency rules. Each finding has a stable id, a severity,
//! the file and span it is about, a message and a help line.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

use super::{
    Cluster, Def, Member, Role, ALLOWED_IPS, OVERRIDE_SYNAPSE, PEER_HOST, ROLE, SECRETS_FILE,
};
use crate::nixedit::Value;

pub use crate::findings::{Finding, Severity};

/// A finding about `member`, pointing at `def` (or at the host file's start).
pub fn finding_at(
    id: &'static str,
    severity: Severity,
    member: &Member,
    def: Option<&Def>,
    message: String,
    help: String,
) -> Finding {
    Finding {
        id,
        severity,
        host: Some(member.name.clone()),
        file: def.map_or_else(|| member.file.clone(), |d| d.file.clone()),
        line: def.map_or(1, |d| d.line),
        column: def.map_or(1, |d| d.column),
        span: def.map(|d| (d.span.start, d.span.end)),
        message,
        help,
    }
}

/// Run every rule; findings sorted by file, line, id.
pub fn check(cluster: &Cluster) -> Vec<Finding> {
    let mut out = cluster.notes.clone();
    nf001_one_primary(cluster, &mut out);
    nf002_peer_host(cluster, &mut out);
    nf003_allowed_cover_standbys(cluster, &mut out);
    nf009_allowed_entries_parse(cluster, &mut out);
    nf004_nf005_synapse(cluster, &mut out);
    nf006_shared(cluster, &mut out);
    nf007_role_readable(cluster, &mut out);
    nf101_allows_itself(cluster, &mut out);
    let literals = super::addresses::scan(cluster);
    super::addresses::nf102_endpoints_at_standbys(cluster, &literals, &mut out);
    let admissions = super::admission::admissions(cluster, &literals);
    super::admission::nf106_primary_admits_no_standby(cluster, &admissions, &mut out);
    super::admission::nf107_pg_rule_admits_non_member(cluster, &admissions, &mut out);
    out.sort_by(|a, b| (&a.file, a.line, a.column, a.id).cmp(&(&b.file, b.line, b.column, b.id)));
    out.dedup();
    out
}

/// NF010: the error says a `.nix` file of the cluster does not parse; as a
/// finding at the first syntax error, so `check --format json|github` can
/// report it like any other (the exit code stays 2, bad input). `None` for
/// any other error.
pub fn parse_failure(error: &crate::error::Error) -> Option<Finding> {
    use crate::nixedit::EditError;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let parse = match (
            e.downcast_ref::<crate::error::Error>(),
            e.downcast_ref::<EditError>(),
        ) {
            (Some(crate::error::Error::Edit(edit)), _) | (None, Some(edit)) => Some(edit),
            _ => None,
        };
        // A syntax error, or what Nix rejects although it parses (a
        // duplicate attribute, …): either way Nix does not read the file.
        let rejected = match parse {
            Some(EditError::Parse {
                file,
                message,
                src,
                span,
                ..
            }) => Some((file, message, src, span.offset(), span.len())),
            Some(EditError::Invalid {
                file,
                message,
                src,
                labels,
                ..
            }) => {
                let (offset, len) = labels.first().map_or((0, 0), |l| (l.offset(), l.len()));
                Some((file, message, src, offset, len))
            }
            _ => None,
        };
        if let Some((file, what, src, offset, len)) = rejected {
            let text = src.inner();
            let (line, column) = crate::nixedit::line_col(text, offset);
            return Some(Finding {
                id: "NF010",
                severity: Severity::Error,
                host: None,
                file: std::path::PathBuf::from(file),
                line,
                column,
                span: Some((offset, offset + len)),
                message: format!("{file} does not parse: {what}"),
                help: format!("fix the syntax error; nixflip judges no cluster it cannot read (`nix-instantiate --parse {file}` shows Nix's own message)"),
            });
        }
        current = e.source();
    }
    None
}

pub fn error_count(findings: &[Finding]) -> usize {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count()
}

fn nf001_one_primary(cluster: &Cluster, out: &mut Vec<Finding>) {
    let primaries = cluster.primaries();
    match primaries.len() {
        1 => {}
        0 => {
            let Some(first) = cluster.members.first() else {
                return;
            };
            let names: Vec<&str> = cluster.members.iter().map(|m| m.name.as_str()).collect();
            out.push(finding_at(
                "NF001",
                Severity::Error,
                first,
                first.def(ROLE),
                format!("no member is primary (members: {})", names.join(", ")),
                "exactly one member must have role = \"primary\"; use `nixflip promote HOST` to choose one".into(),
            ));
        }
        n => {
            let names: Vec<&str> = primaries.iter().map(|m| m.name.as_str()).collect();
            for m in primaries {
                out.push(finding_at(
                    "NF001",
                    Severity::Error,
                    m,
                    m.def(ROLE),
                    format!("{n} members are primary ({}): split brain", names.join(", ")),
                    "exactly one member may be primary; make the others standbys (`nixflip promote HOST` does it consistently)".into(),
                ));
            }
        }
    }
}

fn nf002_peer_host(cluster: &Cluster, out: &mut Vec<Finding>) {
    let Some(primary) = cluster.primary() else {
        return;
    };
    let Some(address) = primary.address.as_deref() else {
        return;
    };
    for m in cluster.members.iter().filter(|m| m.role() == Role::Standby) {
        let peer = m.peer_host();
        if peer.is_some_and(|p| same_address(p, address)) {
            continue;
        }
        let message = match (peer, m.def(PEER_HOST)) {
            (Some(p), _) if Some(p) == m.address.as_deref() => format!("standby {} streams from itself: peerHost is its own address {p}, not the primary {} ({address})", m.name, primary.name),
            (Some(p), _) => format!("standby {} streams from {p}, but the primary {} is at {address}", m.name, primary.name),
            (None, Some(def)) => format!("standby {}'s peerHost is `{}`, which nixflip cannot read; the primary {} is at {address}", m.name, def.expr, primary.name),
            (None, None) => format!("standby {} has no replication.peerHost; the primary {} is at {address}", m.name, primary.name),
        };
        out.push(finding_at(
            "NF002",
            Severity::Error,
            m,
            m.def(PEER_HOST).or(m.def(ROLE)),
            message,
            format!("set replication.peerHost = \"{address}\" on {}", m.name),
        ));
    }
}

fn same_address(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// `allowedSourceIPs` entries as networks (a bare address is a host network).
pub fn parse_networks(entries: &[String]) -> Vec<IpNet> {
    entries
        .iter()
        .filter_map(|e| {
            e.parse::<IpNet>()
                .ok()
                .or_else(|| e.parse::<IpAddr>().ok().map(IpNet::from))
        })
        .collect()
}

fn nf003_allowed_cover_standbys(cluster: &Cluster, out: &mut Vec<Finding>) {
    let Some(primary) = cluster.primary() else {
        return;
    };
    let allowed = primary.allowed_ips();
    if allowed.is_none() && primary.def(ALLOWED_IPS).is_some() {
        return; // not a literal list: `nix eval` judges it
    }
    let networks = parse_networks(&allowed.unwrap_or_default());
    for m in cluster.members.iter().filter(|m| m.role() == Role::Standby) {
        let Some(ip) = m.ip() else { continue };
        if networks.iter().any(|n| n.contains(&ip)) {
            continue;
        }
        out.push(finding_at(
            "NF003",
            Severity::Error,
            primary,
            primary.def(ALLOWED_IPS).or(primary.def(ROLE)),
            format!("the primary {}'s allowedSourceIPs do not cover standby {} ({ip}): pg_hba has no replication line for it, so replication stops", primary.name, m.name),
            format!("add \"{}\" to replication.allowedSourceIPs on {}", host_cidr(ip), primary.name),
        ));
    }
}

/// An `allowedSourceIPs` entry that is no CIDR or IP (a DNS name, a typo):
/// pg_hba and the firewall rules need CIDRs, and [`parse_networks`] cannot
/// count it, so it must not pass silently.
fn nf009_allowed_entries_parse(cluster: &Cluster, out: &mut Vec<Finding>) {
    for m in &cluster.members {
        let Some(allowed) = m.allowed_ips() else {
            continue;
        };
        for entry in allowed
            .iter()
            .filter(|e| parse_networks(std::slice::from_ref(e)).is_empty())
        {
            out.push(finding_at(
                "NF009",
                Severity::Error,
                m,
                m.def(ALLOWED_IPS),
                format!("{}'s allowedSourceIPs entry \"{entry}\" is not an IP address or CIDR: pg_hba and the firewall need CIDRs", m.name),
                "list the members' IP addresses as CIDRs, e.g. \"198.51.100.20/32\" or \"2001:db8::20/128\" (allowedSourceIPs needs an IP address, not a host name)".into(),
            ));
        }
    }
}

/// `/32` for IPv4, `/128` for IPv6.
pub fn host_cidr(ip: IpAddr) -> String {
    IpNet::from(ip).to_string()
}

fn nf004_nf005_synapse(cluster: &Cluster, out: &mut Vec<Finding>) {
    for m in &cluster.members {
        let Some(runs) = m.effective_synapse() else {
            continue;
        };
        match (m.role(), runs) {
            (Role::Standby, true) => out.push(finding_at(
                "NF004",
                Severity::Error,
                m,
                m.def(OVERRIDE_SYNAPSE).or(m.def(ROLE)),
                format!("Synapse is forced on for standby {}: two Synapses would serve one database (split brain)", m.name),
                format!("set overrideEnableSynapse = false (or null) on {}", m.name),
            )),
            (Role::Primary, false) => out.push(finding_at(
                "NF004",
                Severity::Error,
                m,
                m.def(OVERRIDE_SYNAPSE).or(m.def(ROLE)),
                format!("Synapse is forced off on the primary {}: nothing serves the homeserver", m.name),
                format!("set overrideEnableSynapse = true (or null) on {}", m.name),
            )),
            _ => {}
        }
        if runs && !m.has_secrets_file() {
            out.push(finding_at(
                "NF005",
                Severity::Error,
                m,
                m.def(SECRETS_FILE).or(m.def(ROLE)),
                format!("Synapse runs on {} but secretsFile is not set: Synapse starts without its shared secrets", m.name),
                format!("set secretsFile on {} (the other members' value, e.g. config.sops.secrets.\"matrix/secrets\".path)", m.name),
            ));
        }
    }
}

fn nf006_shared(cluster: &Cluster, out: &mut Vec<Finding>) {
    for key in &cluster.config.config.cluster.shared {
        let shown = |m: &Member| -> String {
            match m.def(key) {
                None => "(not set)".into(),
                Some(d) => d
                    .value
                    .as_ref()
                    .map_or_else(|| d.expr.clone(), |v| v.to_json().to_string()),
            }
        };
        let values: BTreeSet<String> = cluster.members.iter().map(shown).collect();
        if values.len() <= 1 {
            continue;
        }
        let listing: Vec<String> = cluster
            .members
            .iter()
            .map(|m| format!("{} = {}", m.name, shown(m)))
            .collect();
        for m in cluster
            .members
            .iter()
            .filter(|m| m.def(key).is_some())
            .skip(1)
            .chain(cluster.members.iter().filter(|m| m.def(key).is_none()))
        {
            out.push(finding_at(
                "NF006",
                Severity::Error,
                m,
                m.def(key),
                format!(
                    "`{key}` must be the same on every member, but it differs: {}",
                    listing.join(", ")
                ),
                format!("set the same `{key}` on every member"),
            ));
        }
    }
}

fn nf007_role_readable(cluster: &Cluster, out: &mut Vec<Finding>) {
    for m in &cluster.members {
        let message = match m.role() {
            Role::Invalid(expr) => match m.def(ROLE).and_then(|d| d.value.clone()) {
                Some(Value::String(s)) => format!(
                    "{}: role \"{s}\" is not one of \"primary\", \"standby\"",
                    m.name
                ),
                _ => format!(
                    "{}: role is `{expr}`, which nixflip cannot read as \"primary\" or \"standby\"",
                    m.name
                ),
            },
            Role::Missing => format!("{}: role is not set", m.name),
            _ => continue,
        };
        out.push(finding_at("NF007", Severity::Error, m, m.def(ROLE), message, "write role = \"primary\" or role = \"standby\" as a literal (lib.mkForce \"…\" is fine)".into()));
    }
}

fn nf101_allows_itself(cluster: &Cluster, out: &mut Vec<Finding>) {
    for m in &cluster.members {
        let (Some(ip), Some(allowed)) = (m.ip(), m.allowed_ips()) else {
            continue;
        };
        if parse_networks(&allowed)
            .iter()
            .any(|n| n.contains(&ip) && n.prefix_len() == n.max_prefix_len())
        {
            out.push(finding_at(
                "NF101",
                Severity::Warning,
                m,
                m.def(ALLOWED_IPS),
                format!("{}'s allowedSourceIPs list its own address {ip}", m.name),
                "list the other members' addresses; a host never replicates from itself".into(),
            ));
        }
    }
}
