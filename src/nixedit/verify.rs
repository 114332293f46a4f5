//! Proving that an edit leaves a file Nix accepts (DESIGN §5a): no syntax
//! error, nothing `strict` refuses.
//!
//! Must never call an edit valid that a full re-parse would refuse. [`full`]
//! re-parses the whole new text and checks all of it. [`local`] proves the
//! same from the edited part alone, and says `None` when it cannot. It
//! knows two shapes of edit:
//!
//! 1. **Entries of an attribute set `E`** replaced by others (an insertion,
//!    a removal): the range lies inside E's braces and covers only whole
//!    entries and trivia. The new text parsed alone between braces is a
//!    set without error: then in place it parses the same way, because
//!    rnix parses E's entries in one loop whose state at an entry boundary
//!    is the same as after a `{`, the new text ends with `;` or trivia (no
//!    token can run into what follows), and a `#` comment right before the
//!    range is followed by a line break in the new text.
//! 2. **A value** replaced by an expression: the range is exactly a value's
//!    node (a binding's value, an argument, a list item, a parenthesised
//!    expression), the new text parsed alone is one expression without
//!    error and without surrounding trivia, simple where the place needs a
//!    simple one (an argument, a list item), and the characters on both
//!    sides of the range are ones no token can run across.
//!
//! Then Nix's rules: `strict::check` on the new part, and the duplicate
//! attributes it can cause: in E (or the binding's set), and in the sets E
//! is merged into (`a = { E }; a.x = 1;`), focused on E's path there.
//!
//! `tests/editor_props.rs` checks `local` against `full` on generated edits,
//! and debug builds cross-check every edit the editor makes.

use std::ops::Range;

use rnix::{NodeOrToken, SyntaxKind, SyntaxNode, TextRange, TextSize};

use super::strict::{self, Edits, GNode, Violation};
use super::{load, node_range, syntax, EditError, NixFile, TextEdit};

/// Why a text is not valid Nix.
#[derive(Debug)]
pub enum Problem {
    Syntax(EditError),
    Rule(Violation),
}

/// The reference check: what is wrong with `text`, if anything.
pub fn full(text: &str) -> Option<Problem> {
    let parsed = rnix::Root::parse(text);
    let root = parsed.syntax();
    if let Some(error) = parsed.errors().first() {
        return Some(Problem::Syntax(load::parse_error("", text, &root, error)));
    }
    strict::check(&root).map(Problem::Rule)
}

/// Whether `file` with `edit` applied is valid, established from the edited
/// part; `None` when that is not possible (then use [`full`]).
pub fn local(file: &NixFile, edit: &TextEdit) -> Option<bool> {
    let root = file.root();
    let text = file.text();
    if edit.range.end > text.len() || edit.range.start > edit.range.end {
        return None;
    }
    if let Some(set) = entries_context(root, &edit.range) {
        return entries(&set, edit);
    }
    let node = node_at(root, &edit.range)?;
    value(text, &node, edit)
}

/// The set whose entries the range covers (whole entries and trivia only,
/// strictly inside its braces).
fn entries_context(root: &SyntaxNode, range: &Range<usize>) -> Option<SyntaxNode> {
    let end = TextSize::try_from(range.end).ok()?;
    let start = TextSize::try_from(range.start).ok()?;
    let covering = root.covering_element(TextRange::new(start, end));
    let first = match covering {
        NodeOrToken::Node(node) => node,
        NodeOrToken::Token(token) => token.parent()?,
    };
    let set = first
        .ancestors()
        .find(|n| n.kind() == SyntaxKind::NODE_ATTR_SET)?;
    let open = set
        .children_with_tokens()
        .find(|t| t.kind() == SyntaxKind::TOKEN_L_BRACE)?;
    let close = set
        .last_token()
        .filter(|t| t.kind() == SyntaxKind::TOKEN_R_BRACE)?;
    if usize::from(open.text_range().end()) > range.start
        || range.end > usize::from(close.text_range().start())
    {
        return None;
    }
    // Every child the range touches is whole, and an entry or trivia.
    for child in set.children_with_tokens() {
        let r = child.text_range();
        let (s, e) = (usize::from(r.start()), usize::from(r.end()));
        let touches = s < range.end && range.start < e;
        if !touches {
            continue;
        }
        // Whitespace may be split (it stays whitespace on both sides).
        let whole =
            range.start <= s && e <= range.end || child.kind() == SyntaxKind::TOKEN_WHITESPACE;
        let kind = child.kind();
        let allowed = kind.is_trivia()
            || matches!(
                kind,
                SyntaxKind::NODE_ATTRPATH_VALUE | SyntaxKind::NODE_INHERIT
            );
        if !whole || !allowed {
            return None;
        }
    }
    // The range starts and ends between tokens (a trivia token may be
    // split only by a whitespace boundary inside it).
    let at_boundary = |offset: usize| -> bool {
        let Ok(at) = TextSize::try_from(offset) else {
            return false;
        };
        match root.token_at_offset(at) {
            rnix::TokenAtOffset::Single(t) => {
                t.text_range().start() == at || t.kind() == SyntaxKind::TOKEN_WHITESPACE
            }
            _ => true,
        }
    };
    (at_boundary(range.start) && at_boundary(range.end)).then_some(set)
}

