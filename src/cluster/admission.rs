//! Who the hand-written firewall rules and pg_hba lines (outside the cluster
//! options) let into PostgreSQL, and the rules that judge it: NF106 (the
//! primary admits no standby while another member's rules admit its peer:
//! a flip that left them behind) and NF107 (a PostgreSQL rule admits an
//! address that is no member). It reads rule text; it never rewrites it.

use std::net::IpAddr;

use ipnet::IpNet;

use super::addresses::{position_in, Kind, Literal, Token};
use super::rules::{Finding, Severity};
use super::{Cluster, Role};
use crate::nixedit::Value;

/// One address a rule lets into PostgreSQL.
#[derive(Clone, Debug)]
pub struct Admission<'a> {
    pub literal: &'a Literal,
    pub token: &'a Token,
    pub network: IpNet,
    /// A firewall rule, or a pg_hba line.
    pub kind: Kind,
    /// May stream WAL: a firewall rule for the port, or a pg_hba line whose
    /// database list holds `replication`.
    pub replication: bool,
}

/// The PostgreSQL ports of the cluster: 5432 and every `replication.peerPort`
/// written as a literal.
fn pg_ports(cluster: &Cluster) -> Vec<u16> {
    let mut ports = vec![5432];
    for m in &cluster.members {
        if let Some(Value::Int(p)) = m.literal("replication.peerPort") {
            if let Ok(p) = u16::try_from(*p) {
                ports.push(p);
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Every address the literals' rule lines let into PostgreSQL.
pub fn admissions<'a>(cluster: &Cluster, literals: &'a [Literal]) -> Vec<Admission<'a>> {
    let ports = pg_ports(cluster);
    let mut out = Vec::new();
    for literal in literals {
        let mut seen_lines = Vec::new();
        for token in &literal.tokens {
            let line = literal.line_around(token.range.start);
            if seen_lines.contains(&line) {
                continue;
            }
            seen_lines.push(line.clone());
            let text =
                &literal.text[line.start - literal.span.start..line.end - literal.span.start];
            let on_line: Vec<&Token> = literal.tokens_on_line(token.range.start);
            let base = line.start;
            match literal.kind {
                Kind::Firewall => {
                    for t in firewall_sources(text, base, &on_line, &ports) {
                        out.push(Admission {
                            literal,
                            token: t,
                            network: t.network(),
                            kind: Kind::Firewall,
                            replication: true,
                        });
                    }
                }
                Kind::PgHba => {
                    if let Some((t, network, replication)) = pg_hba_source(text, base, &on_line) {
                        out.push(Admission {
                            literal,
                            token: t,
                            network,
                            kind: Kind::PgHba,
                            replication,
                        });
                    }
                }
                Kind::Other => {}
            }
        }
    }
    out
}

/// Words of a line with their byte offsets.
fn words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

/// The source addresses of a firewall rule line that accepts PostgreSQL
/// traffic: the line accepts (`accept`, `-j ACCEPT`, `-j nixos-fw-accept`),
/// and names the PostgreSQL port or no port at all. An address after a
/// destination keyword (`daddr`, `-d`) is the host itself, not a source.
fn firewall_sources<'t>(
    text: &str,
    base: usize,
    tokens: &[&'t Token],
    ports: &[u16],
) -> Vec<&'t Token> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("accept") {
        return Vec::new();
    }
    let names_port = lower.contains("port");
    if names_port
        && !numbers(text)
            .iter()
            .any(|n| ports.iter().any(|p| u32::from(*p) == *n))
    {
        return Vec::new();
    }
    let words = words(text);
    tokens
        .iter()
        .copied()
        .filter(|t| {
            let at = t.range.start - base;
            let keyword = words
                .iter()
                .rev()
                .filter(|(o, _)| *o < at)
                .find_map(|(_, w)| match *w {
                    "saddr" | "-s" | "--source" | "--src" => Some(true),
                    "daddr" | "-d" | "--destination" | "--dst" => Some(false),
                    _ => None,
                });
            keyword.unwrap_or(true)
        })
        .collect()
}

/// Numbers written on their own (digit runs not part of an address).
fn numbers(text: &str) -> Vec<u32> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let dotted = (start > 0 && bytes[start - 1] == b'.') || bytes.get(i) == Some(&b'.');
        if !dotted {
            if let Ok(n) = text[start..i].parse() {
                out.push(n);
            }
        }
    }
    out
}

