//! NF102: a URL or `ADDR:PORT` endpoint, in a string outside the cluster
//! options, whose host is a standby's address. Synapse is off on a standby, so a
//! proxy or backend still pointing at the demoted host serves nothing.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use rnix::{SyntaxKind, SyntaxNode, SyntaxToken};

use super::rules::{Finding, Severity};
use super::{Cluster, Role};

pub fn nf102_endpoints_at_standbys(cluster: &Cluster, out: &mut Vec<Finding>) {
    let standbys: Vec<(&str, &str)> = cluster
        .members
        .iter()
        .filter(|m| m.role() == Role::Standby)
        .filter_map(|m| m.address.as_deref().map(|a| (m.name.as_str(), a)))
        .collect();
    if standbys.is_empty() {
        return;
    }
    let option = cluster.option.keys();
    // Each file's owner: the first member whose files include it.
    let mut owners: HashMap<&Path, &str> = HashMap::new();
    for m in &cluster.members {
        for f in &m.files {
            owners.entry(f.as_path()).or_insert(m.name.as_str());
        }
    }
    for (rel, text) in cluster.sources.texts() {
        // An endpoint at an address is in the file's text verbatim (string
        // content is raw source), so a file without any standby's address
        // has none: it need not be parsed.
        if !standbys.iter().any(|(_, address)| text.contains(address)) {
            continue;
        }
        let Some(file) = cluster.sources.get(rel) else {
            continue;
        };
        let owner = owners.get(rel.as_path()).copied();
        let cluster_values: Vec<Range<usize>> = file
            .walk_under(option)
            .bindings
            .iter()
            .filter(|b| b.path.starts_with(option))
            .map(|b| {
                usize::from(b.node.text_range().start())..usize::from(b.node.text_range().end())
            })
            .collect();
        for string in file
            .root()
            .descendants()
            .filter(|n| n.kind() == SyntaxKind::NODE_STRING)
        {
            let start = usize::from(string.text_range().start());
            if cluster_values.iter().any(|r| r.contains(&start)) {
                continue;
            }
            for part in string_parts(&string) {
                // Both endpoint forms need a ':' (`scheme://`, `:PORT`, or an
                // IPv6 address): without one, no standby can match. Skipping
                // here keeps the scan from being strings x standbys.
                let content = part.text();
                if !content.contains(':') {
                    continue;
                }
                let offset = usize::from(part.text_range().start());
                for &(standby, address) in &standbys {
                    if owner == Some(standby) {
                        continue; // a host's own address in its own config
                    }
                    if let Some(at) = find_endpoint(content, address) {
                        let (line, column) = file.position(offset + at);
                        out.push(Finding {
                            id: "NF102",
                            severity: Severity::Warning,
                            host: owner.map(str::to_string),
                            file: rel.clone(),
                            line,
                            column,
                            span: Some((offset + at, offset + at + address.len())),
                            message: format!("this endpoint points at {address}, the standby {standby}: Synapse is off there, so it serves nothing"),
                            help: "point it at the primary's address, or at a name that follows the primary (DNS)".into(),
                        });
                    }
                }
            }
        }
    }
}

/// The literal text pieces of a string (tokens: text and position).
fn string_parts(string: &SyntaxNode) -> impl Iterator<Item = SyntaxToken> {
    string
        .children_with_tokens()
        .filter(|e| e.kind() == SyntaxKind::TOKEN_STRING_CONTENT)
        .filter_map(|e| e.into_token())
}