fn entries(set: &SyntaxNode, edit: &TextEdit) -> Option<bool> {
    // A `#` comment ending where the new text starts would run into it.
    if comment_ends_at(set, edit.range.start) && !edit.replacement.starts_with(['\n', '\r']) {
        return None;
    }
    let wrapped = format!("{{{}}}", edit.replacement);
    let parsed = rnix::Root::parse(&wrapped);
    if !parsed.errors().is_empty() {
        return None;
    }
    let fragment = parsed.syntax();
    let new_set = fragment.children().next()?;
    if new_set.kind() != SyntaxKind::NODE_ATTR_SET
        || usize::from(new_set.text_range().len()) != wrapped.len()
    {
        return None;
    }
    if strict::check(&fragment).is_some() {
        return Some(false);
    }
    // The set's entries after the edit.
    let is_entry = |n: &SyntaxNode| {
        matches!(
            n.kind(),
            SyntaxKind::NODE_ATTRPATH_VALUE | SyntaxKind::NODE_INHERIT
        )
    };
    let mut new_entries: Vec<SyntaxNode> = Vec::new();
    let mut inserted = false;
    for entry in set.children().filter(is_entry) {
        let r = node_range(&entry);
        if r.end <= edit.range.start {
            new_entries.push(entry);
        } else if r.start >= edit.range.end {
            if !inserted {
                new_entries.extend(new_set.children().filter(is_entry));
                inserted = true;
            }
            new_entries.push(entry);
        }
    }
    if !inserted {
        new_entries.extend(new_set.children().filter(is_entry));
    }
    let edits = Edits {
        entries: Some((GNode::of(set), new_entries.iter().map(GNode::of).collect())),
        value: None,
    };
    // The file was valid: a duplicate now involves a key an entry that
    // came or went starts with. Looking only there keeps an edit of a
    // file's top-level set from reading all of its entries' keys.
    let gone = set
        .children()
        .filter(is_entry)
        .filter(|e| contains(&edit.range, &node_range(e)));
    let mut keys: Vec<String> = new_set
        .children()
        .filter(is_entry)
        .chain(gone)
        .flat_map(|e| first_keys(&e))
        .collect();
    keys.sort();
    keys.dedup();
    let (top, chain) = merge_chain(set);
    for key in keys {
        let focus = [key];
        if strict::duplicates_focused(GNode::of(set), &edits, &focus).is_some() {
            return Some(false);
        }
        let mut on_top = chain.clone();
        on_top.extend(focus);
        if top != *set && strict::duplicates_focused(GNode::of(&top), &edits, &on_top).is_some() {
            return Some(false);
        }
    }
    Some(true)
}

