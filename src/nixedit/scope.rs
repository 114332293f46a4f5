//! Which variables an `--expr` value may use where it is written.
//!
//! Nix's parser resolves every variable before evaluation: a name that no
//! function argument, `let`, recursive set or global defines, and that no
//! enclosing `with` may provide, makes the whole file fail ("undefined
//! variable 'lib'"). A literal has no variables; an expression the user gives
//! may, and it must not turn a file Nix reads into one it rejects. The walks
//! go up through ancestors and over a flat preorder: no recursion.

use rnix::{SyntaxKind, SyntaxNode, TextRange, WalkEvent};

use super::syntax;

/// Names Nix defines in every file without a `__` prefix (Nix 2.8; every
/// `__`-prefixed name is let through, as newer versions add builtins).
const GLOBALS: &[&str] = &[
    "abort",
    "baseNameOf",
    "builtins",
    "derivation",
    "derivationStrict",
    "dirOf",
    "false",
    "fetchGit",
    "fetchMercurial",
    "fetchTarball",
    "fetchTree",
    "fromTOML",
    "import",
    "isNull",
    "map",
    "null",
    "placeholder",
    "removeAttrs",
    "scopedImport",
    "throw",
    "toString",
    "true",
];

/// The variables in scope at one place of a file.
pub struct Scope {
    /// A `with` around the place: any name may be defined.
    open: bool,
    /// The nodes around the place that bind names (functions, `let`,
    /// recursive sets), innermost first.
    binders: Vec<SyntaxNode>,
}

impl Scope {
    /// The scope of a value that replaces `node` (what `node` itself sees).
    pub fn replacing(node: &SyntaxNode) -> Scope {
        Scope::from_path(node.clone(), node.ancestors().skip(1))
    }

    /// The scope of a new binding's value inside the set or `let` `container`.
    pub fn inside(container: &SyntaxNode) -> Scope {
        let mut binders = Vec::new();
        if binds_here(container) {
            binders.push(container.clone());
        }
        let mut scope = Scope::from_path(container.clone(), container.ancestors().skip(1));
        binders.append(&mut scope.binders);
        scope.binders = binders;
        scope
    }

    fn from_path(start: SyntaxNode, ancestors: impl Iterator<Item = SyntaxNode>) -> Scope {
        let mut scope = Scope {
            open: false,
            binders: Vec::new(),
        };
        let mut child = start;
        for ancestor in ancestors {
            match ancestor.kind() {
                // The body of `with e; body`, not `e`, sees e's names.
                SyntaxKind::NODE_WITH if ancestor.last_child().as_ref() == Some(&child) => {
                    scope.open = true;
                }
                _ if binds_here(&ancestor) => scope.binders.push(ancestor.clone()),
                _ => {}
            }
            child = ancestor;
        }
        scope
    }

    fn defines(&self, name: &str) -> bool {
        self.open
            || name.starts_with("__")
            || GLOBALS.contains(&name)
            || self.binders.iter().any(|b| binds(b, name))
    }

    /// The first variable of `expr` (a parsed `--expr`) that neither the
    /// expression itself nor this scope defines, and where it is in `expr`.
    pub fn first_undefined(&self, expr: &SyntaxNode) -> Option<(String, TextRange)> {
        for event in expr.preorder() {
            let WalkEvent::Enter(node) = event else {
                continue;
            };
            if node.kind() != SyntaxKind::NODE_IDENT {
                continue;
            }
            let Some(start) = variable_scope_start(&node) else {
                continue;
            };
            let name = node.text().to_string();
            let inner = Scope::from_path(node.clone(), start);
            if !inner.defines(&name) && !self.defines(&name) {
                return Some((name, node.text_range()));
            }
        }
        None
    }
}

/// Where the scope of an identifier starts, when it reads a variable: its
/// ancestors, without the set or `let` that an `inherit name;` binds into
/// (that name comes from outside it). `None` for an attribute name or a
/// name a function binds.
fn variable_scope_start(ident: &SyntaxNode) -> Option<impl Iterator<Item = SyntaxNode>> {
    let parent = ident.parent()?;
    let skip = match parent.kind() {
        SyntaxKind::NODE_ATTRPATH
        | SyntaxKind::NODE_PAT_ENTRY
        | SyntaxKind::NODE_PAT_BIND
        | SyntaxKind::NODE_IDENT_PARAM => return None,
        SyntaxKind::NODE_INHERIT => {
            if parent
                .children()
                .any(|c| c.kind() == SyntaxKind::NODE_INHERIT_FROM)
            {
                return None;
            }
            3 // the identifier, the `inherit`, the set or `let` it is in
        }
        _ => 1,
    };
    Some(ident.ancestors().skip(skip))
}

