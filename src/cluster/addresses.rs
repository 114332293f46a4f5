//! Addresses written outside the cluster options: every string (or list item)
//! that holds an IP address — bare, as a CIDR, as `ADDR:PORT`, inside a URL or
//! inside firewall rule and pg_hba text — with the file, line, option path and
//! the members it names. NF102, NF106, NF107 and the flip's "not rewritten"
//! list all read this one scan. It only reads: it never edits a file, and it
//! never resolves a host name to guess which member it means.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use rnix::{SyntaxKind, SyntaxNode};

use super::rules::{Finding, Severity};
use super::{Cluster, Role};
use crate::nixedit::AttrPath;

/// One IP address in a piece of text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Byte range of the address itself (without brackets, prefix or port).
    pub range: Range<usize>,
    pub ip: IpAddr,
    /// `/NN` after it: a network.
    pub prefix: Option<u8>,
    /// `:PORT` after it (or after `]`).
    pub port: Option<u16>,
    /// The host of a URL (`scheme://ADDR`, `scheme://user@[ADDR]`).
    pub url: bool,
}

impl Token {
    /// A URL host or `ADDR:PORT`: something connects to it.
    pub fn is_endpoint(&self) -> bool {
        self.url || self.port.is_some()
    }

    /// The network the token stands for (a bare address is a host network).
    pub fn network(&self) -> IpNet {
        let host = IpNet::from(self.ip);
        match self.prefix {
            Some(len) => IpNet::new(self.ip, len).unwrap_or(host),
            None => host,
        }
    }
}

/// Characters an IPv4 or IPv6 address is written with.
fn is_address_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b'.' || b == b':'
}

/// Every IP address in `text`. An address must stand on its own: `110.0.0.2`
/// holds no `10.0.0.2`, and `version 1.2.3.4x` holds no address. The escapes
/// `\n`, `\r`, `\t` of a Nix string separate words like the characters they
/// stand for.
pub fn tokens(text: &str) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_address_char(bytes[i]) || (i > 0 && is_address_char(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < bytes.len() && is_address_char(bytes[end]) {
            end += 1;
        }
        let start = i;
        i = end;
        if !boundary_before(bytes, start) {
            continue;
        }
        if let Some(token) = read_token(text, start, end) {
            out.push(token);
        }
    }
    out
}

fn boundary_before(bytes: &[u8], start: usize) -> bool {
    let Some(&prev) = start.checked_sub(1).and_then(|p| bytes.get(p)) else {
        return true;
    };
    let escape = matches!(prev, b'n' | b'r' | b't') && start >= 2 && bytes[start - 2] == b'\\';
    escape || !(prev.is_ascii_alphanumeric() || prev == b'_' || prev == b'-')
}

/// The address in the run `text[start..end]` of address characters, with
/// what follows it (`/NN`, `:PORT`, `]`) and what precedes it (`://`).
fn read_token(text: &str, start: usize, end: usize) -> Option<Token> {
    let run = &text[start..end];
    let (ip, ip_end, mut port) = parse_run(run)?;
    let ip_end = start + ip_end;
    let bytes = text.as_bytes();
    let bracketed = start > 0 && bytes[start - 1] == b'[' && bytes.get(ip_end) == Some(&b']');
    let mut after = if bracketed { ip_end + 1 } else { ip_end };
    if port.is_none() && ip_end == end {
        if bracketed || ip.is_ipv4() {
            if let Some((p, next)) = number_after(text, after, b':') {
                port = u16::try_from(p).ok();
                after = next;
            }
        }
    } else if port.is_some() {
        after = end;
    }
    let mut prefix = None;
    if port.is_none() && !bracketed {
        if let Some((len, next)) = number_after(text, after, b'/') {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if len > max {
                return None;
            }
            prefix = u8::try_from(len).ok();
            after = next;
        }
    }
    if bytes
        .get(after)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        return None;
    }
    let host_start = if bracketed { start - 1 } else { start };
    let word_start = text[..host_start]
        .rfind(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .map_or(0, |p| p + 1);
    let url = text[word_start..host_start].contains("://");
    Some(Token {
        range: start..ip_end,
        ip,
        prefix,
        port,
        url,
    })
}

