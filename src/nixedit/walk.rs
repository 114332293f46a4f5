//! Flatten a file's bindings into full attribute paths.
//!
//! Must never recurse (a tree may be thousands of levels deep) and never
//! report a binding as defining a path when another one hides it.
//!
//! The walker follows the body through the forms real files use: function
//! headers (`{ inputs, … }: { config, … }: …`), `let … in`, `with lib;`,
//! parentheses, `a // b` (the right operand's attributes win, as in Nix),
//! `lib.mkIf COND { … }`, `lib.mkMerge [ … ]` and the priority wrappers. It
//! records every binding with the full path it defines, so `a.b = { c = 1; }`
//! and `a.b.c = 1` and `a = { b.c = 1; }` all yield `a.b.c`.
//!
//! Paths are the file's own attribute paths ([`Reading::Attrs`]), or NixOS
//! option paths ([`Reading::Option`]): a module that declares `options` sets
//! its values under `config = { … }`, which that reading looks through.
//!
//! It also records every attribute set it entered (the places a missing
//! attribute can be inserted), what it could not see into (a variable or a
//! call merged with `//`, a dynamic key: either may define any path below),
//! and the bindings a `//` hides. A walk can be focused on one path (see
//! [`Focus`]): looking a path up in a large file only needs the bindings on
//! the way to it.

use std::collections::HashSet;
use std::rc::Rc;

use rnix::{SyntaxKind, SyntaxNode, SyntaxNodeChildren};

use super::syntax::{self, Wrapped, PLAIN_PRIORITY};

/// How paths are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reading {
    /// The file's own attribute paths: `config.x` is `config.x`.
    #[default]
    Attrs,
    /// NixOS option paths: in a module with `options` or `config` at its
    /// top, `config.x` is the option `x`, and `options.…` are declarations.
    Option,
}

/// One binding (`keys = value;` or a name in `inherit …;`) with its full path.
#[derive(Clone, Debug)]
pub struct Binding {
    /// Full path from the file's (or module's config) root.
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
    /// The conditions of those `mkIf`s, outermost first.
    pub conditions: Rc<Vec<SyntaxNode>>,
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

/// A binding that the right operand of a `//` hides (or may hide).
#[derive(Clone, Debug)]
pub struct Shadowed {
    pub binding: Binding,
    /// The `//` expression.
    pub update: SyntaxNode,
    /// How many keys of the binding's path lead to the `//`.
    pub depth: usize,
    /// The right operand, when nixflip cannot see what it defines.
    pub opaque: Option<SyntaxNode>,
}

/// Something at `path` that may define any attribute below it, but that
/// nixflip cannot read: a variable or call merged with `//`, a binding with a
/// dynamic key (`${name} = …;`).
#[derive(Clone, Debug)]
pub struct Opaque {
    pub path: Vec<String>,
    pub node: SyntaxNode,
    /// Keys (at `path.len()`) that a `//` to its right defines: those it
    /// cannot affect.
    pub except: Vec<Rc<HashSet<String>>>,
}

impl Opaque {
    /// Whether it may define `keys` (which lie under its path).
    pub fn may_define(&self, keys: &[String]) -> bool {
        keys.len() > self.path.len()
            && keys.starts_with(&self.path)
            && !self
                .except
                .iter()
                .any(|e| e.contains(&keys[self.path.len()]))
    }
}

/// An attribute set the walker entered, with the path it defines and the
/// context it was walked in.
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
    /// The top set of an explicit module (`{ config = …; options = …; }`)
    /// in the option reading: config values do not go directly into it.
    pub explicit: bool,
    /// Keys a `//` to its right defines: a key inserted here among those
    /// would be hidden. `None` in the list: the right operand is opaque.
    pub hidden: Vec<Option<Rc<HashSet<String>>>>,
}

impl Container {
    /// Whether a new binding for `key` here would be visible.
    pub fn accepts(&self, key: &str) -> bool {
        self.hidden
            .iter()
            .all(|h| h.as_ref().is_some_and(|keys| !keys.contains(key)))
    }
}

/// Which part of the file a walk looks at.
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
}

#[derive(Clone, Default, Debug)]
pub struct Walk {
    pub bindings: Vec<Binding>,
    pub containers: Vec<Container>,
    pub shadowed: Vec<Shadowed>,
    pub opaque: Vec<Opaque>,
    next_scope: usize,
    focus: Focus,
    reading: Reading,
}

