//! Proving that an edit keeps a file valid: the result has no
//! parse error and no duplicated attribute the original did not have.
//!
//! [`full`] re-parses the whole new text and walks all of it. [`local`] proves
//! the same from the attribute set around the edit alone, in the spirit of
//! incremental re-parsing, and says `None` when it cannot:
//!
//! 1. The edit lies strictly inside the braces of an attribute set `E`: its
//!    `{` (or `rec {`) and its last `}` are untouched.
//! 2. E's new text parses on its own to exactly one attribute set, without
//!    errors. Then the whole new file parses to the old tree with E's subtree
//!    replaced by the new one, so it has no error either: the text before E
//!    is unchanged and lexes as before; E's text lexes the same in place as on
//!    its own, because its braces balance (an enclosing `${ … }` never sees
//!    its closing brace); rnix parses E with one `parse_set` call that stops
//!    at E's last `}`, the same one as before; and the lexer and parser are
//!    in the same state after E as they were in the old file. Two guards
//!    cover what rnix looks at beyond E: an empty `{ }` followed by `:` or `@`
//!    would start a lambda pattern, so the token after E must be neither; and
//!    the nesting depth must stay far below rnix's recursion limit.
//! 3. Bindings can only be duplicates of each other if their paths are equal.
//!    Every binding inside E has a path that extends the path P that E sits
//!    at, so only duplicates among bindings under P can change: count the
//!    duplicate pairs among them before and after (a walk of the old file
//!    focused on P, with the bindings of the old E swapped for a walk of the
//!    new E in E's context). Everything outside E walks as before: the walk
//!    looks at the kinds of nodes around E (unchanged), never at text inside
//!    E that could change a path. A set the walk never enters holds no
//!    bindings before or after, so then step 2 is enough.
//!
//! `tests/editor_props.rs` checks `local` against `full` on generated edits,
//! and debug builds cross-check every edit the editor makes.

use std::ops::Range;

use rnix::{SyntaxKind, SyntaxNode, TextRange, TextSize};

use super::walk::{self, Binding, Focus};
use super::{node_range, NixFile, TextEdit};

/// What an edit does to a file's validity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Parses, and has no more duplicate attributes than before.
    Valid,
    /// Has a parse error.
    Unparsable,
    /// Parses, but defines some attribute twice where it did not before.
    Duplicate,
}

/// rnix refuses expressions nested 512 deep; stay well below that.
const DEPTH_BUDGET: usize = 400;

/// The reference check: parse the whole new text and compare duplicates.
pub fn full(file: &NixFile, new_text: &str) -> Verdict {
    let parsed = rnix::Root::parse(new_text);
    if !parsed.errors().is_empty() {
        return Verdict::Unparsable;
    }
    let after = walk::walk(&parsed.syntax());
    if walk::duplicate_pairs(&after.bindings) > walk::duplicate_pairs(file.bindings()) {
        Verdict::Duplicate
    } else {
        Verdict::Valid
    }
}

