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
use std::ops::Range;

use rnix::{NodeOrToken, SyntaxKind, SyntaxNode, SyntaxToken, WalkEvent};

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
pub fn check(root: &SyntaxNode) -> Option<Violation> {
    let mut found = Found::default();
    for event in root.preorder_with_tokens() {
        let WalkEvent::Enter(element) = event else {
            continue;
        };
        match element {
            NodeOrToken::Token(token) => found.add(check_token(&token)),
            NodeOrToken::Node(node) => found.add(check_node(&node)),
        }
    }
    found.first
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

impl HasRange for SyntaxToken {
    fn byte_range(&self) -> Range<usize> {
        let r = self.text_range();
        usize::from(r.start())..usize::from(r.end())
    }
}

fn check_token(token: &SyntaxToken) -> Option<Violation> {
    match token.kind() {
        SyntaxKind::TOKEN_INTEGER if parse_integer(token.text()).is_none() => Some(Violation {
            message: format!("invalid integer '{}'", token.text()),
            at: range(token),
            first: None,
            help: format!("Nix integers are 64-bit: from {} to {}", i64::MIN, i64::MAX),
        }),
        SyntaxKind::TOKEN_FLOAT if parse_float(token.text()).is_none() => Some(Violation {
            message: format!("invalid float '{}'", token.text()),
            at: range(token),
            first: None,
            help: "Nix reads floats with C's strtod: a value too large for a double, or too \
                   small to be a normal one, is an error"
                .into(),
        }),
        SyntaxKind::TOKEN_PIPE_LEFT | SyntaxKind::TOKEN_PIPE_RIGHT => Some(Violation {
            message: "syntax error, unexpected '|'".into(),
            at: range(token),
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

fn check_node(node: &SyntaxNode) -> Option<Violation> {
    match node.kind() {
        SyntaxKind::NODE_LAMBDA => misplaced_lambda(node),
        SyntaxKind::NODE_PATTERN => duplicate_formal(node),
        SyntaxKind::NODE_INHERIT => dynamic_inherit(node),
        SyntaxKind::NODE_ATTR_SET | SyntaxKind::NODE_LEGACY_LET => duplicates(node, &Edits::none()),
        SyntaxKind::NODE_LET_IN => dynamic_let(node).or_else(|| duplicates(node, &Edits::none())),
        _ => None,
    }
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

fn dynamic_let(let_in: &SyntaxNode) -> Option<Violation> {
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

/// Changes to read into a tree as if they were made: how the local check of
/// an edit sees the file after it without parsing all of it again.
#[derive(Clone, Debug, Default)]
pub struct Edits {
    /// A set whose entries are replaced by these (in this order).
    pub entries: Option<(SyntaxNode, Vec<SyntaxNode>)>,
    /// A binding value replaced by another expression.
    pub value: Option<(SyntaxNode, SyntaxNode)>,
}

impl Edits {
    pub fn none() -> Edits {
        Edits::default()
    }

    fn entries_of(&self, set: &SyntaxNode) -> Vec<SyntaxNode> {
        match &self.entries {
            Some((at, entries)) if at == set => entries.clone(),
            _ => set
                .children()
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
    fn set_value(&self, binding: &SyntaxNode) -> Option<SyntaxNode> {
        let value = syntax::binding_value(binding)?;
        let value = match &self.value {
            Some((old, new)) if *old == value => new.clone(),
            _ => value,
        };
        let value = syntax::unparen(&value);
        (value.kind() == SyntaxKind::NODE_ATTR_SET).then_some(value)
    }
}

/// The duplicate attributes of one set or `let` (`binds`), as Nix's
/// `addAttr` finds them; `focus` limits the search to the merged sets on
/// the way to that path and everything under it (what an edit there can
/// change).
pub fn duplicates_focused(
    binds: &SyntaxNode,
    edits: &Edits,
    focus: &[String],
) -> Option<Violation> {
    let defs: Vec<Item> = edits
        .entries_of(binds)
        .into_iter()
        .flat_map(|entry| Def::of_entry(&entry))
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

fn duplicates(binds: &SyntaxNode, edits: &Edits) -> Option<Violation> {
    duplicates_focused(binds, edits, &[])
}

/// One definition reaching a level of a merged set.
#[derive(Clone, Debug)]
enum Def {
    /// A binding `k1.k2… = v;` whose keys before `from` are used up.
    Path { binding: SyntaxNode, from: usize },
    /// `inherit … name;`
    Inherit { name: SyntaxNode },
}

/// What arrives at one level: a definition, or a set literal's attribute
/// merged whole into an existing set (it must not be there already).
#[derive(Clone, Debug)]
enum Item {
    Def(Def),
    Bundle(Vec<Def>),
}

/// What a definition does at its key.
enum Touch {
    /// A value that is not an attribute set literal (or an inherited name).
    Leaf,
    /// More keys follow: a set, with this definition one level down.
    Descend(Def),
    /// An attribute set literal: a set, with its entries one level down.
    Set(SyntaxNode),
    /// A dynamic key: a separate set Nix cannot check before evaluation.
    Dynamic,
}

impl Def {
    fn of_entry(entry: &SyntaxNode) -> Vec<Def> {
        match entry.kind() {
            SyntaxKind::NODE_INHERIT => entry
                .children()
                .filter(|c| c.kind() != SyntaxKind::NODE_INHERIT_FROM)
                .map(|name| Def::Inherit { name })
                .collect(),
            _ => vec![Def::Path {
                binding: entry.clone(),
                from: 0,
            }],
        }
    }

    fn key(&self) -> Option<Cow<'static, str>> {
        match self {
            Def::Path { binding, from } => syntax::binding_attrpath(binding)
                .and_then(|p| p.children().nth(*from))
                .and_then(|attr| syntax::attr_key(&attr))
                .map(Cow::Owned),
            Def::Inherit { name } => syntax::attr_key(name).map(Cow::Owned),
        }
    }

    fn touch(&self, edits: &Edits) -> Touch {
        match self {
            Def::Inherit { name } if syntax::attr_key(name).is_some() => Touch::Leaf,
            Def::Inherit { .. } => Touch::Dynamic,
            Def::Path { binding, from } => {
                let Some(path) = syntax::binding_attrpath(binding) else {
                    return Touch::Dynamic;
                };
                let count = path.children().count();
                if path
                    .children()
                    .nth(*from)
                    .and_then(|a| syntax::attr_key(&a))
                    .is_none()
                {
                    return Touch::Dynamic;
                }
                if from + 1 < count {
                    return Touch::Descend(Def::Path {
                        binding: binding.clone(),
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
    fn node(&self) -> &SyntaxNode {
        match self {
            Def::Path { binding, .. } => binding,
            Def::Inherit { name } => name,
        }
    }

    /// The attribute path as written, for the message.
    fn written(&self) -> String {
        match self {
            Def::Path { binding, .. } => syntax::binding_attrpath(binding)
                .map(|p| p.text().to_string())
                .unwrap_or_default(),
            Def::Inherit { name } => name.text().to_string(),
        }
    }
}

/// State of one key of a merged set.
struct Slot {
    first: Def,
    set: bool,
    /// Items one level down, and how many definitions gave them.
    children: Vec<Item>,
    sources: usize,
}

/// One level of a merged set: the first duplicate among `items`, and the
/// keys whose sets need a look one level down (only where two or more
/// definitions meet: one set literal alone was checked on its own).
fn level(
    items: &[Item],
    edits: &Edits,
    only: Option<&String>,
) -> (Option<Violation>, Vec<(String, Vec<Item>)>) {
    let mut slots: Vec<(String, Slot)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut found = Found::default();
    for item in items {
        let (defs, bundled) = match item {
            Item::Def(d) => (std::slice::from_ref(d), false),
            Item::Bundle(defs) => (defs.as_slice(), true),
        };
        let Some(key) = defs.first().and_then(Def::key) else {
            continue; // dynamic: its own set
        };
        if only.is_some_and(|k| *k != key) {
            continue;
        }
        let existing = index.get(key.as_ref()).copied();
        if let (Some(i), true) = (existing, bundled) {
            // A literal's attribute merged into a set that has it already.
            let first = &slots[i].1.first;
            found.add(Some(duplicate(&key, &defs[0], first)));
            continue;
        }
        for def in defs {
            let touch = def.touch(edits);
            let slot_index = index.get(key.as_ref()).copied();
            match (slot_index, touch) {
                (_, Touch::Dynamic) => {}
                (None, touch) => {
                    let (set, children) = match touch {
                        Touch::Descend(d) => (true, vec![Item::Def(d)]),
                        Touch::Set(s) => (true, set_items(&s, edits)),
                        _ => (false, Vec::new()),
                    };
                    index.insert(key.to_string(), slots.len());
                    slots.push((
                        key.to_string(),
                        Slot {
                            first: def.clone(),
                            set,
                            children,
                            sources: 1,
                        },
                    ));
                }
                (Some(i), touch) => {
                    let slot = &mut slots[i].1;
                    match touch {
                        Touch::Descend(d) if slot.set => {
                            slot.children.push(Item::Def(d));
                            slot.sources += 1;
                        }
                        Touch::Set(s) if slot.set => {
                            // Nix merges a second set literal one level deep:
                            // its attributes must all be new.
                            slot.children.extend(bundles(&s, edits));
                            slot.sources += 1;
                        }
                        _ => {
                            let message_key = def.written();
                            found.add(Some(duplicate(&message_key, def, &slot.first)));
                        }
                    }
                }
            }
        }
    }
    let deeper = slots
        .into_iter()
        .filter(|(_, slot)| slot.sources > 1)
        .map(|(key, slot)| (key, slot.children))
        .collect();
    (found.first, deeper)
}

/// The entries of a set literal as items one level down.
fn set_items(set: &SyntaxNode, edits: &Edits) -> Vec<Item> {
    edits
        .entries_of(set)
        .iter()
        .flat_map(Def::of_entry)
        .map(Item::Def)
        .collect()
}

/// A set literal merged into an existing set: one bundle per attribute it
/// defines (its definitions of that key, in order).
fn bundles(set: &SyntaxNode, edits: &Edits) -> Vec<Item> {
    let mut order: Vec<String> = Vec::new();
    let mut by_key: HashMap<String, Vec<Def>> = HashMap::new();
    for def in edits.entries_of(set).iter().flat_map(Def::of_entry) {
        let Some(key) = def.key() else { continue };
        let key = key.into_owned();
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

fn duplicate(key: &str, second: &Def, first: &Def) -> Violation {
    Violation {
        message: format!("attribute '{key}' already defined"),
        at: range(second.node()),
        first: Some(range(first.node())),
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
