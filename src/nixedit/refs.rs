//! What still uses a binding that `unset` would remove.
//!
//! Must never let `unset` leave a reference dangling or uncover another
//! definition: a `rec { }` set or `let { }` whose expressions refer to the
//! name, or a left operand of `//` that defines the path once the right one
//! no longer does. It walks without recursion.

use miette::LabeledSpan;
use rnix::{SyntaxKind, SyntaxNode};

use super::walk::{Binding, Walk};
use super::{node_range, span, syntax, AttrPath, EditError, NixFile};

/// Refuse to remove `binding` (the winner at `path`) when the file defines
/// the path, or something under it, somewhere else too (another item of a
/// `mkMerge`, another priority, `a.b = …;` beside `a = { … };`): `unset`
/// leaves the path undefined, or does nothing.
pub fn check_other_definitions(
    file: &NixFile,
    walk: &Walk,
    binding: &Binding,
    path: &AttrPath,
) -> Result<(), EditError> {
    let keys = path.keys();
    let own = node_range(&binding.node);
    let same = |b: &Binding| b.node == binding.node && b.value == binding.value;
    let inside = |b: &Binding| {
        !binding.inherited && {
            let r = node_range(&b.node);
            own.start <= r.start && r.end <= own.end
        }
    };
    let others: Vec<&Binding> = walk
        .bindings
        .iter()
        .filter(|b| b.path.starts_with(keys) && !same(b) && !inside(b))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    let mut labels = vec![LabeledSpan::new_with_span(
        Some("removed here".into()),
        span(&binding.node),
    )];
    labels.extend(
        others
            .iter()
            .take(3)
            .map(|b| LabeledSpan::new_with_span(Some("also defined here".into()), span(&b.node))),
    );
    Err(EditError::StillUsed {
        path: path.to_string(),
        why: format!(
            "{} other definition{} would still define it",
            others.len(),
            if others.len() == 1 { "" } else { "s" }
        ),
        help: "unset each definition (nixflip removes the one that wins first), or edit by hand"
            .into(),
        src: file.source(),
        labels,
    })
}

/// With an expression merged by `//` or a dynamic key near the path, what
/// defines it once the binding is gone is only known from the file after
/// the edit: refuse when something may.
pub fn check_nothing_takes_over(
    file: &NixFile,
    edit: &super::TextEdit,
    path: &AttrPath,
) -> Result<(), EditError> {
    let text = super::apply_edits(file.text(), std::slice::from_ref(edit));
    let Ok(after) = NixFile::parse_as(file.name(), text, file.reading()) else {
        return Ok(()); // the edit's verification says why
    };
    let why = match after.lookup(path) {
        Ok(None) => return Ok(()),
        Ok(Some(_)) => "another definition would take its place",
        Err(EditError::Hidden { .. }) => {
            "an expression merged with `//` (or a key computed at evaluation time) may define it"
        }
        Err(_) => "the file would not read it as undefined",
    };
    Err(EditError::StillUsed {
        path: path.to_string(),
        why: format!("once removed, {why}"),
        help: "edit the other definition first, or by hand".into(),
        src: file.source(),
        labels: vec![LabeledSpan::new_with_span(
            Some("removed here".into()),
            miette::SourceSpan::from((edit.range.start, edit.range.end - edit.range.start)),
        )],
    })
}

/// Refuse to remove `binding` (the winner at `path`) when it sits in the
/// right operand of a `//` whose left operand also defines the path, and
/// nothing else in the right operand would still hide that.
pub fn check_update_operands(
    file: &NixFile,
    walk: &Walk,
    binding: &Binding,
    path: &AttrPath,
) -> Result<(), EditError> {
    let keys = path.keys();
    let removed = node_range(&binding.node);
    for shadowed in &walk.shadowed {
        let depth = shadowed.depth;
        let Some(key) = keys.get(depth) else { continue };
        if shadowed.binding.path.get(depth) != Some(key) {
            continue;
        }
        let comparable =
            shadowed.binding.path.starts_with(keys) || keys.starts_with(&shadowed.binding.path);
        if !comparable {
            continue;
        }
        // Is the removed binding in this `//`'s right operand?
        let Some(right) = shadowed.update.children().nth(1) else {
            continue;
        };
        let right_range = node_range(&right);
        if !(right_range.start <= removed.start && removed.end <= right_range.end) {
            continue;
        }
        // Does the right operand keep another definition of the key?
        let keeps = walk.bindings.iter().any(|b| {
            let r = node_range(&b.node);
            b.path.get(depth) == Some(key)
                && right_range.start <= r.start
                && r.end <= right_range.end
                && !(removed.start <= r.start && r.end <= removed.end)
        });
        if keeps {
            continue;
        }
        return Err(EditError::StillUsed {
            path: path.to_string(),
            why: "the left side of `//` also defines it, and would then be visible".into(),
            help: "remove it from both sides of the `//` (unset it again), or edit by hand".into(),
            src: file.source(),
            labels: vec![
                LabeledSpan::new_with_span(Some("removed here".into()), span(&binding.node)),
                LabeledSpan::new_with_span(
                    Some("would then define it".into()),
                    span(&shadowed.binding.node),
                ),
            ],
        });
    }
    Ok(())
}