/// The address at the start of `run`: its end within the run, and a port
/// when the run is `A.B.C.D:PORT`. Trailing `.` and `:` (the end of a
/// sentence, `ADDR:` as a label) are not part of it.
fn parse_run(run: &str) -> Option<(IpAddr, usize, Option<u16>)> {
    if let Some((host, port)) = run.rsplit_once(':') {
        if let (Ok(ip), Ok(port)) = (host.parse::<std::net::Ipv4Addr>(), port.parse::<u16>()) {
            return Some((IpAddr::V4(ip), host.len(), Some(port)));
        }
    }
    let mut end = run.len();
    loop {
        let candidate = &run[..end];
        if candidate.contains('.') || candidate.matches(':').count() >= 2 {
            if let Ok(ip) = candidate.parse::<IpAddr>() {
                return Some((ip, end, None));
            }
        }
        let trimmed = candidate.trim_end_matches(['.', ':']);
        if trimmed.len() == end || trimmed.is_empty() {
            return None;
        }
        // `2001:db8::` is an address; drop one character at a time.
        end -= 1;
    }
}

/// `SEP DIGITS` at `at`: the number and the offset after it.
fn number_after(text: &str, at: usize, sep: u8) -> Option<(u32, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(at) != Some(&sep) {
        return None;
    }
    let digits = bytes[at + 1..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 5 {
        return None;
    }
    let end = at + 1 + digits;
    text[at + 1..end].parse().ok().map(|n| (n, end))
}

/// Where a string sits in the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// The whole value of the binding at the option path.
    Value,
    /// An item of the list that is the binding's value.
    ListItem,
    /// Somewhere deeper (a set inside a list, a function argument, an
    /// attribute name), or outside any binding (a `let`).
    Nested,
}

/// What the text is, by the option that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Under `networking.firewall` or `networking.nftables`.
    Firewall,
    /// `services.postgresql.authentication`: pg_hba lines.
    PgHba,
    Other,
}

/// A string outside the cluster options that holds an address.
#[derive(Clone, Debug)]
pub struct Literal {
    pub file: PathBuf,
    /// The members whose configuration includes the file (it is their host
    /// file, or imported from it by a relative path). Empty for a file no
    /// member imports (a module `flake.nix` adds, say).
    pub hosts: Vec<String>,
    /// The option path of the binding that holds it, when there is one.
    pub option: Option<AttrPath>,
    pub placement: Placement,
    pub kind: Kind,
    /// The string node's byte range, and its line and column.
    pub span: Range<usize>,
    pub line: usize,
    pub column: usize,
    /// The string's source text, quotes included.
    pub text: String,
    /// The binding's value (wrappers peeled): the string itself, or the list
    /// holding it.
    pub value_span: Option<Range<usize>>,
    /// No interpolation: the string is a literal nixflip can read and write.
    pub plain: bool,
    /// The string's value (escapes decoded, an indented string's common
    /// indentation removed) when it is plain.
    pub value: Option<String>,
    /// `''…''` rather than `"…"`.
    pub indented: bool,
    /// The addresses in it, with byte ranges in the file.
    pub tokens: Vec<Token>,
}

impl Literal {
    /// The members an address of this literal names (by equal address).
    pub fn named<'c>(&self, cluster: &'c Cluster) -> Vec<&'c str> {
        let mut out: Vec<&str> = cluster
            .members
            .iter()
            .filter(|m| {
                m.ip()
                    .is_some_and(|ip| self.tokens.iter().any(|t| t.ip == ip))
            })
            .map(|m| m.name.as_str())
            .collect();
        out.dedup();
        out
    }

    /// The line of the string's text (split at newlines and at `\n`
    /// escapes) that holds the file offset `at`, as a byte range in the file.
    pub fn line_around(&self, at: usize) -> Range<usize> {
        let lines = line_ranges(&self.text, self.indented);
        let rel = at.saturating_sub(self.span.start);
        lines
            .into_iter()
            .find(|r| r.start <= rel && rel <= r.end)
            .map_or(self.span.clone(), |r| {
                self.span.start + r.start..self.span.start + r.end
            })
    }

    /// The file offsets of the tokens on the line around `at`.
    pub fn tokens_on_line(&self, at: usize) -> Vec<&Token> {
        let line = self.line_around(at);
        self.tokens
            .iter()
            .filter(|t| line.start <= t.range.start && t.range.end <= line.end)
            .collect()
    }

    pub fn place(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// A member's address written outside the cluster options (for `status`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Mention {
    /// The member whose address it is, and the address.
    pub member: String,
    pub address: String,
    /// The members whose configuration holds the file.
    pub hosts: Vec<String>,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub option: Option<String>,
    /// The string's source text.
    pub text: String,
}