#[derive(Clone, Debug)]
struct Ctx {
    prefix: Vec<String>,
    priority: u32,
    conditions: Rc<Vec<SyntaxNode>>,
    scope: usize,
    /// Still at the module's top: function headers are the module function.
    top: bool,
    declaration: bool,
}

/// Where each list of a walk stood at some moment.
#[derive(Clone, Copy, Debug)]
struct Marks {
    bindings: usize,
    containers: usize,
    opaque: usize,
}

/// A `//` being walked: its left operand's results get hidden by the keys
/// its right operand defines.
struct Update {
    node: SyntaxNode,
    depth: usize,
    start: Marks,
    mid: Option<Marks>,
    right: SyntaxNode,
}

enum Task {
    Visit(SyntaxNode, Rc<Ctx>),
    /// The remaining entries of an attribute set.
    Entries {
        entries: SyntaxNodeChildren,
        ctx: Rc<Ctx>,
        explicit: bool,
    },
    /// Between the operands of the `//` with this index.
    Mid(usize),
    /// After both operands of the `//` with this index.
    EndUpdate(usize),
}

/// Walk the file rooted at `root` (a `NODE_ROOT`).
pub fn walk(root: &SyntaxNode, reading: Reading) -> Walk {
    walk_focused(root, reading, Focus::All)
}

/// Walk only the part of the file `focus` names. The bindings and
/// containers found are exactly those of a full walk that the focus admits,
/// in the same order; scope numbers differ but group bindings the same way.
pub fn walk_focused(root: &SyntaxNode, reading: Reading, focus: Focus) -> Walk {
    let mut walk = Walk {
        focus,
        reading,
        next_scope: 1,
        ..Walk::default()
    };
    let Some(body) = root.children().next() else {
        return walk;
    };
    let ctx = Rc::new(Ctx {
        prefix: Vec::new(),
        priority: PLAIN_PRIORITY,
        conditions: Rc::new(Vec::new()),
        scope: 0,
        top: true,
        declaration: false,
    });
    let mut tasks = vec![Task::Visit(body, ctx)];
    let mut updates: Vec<Update> = Vec::new();
    while let Some(task) = tasks.pop() {
        match task {
            Task::Visit(node, ctx) => walk.visit(&node, ctx, &mut tasks, &mut updates),
            Task::Entries {
                mut entries,
                ctx,
                explicit,
            } => {
                if let Some(entry) = entries.next() {
                    tasks.push(Task::Entries {
                        entries,
                        ctx: Rc::clone(&ctx),
                        explicit,
                    });
                    match entry.kind() {
                        SyntaxKind::NODE_ATTRPATH_VALUE => {
                            walk.visit_binding(&entry, &ctx, explicit, &mut tasks)
                        }
                        SyntaxKind::NODE_INHERIT => walk.visit_inherit(&entry, &ctx),
                        _ => {}
                    }
                }
            }
            Task::Mid(i) => {
                if let Some(update) = updates.get_mut(i) {
                    update.mid = Some(walk.marks());
                }
            }
            Task::EndUpdate(i) => {
                if let Some(update) = updates.get(i) {
                    walk.end_update(update);
                }
            }
        }
    }
    walk
}

impl Walk {
    /// The largest scope number this walk handed out.
    pub fn scopes_used(&self) -> usize {
        self.next_scope
    }

    pub fn reading(&self) -> Reading {
        self.reading
    }

    fn new_scope(&mut self) -> usize {
        self.next_scope += 1;
        self.next_scope
    }

    fn marks(&self) -> Marks {
        Marks {
            bindings: self.bindings.len(),
            containers: self.containers.len(),
            opaque: self.opaque.len(),
        }
    }

    /// Whether a binding at `path` is in focus (recorded, and descended into).
    fn wants(&self, path: &[String]) -> bool {
        match &self.focus {
            Focus::Path(target) => path.starts_with(target) || target.starts_with(path),
            Focus::All => true,
        }
    }

    /// For a path focus: whether a binding's first key already shows that its
    /// path is neither on the way to the focus nor under it, so that its other
    /// keys need not be read.
    fn ruled_out_by_first_key(&self, entry: &SyntaxNode, prefix: &[String]) -> bool {
        let Focus::Path(target) = &self.focus else {
            return false;
        };
        let Some(wanted) = target.get(prefix.len()) else {
            return false; // at or under the focus: everything is wanted
        };
        let first = syntax::binding_attrpath(entry).and_then(|p| p.children().next());
        first.is_some_and(|attr| syntax::attr_is_static(&attr) && !syntax::attr_is(&attr, wanted))
    }