/// Where `address` occurs as the host of a URL (`scheme://ADDR`,
/// `scheme://[ADDR]`) or of an `ADDR:PORT` / `[ADDR]:PORT` endpoint. A CIDR
/// (`ADDR/NN`) or a bare address is not an endpoint.
pub fn find_endpoint(text: &str, address: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find(address) {
        let at = from + found;
        let end = at + address.len();
        from = at + 1;
        let before = &text[..at];
        let after = &text[end..];
        let bracketed = before.ends_with('[') && after.starts_with(']');
        let (before, after) = if bracketed {
            (&before[..before.len() - 1], &after[1..])
        } else {
            (before, after)
        };
        let boundary_before = !before
            .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '.' || c == ':' || c == '-');
        // An unbracketed IPv6 address followed by ':' is a longer address.
        let longer_v6 = address.contains(':') && !bracketed && after.starts_with(':');
        let boundary_after = !after
            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && !longer_v6;
        if !boundary_before || !boundary_after {
            continue;
        }
        let url = before.ends_with("://");
        let port = after
            .strip_prefix(':')
            .is_some_and(|p| p.starts_with(|c: char| c.is_ascii_digit()));
        if url || port {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find_endpoint;

    #[test]
    fn urls_and_endpoints_match_cidrs_and_bare_addresses_do_not() {
        assert_eq!(
            find_endpoint("http://10.0.0.2:8008/_matrix", "10.0.0.2"),
            Some(7)
        );
        assert_eq!(find_endpoint("https://10.0.0.2", "10.0.0.2"), Some(8));
        assert_eq!(
            find_endpoint("upstream 10.0.0.2:5432;", "10.0.0.2"),
            Some(9)
        );
        assert_eq!(
            find_endpoint("http://[2001:db8::2]:8008", "2001:db8::2"),
            Some(8)
        );
        assert_eq!(find_endpoint("10.0.0.2/32", "10.0.0.2"), None);
        assert_eq!(find_endpoint("10.0.0.2", "10.0.0.2"), None);
        assert_eq!(find_endpoint("http://110.0.0.2:80", "10.0.0.2"), None);
        assert_eq!(find_endpoint("http://10.0.0.22:80", "10.0.0.2"), None);
    }
}

/// How a string literal refers to an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    /// The host of a URL or of an `ADDR:PORT` endpoint.
    Endpoint,
    /// The whole string is the address (a `peerHost`, say).
    Exact,
    /// The whole string is a network of it (`ADDR/32` in `allowedSourceIPs`).
    Network,
}

/// A string literal that refers to an address.
#[derive(Clone, Debug)]
pub struct AddressUse {
    pub file: std::path::PathBuf,
    pub span: Range<usize>,
    pub line: usize,
    pub column: usize,
    pub kind: Reference,
}

/// Every string literal of the cluster's files (except `skip`) that refers
/// to `address`: as an endpoint, as the whole string, or as its network.
pub fn address_uses(
    cluster: &Cluster,
    address: &str,
    skip: &[std::path::PathBuf],
) -> Vec<AddressUse> {
    let mut out = Vec::new();
    for (rel, text) in cluster.sources.texts() {
        if skip.contains(rel) || !text.contains(address) {
            continue;
        }
        let Some(file) = cluster.sources.get(rel) else {
            continue;
        };
        for string in file
            .root()
            .descendants()
            .filter(|n| n.kind() == SyntaxKind::NODE_STRING)
        {
            let parts: Vec<SyntaxToken> = string_parts(&string).collect();
            let whole = match (parts.as_slice(), string.children().next()) {
                ([one], None) => Some(one.text().to_string()),
                _ => None,
            };
            let found = match whole.as_deref() {
                Some(s) if s == address => Some((Reference::Exact, 0)),
                Some(s)
                    if s.strip_prefix(address)
                        .and_then(|r| r.strip_prefix('/'))
                        .is_some_and(|len| len.parse::<u8>().is_ok()) =>
                {
                    Some((Reference::Network, 0))
                }
                _ => None,
            };
            let found = found
                .map(|(kind, at)| (kind, parts[0].clone(), at))
                .or_else(|| {
                    parts.iter().find_map(|part| {
                        find_endpoint(part.text(), address)
                            .map(|at| (Reference::Endpoint, part.clone(), at))
                    })
                });
            if let Some((kind, token, at)) = found {
                let start = usize::from(token.text_range().start()) + at;
                let (line, column) = file.position(start);
                out.push(AddressUse {
                    file: rel.clone(),
                    span: start..start + address.len(),
                    line,
                    column,
                    kind,
                });
            }
        }
    }
    out
}