/// The same verdict as [`full`] for `file` with `edit` applied, established
/// from the attribute set around the edit; `None` when that is not possible
/// (then use [`full`]). Never says [`Verdict::Unparsable`]: a part that does
/// not parse on its own may still parse in place.
pub fn local(file: &NixFile, edit: &TextEdit) -> Option<Verdict> {
    let set = enclosing_set(file.root(), &edit.range)?;
    if followed_by_pattern_token(&set) {
        return None;
    }
    let span = node_range(&set);
    let old = &file.text()[span.clone()];
    let (start, end) = (edit.range.start - span.start, edit.range.end - span.start);
    let new_text = format!("{}{}{}", &old[..start], edit.replacement, &old[end..]);
    let new_set = parse_alone(&new_text)?;
    if set.ancestors().count() + depth(&new_set) > DEPTH_BUDGET {
        return None;
    }
    // Where the walk meets E, if it does: the path and context it is in.
    let around = walk::walk_focused(file.root(), Focus::Around(span.clone()));
    let Some(at) = around.containers.iter().find(|c| c.node == set) else {
        return Some(Verdict::Valid);
    };
    if at.top {
        // The module body (or `config = { … }`): a new `config` or `options`
        // key can change how the whole module is read. Not local.
        return None;
    }
    let prefix = at.path.clone();
    let focused = walk::walk_focused(file.root(), Focus::Path(prefix.clone()));
    let at = focused.containers.iter().find(|c| c.node == set)?;
    let under = |b: &&Binding| b.path.len() > prefix.len() && b.path.starts_with(&prefix);
    let outside = |b: &&Binding| !contains(&span, &node_range(&b.node));
    let new_walk = walk::walk_set_as(&new_set, at, focused.scopes_used());
    let before = walk::duplicate_pairs(focused.bindings.iter().filter(under));
    let after = walk::duplicate_pairs(
        focused
            .bindings
            .iter()
            .filter(under)
            .filter(outside)
            .chain(new_walk.bindings.iter().filter(under)),
    );
    Some(if after > before {
        Verdict::Duplicate
    } else {
        Verdict::Valid
    })
}

/// The smallest attribute set whose braces strictly enclose `range`.
fn enclosing_set(root: &SyntaxNode, range: &Range<usize>) -> Option<SyntaxNode> {
    let end = TextSize::try_from(range.end).ok()?;
    if range.start > range.end || end > root.text_range().end() {
        return None;
    }
    let target = TextRange::new(TextSize::try_from(range.start).ok()?, end);
    let covering = root.covering_element(target);
    let first = match covering {
        rnix::NodeOrToken::Node(node) => node,
        rnix::NodeOrToken::Token(token) => token.parent()?,
    };
    first
        .ancestors()
        .filter(|n| n.kind() == SyntaxKind::NODE_ATTR_SET)
        .find(|set| inside_braces(set, range))
}

/// Whether `range` lies after the set's `{` and before its closing `}`.
fn inside_braces(set: &SyntaxNode, range: &Range<usize>) -> bool {
    let open = set
        .children_with_tokens()
        .find(|t| t.kind() == SyntaxKind::TOKEN_L_BRACE);
    let close = set.last_token();
    match (open, close) {
        (Some(open), Some(close)) if close.kind() == SyntaxKind::TOKEN_R_BRACE => {
            usize::from(open.text_range().end()) <= range.start
                && range.end <= usize::from(close.text_range().start())
        }
        _ => false,
    }
}

/// Whether the next token after the set is `:` or `@` (rnix decides between
/// a set and a lambda pattern by looking past an empty `{ }`).
fn followed_by_pattern_token(set: &SyntaxNode) -> bool {
    let mut token = set.last_token().and_then(|t| t.next_token());
    while let Some(t) = token {
        if !t.kind().is_trivia() {
            return matches!(t.kind(), SyntaxKind::TOKEN_COLON | SyntaxKind::TOKEN_AT);
        }
        token = t.next_token();
    }
    false
}

/// `text` parsed on its own, when it is exactly one attribute set without
/// any parse error.
fn parse_alone(text: &str) -> Option<SyntaxNode> {
    let parsed = rnix::Root::parse(text);
    if !parsed.errors().is_empty() {
        return None;
    }
    let root = parsed.syntax();
    let mut children = root.children_with_tokens();
    let only = children.next()?.into_node()?;
    let whole = usize::from(only.text_range().len()) == text.len();
    (children.next().is_none() && whole && only.kind() == SyntaxKind::NODE_ATTR_SET).then_some(only)
}

/// How deeply nodes nest under `node`.
fn depth(node: &SyntaxNode) -> usize {
    let (mut now, mut most) = (0usize, 0usize);
    for event in node.preorder() {
        match event {
            rnix::WalkEvent::Enter(_) => {
                now += 1;
                most = most.max(now);
            }
            rnix::WalkEvent::Leave(_) => now -= 1,
        }
    }
    most
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}
