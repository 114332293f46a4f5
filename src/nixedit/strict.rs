//! Nix's own rules where rnix's grammar is looser: what `nix-instantiate
//! --parse` rejects although rnix parses it without an error.
//!
//! Must never pass a tree Nix rejects for a reason listed here; it walks
//! without recursion (a tree may be thousands of levels deep). The rules, as
//! Nix 2.8's lexer and parser (`lexer.l`, `parser.y`) apply them:
//!
//! - an attribute defined twice in one set, `let` or merged set (`addAttr`:
//!   `a = 1; a = 2;`, `a = x; a.c = 2;`, `inherit a; a = 1;`; while
//!   `a.b = 1; a.c = 2;` and `a = { b = 1; }; a.c = 2;` merge);
//! - a formal argument listed twice (`{ a, a }:`, `a@{ a }:`);
//! - a function where Nix's grammar has no room for one without parentheses:
//!   a list item, an argument, an operand (`[ x: 1 ]`, `f x: 1`);
//! - an integer outside 64 bits, a float `strtod` reports out of range;
//! - a dynamic attribute in `let` or `inherit`;
//! - the pipe operators `|>` and `<|`, which this Nix does not have.

use std::borrow::Cow;
use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::ops::Range;

use rnix::{NodeOrToken, SyntaxKind, SyntaxNode};
use rowan::GreenNodeData;

use super::syntax;

/// One rule broken, in Nix's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What Nix says, e.g. "attribute 'a' already defined".
    pub message: String,
    /// Where (byte range).
    pub at: Range<usize>,
    /// The earlier definition, for a duplicate.
    pub first: Option<Range<usize>>,
    /// What to do about it.
    pub help: String,
}

/// The first violation (in text order) anywhere under `root`.
///
/// It walks rowan's green tree (no allocation per node or token, which is
/// what makes a red-tree walk of a large file slow) and looks at a node's
/// red form only where a rule needs more: an attribute set whose entries
/// share a first key, a misplaced function.
pub fn check(root: &SyntaxNode) -> Option<Violation> {
    let base = GNode::of(root);
    // A large file is checked on two threads: the rules look at one node
    // and its children at a time (a set's duplicates at its own entries and
    // what merges into them), so subtrees are independent.
    let mut frontier = vec![(base, SyntaxKind::NODE_ROOT)];
    // The sets met while splitting are analysed with the halves.
    let mut findings = Scan {
        defer: true,
        ..Scan::default()
    };
    if usize::from(root.text_range().len()) >= PARALLEL_MIN {
        let mut keys = Vec::new();
        for _ in 0..SPLIT_LEVELS {
            if frontier.len() >= SPLIT_PIECES {
                break;
            }
            let mut next = Vec::new();
            for (node, parent) in frontier {
                visit(node, parent, &mut keys, &mut findings, |n, k| {
                    next.push((n, k))
                });
            }
            frontier = next;
        }
    }
    let pieces = if frontier.len() >= 2 {
        // Two halves of about the same size.
        let total: usize = frontier.iter().map(|(n, _)| n.range().len()).sum();
        let mut size = 0;
        let cut = frontier
            .iter()
            .position(|(n, _)| {
                size += n.range().len();
                size * 2 >= total
            })
            .map_or(frontier.len() / 2, |i| i + 1)
            .min(frontier.len() - 1);
        let second = frontier.split_off(cut);
        let sets = std::mem::take(&mut findings.sets);
        std::thread::scope(|scope| {
            let other = std::thread::Builder::new()
                .name("nixflip-strict".into())
                .spawn_scoped(scope, || scan(second.clone(), &sets));
            let mine = scan(frontier, &[]);
            let theirs = match other {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|_| scan(second.clone(), &sets)),
                Err(_) => scan(second.clone(), &sets),
            };
            vec![mine, theirs]
        })
    } else {
        let sets = std::mem::take(&mut findings.sets);
        vec![scan(frontier, &sets)]
    };
    for piece in pieces {
        findings.found.add(piece.found.first);
        findings.red.extend(piece.red);
    }
    // The rules that read the red tree, where the green one said to look.
    for (offset, len, kind) in findings.red {
        let Some(node) = red_at(root, offset, len, kind) else {
            continue;
        };
        findings.found.add(match kind {
            SyntaxKind::NODE_LAMBDA => misplaced_lambda(&node),
            SyntaxKind::NODE_PATTERN => duplicate_formal(&node),
            SyntaxKind::NODE_INHERIT => dynamic_inherit(&node),
            _ => dynamic_let_in(&node),
        });
    }
    findings.found.first
}