/// Refuse to remove `binding` when it is defined in a `rec { }` set or a
/// `let { }` whose expressions refer to its name.
pub fn check_recursive_uses(
    file: &NixFile,
    binding: &Binding,
    path: &AttrPath,
) -> Result<(), EditError> {
    let Some(scope) = binding.node.parent() else {
        return Ok(());
    };
    let recursive = scope.kind() == SyntaxKind::NODE_LEGACY_LET
        || (scope.kind() == SyntaxKind::NODE_ATTR_SET
            && scope
                .children_with_tokens()
                .any(|t| t.kind() == SyntaxKind::TOKEN_REC));
    if !recursive {
        return Ok(());
    }
    // The name this binding gives in the set, and what is left of the path.
    let own: Vec<String> = if binding.inherited {
        syntax::attr_key(&binding.value).into_iter().collect()
    } else {
        syntax::binding_keys(&binding.node).unwrap_or_default()
    };
    let Some((name, rest)) = own.split_first() else {
        return Ok(());
    };
    // Other definitions of the same name keep it bound.
    let others = scope
        .children()
        .filter(|c| *c != binding.node)
        .any(|c| match c.kind() {
            SyntaxKind::NODE_ATTRPATH_VALUE => syntax::binding_keys(&c)
                .and_then(|k| k.first().cloned())
                .is_some_and(|k| k == *name),
            SyntaxKind::NODE_INHERIT => c
                .children()
                .any(|n| syntax::attr_key(&n).as_deref() == Some(name.as_str())),
            _ => false,
        });
    let uses = references(&scope, name);
    let dangling: Vec<SyntaxNode> = uses
        .into_iter()
        .filter(|r| {
            if !others {
                return true;
            }
            // `name.rest…` still names the removed part.
            let Some(select) = r.parent().filter(|p| p.kind() == SyntaxKind::NODE_SELECT) else {
                return false;
            };
            let selected: Vec<String> = select
                .children()
                .find(|c| c.kind() == SyntaxKind::NODE_ATTRPATH)
                .map(|p| p.children().filter_map(|a| syntax::attr_key(&a)).collect())
                .unwrap_or_default();
            !rest.is_empty() && selected.starts_with(rest)
        })
        .collect();
    if dangling.is_empty() {
        return Ok(());
    }
    let what = if scope.kind() == SyntaxKind::NODE_LEGACY_LET {
        "`let { }`"
    } else {
        "`rec { }` set"
    };
    let mut labels = vec![LabeledSpan::new_with_span(
        Some("defined here".into()),
        span(&binding.node),
    )];
    labels.extend(
        dangling
            .iter()
            .take(3)
            .map(|r| LabeledSpan::new_with_span(Some(format!("`{name}` used here")), span(r))),
    );
    Err(EditError::StillUsed {
        path: path.to_string(),
        why: format!("the {what} it is defined in still refers to `{name}`"),
        help: format!(
            "change the expression that uses `{name}` first (in {}), then unset it",
            file.name()
        ),
        src: file.source(),
        labels,
    })
}

/// The identifiers under `scope` that refer to the variable `name` bound by
/// `scope` itself (not by a function argument, `let` or recursive set in
/// between, which would hide it; `with` never does).
fn references(scope: &SyntaxNode, name: &str) -> Vec<SyntaxNode> {
    scope
        .descendants()
        .filter(|n| n.kind() == SyntaxKind::NODE_IDENT && n.text() == name)
        .filter(|n| super::scope::binder_of(n).as_ref() == Some(scope))
        .collect()
}