/// The address of a pg_hba `host*` line (`TYPE DATABASE USER ADDRESS
/// [MASK] METHOD`), its network, and whether the database list admits
/// replication.
fn pg_hba_source<'t>(
    text: &str,
    base: usize,
    tokens: &[&'t Token],
) -> Option<(&'t Token, IpNet, bool)> {
    let words = words(text);
    let kind = words.first()?.1;
    if !matches!(
        kind,
        "host" | "hostssl" | "hostnossl" | "hostgssenc" | "hostnogssenc"
    ) {
        return None;
    }
    let replication = words.get(1)?.1.split(',').any(|d| d == "replication");
    let (at, _) = *words.get(3)?;
    let token = tokens
        .iter()
        .copied()
        .find(|t| t.range.start - base == at)?;
    let network = match (token.prefix, words.get(4)) {
        (None, Some((mask_at, _))) => tokens
            .iter()
            .find(|t| t.range.start - base == *mask_at)
            .and_then(|mask| mask_len(mask.ip))
            .and_then(|len| IpNet::new(token.ip, len).ok())
            .unwrap_or_else(|| token.network()),
        _ => token.network(),
    };
    Some((token, network, replication))
}

/// `255.255.255.0` → 24; `None` for a mask that is no prefix.
fn mask_len(mask: IpAddr) -> Option<u8> {
    let bits = match mask {
        IpAddr::V4(m) => u128::from(u32::from(m)) << 96,
        IpAddr::V6(m) => u128::from(m),
    };
    let ones = bits.leading_ones();
    (bits.count_ones() == ones && (mask.is_ipv6() || ones <= 32))
        .then(|| u8::try_from(ones).ok())
        .flatten()
}

fn kind_words(kind: Kind) -> &'static str {
    match kind {
        Kind::Firewall => "firewall rules",
        _ => "pg_hba lines",
    }
}

/// NF106: hand-written replication admission exists in the cluster (some
/// member's firewall rules or pg_hba lines admit another member), but the
/// primary's do not admit a standby: the typical flip that rewrote the
/// cluster options and left the rules on the old primary.
pub fn nf106_primary_admits_no_standby(
    cluster: &Cluster,
    admissions: &[Admission],
    out: &mut Vec<Finding>,
) {
    let Some(primary) = cluster.primary() else {
        return;
    };
    for kind in [Kind::Firewall, Kind::PgHba] {
        let of_kind: Vec<&Admission> = admissions
            .iter()
            .filter(|a| a.kind == kind && a.replication)
            .collect();
        // Rules that admit a member other than the hosts they belong to.
        let evidence: Vec<(&Admission, Vec<&str>)> = of_kind
            .iter()
            .filter_map(|a| {
                let admitted: Vec<&str> = cluster
                    .members
                    .iter()
                    .filter(|m| !a.literal.hosts.contains(&m.name))
                    .filter(|m| m.ip().is_some_and(|ip| a.network.contains(&ip)))
                    .map(|m| m.name.as_str())
                    .collect();
                (!a.literal.hosts.is_empty() && !admitted.is_empty()).then_some((*a, admitted))
            })
            .collect();
        if evidence.is_empty() {
            continue;
        }
        for standby in cluster.members.iter().filter(|m| m.role() == Role::Standby) {
            let Some(ip) = standby.ip() else { continue };
            let admitted = of_kind
                .iter()
                .any(|a| a.literal.hosts.contains(&primary.name) && a.network.contains(&ip));
            if admitted {
                continue;
            }
            // Point at a rule elsewhere: that is where the admission went.
            let Some((a, names)) = evidence
                .iter()
                .find(|(a, _)| !a.literal.hosts.contains(&primary.name))
                .or_else(|| evidence.first())
            else {
                continue;
            };
            let (line, column) = position_in(cluster, &a.literal.file, a.token.range.start);
            let owner = a.literal.hosts.join(", ");
            out.push(Finding {
                id: "NF106",
                severity: Severity::Warning,
                host: Some(primary.name.clone()),
                file: a.literal.file.clone(),
                line,
                column,
                span: Some((a.token.range.start, a.token.range.end)),
                message: format!(
                    "the primary {p}'s {what} (outside the cluster options) admit no standby {s} ({ip}), while these {what} of {owner} admit {names}: the hand-written admission stayed on a host that is no longer the primary, so {s} may not reach {p}'s PostgreSQL",
                    p = primary.name,
                    what = kind_words(kind),
                    s = standby.name,
                    names = names.join(", "),
                ),
                help: format!(
                    "give {p} the same rule for {s} (on a flip, `nixflip promote HOST --carry-address-rules` does), then remove this one if {owner} no longer needs it",
                    p = primary.name,
                    s = standby.name,
                ),
            });
        }
    }
}