/// From this size on, [`check`] uses a second thread.
const PARALLEL_MIN: usize = 1 << 20;
/// How finely it splits the tree, at most how many levels down.
const SPLIT_PIECES: usize = 64;
const SPLIT_LEVELS: usize = 8;

/// What a part of the tree gave: violations found on the green tree, and
/// nodes a rule must look at in red (offset, length, kind).
#[derive(Default)]
struct Scan<'g> {
    found: Found,
    red: Vec<(usize, usize, SyntaxKind)>,
    /// Collect sets whose entries share a first key instead of analysing
    /// them at once.
    defer: bool,
    sets: Vec<GNode<'g>>,
}

/// Check the subtrees in `work` (each with its parent's kind), and the
/// duplicates of the sets in `sets`.
fn scan<'g>(mut work: Vec<(GNode<'g>, SyntaxKind)>, sets: &[GNode<'g>]) -> Scan<'g> {
    let mut out = Scan::default();
    for &set in sets {
        out.found.add(duplicates_focused(set, &Edits::none(), &[]));
    }
    let mut keys = Vec::new();
    while let Some((node, parent)) = work.pop() {
        visit(node, parent, &mut keys, &mut out, |n, k| work.push((n, k)));
    }
    out
}

/// The rules of one node and its tokens; its child nodes go to `push`.
fn visit<'g>(
    g: GNode<'g>,
    parent: SyntaxKind,
    keys: &mut Vec<Cow<'g, str>>,
    out: &mut Scan<'g>,
    mut push: impl FnMut(GNode<'g>, SyntaxKind),
) {
    let (node, offset) = (g.node, g.offset);
    let kind = kind_of(node.kind());
    let len = usize::from(node.text_len());
    match kind {
        SyntaxKind::NODE_LAMBDA if !lambda_allowed_in(parent) => out.red.push((offset, len, kind)),
        SyntaxKind::NODE_PATTERN if has_repeated_formal(node) => out.red.push((offset, len, kind)),
        SyntaxKind::NODE_INHERIT
            if node.children().filter_map(|c| c.into_node()).any(|c| {
                kind_of(c.kind()) != SyntaxKind::NODE_INHERIT_FROM && green_key(c).is_none()
            }) =>
        {
            out.red.push((offset, len, kind))
        }
        SyntaxKind::NODE_ATTR_SET | SyntaxKind::NODE_LET_IN | SyntaxKind::NODE_LEGACY_LET => {
            let dynamic_let = kind == SyntaxKind::NODE_LET_IN
                && entries(node).any(|e| {
                    kind_of(e.kind()) == SyntaxKind::NODE_ATTRPATH_VALUE
                        && first_attr(e).is_some_and(|a| green_key(a).is_none())
                });
            if dynamic_let {
                out.red.push((offset, len, kind));
            }
            if first_keys_repeat(node, keys) {
                if out.defer {
                    out.sets.push(g);
                } else {
                    out.found.add(duplicates_focused(g, &Edits::none(), &[]));
                }
            }
        }
        _ => {}
    }
    let mut at = offset;
    for child in node.children() {
        let len = usize::from(child.text_len());
        match child {
            NodeOrToken::Node(n) => push(
                GNode {
                    node: n,
                    offset: at,
                },
                kind,
            ),
            NodeOrToken::Token(t) => out.found.add(check_token(kind_of(t.kind()), t.text(), at)),
        }
        at += len;
    }
}

fn kind_of(raw: rowan::SyntaxKind) -> SyntaxKind {
    <rnix::NixLanguage as rowan::Language>::kind_from_raw(raw)
}

/// Where rnix's grammar puts a function and Nix's does too.
fn lambda_allowed_in(parent: SyntaxKind) -> bool {
    matches!(
        parent,
        SyntaxKind::NODE_ROOT
            | SyntaxKind::NODE_PAREN
            | SyntaxKind::NODE_LAMBDA
            | SyntaxKind::NODE_LET_IN
            | SyntaxKind::NODE_WITH
            | SyntaxKind::NODE_ASSERT
            | SyntaxKind::NODE_IF_ELSE
            | SyntaxKind::NODE_ATTRPATH_VALUE
            | SyntaxKind::NODE_INTERPOL
            | SyntaxKind::NODE_PAT_ENTRY
            | SyntaxKind::NODE_INHERIT_FROM
            | SyntaxKind::NODE_DYNAMIC
            | SyntaxKind::NODE_ERROR
    )
}

/// The red node for the green `node` at `offset` (found from the root:
/// only done where a rule needs it).
fn red_at(root: &SyntaxNode, offset: usize, len: usize, kind: SyntaxKind) -> Option<SyntaxNode> {
    let start = rnix::TextSize::try_from(offset).ok()?;
    let range = rnix::TextRange::at(start, rnix::TextSize::try_from(len).ok()?);
    let mut red = match root.covering_element(range) {
        NodeOrToken::Node(n) => n,
        NodeOrToken::Token(t) => t.parent()?,
    };
    // The covering element is the deepest one with this range: climb to
    // the node of the right kind.
    while red.kind() != kind || red.text_range() != range {
        red = red.parent()?;
    }
    Some(red)
}

fn entries(binds: &GreenNodeData) -> impl Iterator<Item = &GreenNodeData> {
    binds.children().filter_map(|c| c.into_node()).filter(|n| {
        matches!(
            kind_of(n.kind()),
            SyntaxKind::NODE_ATTRPATH_VALUE | SyntaxKind::NODE_INHERIT
        )
    })
}

fn first_attr(binding: &GreenNodeData) -> Option<&GreenNodeData> {
    binding
        .children()
        .filter_map(|c| c.into_node())
        .find(|n| kind_of(n.kind()) == SyntaxKind::NODE_ATTRPATH)?
        .children()
        .find_map(|c| c.into_node())
}

/// Whether two entries of a set or `let` start with the same key (only then
/// can one of them be a duplicate).
fn first_keys_repeat<'g>(binds: &'g GreenNodeData, keys: &mut Vec<Cow<'g, str>>) -> bool {
    keys.clear();
    for entry in entries(binds) {
        if kind_of(entry.kind()) == SyntaxKind::NODE_INHERIT {
            keys.extend(
                entry
                    .children()
                    .filter_map(|c| c.into_node())
                    .filter(|n| kind_of(n.kind()) != SyntaxKind::NODE_INHERIT_FROM)
                    .filter_map(green_key),
            );
        } else if let Some(key) = first_attr(entry).and_then(green_key) {
            keys.push(key);
        }
    }
    // Sorting beats hashing for the few keys most sets have.
    keys.sort_unstable();
    keys.windows(2).any(|pair| pair[0] == pair[1])
}

