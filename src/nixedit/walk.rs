//! Flatten a module's bindings into full attribute paths.
//!
//! The walker follows the module body through the forms real host files use:
//! one or more function headers (`{ inputs, … }: { config, … }: …`), `let … in`,
//! `with lib;`, parentheses, `lib.mkIf COND { … }`, `lib.mkMerge [ … ]` and the
//! priority wrappers. It records every binding with the full path it defines, so
//! `a.b = { c = 1; }` and `a.b.c = 1` and `a = { b.c = 1; }` all yield `a.b.c`.
//!
//! It also records every attribute set it entered, with the path it sits at:
//! those are the places a missing attribute can be inserted.
//!
//! A walk can be focused (see [`Focus`]): looking one path up in a large file
//! only needs the bindings on the way to it, not all of them.

use std::collections::HashMap;
use std::ops::Range;

use rnix::{SyntaxKind, SyntaxNode};

use super::syntax::{self, Wrapped, PLAIN_PRIORITY};

/// One binding (`keys = value;` or a name in `inherit …;`) with its full path.
#[derive(Clone, Debug)]
pub struct Binding {
    /// Full path from the module's config root.
    pub path: Vec<String>,
    /// How many leading keys of `path` come from enclosing sets, not this binding.
    pub prefix_len: usize,
    /// The `NODE_ATTRPATH_VALUE` (or `NODE_INHERIT`) node.
    pub node: SyntaxNode,
    /// The value as written, or the inherited identifier.
    pub value: SyntaxNode,
    /// The value with priority and condition wrappers peeled off.
    pub inner: SyntaxNode,
    /// Module-system priority (lower wins): 100 plain, 50 mkForce, 1000 mkDefault.
    pub priority: u32,
    /// Under a `mkIf` somewhere on the way.
    pub conditional: bool,
    /// Bindings in the same scope are merged by Nix itself; two leaves with the
    /// same path in one scope are a duplicate-attribute error.
    pub scope: usize,
    /// Whether the walker went into the value (an attribute set or merge).
    pub descended: bool,
    /// Defined by `inherit`.
    pub inherited: bool,
    /// Declared under `options` of an explicit module (not a config value).
    pub declaration: bool,
}

/// An attribute set the walker entered, with the path it defines and the
/// context it was walked in (enough to walk a replacement of it the same way).
#[derive(Clone, Debug)]
pub struct Container {
    pub path: Vec<String>,
    pub node: SyntaxNode,
    pub conditional: bool,
    pub priority: u32,
    pub scope: usize,
    /// Still at the module's top (the body itself, or `config = { … }`).
    pub top: bool,
    pub declaration: bool,
    /// The top set of an explicit module (`{ config = …; options = …; }`):
    /// config values do not go directly into it.
    pub explicit: bool,
}

/// Which part of the module a walk looks at.
#[derive(Clone, Debug, Default)]
pub enum Focus {
    /// Every binding.
    #[default]
    All,
    /// Bindings whose path is a prefix of this path or has it as a prefix:
    /// everything on the way to it and everything under it. Enough to look
    /// the path up, and to see every binding that could collide with one
    /// under it.
    Path(Vec<String>),
    /// Only what encloses this byte range: enough to learn the context of
    /// the attribute set around an edit.
    Around(Range<usize>),
}

#[derive(Clone, Default, Debug)]
pub struct Walk {
    pub bindings: Vec<Binding>,
    pub containers: Vec<Container>,
    next_scope: usize,
    focus: Focus,
}

#[derive(Clone)]
struct Ctx {
    prefix: Vec<String>,
    priority: u32,
    conditional: bool,
    scope: usize,
    /// Still at the module's top: function headers are the module function.
    top: bool,
    declaration: bool,
}

/// Walk the module rooted at `root` (a `NODE_ROOT`).
pub fn walk(root: &SyntaxNode) -> Walk {
    walk_focused(root, Focus::All)
}

/// Walk only the part of the module `focus` names. The bindings and
/// containers found are exactly those of a full walk that the focus admits,
/// in the same order; scope numbers differ but group bindings the same way.
pub fn walk_focused(root: &SyntaxNode, focus: Focus) -> Walk {
    let mut walk = Walk {
        focus,
        ..Walk::default()
    };
    if let Some(body) = root.children().next() {
        let ctx = Ctx {
            prefix: Vec::new(),
            priority: PLAIN_PRIORITY,
            conditional: false,
            scope: 0,
            top: true,
            declaration: false,
        };
        walk.next_scope = 1;
        walk.visit(&body, ctx);
    }
    walk
}