/// The innermost node around `ident` that binds the variable it reads (a
/// function, `let` or recursive set); `None` when it reads no variable, or
/// nothing around it binds the name (`with` binds nothing before
/// evaluation).
pub(super) fn binder_of(ident: &SyntaxNode) -> Option<SyntaxNode> {
    let name = ident.text().to_string();
    variable_scope_start(ident)?.find(|node| binds_here(node) && binds(node, &name))
}

/// Whether `node` binds names for what is inside it.
fn binds_here(node: &SyntaxNode) -> bool {
    match node.kind() {
        SyntaxKind::NODE_LAMBDA | SyntaxKind::NODE_LET_IN | SyntaxKind::NODE_LEGACY_LET => true,
        SyntaxKind::NODE_ATTR_SET => node
            .children_with_tokens()
            .any(|t| t.kind() == SyntaxKind::TOKEN_REC),
        _ => false,
    }
}

/// Whether the binder `node` binds `name`.
fn binds(node: &SyntaxNode, name: &str) -> bool {
    if node.kind() != SyntaxKind::NODE_LAMBDA {
        return node.children().any(|c| match c.kind() {
            SyntaxKind::NODE_ATTRPATH_VALUE => syntax::binding_attrpath(&c)
                .and_then(|p| p.children().next())
                .and_then(|a| syntax::attr_key(&a))
                .is_some_and(|k| k == name),
            SyntaxKind::NODE_INHERIT => c
                .children()
                .filter(|n| n.kind() != SyntaxKind::NODE_INHERIT_FROM)
                .any(|n| syntax::attr_key(&n).as_deref() == Some(name)),
            _ => false,
        });
    }
    node.children().any(|c| match c.kind() {
        SyntaxKind::NODE_IDENT_PARAM => c.text() == name,
        SyntaxKind::NODE_PATTERN => c.children().any(|e| {
            matches!(
                e.kind(),
                SyntaxKind::NODE_PAT_ENTRY | SyntaxKind::NODE_PAT_BIND
            ) && e
                .children()
                .any(|i| i.kind() == SyntaxKind::NODE_IDENT && i.text() == name)
        }),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first undefined variable of `expr` written at `marker` (the
    /// value `0` of `marker = 0;`) in `file`.
    fn undefined(file: &str, marker: &str, expr: &str) -> Option<String> {
        let root = rnix::Root::parse(file).syntax();
        let at = file.find(&format!("{marker} = 0;")).expect("marker") + marker.len() + 3;
        let value = root
            .descendants()
            .find(|n| usize::from(n.text_range().start()) == at && n.text() == "0")
            .expect("value");
        let expr = rnix::Root::parse(expr).syntax();
        Scope::replacing(&value)
            .first_undefined(&expr)
            .map(|(name, _)| name)
    }

    #[test]
    fn names_follow_nix_scoping() {
        let module = "{ config, lib, ... }: let pkgs = 1; in { x = 0; r = rec { a = 1; y = 0; }; w = with lib; { z = 0; }; }";
        assert_eq!(undefined(module, "x", "lib.mkForce true"), None);
        assert_eq!(undefined(module, "x", "pkgs + 1"), None);
        assert_eq!(undefined(module, "x", "a"), Some("a".into()));
        assert_eq!(undefined(module, "y", "a"), None);
        assert_eq!(undefined(module, "z", "anything"), None);
        assert_eq!(undefined(module, "x", "options"), Some("options".into()));
        assert_eq!(undefined(module, "x", "builtins.map toString [ ]"), None);
        assert_eq!(undefined(module, "x", "__add 1 2"), None);
        assert_eq!(undefined(module, "x", "add 1 2"), Some("add".into()));
        // The expression's own bindings.
        assert_eq!(undefined(module, "x", "let q = 1; in q"), None);
        assert_eq!(undefined(module, "x", "q: q"), None);
        assert_eq!(undefined(module, "x", "{ q ? r, r }: q"), None);
        assert_eq!(undefined(module, "x", "with q; r"), Some("q".into()));
        assert_eq!(
            undefined(module, "x", "rec { inherit q; }"),
            Some("q".into())
        );
        assert_eq!(
            undefined(module, "x", "rec { inherit (s) q; s = { }; }"),
            None
        );
        assert_eq!(undefined(module, "x", "{ a = q; }"), Some("q".into()));
        assert_eq!(undefined(module, "x", "{ q = 1; }.q"), None);
        assert_eq!(undefined(module, "x", "let { body = q; q = 1; }"), None);
    }

    #[test]
    fn a_new_binding_sees_the_set_it_goes_into_when_recursive() {
        let file = "{ lib }: rec { a = 1; b = { }; }";
        let root = rnix::Root::parse(file).syntax();
        let set = root
            .descendants()
            .find(|n| n.kind() == SyntaxKind::NODE_ATTR_SET)
            .expect("set");
        let expr = rnix::Root::parse("a + lib.x + c").syntax();
        assert_eq!(
            Scope::inside(&set).first_undefined(&expr).map(|(n, _)| n),
            Some("c".into())
        );
    }
}