fn has_repeated_formal(pattern: &GreenNodeData) -> bool {
    let mut seen: Vec<&str> = Vec::new();
    for entry in pattern.children().filter_map(|c| c.into_node()) {
        if !matches!(
            kind_of(entry.kind()),
            SyntaxKind::NODE_PAT_ENTRY | SyntaxKind::NODE_PAT_BIND
        ) {
            continue;
        }
        let name = entry
            .children()
            .filter_map(|c| c.into_node())
            .find(|n| kind_of(n.kind()) == SyntaxKind::NODE_IDENT)
            .and_then(|ident| ident.children().find_map(|c| c.into_token()))
            .map(|t| t.text());
        if let Some(name) = name {
            if seen.contains(&name) {
                return true;
            }
            seen.push(name);
        }
    }
    false
}

/// [`syntax::attr_key`] on the green tree.
fn green_key(attr: &GreenNodeData) -> Option<Cow<'_, str>> {
    match kind_of(attr.kind()) {
        SyntaxKind::NODE_IDENT => attr
            .children()
            .find_map(|c| c.into_token())
            .map(|t| Cow::Borrowed(t.text())),
        SyntaxKind::NODE_STRING => green_static_string(attr),
        SyntaxKind::NODE_DYNAMIC => {
            let mut inner = attr.children().find_map(|c| c.into_node())?;
            while kind_of(inner.kind()) == SyntaxKind::NODE_PAREN {
                inner = inner.children().find_map(|c| c.into_node())?;
            }
            green_static_string(inner)
        }
        _ => None,
    }
}

fn green_static_string(node: &GreenNodeData) -> Option<Cow<'_, str>> {
    if kind_of(node.kind()) != SyntaxKind::NODE_STRING {
        return None;
    }
    let mut indented = false;
    let mut content: Option<&str> = None;
    for child in node.children() {
        let NodeOrToken::Token(t) = child else {
            return None; // an interpolation
        };
        match kind_of(t.kind()) {
            SyntaxKind::TOKEN_STRING_START => indented = t.text() == "''",
            SyntaxKind::TOKEN_STRING_CONTENT => content = Some(t.text()),
            _ => {}
        }
    }
    let raw = content.unwrap_or("");
    let plain = !indented && !raw.contains(['\\', '\r']);
    Some(if plain {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(syntax::string_value(raw, indented))
    })
}

/// The earliest violation seen so far.
#[derive(Default)]
struct Found {
    first: Option<Violation>,
}

impl Found {
    fn add(&mut self, v: Option<Violation>) {
        if let Some(v) = v {
            if self.first.as_ref().is_none_or(|f| v.at.start < f.at.start) {
                self.first = Some(v);
            }
        }
    }
}

fn range(element: &impl HasRange) -> Range<usize> {
    element.byte_range()
}