/// NF107: a firewall rule for the PostgreSQL port, or a pg_hba line, admits
/// an address that is no member (a former member, a typo, a whole network).
/// Loopback is local access and not reported.
pub fn nf107_pg_rule_admits_non_member(
    cluster: &Cluster,
    admissions: &[Admission],
    out: &mut Vec<Finding>,
) {
    let members: Vec<(IpAddr, &str)> = cluster
        .members
        .iter()
        .filter_map(|m| m.ip().map(|ip| (ip, m.name.as_str())))
        .collect();
    for a in admissions {
        let net = a.network;
        if net.addr().is_loopback() {
            continue;
        }
        let is_member_host = net.prefix_len() == net.max_prefix_len()
            && members.iter().any(|(ip, _)| *ip == net.addr());
        if is_member_host {
            continue;
        }
        let inside: Vec<&str> = members
            .iter()
            .filter(|(ip, _)| net.contains(ip))
            .map(|(_, name)| *name)
            .collect();
        let what = if net.prefix_len() == net.max_prefix_len() {
            "no member has this address".to_string()
        } else if inside.is_empty() {
            "a network that holds no member".to_string()
        } else {
            format!(
                "a network that holds {} and addresses that are no member",
                inside.join(", ")
            )
        };
        let (line, column) = position_in(cluster, &a.literal.file, a.token.range.start);
        out.push(Finding {
            id: "NF107",
            severity: Severity::Warning,
            host: a.literal.hosts.first().cloned(),
            file: a.literal.file.clone(),
            line,
            column,
            span: Some((a.token.range.start, a.token.range.end)),
            message: format!(
                "this {} admits {net} to PostgreSQL: {what}",
                match a.kind {
                    Kind::Firewall => "firewall rule",
                    _ => "pg_hba line",
                }
            ),
            help: "remove it if it names a former member; keep it if it is deliberate (an operator's network): nixflip only reports it".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::addresses::tokens;

    fn sources(text: &str, ports: &[u16]) -> Vec<String> {
        let found = tokens(text);
        let refs: Vec<&Token> = found.iter().collect();
        firewall_sources(text, 0, &refs, ports)
            .into_iter()
            .map(|t| t.network().to_string())
            .collect()
    }

    #[test]
    fn firewall_rules_admit_their_sources_to_the_postgresql_port() {
        assert_eq!(
            sources("ip saddr 10.0.0.2/32 tcp dport 5432 accept", &[5432]),
            ["10.0.0.2/32"]
        );
        assert_eq!(
            sources("iptables -A nixos-fw -p tcp --dport 5432 -s 10.0.0.2 -d 10.0.0.1 -j nixos-fw-accept", &[5432]),
            ["10.0.0.2/32"]
        );
        assert_eq!(
            sources("ip saddr 10.0.0.2 accept", &[5432]),
            ["10.0.0.2/32"]
        );
        assert!(sources("ip saddr 10.0.0.2 tcp dport 22 accept", &[5432]).is_empty());
        assert!(sources("ip saddr 10.0.0.2 tcp dport 5432 drop", &[5432]).is_empty());
        assert_eq!(
            sources(
                "ip saddr { 10.0.0.2, 10.0.0.3 } tcp dport { 22, 5433 } accept",
                &[5432, 5433]
            ),
            ["10.0.0.2/32", "10.0.0.3/32"]
        );
    }

    #[test]
    fn pg_hba_lines_admit_their_address_field() {
        let line = |text: &str| {
            let found = tokens(text);
            let refs: Vec<&Token> = found.iter().collect();
            pg_hba_source(text, 0, &refs).map(|(_, n, r)| (n.to_string(), r))
        };
        assert_eq!(
            line("hostssl replication replicator 10.0.0.2/32 scram-sha-256"),
            Some(("10.0.0.2/32".into(), true))
        );
        assert_eq!(
            line("host all,replication all 10.0.0.0 255.255.255.0 md5"),
            Some(("10.0.0.0/24".into(), true))
        );
        assert_eq!(
            line("host all all 10.0.0.2/32 md5"),
            Some(("10.0.0.2/32".into(), false))
        );
        assert_eq!(line("local all all peer"), None);
    }
}