/// Walk `set`, a standalone replacement of the set `at` describes, in `at`'s
/// context. New scopes are numbered above `after` (the walk `at` came from
/// says how many it used), so that they cannot collide with that walk's.
pub fn walk_set_as(set: &SyntaxNode, at: &Container, after: usize) -> Walk {
    let mut walk = Walk {
        next_scope: after,
        ..Walk::default()
    };
    let ctx = Ctx {
        prefix: at.path.clone(),
        priority: at.priority,
        conditional: at.conditional,
        scope: at.scope,
        top: at.top,
        declaration: at.declaration,
    };
    walk.visit(set, ctx);
    walk
}

/// Pairs of bindings with the same path in the same scope, except pairs where
/// both sides were descended into (Nix merges those). Grouped by (scope, path)
/// so it stays linear on files with tens of thousands of bindings.
pub fn duplicate_pairs<'a>(bindings: impl IntoIterator<Item = &'a Binding>) -> usize {
    let mut groups: HashMap<(usize, &[String]), (usize, usize)> = HashMap::new();
    for b in bindings {
        let (all, descended) = groups.entry((b.scope, b.path.as_slice())).or_default();
        *all += 1;
        if b.descended {
            *descended += 1;
        }
    }
    let pairs = |n: usize| n * n.saturating_sub(1) / 2;
    groups
        .values()
        .map(|&(all, descended)| pairs(all) - pairs(descended))
        .sum()
}

impl Walk {
    /// The largest scope number this walk handed out.
    pub fn scopes_used(&self) -> usize {
        self.next_scope
    }

    fn new_scope(&mut self) -> usize {
        self.next_scope += 1;
        self.next_scope
    }

    /// Whether a binding at `path` is in focus (recorded, and descended into).
    fn wants(&self, path: &[String]) -> bool {
        match &self.focus {
            Focus::Path(target) => path.starts_with(target) || target.starts_with(path),
            Focus::All | Focus::Around(_) => true,
        }
    }

    /// For a path focus: whether a binding's first key already shows that its
    /// path is neither on the way to the focus nor under it, so that its other
    /// keys need not be read. (`prefix` is always on the way or under: the
    /// walk only descends into bindings it wants.)
    fn ruled_out_by_first_key(&self, entry: &SyntaxNode, prefix: &[String]) -> bool {
        let Focus::Path(target) = &self.focus else {
            return false;
        };
        let Some(wanted) = target.get(prefix.len()) else {
            return false; // at or under the focus: everything is wanted
        };
        let first = syntax::binding_attrpath(entry).and_then(|p| p.children().next());
        first
            .and_then(|attr| syntax::attr_key(&attr))
            .is_some_and(|key| key != *wanted)
    }

    /// Whether `node` is in focus (for `Around`: it encloses the range).
    fn encloses(&self, node: &SyntaxNode) -> bool {
        match &self.focus {
            Focus::Around(range) => {
                let r = node.text_range();
                usize::from(r.start()) <= range.start && range.end <= usize::from(r.end())
            }
            Focus::All | Focus::Path(_) => true,
        }
    }

    fn visit(&mut self, node: &SyntaxNode, ctx: Ctx) {
        let node = syntax::unparen(node);
        if !self.encloses(&node) {
            return;
        }
        match node.kind() {
            SyntaxKind::NODE_LAMBDA if ctx.top => {
                if let Some(body) = node.children().last() {
                    self.visit(&body, ctx);
                }
            }
            SyntaxKind::NODE_LET_IN | SyntaxKind::NODE_WITH | SyntaxKind::NODE_ASSERT => {
                if let Some(body) = node.children().last() {
                    let scope = self.new_scope();
                    self.visit(&body, Ctx { scope, ..ctx });
                }
            }
            SyntaxKind::NODE_ATTR_SET => self.visit_set(&node, ctx),
            SyntaxKind::NODE_APPLY => self.visit_wrapper(&node, ctx),
            _ => {}
        }
    }

    fn visit_wrapper(&mut self, node: &SyntaxNode, ctx: Ctx) {
        match syntax::as_wrapper(node) {
            Some(Wrapped::Priority { priority, inner }) => {
                let scope = self.new_scope();
                self.visit(
                    &inner,
                    Ctx {
                        priority,
                        scope,
                        ..ctx
                    },
                );
            }
            Some(Wrapped::Conditional { inner }) => {
                let scope = self.new_scope();
                self.visit(
                    &inner,
                    Ctx {
                        conditional: true,
                        scope,
                        ..ctx
                    },
                );
            }
            Some(Wrapped::Merge { items }) => {
                for item in items {
                    let scope = self.new_scope();
                    self.visit(
                        &item,
                        Ctx {
                            scope,
                            ..ctx.clone()
                        },
                    );
                }
            }
            None => {}
        }
    }