/// The keys an entry defines first (`a` of `a.b = …;`, the names of
/// `inherit`); none for a dynamic key (a set of its own).
fn first_keys(entry: &SyntaxNode) -> Vec<String> {
    match entry.kind() {
        SyntaxKind::NODE_INHERIT => entry
            .children()
            .filter(|c| c.kind() != SyntaxKind::NODE_INHERIT_FROM)
            .filter_map(|n| syntax::attr_key(&n))
            .collect(),
        _ => syntax::binding_attrpath(entry)
            .and_then(|p| p.children().next())
            .and_then(|a| syntax::attr_key(&a))
            .into_iter()
            .collect(),
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Whether a `#` comment token ends exactly at `offset`.
fn comment_ends_at(set: &SyntaxNode, offset: usize) -> bool {
    let Ok(at) = TextSize::try_from(offset) else {
        return false;
    };
    match set.token_at_offset(at) {
        rnix::TokenAtOffset::Between(left, _) => {
            left.kind() == SyntaxKind::TOKEN_COMMENT && left.text().starts_with('#')
        }
        _ => false,
    }
}

/// The node whose range is exactly `range`, if it is a value's place.
fn node_at(root: &SyntaxNode, range: &Range<usize>) -> Option<SyntaxNode> {
    let start = TextSize::try_from(range.start).ok()?;
    let end = TextSize::try_from(range.end).ok()?;
    let target = TextRange::new(start, end);
    let covering = root.covering_element(target);
    let node = match covering {
        NodeOrToken::Node(node) => node,
        NodeOrToken::Token(token) => token.parent()?,
    };
    // The outermost node with exactly this range.
    let mut node = node;
    while node.text_range() != target {
        node = node.parent()?;
    }
    while let Some(parent) = node.parent().filter(|p| p.text_range() == target) {
        node = parent;
    }
    Some(node)
}

fn value(text: &str, node: &SyntaxNode, edit: &TextEdit) -> Option<bool> {
    let parent = node.parent()?;
    let needs_simple = match parent.kind() {
        SyntaxKind::NODE_ATTRPATH_VALUE => {
            if syntax::binding_value(&parent).as_ref() != Some(node) {
                return None;
            }
            false
        }
        SyntaxKind::NODE_APPLY => {
            if parent.children().nth(1).as_ref() != Some(node) {
                return None;
            }
            true
        }
        SyntaxKind::NODE_LIST => true,
        SyntaxKind::NODE_PAREN => false,
        _ => return None,
    };
    // No token may run across either end of the range.
    let before = text[..edit.range.start].chars().next_back();
    let after = text[edit.range.end..].chars().next();
    let safe_before = before.is_none_or(|c| c.is_ascii_whitespace() || "=([{".contains(c));
    let safe_after = after.is_none_or(|c| c.is_ascii_whitespace() || ";)]}".contains(c));
    if !safe_before || !safe_after {
        return None;
    }
    let replacement = &edit.replacement;
    if replacement.trim() != replacement.as_str() || replacement.is_empty() {
        return None;
    }
    let parsed = rnix::Root::parse(replacement);
    if !parsed.errors().is_empty() {
        return None;
    }
    let fragment = parsed.syntax();
    let expr = fragment.children().next()?;
    if usize::from(expr.text_range().len()) != replacement.len() {
        return None;
    }
    if needs_simple && !syntax::is_simple(&expr) {
        return Some(false);
    }
    if strict::check(&fragment).is_some() {
        return Some(false);
    }
    // A binding's value changing to or from an attribute set changes what
    // merges with what.
    let is_set = |n: &SyntaxNode| syntax::unparen(n).kind() == SyntaxKind::NODE_ATTR_SET;
    if !is_set(node) && !is_set(&expr) {
        return Some(true);
    }
    let mut outer = node.clone();
    while let Some(p) = outer
        .parent()
        .filter(|p| p.kind() == SyntaxKind::NODE_PAREN)
    {
        outer = p;
    }
    let Some(binding) = outer
        .parent()
        .filter(|p| p.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
    else {
        return Some(true); // an argument or a list item: not merged
    };
    if syntax::binding_value(&binding).as_ref() != Some(&outer) {
        return None;
    }
    let edits = Edits {
        entries: None,
        value: Some((GNode::of(&outer), GNode::of(&expr))),
    };
    let scope = binding.parent()?;
    let own = syntax::binding_keys(&binding).unwrap_or_default();
    if strict::duplicates_focused(GNode::of(&scope), &edits, &own).is_some() {
        return Some(false);
    }
    let (top, mut focus) = merge_chain(&scope);
    focus.extend(own);
    if top != scope && strict::duplicates_focused(GNode::of(&top), &edits, &focus).is_some() {
        return Some(false);
    }
    Some(true)
}

/// From a set up through the sets it is the value of (`a = { … };`,
/// static keys only): the topmost one, and the keys from it down.
fn merge_chain(binds: &SyntaxNode) -> (SyntaxNode, Vec<String>) {
    let mut top = binds.clone();
    let mut keys: Vec<String> = Vec::new();
    while top.kind() == SyntaxKind::NODE_ATTR_SET {
        let mut outer = top.clone();
        while let Some(p) = outer
            .parent()
            .filter(|p| p.kind() == SyntaxKind::NODE_PAREN)
        {
            outer = p;
        }
        let Some(binding) = outer
            .parent()
            .filter(|p| p.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
        else {
            break;
        };
        if syntax::binding_value(&binding).as_ref() != Some(&outer) {
            break;
        }
        let (Some(own), Some(scope)) = (syntax::binding_keys(&binding), binding.parent()) else {
            break;
        };
        keys.splice(0..0, own);
        top = scope;
    }
    (top, keys)
}