    fn visit(
        &mut self,
        node: &SyntaxNode,
        ctx: Rc<Ctx>,
        tasks: &mut Vec<Task>,
        updates: &mut Vec<Update>,
    ) {
        let node = syntax::unparen(node);
        match node.kind() {
            SyntaxKind::NODE_LAMBDA if ctx.top => {
                if let Some(body) = node.children().last() {
                    tasks.push(Task::Visit(body, ctx));
                }
            }
            SyntaxKind::NODE_LET_IN | SyntaxKind::NODE_WITH | SyntaxKind::NODE_ASSERT => {
                if let Some(body) = node.children().last() {
                    let scope = self.new_scope();
                    tasks.push(Task::Visit(
                        body,
                        Rc::new(Ctx {
                            scope,
                            ..(*ctx).clone()
                        }),
                    ));
                }
            }
            // `let { …; body = X; }` is X, with the other bindings in scope.
            SyntaxKind::NODE_LEGACY_LET => {
                if let Some(body) = legacy_let_body(&node) {
                    let scope = self.new_scope();
                    tasks.push(Task::Visit(
                        body,
                        Rc::new(Ctx {
                            scope,
                            ..(*ctx).clone()
                        }),
                    ));
                }
            }
            SyntaxKind::NODE_ATTR_SET => self.visit_set(&node, ctx, tasks),
            SyntaxKind::NODE_APPLY => self.visit_wrapper(&node, &ctx, tasks),
            SyntaxKind::NODE_BIN_OP if is_update(&node) => {
                self.visit_update(&node, &ctx, tasks, updates)
            }
            _ => {}
        }
    }

    /// `left // right`: both operands are walked (each its own scope); once
    /// both are done, what the right one defines hides the left one's.
    fn visit_update(
        &mut self,
        node: &SyntaxNode,
        ctx: &Rc<Ctx>,
        tasks: &mut Vec<Task>,
        updates: &mut Vec<Update>,
    ) {
        let mut operands = node.children();
        let (Some(left), Some(right)) = (operands.next(), operands.next()) else {
            return;
        };
        let index = updates.len();
        updates.push(Update {
            node: node.clone(),
            depth: ctx.prefix.len(),
            start: self.marks(),
            mid: None,
            right: right.clone(),
        });
        let left_ctx = Rc::new(Ctx {
            scope: self.new_scope(),
            top: false,
            ..(**ctx).clone()
        });
        let right_ctx = Rc::new(Ctx {
            scope: self.new_scope(),
            top: false,
            ..(**ctx).clone()
        });
        tasks.push(Task::EndUpdate(index));
        self.push_operand(&right, right_ctx, tasks);
        tasks.push(Task::Mid(index));
        self.push_operand(&left, left_ctx, tasks);
    }

    /// An operand of `//`: walked when it is an attribute set (or another
    /// `//`), recorded as opaque otherwise.
    fn push_operand(&mut self, operand: &SyntaxNode, ctx: Rc<Ctx>, tasks: &mut Vec<Task>) {
        let inner = see_through(operand);
        let transparent = inner.kind() == SyntaxKind::NODE_ATTR_SET
            || (inner.kind() == SyntaxKind::NODE_BIN_OP && is_update(&inner));
        if transparent {
            tasks.push(Task::Visit(operand.clone(), ctx));
        } else if self.wants(&ctx.prefix) {
            self.opaque.push(Opaque {
                path: ctx.prefix.clone(),
                node: operand.clone(),
                except: Vec::new(),
            });
        }
    }