    fn visit_set(&mut self, set: &SyntaxNode, ctx: Ctx) {
        // NixOS rule: a module with a top-level `config` or `options` key is
        // in the explicit form, and its config values live under `config`
        // (so new config bindings go there, not into the top-level set).
        let explicit = ctx.top && ctx.prefix.is_empty() && has_top_key(set, &["config", "options"]);
        self.containers.push(Container {
            path: ctx.prefix.clone(),
            node: set.clone(),
            conditional: ctx.conditional,
            priority: ctx.priority,
            scope: ctx.scope,
            top: ctx.top,
            declaration: ctx.declaration,
            explicit,
        });
        for entry in set.children() {
            if !self.encloses(&entry) {
                continue;
            }
            match entry.kind() {
                SyntaxKind::NODE_ATTRPATH_VALUE => self.visit_binding(&entry, &ctx, explicit),
                SyntaxKind::NODE_INHERIT => self.visit_inherit(&entry, &ctx),
                _ => {}
            }
        }
    }

    fn visit_binding(&mut self, entry: &SyntaxNode, ctx: &Ctx, explicit: bool) {
        if !explicit && self.ruled_out_by_first_key(entry, &ctx.prefix) {
            return;
        }
        let (Some(keys), Some(value)) = (syntax::binding_keys(entry), syntax::binding_value(entry))
        else {
            return; // a key computed at evaluation time: nothing static to say
        };
        let mut path = ctx.prefix.clone();
        let mut prefix_len = ctx.prefix.len();
        let mut declaration = ctx.declaration;
        let mut own_keys = keys.as_slice();
        if explicit && own_keys.first().map(String::as_str) == Some("config") {
            own_keys = &own_keys[1..];
            prefix_len = 0;
        } else if explicit && own_keys.first().map(String::as_str) == Some("options") {
            declaration = true;
        }
        path.extend(own_keys.iter().cloned());
        if !self.wants(&path) {
            return;
        }
        let (inner, priority, conditional) = peel(&value, ctx.priority, ctx.conditional);
        let descend = matches!(syntax::unparen(&inner).kind(), SyntaxKind::NODE_ATTR_SET)
            || matches!(syntax::as_wrapper(&inner), Some(Wrapped::Merge { .. }));
        if !path.is_empty() {
            self.bindings.push(Binding {
                path: path.clone(),
                prefix_len,
                node: entry.clone(),
                value: value.clone(),
                inner: inner.clone(),
                priority,
                conditional,
                scope: ctx.scope,
                descended: descend,
                inherited: false,
                declaration,
            });
        }
        if descend {
            // A nested set bound directly merges with its siblings' paths in
            // Nix, so it keeps the scope; wrappers start their own scope.
            let scope = if value == inner {
                ctx.scope
            } else {
                self.new_scope()
            };
            let child = Ctx {
                prefix: path,
                priority,
                conditional,
                scope,
                top: ctx.top && explicit && own_keys.is_empty(),
                declaration,
            };
            self.visit(&inner, child);
        }
    }

    fn visit_inherit(&mut self, entry: &SyntaxNode, ctx: &Ctx) {
        for name in entry
            .children()
            .filter(|c| c.kind() != SyntaxKind::NODE_INHERIT_FROM)
        {
            let Some(key) = syntax::attr_key(&name) else {
                continue;
            };
            let path: Vec<String> = ctx.prefix.iter().cloned().chain([key]).collect();
            if !self.wants(&path) {
                continue;
            }
            self.bindings.push(Binding {
                path,
                prefix_len: ctx.prefix.len(),
                node: entry.clone(),
                value: name.clone(),
                inner: name.clone(),
                priority: ctx.priority,
                conditional: ctx.conditional,
                scope: ctx.scope,
                descended: false,
                inherited: true,
                declaration: ctx.declaration,
            });
        }
    }
}

/// Peel `mkForce`/`mkDefault`/`mkOverride N`/`mkIf c` off a value, tracking
/// the resulting priority and whether it is conditional.
pub fn peel(
    value: &SyntaxNode,
    mut priority: u32,
    mut conditional: bool,
) -> (SyntaxNode, u32, bool) {
    let mut inner = syntax::unparen(value);
    loop {
        match syntax::as_wrapper(&inner) {
            Some(Wrapped::Priority {
                priority: p,
                inner: next,
            }) => {
                priority = p;
                inner = syntax::unparen(&next);
            }
            Some(Wrapped::Conditional { inner: next }) => {
                conditional = true;
                inner = syntax::unparen(&next);
            }
            _ => return (inner, priority, conditional),
        }
    }
}

fn has_top_key(set: &SyntaxNode, names: &[&str]) -> bool {
    set.children()
        .filter(|c| c.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
        .filter_map(|c| syntax::binding_keys(&c))
        .any(|keys| keys.first().is_some_and(|k| names.contains(&k.as_str())))
}