trait HasRange {
    fn byte_range(&self) -> Range<usize>;
}

impl HasRange for SyntaxNode {
    fn byte_range(&self) -> Range<usize> {
        let r = self.text_range();
        usize::from(r.start())..usize::from(r.end())
    }
}

fn check_token(kind: SyntaxKind, text: &str, offset: usize) -> Option<Violation> {
    let at = offset..offset + text.len();
    match kind {
        SyntaxKind::TOKEN_INTEGER if parse_integer(text).is_none() => Some(Violation {
            message: format!("invalid integer '{text}'"),
            at,
            first: None,
            help: format!("Nix integers are 64-bit: from {} to {}", i64::MIN, i64::MAX),
        }),
        SyntaxKind::TOKEN_FLOAT if parse_float(text).is_none() => Some(Violation {
            message: format!("invalid float '{text}'"),
            at,
            first: None,
            help: "Nix reads floats with C's strtod: a value too large for a double, or too \
                   small to be a normal one, is an error"
                .into(),
        }),
        SyntaxKind::TOKEN_PIPE_LEFT | SyntaxKind::TOKEN_PIPE_RIGHT => Some(Violation {
            message: "syntax error, unexpected '|'".into(),
            at,
            first: None,
            help: "the pipe operators `|>` and `<|` need a newer Nix with the pipe-operators \
                   feature; write the call with parentheses instead"
                .into(),
        }),
        _ => None,
    }
}

/// An integer literal as Nix reads it (`boost::lexical_cast<int64_t>`):
/// digits, leading zeros allowed, within 64 bits.
pub fn parse_integer(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A float literal as Nix reads it (`strtod`, which reports out of range a
/// value that overflows or that underflows below the normal doubles).
pub fn parse_float(text: &str) -> Option<f64> {
    let value: f64 = text.parse().ok()?;
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let nonzero = mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b));
    let underflow = (value == 0.0 && nonzero) || (value != 0.0 && !value.is_normal());
    (value.is_finite() && !underflow).then_some(value)
}

/// rnix parses a function wherever a simple expression may stand; Nix only
/// where a whole expression may (the grammar's `expr_function`).
fn misplaced_lambda(lambda: &SyntaxNode) -> Option<Violation> {
    let parent = lambda.parent()?;
    let allowed = matches!(
        parent.kind(),
        SyntaxKind::NODE_ROOT
            | SyntaxKind::NODE_PAREN
            | SyntaxKind::NODE_LAMBDA
            | SyntaxKind::NODE_LET_IN
            | SyntaxKind::NODE_WITH
            | SyntaxKind::NODE_ASSERT
            | SyntaxKind::NODE_IF_ELSE
            | SyntaxKind::NODE_ATTRPATH_VALUE
            | SyntaxKind::NODE_INTERPOL
            | SyntaxKind::NODE_PAT_ENTRY
            | SyntaxKind::NODE_INHERIT_FROM
            | SyntaxKind::NODE_DYNAMIC
            | SyntaxKind::NODE_ERROR
    );
    if allowed {
        return None;
    }
    let colon = lambda
        .children_with_tokens()
        .find(|t| t.kind() == SyntaxKind::TOKEN_COLON)
        .map(|t| {
            let r = t.text_range();
            usize::from(r.start())..usize::from(r.end())
        })
        .unwrap_or_else(|| range(lambda));
    let place = match parent.kind() {
        SyntaxKind::NODE_LIST => "a list item",
        SyntaxKind::NODE_APPLY => "a function argument",
        _ => "an operand",
    };
    Some(Violation {
        message: "syntax error, unexpected ':'".into(),
        at: colon,
        first: None,
        help: format!("a function as {place} needs parentheses: `(x: …)`"),
    })
}

fn duplicate_formal(pattern: &SyntaxNode) -> Option<Violation> {
    let mut seen: HashMap<String, Range<usize>> = HashMap::new();
    let names = pattern.children().filter_map(|c| match c.kind() {
        SyntaxKind::NODE_PAT_ENTRY | SyntaxKind::NODE_PAT_BIND => c
            .children()
            .find(|n| n.kind() == SyntaxKind::NODE_IDENT)
            .map(|ident| (ident.text().to_string(), range(&ident))),
        _ => None,
    });
    for (name, at) in names {
        if let Some(first) = seen.get(&name) {
            return Some(Violation {
                message: format!("duplicate formal function argument '{name}'"),
                first: Some(first.clone()),
                at,
                help: "each argument of a function's pattern (and its `@` name) must be \
                       different"
                    .into(),
            });
        }
        seen.insert(name, at);
    }
    None
}