    fn end_update(&mut self, update: &Update) {
        let Some(mid) = update.mid else { return };
        let depth = update.depth;
        // What the right operand defines, one key below the `//`.
        let mut keys: HashSet<String> = HashSet::new();
        let mut opaque = false;
        for b in &self.bindings[mid.bindings..] {
            if let Some(k) = b.path.get(depth) {
                keys.insert(k.clone());
            }
        }
        for o in &self.opaque[mid.opaque..] {
            match o.path.get(depth) {
                Some(k) => {
                    keys.insert(k.clone());
                }
                None => opaque = true,
            }
        }
        let opaque_node = opaque.then(|| update.right.clone());
        let keys = Rc::new(keys);
        let hides = |path: &[String]| -> bool {
            path.len() > depth && (opaque || keys.contains(&path[depth]))
        };
        // Bindings of the left operand that the right one hides.
        let right = self.bindings.split_off(mid.bindings);
        let left = self.bindings.split_off(update.start.bindings);
        for binding in left {
            if hides(&binding.path) {
                self.shadowed.push(Shadowed {
                    binding,
                    update: update.node.clone(),
                    depth,
                    opaque: opaque_node.clone(),
                });
            } else {
                self.bindings.push(binding);
            }
        }
        self.bindings.extend(right);
        // Sets of the left operand: hidden ones cannot take new bindings; the
        // operand's own set only keys the right one does not define.
        let right = self.containers.split_off(mid.containers);
        let left = self.containers.split_off(update.start.containers);
        for mut container in left {
            if container.path.len() == depth {
                container.hidden.push((!opaque).then(|| Rc::clone(&keys)));
                self.containers.push(container);
            } else if !hides(&container.path) {
                self.containers.push(container);
            }
        }
        self.containers.extend(right);
        // Opaque parts of the left operand: hidden under the right's keys.
        let right = self.opaque.split_off(mid.opaque);
        let left = self.opaque.split_off(update.start.opaque);
        for mut o in left {
            if o.path.len() == depth {
                if !opaque {
                    o.except.push(Rc::clone(&keys));
                }
                self.opaque.push(o);
            } else if opaque || !keys.contains(&o.path[depth]) {
                self.opaque.push(o);
            }
        }
        self.opaque.extend(right);
    }

    fn visit_wrapper(&mut self, node: &SyntaxNode, ctx: &Rc<Ctx>, tasks: &mut Vec<Task>) {
        match syntax::as_wrapper(node) {
            Some(Wrapped::Priority { priority, inner }) => {
                let scope = self.new_scope();
                tasks.push(Task::Visit(
                    inner,
                    Rc::new(Ctx {
                        priority,
                        scope,
                        ..(**ctx).clone()
                    }),
                ));
            }
            Some(Wrapped::Conditional { condition, inner }) => {
                let scope = self.new_scope();
                let mut conditions = (*ctx.conditions).clone();
                conditions.push(condition);
                tasks.push(Task::Visit(
                    inner,
                    Rc::new(Ctx {
                        conditions: Rc::new(conditions),
                        scope,
                        ..(**ctx).clone()
                    }),
                ));
            }
            Some(Wrapped::Merge { items }) => {
                for item in items.into_iter().rev() {
                    let scope = self.new_scope();
                    tasks.push(Task::Visit(
                        item,
                        Rc::new(Ctx {
                            scope,
                            ..(**ctx).clone()
                        }),
                    ));
                }
            }
            None => {}
        }
    }

    fn visit_set(&mut self, set: &SyntaxNode, ctx: Rc<Ctx>, tasks: &mut Vec<Task>) {
        // NixOS rule: a module with a top-level `config` or `options` key is
        // in the explicit form, and its config values live under `config`
        // (so new config bindings go there, not into the top-level set).
        let explicit = self.reading == Reading::Option
            && ctx.top
            && ctx.prefix.is_empty()
            && has_top_key(set, &["config", "options"]);
        if self.wants(&ctx.prefix) {
            self.containers.push(Container {
                path: ctx.prefix.clone(),
                node: set.clone(),
                conditional: !ctx.conditions.is_empty(),
                priority: ctx.priority,
                scope: ctx.scope,
                top: ctx.top,
                declaration: ctx.declaration,
                explicit,
                hidden: Vec::new(),
            });
        }
        tasks.push(Task::Entries {
            entries: set.children(),
            ctx,
            explicit,
        });
    }