/// Every member's address in the literals, per member (in member order),
/// then by file and line.
pub fn mentions(cluster: &Cluster, literals: &[Literal]) -> Vec<Mention> {
    let mut out = Vec::new();
    for m in &cluster.members {
        let Some(ip) = m.ip() else { continue };
        for literal in literals
            .iter()
            .filter(|l| l.tokens.iter().any(|t| t.ip == ip))
        {
            let first = literal.tokens.iter().find(|t| t.ip == ip);
            let (line, column) = first.map_or((literal.line, literal.column), |t| {
                position_in(cluster, &literal.file, t.range.start)
            });
            out.push(Mention {
                member: m.name.clone(),
                address: m.address.clone().unwrap_or_default(),
                hosts: literal.hosts.clone(),
                file: literal.file.clone(),
                line,
                column,
                option: literal.option.as_ref().map(ToString::to_string),
                text: literal.text.clone(),
            });
        }
    }
    out
}

/// Byte ranges of the lines of a string's source text (quotes included in
/// the text, excluded from the ranges): split at newlines, and in a
/// double-quoted string also at the `\n` escape.
pub fn line_ranges(text: &str, indented: bool) -> Vec<Range<usize>> {
    let open = if indented { 2 } else { 1 };
    let close = text.len().saturating_sub(open).max(open);
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = open;
    let mut i = open;
    while i < close {
        match bytes[i] {
            b'\n' => {
                out.push(start..i);
                start = i + 1;
                i += 1;
            }
            b'\\' if !indented => {
                if bytes.get(i + 1) == Some(&b'n') {
                    out.push(start..i);
                    start = i + 2;
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    out.push(start..close.max(start));
    out
}

/// The members (by name) whose configuration includes each file: the files
/// reachable from their host file through relative imports.
fn file_hosts(cluster: &Cluster) -> HashMap<PathBuf, Vec<String>> {
    let mut out: HashMap<PathBuf, Vec<String>> = HashMap::new();
    for m in &cluster.members {
        let mut files: BTreeSet<PathBuf> = cluster.sources.closure(&m.file);
        files.extend(m.files.iter().cloned());
        for f in files {
            out.entry(f).or_default().push(m.name.clone());
        }
    }
    out
}

/// Whether an address is worth a look: it is (or holds) a member's address,
/// or it is an address some host could be (not loopback or unspecified),
/// which a PostgreSQL rule may admit (NF107).
fn interesting(token: &Token, members: &[IpAddr]) -> bool {
    let net = token.network();
    members.iter().any(|ip| net.contains(ip))
        || !(token.ip.is_loopback() || token.ip.is_unspecified())
}

/// Scan every file of the flake for strings outside the cluster options
/// that hold an address.
pub fn scan(cluster: &Cluster) -> Vec<Literal> {
    let members: Vec<IpAddr> = cluster.members.iter().filter_map(|m| m.ip()).collect();
    let option = cluster.option.keys();
    // Files that name the option are parsed already; any other file is
    // parsed only when its text holds an address worth a look (an address
    // in a string is in the text as written).
    let parsed: HashSet<&Path> = cluster
        .sources
        .mentioning()
        .map(|(rel, _)| rel.as_path())
        .collect();
    let mut out = Vec::new();
    for (rel, text) in cluster.sources.texts() {
        if !parsed.contains(rel.as_path()) && !tokens(text).iter().any(|t| interesting(t, &members))
        {
            continue;
        }
        let Some(file) = cluster.sources.get(rel) else {
            continue;
        };
        // The cluster options' own bindings are skipped whole.
        let cluster_bindings: HashSet<(usize, usize)> = file
            .walk_under(option)
            .bindings
            .iter()
            .filter(|b| b.path.starts_with(option))
            .map(|b| {
                let r = range(&b.node);
                (r.start, r.end)
            })
            .collect();
        let mut walk = file.root().preorder();
        while let Some(event) = walk.next() {
            let rnix::WalkEvent::Enter(node) = event else {
                continue;
            };
            let span = range(&node);
            if cluster_bindings.contains(&(span.start, span.end))
                && node.kind() == SyntaxKind::NODE_ATTRPATH_VALUE
            {
                walk.skip_subtree();
                continue;
            }
            if node.kind() != SyntaxKind::NODE_STRING {
                continue;
            }
            if let Some(literal) = read_literal(file, rel, &node, &members) {
                out.push(literal);
            }
        }
    }
    if !out.is_empty() {
        let hosts_of = file_hosts(cluster);
        for literal in &mut out {
            literal.hosts = hosts_of.get(&literal.file).cloned().unwrap_or_default();
        }
    }
    out
}

/// The string `node` of `file` as a [`Literal`] (its hosts not yet known),
/// when it holds an address worth a look.
fn read_literal(
    file: &crate::nixedit::NixFile,
    rel: &Path,
    node: &SyntaxNode,
    members: &[IpAddr],
) -> Option<Literal> {
    let mut found = Vec::new();
    let mut plain = true;
    for element in node.children_with_tokens() {
        match element {
            rnix::NodeOrToken::Token(t) if t.kind() == SyntaxKind::TOKEN_STRING_CONTENT => {
                // Every address is written with '.' (IPv4) or ':' (IPv6).
                if !t.text().contains(['.', ':']) {
                    continue;
                }
                let offset = usize::from(t.text_range().start());
                found.extend(tokens(t.text()).into_iter().map(|mut tok| {
                    tok.range = tok.range.start + offset..tok.range.end + offset;
                    tok
                }));
            }
            rnix::NodeOrToken::Node(n) if n.kind() == SyntaxKind::NODE_INTERPOL => {
                plain = false;
            }
            _ => {}
        }
    }
    if !found.iter().any(|t| interesting(t, members)) {
        return None;
    }
    let span = range(node);
    let (option, placement, value_span) = context(file, node);
    let kind = option.as_ref().map_or(Kind::Other, kind_of);
    let (line, column) = file.position(span.start);
    let text = node.text().to_string();
    Some(Literal {
        file: rel.to_path_buf(),
        hosts: Vec::new(),
        option,
        placement,
        kind,
        line,
        column,
        indented: text.starts_with("''"),
        text,
        span,
        value_span,
        plain,
        value: plain.then(|| decode(node)).flatten(),
        tokens: found,
    })
}

/// The value of a string without interpolation (either quoting): escapes
/// decoded, an indented string's common indentation removed, as rnix's typed
/// `Str` reads it (reached through a parse of the string's own text, which
/// is a whole expression).
pub fn decode(string: &SyntaxNode) -> Option<String> {
    use rnix::ast::{Expr, InterpolPart};
    let parsed = rnix::Root::parse(&string.text().to_string());
    let Some(Expr::Str(s)) = parsed.tree().expr() else {
        return None;
    };
    let mut out = String::new();
    for part in s.normalized_parts() {
        match part {
            InterpolPart::Literal(text) => out.push_str(&text),
            InterpolPart::Interpolation(_) => return None,
        }
    }
    Some(out)
}

fn kind_of(path: &AttrPath) -> Kind {
    let keys = path.keys();
    let firewall = ["networking", "firewall"];
    let nftables = ["networking", "nftables"];
    if keys.starts_with(&firewall.map(String::from))
        || keys.starts_with(&nftables.map(String::from))
    {
        Kind::Firewall
    } else if keys == ["services", "postgresql", "authentication"] {
        Kind::PgHba
    } else {
        Kind::Other
    }
}

/// The binding that holds `string` (the innermost one), and how.
fn context(
    file: &crate::nixedit::NixFile,
    string: &SyntaxNode,
) -> (Option<AttrPath>, Placement, Option<Range<usize>>) {
    let span = range(string);
    let holder = file
        .bindings()
        .iter()
        .filter(|b| !b.declaration)
        .filter(|b| {
            let r = range(&b.node);
            r.start <= span.start && span.end <= r.end
        })
        .min_by_key(|b| {
            let r = range(&b.node);
            r.end - r.start
        });
    let Some(binding) = holder else {
        return (None, Placement::Nested, None);
    };
    let inner = range(&binding.inner);
    let placement = if inner == span {
        Placement::Value
    } else if binding.inner.kind() == SyntaxKind::NODE_LIST
        && string.parent().is_some_and(|p| range(&p) == inner)
    {
        Placement::ListItem
    } else {
        Placement::Nested
    };
    let value_span = (placement != Placement::Nested).then_some(inner);
    (
        Some(AttrPath::new(binding.path.clone())),
        placement,
        value_span,
    )
}

fn range(node: &SyntaxNode) -> Range<usize> {
    usize::from(node.text_range().start())..usize::from(node.text_range().end())
}

/// NF102: an endpoint (a URL host or `ADDR:PORT`) whose host is a standby's
/// address, outside that standby's own configuration. Synapse is off on a
/// standby, so a proxy or backend still pointing at the demoted host serves
/// nothing. A host's own address, CIDRs and bare addresses are not findings.
pub fn nf102_endpoints_at_standbys(
    cluster: &Cluster,
    literals: &[Literal],
    out: &mut Vec<Finding>,
) {
    let standbys: Vec<(&str, IpAddr, &str)> = cluster
        .members
        .iter()
        .filter(|m| m.role() == Role::Standby)
        .filter_map(|m| {
            let ip = m.ip()?;
            Some((
                m.name.as_str(),
                ip,
                m.address.as_deref().unwrap_or_default(),
            ))
        })
        .collect();
    for literal in literals {
        for token in literal.tokens.iter().filter(|t| t.is_endpoint()) {
            for &(standby, ip, address) in &standbys {
                if token.ip != ip || literal.hosts.iter().any(|h| h == standby) {
                    continue;
                }
                let (line, column) = position_in(cluster, &literal.file, token.range.start);
                out.push(Finding {
                    id: "NF102",
                    severity: Severity::Warning,
                    host: literal.hosts.first().cloned(),
                    file: literal.file.clone(),
                    line,
                    column,
                    span: Some((token.range.start, token.range.end)),
                    message: format!("this endpoint points at {address}, the standby {standby}: Synapse is off there, so it serves nothing"),
                    help: "point it at the primary's address, or at a name that follows the primary (DNS)".into(),
                });
            }
        }
    }
}

/// How a string refers to an address (for [`address_uses`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    /// The host of a URL or of an `ADDR:PORT` endpoint.
    Endpoint,
    /// The whole string is the address (a `peerHost`, say).
    Exact,
    /// The whole string is a network of it (`ADDR/32` in `allowedSourceIPs`).
    Network,
}

/// A string of the flake that refers to an address.
#[derive(Clone, Debug)]
pub struct AddressUse {
    pub file: PathBuf,
    /// The address's byte range in the file.
    pub span: Range<usize>,
    pub line: usize,
    pub column: usize,
    pub kind: Reference,
}

/// Every string of the cluster's files (except those in `skip`), cluster
/// options included, that refers to `address` as an endpoint, as its whole
/// value, or as its network. Addresses compare as IP addresses, so any
/// spelling of an IPv6 address counts.
pub fn address_uses(cluster: &Cluster, address: &str, skip: &[PathBuf]) -> Vec<AddressUse> {
    let Ok(ip) = address.parse::<IpAddr>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (rel, text) in cluster.sources.texts() {
        if skip.contains(rel) || !tokens(text).iter().any(|t| t.ip == ip) {
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
            let span = range(&string);
            let whole = decode(&string).and_then(|value| {
                let is_ip = |s: &str| s.parse::<IpAddr>().is_ok_and(|a| a == ip);
                if is_ip(&value) {
                    return Some(Reference::Exact);
                }
                let (addr, len) = value.split_once('/')?;
                (is_ip(addr) && len.parse::<u8>().is_ok()).then_some(Reference::Network)
            });
            let source = &text[span.clone()];
            let found = tokens(source)
                .into_iter()
                .find(|t| t.ip == ip && (whole.is_some() || t.is_endpoint()));
            if let Some(token) = found {
                let start = span.start + token.range.start;
                let (line, column) = crate::nixedit::line_col(text, start);
                out.push(AddressUse {
                    file: rel.clone(),
                    span: start..span.start + token.range.end,
                    line,
                    column,
                    kind: whole.unwrap_or(Reference::Endpoint),
                });
            }
        }
    }
    out
}

/// 1-based line and column of a byte offset in a file of the cluster.
pub fn position_in(cluster: &Cluster, file: &Path, offset: usize) -> (usize, usize) {
    cluster
        .sources
        .text(file)
        .map_or((1, 1), |text| crate::nixedit::line_col(text, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Option<(String, Option<u8>, Option<u16>, bool)> {
        let found = tokens(text);
        assert!(found.len() <= 1, "{text}: {found:?}");
        found
            .first()
            .map(|t| (t.ip.to_string(), t.prefix, t.port, t.url))
    }

    #[test]
    fn urls_endpoints_cidrs_and_bare_addresses_are_read() {
        assert_eq!(
            one("http://10.0.0.2:8008/_matrix"),
            Some(("10.0.0.2".into(), None, Some(8008), true))
        );
        assert_eq!(
            one("https://10.0.0.2"),
            Some(("10.0.0.2".into(), None, None, true))
        );
        assert_eq!(
            one("upstream 10.0.0.2:5432;"),
            Some(("10.0.0.2".into(), None, Some(5432), false))
        );
        assert_eq!(
            one("http://[2001:db8::2]:8008"),
            Some(("2001:db8::2".into(), None, Some(8008), true))
        );
        assert_eq!(
            one("ip6 saddr 2001:db8::20/128 accept"),
            Some(("2001:db8::20".into(), Some(128), None, false))
        );
        assert_eq!(
            one("ip saddr 91.198.166.181/32 tcp dport 5432 accept"),
            Some(("91.198.166.181".into(), Some(32), None, false))
        );
        assert_eq!(
            one("postgresql://replicator@10.0.0.2:5432/db"),
            Some(("10.0.0.2".into(), None, Some(5432), true))
        );
        assert_eq!(
            one("10.0.0.2 db.internal"),
            Some(("10.0.0.2".into(), None, None, false))
        );
        assert_eq!(
            one("the peer is 10.0.0.2."),
            Some(("10.0.0.2".into(), None, None, false))
        );
        assert_eq!(
            one("2001:db8::/32"),
            Some(("2001:db8::".into(), Some(32), None, false))
        );
    }

    #[test]
    fn an_address_must_stand_on_its_own() {
        assert_eq!(one("http://110.0.0.2x:80"), None);
        assert_eq!(one("v1.2.3.4a"), None);
        assert_eq!(one("10.0.0.2/33"), None);
        assert_eq!(one("cafe:beef"), None);
        assert_eq!(one("version 1.2.3"), None);
        // An escaped newline separates words.
        assert_eq!(
            one(r"accept\n10.0.0.2/32"),
            Some(("10.0.0.2".into(), Some(32), None, false))
        );
        let two = tokens("-s 10.0.0.2 -d 10.0.0.22");
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].ip.to_string(), "10.0.0.22");
    }

    #[test]
    fn lines_split_at_newlines_and_escapes() {
        let text = "\"a\\nb\nc\"";
        let lines: Vec<&str> = line_ranges(text, false)
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(lines, ["a", "b", "c"]);
        let text = "''\n  x\n  y\n''";
        let lines: Vec<&str> = line_ranges(text, true)
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(lines, ["", "  x", "  y", ""]);
    }
}