fn dynamic_inherit(inherit: &SyntaxNode) -> Option<Violation> {
    let name = inherit
        .children()
        .filter(|c| c.kind() != SyntaxKind::NODE_INHERIT_FROM)
        .find(|c| syntax::attr_key(c).is_none())?;
    Some(Violation {
        message: "dynamic attributes not allowed in inherit".into(),
        at: range(&name),
        first: None,
        help: "inherit names a fixed attribute; write `name = expr;` for a computed one".into(),
    })
}

fn dynamic_let_in(let_in: &SyntaxNode) -> Option<Violation> {
    let binding = let_in
        .children()
        .filter(|c| c.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
        .find(|b| {
            syntax::binding_attrpath(b)
                .and_then(|p| p.children().next())
                .is_some_and(|first| syntax::attr_key(&first).is_none())
        })?;
    Some(Violation {
        message: "dynamic attributes not allowed in let".into(),
        at: range(&binding),
        first: None,
        help: "a `let` binds fixed names; compute the name in an attribute set instead".into(),
    })
}

/// A node of rowan's green tree with its offset in the text: what the
/// duplicate analysis reads (no allocation per node, unlike the red tree).
#[derive(Clone, Copy, Debug)]
pub struct GNode<'g> {
    pub node: &'g GreenNodeData,
    pub offset: usize,
}

impl<'g> GNode<'g> {
    /// The green form of a red node.
    pub fn of(node: &'g SyntaxNode) -> GNode<'g> {
        GNode {
            node: node.green(),
            offset: usize::from(node.text_range().start()),
        }
    }

    fn kind(self) -> SyntaxKind {
        kind_of(self.node.kind())
    }

    fn range(self) -> Range<usize> {
        self.offset..self.offset + usize::from(self.node.text_len())
    }

    /// The same node at the same place (green nodes are shared between
    /// equal subtrees, so the offset tells them apart).
    fn same(self, other: GNode<'_>) -> bool {
        std::ptr::eq(self.node, other.node) && self.offset == other.offset
    }

    fn nodes(self) -> impl Iterator<Item = GNode<'g>> {
        let mut at = self.offset;
        self.node.children().filter_map(move |child| {
            let offset = at;
            at += usize::from(child.text_len());
            child.into_node().map(|node| GNode { node, offset })
        })
    }

    fn text(self) -> String {
        // Depth first without recursion: children pushed back to front pop
        // in order.
        let mut out = String::new();
        let mut stack: Vec<NodeOrToken<&GreenNodeData, &rowan::GreenTokenData>> =
            vec![NodeOrToken::Node(self.node)];
        while let Some(element) = stack.pop() {
            match element {
                NodeOrToken::Token(t) => out.push_str(t.text()),
                NodeOrToken::Node(n) => {
                    let children: Vec<_> = n.children().collect();
                    stack.extend(children.into_iter().rev());
                }
            }
        }
        out
    }

    /// The attrpath of a binding.
    fn attrpath(self) -> Option<GNode<'g>> {
        self.nodes().find(|n| n.kind() == SyntaxKind::NODE_ATTRPATH)
    }

    /// The value of a binding (`… = VALUE;`).
    fn value(self) -> Option<GNode<'g>> {
        self.nodes()
            .filter(|n| n.kind() != SyntaxKind::NODE_ATTRPATH)
            .last()
    }

    fn unparen(mut self) -> GNode<'g> {
        while self.kind() == SyntaxKind::NODE_PAREN {
            match self.nodes().next() {
                Some(inner) => self = inner,
                None => break,
            }
        }
        self
    }
}

/// Changes to read into a tree as if they were made: how the local check of
/// an edit sees the file after it without parsing all of it again.
#[derive(Clone, Debug, Default)]
pub struct Edits<'g> {
    /// A set whose entries are replaced by these (in this order).
    pub entries: Option<(GNode<'g>, Vec<GNode<'g>>)>,
    /// A binding value replaced by another expression.
    pub value: Option<(GNode<'g>, GNode<'g>)>,
}