    fn visit_binding(
        &mut self,
        entry: &SyntaxNode,
        ctx: &Rc<Ctx>,
        explicit: bool,
        tasks: &mut Vec<Task>,
    ) {
        if !explicit && self.ruled_out_by_first_key(entry, &ctx.prefix) {
            return;
        }
        let Some(value) = syntax::binding_value(entry) else {
            return;
        };
        let Some(keys) = syntax::binding_keys(entry) else {
            // A key computed at evaluation time may define anything here.
            self.dynamic_binding(entry, ctx, explicit);
            return;
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
        let (inner, priority, conditions) = peel(&value, ctx.priority, &ctx.conditions);
        let descend = matches!(syntax::unparen(&inner).kind(), SyntaxKind::NODE_ATTR_SET)
            || matches!(syntax::as_wrapper(&inner), Some(Wrapped::Merge { .. }))
            || is_update(&syntax::unparen(&inner));
        if !path.is_empty() {
            self.bindings.push(Binding {
                path: path.clone(),
                prefix_len,
                node: entry.clone(),
                value: value.clone(),
                inner: inner.clone(),
                priority,
                conditional: !conditions.is_empty(),
                conditions: Rc::clone(&conditions),
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
                conditions,
                scope,
                top: ctx.top && explicit && own_keys.is_empty(),
                declaration,
            };
            tasks.push(Task::Visit(inner, Rc::new(child)));
        }
    }

    /// `a.${name}.b = …;`: everything from the dynamic key on is unknown.
    fn dynamic_binding(&mut self, entry: &SyntaxNode, ctx: &Ctx, explicit: bool) {
        let Some(attrpath) = syntax::binding_attrpath(entry) else {
            return;
        };
        let mut path = ctx.prefix.clone();
        for (i, attr) in attrpath.children().enumerate() {
            match syntax::attr_key(&attr) {
                Some(key) if i == 0 && explicit && key == "config" => {}
                Some(key) => path.push(key),
                None => break,
            }
        }
        if self.wants(&path) {
            self.opaque.push(Opaque {
                path,
                node: entry.clone(),
                except: Vec::new(),
            });
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
                conditional: !ctx.conditions.is_empty(),
                conditions: Rc::clone(&ctx.conditions),
                scope: ctx.scope,
                descended: false,
                inherited: true,
                declaration: ctx.declaration,
            });
        }
    }
}

/// Whether `node` is `a // b`.
pub fn is_update(node: &SyntaxNode) -> bool {
    node.kind() == SyntaxKind::NODE_BIN_OP
        && node
            .children_with_tokens()
            .any(|t| t.kind() == SyntaxKind::TOKEN_UPDATE)
}

/// The value of a legacy `let { … }`: its binding written `body = …;`.
fn legacy_let_body(node: &SyntaxNode) -> Option<SyntaxNode> {
    node.children()
        .filter(|entry| entry.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
        .find(|entry| {
            syntax::binding_attrpath(entry).is_some_and(|path| {
                let mut keys = path.children();
                keys.next().is_some_and(|k| syntax::attr_is(&k, "body")) && keys.next().is_none()
            })
        })
        .and_then(|entry| syntax::binding_value(&entry))
}

/// An expression through parentheses, `let … in` and `with …;`.
fn see_through(node: &SyntaxNode) -> SyntaxNode {
    let mut node = syntax::unparen(node);
    while matches!(node.kind(), SyntaxKind::NODE_LET_IN | SyntaxKind::NODE_WITH) {
        match node.children().last() {
            Some(body) => node = syntax::unparen(&body),
            None => break,
        }
    }
    node
}

/// Peel `mkForce`/`mkDefault`/`mkOverride N`/`mkIf c` off a value, tracking
/// the resulting priority and the conditions it is under.
pub fn peel(
    value: &SyntaxNode,
    mut priority: u32,
    conditions: &Rc<Vec<SyntaxNode>>,
) -> (SyntaxNode, u32, Rc<Vec<SyntaxNode>>) {
    let mut inner = syntax::unparen(value);
    let mut conditions = Rc::clone(conditions);
    loop {
        match syntax::as_wrapper(&inner) {
            Some(Wrapped::Priority {
                priority: p,
                inner: next,
            }) => {
                priority = p;
                inner = syntax::unparen(&next);
            }
            Some(Wrapped::Conditional {
                condition,
                inner: next,
            }) => {
                let mut more = (*conditions).clone();
                more.push(condition);
                conditions = Rc::new(more);
                inner = syntax::unparen(&next);
            }
            _ => return (inner, priority, conditions),
        }
    }
}

fn has_top_key(set: &SyntaxNode, names: &[&str]) -> bool {
    set.children()
        .filter(|c| c.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
        .filter_map(|c| syntax::binding_keys(&c))
        .any(|keys| keys.first().is_some_and(|k| names.contains(&k.as_str())))
}