impl<'g> Edits<'g> {
    pub fn none() -> Edits<'g> {
        Edits::default()
    }

    fn entries_of(&self, set: GNode<'g>) -> Vec<GNode<'g>> {
        match &self.entries {
            Some((at, entries)) if at.same(set) => entries.clone(),
            _ => set
                .nodes()
                .filter(|c| {
                    matches!(
                        c.kind(),
                        SyntaxKind::NODE_ATTRPATH_VALUE | SyntaxKind::NODE_INHERIT
                    )
                })
                .collect(),
        }
    }

    /// The attribute set a binding's value is, if it is one (through
    /// parentheses, as Nix's AST has none).
    fn set_value(&self, binding: GNode<'g>) -> Option<GNode<'g>> {
        let value = binding.value()?;
        let value = match &self.value {
            Some((old, new)) if old.same(value) => *new,
            _ => value,
        };
        let value = value.unparen();
        (value.kind() == SyntaxKind::NODE_ATTR_SET).then_some(value)
    }
}

/// The duplicate attributes of one set or `let` (`binds`), as Nix's
/// `addAttr` finds them; `focus` limits the search to the merged sets on
/// the way to that path and everything under it (what an edit there can
/// change).
pub fn duplicates_focused(
    binds: GNode<'_>,
    edits: &Edits<'_>,
    focus: &[String],
) -> Option<Violation> {
    let defs: Vec<Item> = edits
        .entries_of(binds)
        .into_iter()
        .flat_map(Def::of_entry)
        .map(Item::Def)
        .collect();
    let mut work = vec![(defs, focus.to_vec())];
    let mut found = Found::default();
    while let Some((items, focus)) = work.pop() {
        let (violation, children) = level(&items, edits, focus.first());
        found.add(violation);
        for (key, children) in children {
            let rest = match focus.split_first() {
                Some((first, rest)) if *first == key => rest.to_vec(),
                Some(_) => continue,
                None => Vec::new(),
            };
            work.push((children, rest));
        }
    }
    found.first
}

/// One definition reaching a level of a merged set.
#[derive(Clone, Copy, Debug)]
enum Def<'g> {
    /// A binding `k1.k2… = v;` whose keys before `from` are used up.
    Path { binding: GNode<'g>, from: usize },
    /// `inherit … name;`
    Inherit { name: GNode<'g> },
}

/// What arrives at one level: a definition, or a set literal's attribute
/// merged whole into an existing set (it must not be there already).
#[derive(Clone, Debug)]
enum Item<'g> {
    Def(Def<'g>),
    Bundle(Vec<Def<'g>>),
}

/// What a definition does at its key.
enum Touch<'g> {
    /// A value that is not an attribute set literal (or an inherited name).
    Leaf,
    /// More keys follow: a set, with this definition one level down.
    Descend(Def<'g>),
    /// An attribute set literal: a set, with its entries one level down.
    Set(GNode<'g>),
    /// A dynamic key: a separate set Nix cannot check before evaluation.
    Dynamic,
}

impl<'g> Def<'g> {
    fn of_entry(entry: GNode<'g>) -> Vec<Def<'g>> {
        match entry.kind() {
            SyntaxKind::NODE_INHERIT => entry
                .nodes()
                .filter(|c| c.kind() != SyntaxKind::NODE_INHERIT_FROM)
                .map(|name| Def::Inherit { name })
                .collect(),
            _ => vec![Def::Path {
                binding: entry,
                from: 0,
            }],
        }
    }

    fn attr(self) -> Option<GNode<'g>> {
        match self {
            Def::Path { binding, from } => binding.attrpath()?.nodes().nth(from),
            Def::Inherit { name } => Some(name),
        }
    }

    fn key(self) -> Option<Cow<'g, str>> {
        green_key(self.attr()?.node)
    }

    fn touch(self, edits: &Edits<'g>) -> Touch<'g> {
        match self {
            Def::Inherit { name } if green_key(name.node).is_some() => Touch::Leaf,
            Def::Inherit { .. } => Touch::Dynamic,
            Def::Path { binding, from } => {
                let Some(path) = binding.attrpath() else {
                    return Touch::Dynamic;
                };
                if self.key().is_none() {
                    return Touch::Dynamic;
                }
                if path.nodes().nth(from + 1).is_some() {
                    return Touch::Descend(Def::Path {
                        binding,
                        from: from + 1,
                    });
                }
                match edits.set_value(binding) {
                    Some(set) => Touch::Set(set),
                    None => Touch::Leaf,
                }
            }
        }
    }

    /// The node a diagnostic points at.
    fn node(self) -> GNode<'g> {
        match self {
            Def::Path { binding, .. } => binding,
            Def::Inherit { name } => name,
        }
    }

    /// The attribute path as written, for the message.
    fn written(self) -> String {
        match self {
            Def::Path { binding, .. } => binding.attrpath().map(GNode::text).unwrap_or_default(),
            Def::Inherit { name } => name.text(),
        }
    }
}

/// State of one key of a merged set.
struct Slot<'g> {
    first: Def<'g>,
    /// What the first definition holds below the key, while it is the only
    /// one: no list is built for the many keys only one definition has.
    below: Below<'g>,
    /// Items one level down once a second definition arrives.
    children: Vec<Item<'g>>,
    sources: usize,
}

#[derive(Clone, Copy)]
enum Below<'g> {
    Leaf,
    Descend(Def<'g>),
    Set(GNode<'g>),
}

impl<'g> Slot<'g> {
    fn is_set(&self) -> bool {
        !matches!(self.below, Below::Leaf)
    }

    /// Another definition of a set at this key: the items one level down.
    fn meet(&mut self, more: impl IntoIterator<Item = Item<'g>>, edits: &Edits<'g>) {
        if self.sources == 1 {
            match self.below {
                Below::Descend(d) => self.children.push(Item::Def(d)),
                Below::Set(s) => self.children.extend(set_items(s, edits)),
                Below::Leaf => {}
            }
        }
        self.children.extend(more);
        self.sources += 1;
    }
}

/// Keys to slots: a scan while there are few, a map beyond.
struct Slots<'g> {
    slots: Vec<(Cow<'g, str>, Slot<'g>)>,
    index: FxHashMap<Cow<'g, str>, usize>,
}

impl<'g> Slots<'g> {
    const SCAN: usize = 16;

    fn find(&self, key: &str) -> Option<usize> {
        if self.slots.len() <= Self::SCAN {
            self.slots.iter().position(|(k, _)| k == key)
        } else {
            self.index.get(key).copied()
        }
    }

    fn push(&mut self, key: Cow<'g, str>, slot: Slot<'g>) {
        self.slots.push((key, slot));
        match self.slots.len() {
            n if n == Self::SCAN + 1 => {
                for (i, (k, _)) in self.slots.iter().enumerate() {
                    self.index.insert(k.clone(), i);
                }
            }
            n if n > Self::SCAN + 1 => {
                self.index.insert(self.slots[n - 1].0.clone(), n - 1);
            }
            _ => {}
        }
    }
}

/// One level of a merged set: the first duplicate among `items`, and the
/// keys whose sets need a look one level down (where two or more
/// definitions meet, since one set literal alone was checked on its own,
/// and the focused key).
fn level<'g>(
    items: &[Item<'g>],
    edits: &Edits<'g>,
    only: Option<&String>,
) -> (Option<Violation>, Vec<(String, Vec<Item<'g>>)>) {
    let mut slots = Slots {
        slots: Vec::new(),
        index: FxHashMap::default(),
    };
    let mut found = Found::default();
    for item in items {
        let (defs, bundled) = match item {
            Item::Def(d) => (std::slice::from_ref(d), false),
            Item::Bundle(defs) => (defs.as_slice(), true),
        };
        let Some(key) = defs.first().and_then(|d| d.key()) else {
            continue; // dynamic: its own set
        };
        if only.is_some_and(|k| *k != key) {
            continue;
        }
        if let (Some(i), true) = (slots.find(&key), bundled) {
            // A literal's attribute merged into a set that has it already.
            found.add(Some(duplicate(&key, defs[0], slots.slots[i].1.first)));
            continue;
        }
        for &def in defs {
            let touch = def.touch(edits);
            match (slots.find(&key), touch) {
                (_, Touch::Dynamic) => {}
                (None, touch) => {
                    let below = match touch {
                        Touch::Descend(d) => Below::Descend(d),
                        Touch::Set(s) => Below::Set(s),
                        _ => Below::Leaf,
                    };
                    slots.push(
                        key.clone(),
                        Slot {
                            first: def,
                            below,
                            children: Vec::new(),
                            sources: 1,
                        },
                    );
                }
                (Some(i), touch) => {
                    let slot = &mut slots.slots[i].1;
                    match touch {
                        Touch::Descend(d) if slot.is_set() => slot.meet([Item::Def(d)], edits),
                        // Nix merges a second set literal one level deep:
                        // its attributes must all be new.
                        Touch::Set(s) if slot.is_set() => slot.meet(bundles(s, edits), edits),
                        _ => found.add(Some(duplicate(&def.written(), def, slot.first))),
                    }
                }
            }
        }
    }
    // On a focused path a key defined once still leads down: the merge
    // that matters may sit further along the path (`c = { b = { }; b =
    // { … }; };` focused on `c.b`).
    let deeper = slots
        .slots
        .into_iter()
        .filter_map(|(key, mut slot)| {
            if slot.sources == 1 {
                only?;
                slot.meet([], edits);
            }
            Some((key.into_owned(), slot.children))
        })
        .collect();
    (found.first, deeper)
}

/// The entries of a set literal as items one level down.
fn set_items<'g>(set: GNode<'g>, edits: &Edits<'g>) -> Vec<Item<'g>> {
    edits
        .entries_of(set)
        .into_iter()
        .flat_map(Def::of_entry)
        .map(Item::Def)
        .collect()
}

/// A set literal merged into an existing set: one bundle per attribute it
/// defines (its definitions of that key, in order).
fn bundles<'g>(set: GNode<'g>, edits: &Edits<'g>) -> Vec<Item<'g>> {
    let mut order: Vec<Cow<'g, str>> = Vec::new();
    let mut by_key: FxHashMap<Cow<'g, str>, Vec<Def<'g>>> = FxHashMap::default();
    for def in edits.entries_of(set).into_iter().flat_map(Def::of_entry) {
        let Some(key) = def.key() else { continue };
        if !by_key.contains_key(&key) {
            order.push(key.clone());
        }
        by_key.entry(key).or_default().push(def);
    }
    order
        .into_iter()
        .filter_map(|k| by_key.remove(&k))
        .map(Item::Bundle)
        .collect()
}

fn duplicate(key: &str, second: Def<'_>, first: Def<'_>) -> Violation {
    Violation {
        message: format!("attribute '{key}' already defined"),
        at: second.node().range(),
        first: Some(first.node().range()),
        help: "Nix rejects an attribute set that defines the same attribute twice (nested \
               sets merge, but not a value with a set); keep one definition"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str) -> Option<String> {
        let parsed = rnix::Root::parse(text);
        assert!(parsed.errors().is_empty(), "{text}: {:?}", parsed.errors());
        check(&parsed.syntax()).map(|v| v.message)
    }

    #[test]
    fn duplicates_follow_nix_add_attr() {
        for ok in [
            "{ a.b = 1; a.c = 2; }",
            "{ a = { b = 1; }; a.c = 2; }",
            "{ a = { b = 1; }; a = { c = 2; }; }",
            "{ a.b = 1; a = { c = 2; }; }",
            "{ a = rec { b = 1; }; a.c = 2; }",
            "{ a = ({ b = 1; }); a.c = 2; }",
            "{ a = { b = { x = 1; }; }; a.b.y = 2; }",
            "{ ${x} = 1; ${x} = 2; }",
            "let a.b = 1; a.c = 2; in a",
            "{ a = 1; b = { a = 2; }; }",
        ] {
            assert_eq!(first(ok), None, "{ok}");
        }
        for (bad, key) in [
            ("{ a = 1; a = 2; }", "a"),
            ("{ a = x; a.c = 2; }", "a.c"),
            ("{ a.b = 1; a = { b = 2; }; }", "b"),
            ("{ inherit a; a = 1; }", "a"),
            ("{ a = 1; inherit a; }", "a"),
            ("{ \"a\" = 1; a = 2; }", "a"),
            ("{ ${\"a\"} = 1; a = 2; }", "a"),
            ("let a = 1; a = 2; in a", "a"),
            ("{ a = { b = { x = 1; }; }; a = { b = { y = 2; }; }; }", "b"),
            ("{ a.b.c = 1; a.b.c = 2; }", "a.b.c"),
            ("let { a = 1; a = 2; }", "a"),
            ("[ { a = 1; a = 2; } ]", "a"),
        ] {
            assert_eq!(
                first(bad),
                Some(format!("attribute '{key}' already defined")),
                "{bad}"
            );
        }
    }

    #[test]
    fn formals_lambdas_numbers_and_dynamic_names() {
        assert_eq!(
            first("{ a, a }: 1").as_deref(),
            Some("duplicate formal function argument 'a'")
        );
        assert_eq!(
            first("a@{ a }: 1").as_deref(),
            Some("duplicate formal function argument 'a'")
        );
        assert_eq!(first("{ a, b }@c: 1"), None);
        for bad in [
            "[ x: 1 ]",
            "f x: 1",
            "1 + x: 2",
            "[ { a }: 1 ]",
            "a.b or x: 1",
        ] {
            assert_eq!(
                first(bad).as_deref(),
                Some("syntax error, unexpected ':'"),
                "{bad}"
            );
        }
        for ok in [
            "x: y: 1",
            "[ (x: 1) ]",
            "f (x: 1)",
            "{ a = x: 1; }",
            "if c then x: 1 else y: 2",
        ] {
            assert_eq!(first(ok), None, "{ok}");
        }
        assert_eq!(first("9223372036854775807"), None);
        assert_eq!(
            first("9223372036854775808").as_deref(),
            Some("invalid integer '9223372036854775808'")
        );
        assert_eq!(first("0.5"), None);
        assert!(first(&format!("0.{}5", "0".repeat(323))).is_some());
        assert!(first(&format!("1{}.0", "0".repeat(309))).is_some());
        assert_eq!(first(&format!("1{}.0", "0".repeat(307))), None);
        assert_eq!(
            first("let ${x} = 1; in 2").as_deref(),
            Some("dynamic attributes not allowed in let")
        );
        assert_eq!(
            first("{ inherit ${x}; }").as_deref(),
            Some("dynamic attributes not allowed in inherit")
        );
        assert_eq!(first("{ inherit ${\"a\"}; }"), None);
    }
}
