//! A small reader of the Nix expressions in `flake.nix` and the files it
//! imports, enough to learn which files an output refers to: `let` bindings,
//! functions applied to literal arguments (`host "x86_64-linux" ./a.nix`,
//! `import ./dir { inherit flake; system = "…"; }`), paths built from strings
//! (`./${name}.nix` with `name = builtins.baseNameOf ./.;`), `self` and
//! `self.nixosModules.NAME`, and sets joined with `//`.
//!
//! It must never run anything or guess: whatever it cannot follow is
//! [`V::Unknown`], and its work is bounded (a step budget and a depth limit),
//! so a recursive or huge expression ends as "unknown", never as a hang.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use rnix::{SyntaxKind as K, SyntaxNode};

use crate::cluster::discover::Sources;
use crate::nixedit::syntax;

/// A value as far as the reader can tell.
#[derive(Clone)]
pub enum V {
    /// A path inside the flake, relative to its root (`""` is the root).
    Path(PathBuf),
    Str(String),
    /// `self`: the flake (its root path, and its outputs).
    Flake,
    Set(Rc<Attrs>),
    Lambda(Rc<Closure>),
    /// `import FILE` not yet applied: the value of that file.
    File(PathBuf),
    /// `self.nixosModules.NAME`.
    Module(String),
    /// `import`, `builtins`, `baseNameOf`, …
    Builtin(&'static str),
    Unknown,
}

/// A function and the scope it was written in.
pub struct Closure {
    pub node: SyntaxNode,
    env: Env,
    pub file: PathBuf,
}

/// An attribute set: each name's value (unevaluated) and where it is bound.
pub struct Attrs {
    pub map: BTreeMap<String, Attr>,
    /// The file the set is written in.
    pub file: PathBuf,
}

pub struct Attr {
    pub slot: Slot,
    /// The binding (`NODE_ATTRPATH_VALUE` or `NODE_INHERIT`), when written.
    pub binding: Option<SyntaxNode>,
}

/// A value not yet evaluated.
#[derive(Clone)]
pub enum Slot {
    Value(V),
    Thunk(Thunk),
    /// `inherit (FROM) NAME;`
    InheritFrom(Thunk, String),
}

#[derive(Clone)]
pub struct Thunk {
    pub node: SyntaxNode,
    env: Env,
    pub file: PathBuf,
}

impl Thunk {
    /// Another expression written in the same scope.
    pub fn with_node(&self, node: SyntaxNode) -> Thunk {
        Thunk {
            node,
            env: self.env.clone(),
            file: self.file.clone(),
        }
    }
}

/// The variables in scope (`None`: the top of a file).
pub type Env = Option<Rc<Scope>>;

pub struct Scope {
    kind: ScopeKind,
    parent: Env,
    file: PathBuf,
}

enum ScopeKind {
    /// A `let … in` or `rec { … }`: its bindings see each other.
    Rec(SyntaxNode),
    Vars(HashMap<String, Slot>),
}

/// What an expression refers to.
#[derive(Default, Debug)]
pub struct Refs {
    /// Paths inside the flake, in order, without repeats (a directory
    /// imported with `import DIR` is its `default.nix`).
    pub paths: Vec<PathBuf>,
    /// `self.nixosModules` names.
    pub modules: Vec<String>,
    /// Static strings met on the way (a system such as `x86_64-linux`).
    pub strings: Vec<String>,
}

impl Refs {
    fn add(&mut self, v: &V) {
        match v {
            V::Path(p) | V::File(p) => push_new(&mut self.paths, p),
            V::Module(m) => push_new(&mut self.modules, m),
            V::Str(s) => self.strings.push(s.clone()),
            // A module function written in a file of its own.
            V::Lambda(c) => push_new(&mut self.paths, &c.file),
            _ => {}
        }
    }
}

fn push_new<T: Clone + PartialEq>(list: &mut Vec<T>, item: &T) {
    if !list.contains(item) {
        list.push(item.clone());
    }
}

/// Enough for any entry written by hand (the budget is per entry, see
/// [`Reader::refuel`]); a recursive one ends as "unknown" when it is spent.
const STEPS: u32 = 200_000;
const MAX_DEPTH: u32 = 96;

pub struct Reader<'a> {
    sources: &'a Sources,
    steps: Cell<u32>,
    depth: Cell<u32>,
}

/// `dir/rel` normalised, or `None` when it leaves the flake.
pub fn join_inside(dir: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in dir.join(rel).components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(p) => out.push(p),
            _ => return None,
        }
    }
    Some(out)
}

fn dir_of(file: &Path) -> &Path {
    file.parent().unwrap_or(Path::new(""))
}

impl<'a> Reader<'a> {
    pub fn new(sources: &'a Sources) -> Reader<'a> {
        Reader {
            sources,
            steps: Cell::new(STEPS),
            depth: Cell::new(0),
        }
    }

    /// A fresh budget: each entry of a big flake gets the whole of it.
    pub fn refuel(&self) {
        self.steps.set(STEPS);
    }

    /// One unit of work; `false` when the budget is spent or the reader is
    /// too deep (then the caller answers "unknown").
    fn enter(&self) -> bool {
        let steps = self.steps.get();
        if steps == 0 || self.depth.get() >= MAX_DEPTH {
            return false;
        }
        self.steps.set(steps - 1);
        self.depth.set(self.depth.get() + 1);
        true
    }

    fn leave(&self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }

    /// The expression of a file of the flake (`None`: no such `.nix` file,
    /// or it does not parse).
    pub fn file_expr(&self, file: &Path) -> Option<SyntaxNode> {
        self.sources.get(file)?.root().children().next()
    }

    /// What `import P` reads: `P` itself, or `P/default.nix` for a directory.
    pub fn import_target(&self, path: &Path) -> PathBuf {
        if self.sources.text(path).is_some() {
            return path.to_path_buf();
        }
        let default = path.join("default.nix");
        if self.sources.text(&default).is_some() {
            default
        } else {
            path.to_path_buf()
        }
    }

    /// The value of a file's whole expression.
    pub fn eval_file(&self, file: &Path) -> V {
        match self.file_expr(file) {
            Some(expr) => self.eval(&expr, &None, file),
            None => V::Unknown,
        }
    }

    pub fn force(&self, slot: &Slot) -> V {
        match slot {
            Slot::Value(v) => v.clone(),
            Slot::Thunk(t) => self.eval(&t.node, &t.env, &t.file),
            Slot::InheritFrom(from, name) => {
                let base = self.eval(&from.node, &from.env, &from.file);
                self.select_key(base, name)
            }
        }
    }

    pub fn eval_thunk(&self, thunk: &Thunk) -> V {
        self.eval(&thunk.node, &thunk.env, &thunk.file)
    }

    /// The expression `name` is bound to in the scope of `thunk`, when it
    /// is one (not a function argument).
    pub fn bound_thunk(&self, thunk: &Thunk, name: &str) -> Option<Thunk> {
        match self.lookup(&thunk.env, name)? {
            Slot::Thunk(t) => Some(t),
            _ => None,
        }
    }

    /// A thunk for an expression written in `file` at the top level.
    pub fn top_thunk(node: SyntaxNode, file: &Path) -> Thunk {
        Thunk {
            node,
            env: None,
            file: file.to_path_buf(),
        }
    }

    fn lookup(&self, env: &Env, name: &str) -> Option<Slot> {
        let mut scope = env.clone();
        while let Some(s) = scope {
            match &s.kind {
                ScopeKind::Vars(vars) => {
                    if let Some(slot) = vars.get(name) {
                        return Some(slot.clone());
                    }
                }
                ScopeKind::Rec(node) => {
                    let here = Some(Rc::clone(&s));
                    if let Some(slot) = self.binding_in(node, name, &here, &s.file, &s.parent) {
                        return Some(slot);
                    }
                }
            }
            scope = s.parent.clone();
        }
        None
    }

    /// The value `name` is bound to in the bindings of `node` (a `let` or a
    /// recursive set): values see `here`, `inherit x;` sees `parent`.
    fn binding_in(
        &self,
        node: &SyntaxNode,
        name: &str,
        here: &Env,
        file: &Path,
        parent: &Env,
    ) -> Option<Slot> {
        for child in node.children() {
            match child.kind() {
                K::NODE_ATTRPATH_VALUE => {
                    let Some(keys) = syntax::binding_keys(&child) else {
                        continue;
                    };
                    if keys.first().map(String::as_str) != Some(name) {
                        continue;
                    }
                    if keys.len() > 1 {
                        // `a.b = …;` in a let: a set this reader does not build.
                        return Some(Slot::Value(V::Unknown));
                    }
                    let Some(value) = syntax::binding_value(&child) else {
                        return Some(Slot::Value(V::Unknown));
                    };
                    return Some(Slot::Thunk(Thunk {
                        node: value,
                        env: here.clone(),
                        file: file.to_path_buf(),
                    }));
                }
                K::NODE_INHERIT => {
                    if let Some(slot) = self.inherited(&child, name, here, parent, file) {
                        return Some(slot);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// `inherit a b;` (from `parent`) or `inherit (e) a b;` (`e` in `here`).
    fn inherited(
        &self,
        node: &SyntaxNode,
        name: &str,
        here: &Env,
        parent: &Env,
        file: &Path,
    ) -> Option<Slot> {
        let named = node
            .children()
            .filter(|c| c.kind() != K::NODE_INHERIT_FROM)
            .any(|c| syntax::attr_key(&c).as_deref() == Some(name));
        if !named {
            return None;
        }
        match node.children().find(|c| c.kind() == K::NODE_INHERIT_FROM) {
            Some(from) => {
                let expr = from.children().next()?;
                Some(Slot::InheritFrom(
                    Thunk {
                        node: expr,
                        env: here.clone(),
                        file: file.to_path_buf(),
                    },
                    name.to_string(),
                ))
            }
            None => Some(
                self.lookup(parent, name)
                    .unwrap_or_else(|| builtin(name).map_or(Slot::Value(V::Unknown), Slot::Value)),
            ),
        }
    }

    /// Evaluate `node` (written in `file`) as far as the reader can.
    pub fn eval(&self, node: &SyntaxNode, env: &Env, file: &Path) -> V {
        if !self.enter() {
            return V::Unknown;
        }
        let v = self.eval_inner(node, env, file);
        self.leave();
        v
    }

    fn eval_inner(&self, node: &SyntaxNode, env: &Env, file: &Path) -> V {
        match node.kind() {
            K::NODE_PAREN => match node.children().next() {
                Some(inner) => self.eval(&inner, env, file),
                None => V::Unknown,
            },
            K::NODE_PATH_REL => self.path(node, env, file).map_or(V::Unknown, V::Path),
            // Outside the flake: kept as the string it stands for.
            K::NODE_PATH_ABS if node.children().next().is_none() => V::Str(node.text().to_string()),
            K::NODE_STRING => self.string(node, env, file),
            K::NODE_IDENT => {
                let name = node.text().to_string();
                match self.lookup(env, &name) {
                    Some(slot) => self.force(&slot),
                    None => builtin(&name).unwrap_or(V::Unknown),
                }
            }
            K::NODE_SELECT => self.select(node, env, file),
            K::NODE_BIN_OP => self.bin_op(node, env, file),
            K::NODE_APPLY => {
                let (head, args) = spine(node);
                let mut f = self.eval(&head, env, file);
                for arg in args {
                    let thunk = Slot::Thunk(Thunk {
                        node: arg,
                        env: env.clone(),
                        file: file.to_path_buf(),
                    });
                    f = self.apply(f, thunk);
                }
                f
            }
            K::NODE_LET_IN => {
                let scope = Some(Rc::new(Scope {
                    kind: ScopeKind::Rec(node.clone()),
                    parent: env.clone(),
                    file: file.to_path_buf(),
                }));
                match body_of(node) {
                    Some(body) => self.eval(&body, &scope, file),
                    None => V::Unknown,
                }
            }
            K::NODE_ATTR_SET => V::Set(Rc::new(self.attrs(node, env, file))),
            K::NODE_LAMBDA => V::Lambda(Rc::new(Closure {
                node: node.clone(),
                env: env.clone(),
                file: file.to_path_buf(),
            })),
            K::NODE_WITH | K::NODE_ASSERT => match node.children().last() {
                Some(body) => self.eval(&body, env, file),
                None => V::Unknown,
            },
            _ => V::Unknown,
        }
    }

    /// A relative path literal, its interpolations read as strings.
    fn path(&self, node: &SyntaxNode, env: &Env, file: &Path) -> Option<PathBuf> {
        let mut text = String::new();
        for element in node.children_with_tokens() {
            match element {
                rnix::NodeOrToken::Token(t) => text.push_str(t.text()),
                rnix::NodeOrToken::Node(n) if n.kind() == K::NODE_INTERPOL => {
                    match self.eval(&n.children().next()?, env, file) {
                        V::Str(s) => text.push_str(&s),
                        _ => return None,
                    }
                }
                rnix::NodeOrToken::Node(_) => return None,
            }
        }
        join_inside(dir_of(file), &text)
    }

    /// A string: `"${flake}/x"` is a path of the flake; anything made of
    /// literal text and known strings is a string.
    fn string(&self, node: &SyntaxNode, env: &Env, file: &Path) -> V {
        let mut base: Option<PathBuf> = None;
        let mut text = String::new();
        for (i, element) in node
            .children_with_tokens()
            .filter(|e| !matches!(e.kind(), K::TOKEN_STRING_START | K::TOKEN_STRING_END))
            .enumerate()
        {
            match element {
                rnix::NodeOrToken::Token(t) if t.kind() == K::TOKEN_STRING_CONTENT => {
                    if is_indented(node) {
                        return V::Unknown;
                    }
                    syntax::decode_escapes(t.text(), &mut text);
                }
                rnix::NodeOrToken::Node(n) if n.kind() == K::NODE_INTERPOL => {
                    let Some(inner) = n.children().next() else {
                        return V::Unknown;
                    };
                    match self.eval(&inner, env, file) {
                        V::Str(s) => text.push_str(&s),
                        V::Path(p) if i == 0 => base = Some(p),
                        V::Flake if i == 0 => base = Some(PathBuf::new()),
                        _ => return V::Unknown,
                    }
                }
                _ => return V::Unknown,
            }
        }
        match base {
            Some(dir) => {
                join_inside(&dir, text.trim_start_matches('/')).map_or(V::Unknown, V::Path)
            }
            None => V::Str(text),
        }
    }

    fn select(&self, node: &SyntaxNode, env: &Env, file: &Path) -> V {
        let mut children = node.children();
        let (Some(base), Some(attrpath)) = (children.next(), children.next()) else {
            return V::Unknown;
        };
        let mut v = self.eval(&base, env, file);
        for attr in attrpath.children() {
            let key = match syntax::attr_key(&attr) {
                Some(k) => k,
                None => match attr.kind() {
                    K::NODE_DYNAMIC => {
                        match attr.children().next().map(|e| self.eval(&e, env, file)) {
                            Some(V::Str(s)) => s,
                            _ => return self.or_default(node, env, file),
                        }
                    }
                    _ => return self.or_default(node, env, file),
                },
            };
            v = self.select_key(v, &key);
            if matches!(v, V::Unknown) {
                return self.or_default(node, env, file);
            }
        }
        v
    }

    /// `a.b or DEFAULT`: the default when the selection is unknown.
    fn or_default(&self, node: &SyntaxNode, env: &Env, file: &Path) -> V {
        let has_or = node.children_with_tokens().any(|e| e.kind() == K::TOKEN_OR);
        match (has_or, node.children().nth(2)) {
            (true, Some(default)) => self.eval(&default, env, file),
            _ => V::Unknown,
        }
    }

    pub fn select_key(&self, v: V, key: &str) -> V {
        match (v, key) {
            (V::Flake, "outPath") => V::Path(PathBuf::new()),
            (V::Flake, "nixosModules") => V::Builtin("nixosModules"),
            (V::Builtin("nixosModules"), name) => V::Module(name.to_string()),
            (V::Builtin("builtins"), name) => builtin(name).unwrap_or(V::Unknown),
            (V::Set(attrs), name) => match attrs.map.get(name) {
                Some(attr) => self.force(&attr.slot),
                None => V::Unknown,
            },
            _ => V::Unknown,
        }
    }

    fn bin_op(&self, node: &SyntaxNode, env: &Env, file: &Path) -> V {
        let mut children = node.children();
        let (Some(lhs), Some(rhs)) = (children.next(), children.next()) else {
            return V::Unknown;
        };
        let op = node
            .children_with_tokens()
            .filter_map(|e| e.into_token())
            .find(|t| !matches!(t.kind(), K::TOKEN_WHITESPACE | K::TOKEN_COMMENT))
            .map(|t| t.kind());
        match op {
            Some(K::TOKEN_ADD) => match (self.eval(&lhs, env, file), self.eval(&rhs, env, file)) {
                (V::Path(p), V::Str(s)) => {
                    join_inside(&p, s.trim_start_matches('/')).map_or(V::Unknown, V::Path)
                }
                (V::Flake, V::Str(s)) => join_inside(Path::new(""), s.trim_start_matches('/'))
                    .map_or(V::Unknown, V::Path),
                (V::Str(a), V::Str(b)) => V::Str(a + &b),
                _ => V::Unknown,
            },
            Some(K::TOKEN_UPDATE) => {
                match (self.eval(&lhs, env, file), self.eval(&rhs, env, file)) {
                    (V::Set(a), V::Set(b)) => {
                        let mut map = BTreeMap::new();
                        for (k, attr) in a.map.iter().chain(b.map.iter()) {
                            map.insert(
                                k.clone(),
                                Attr {
                                    slot: attr.slot.clone(),
                                    binding: attr.binding.clone(),
                                },
                            );
                        }
                        V::Set(Rc::new(Attrs {
                            map,
                            file: b.file.clone(),
                        }))
                    }
                    _ => V::Unknown,
                }
            }
            _ => V::Unknown,
        }
    }

    /// Apply `f` to one argument.
    pub fn apply(&self, f: V, arg: Slot) -> V {
        if !self.enter() {
            return V::Unknown;
        }
        let v = match f {
            V::Lambda(c) => self.call(&c, arg),
            V::File(path) => {
                let value = self.eval_file(&path);
                self.apply(value, arg)
            }
            V::Builtin("import") => match self.force(&arg) {
                V::Path(p) => V::File(self.import_target(&p)),
                _ => V::Unknown,
            },
            V::Builtin("baseNameOf") => match self.force(&arg) {
                V::Path(p) => p
                    .file_name()
                    .map_or(V::Unknown, |n| V::Str(n.to_string_lossy().into_owned())),
                V::Str(s) => V::Str(s.rsplit('/').next().unwrap_or_default().to_string()),
                _ => V::Unknown,
            },
            V::Builtin("toString") => match self.force(&arg) {
                V::Str(s) => V::Str(s),
                _ => V::Unknown,
            },
            _ => V::Unknown,
        };
        self.leave();
        v
    }

    /// The body of `c` with its parameter bound to `arg`, unevaluated.
    fn bind(&self, c: &Closure, arg: Slot) -> Option<(SyntaxNode, Env)> {
        let mut children = c.node.children();
        let param = children.next()?;
        let body = children.last()?;
        let mut vars: HashMap<String, Slot> = HashMap::new();
        match param.kind() {
            K::NODE_IDENT_PARAM => {
                vars.insert(param.text().to_string().trim().to_string(), arg);
            }
            K::NODE_PATTERN => {
                let given = match self.force(&arg) {
                    V::Set(attrs) => Some(attrs),
                    _ => None,
                };
                let scope_for_defaults = c.env.clone();
                for entry in param.children() {
                    match entry.kind() {
                        K::NODE_PAT_ENTRY => {
                            let Some(name) = entry.children().next().map(|n| n.text().to_string())
                            else {
                                continue;
                            };
                            let from_arg = given
                                .as_ref()
                                .and_then(|a| a.map.get(&name))
                                .map(|a| a.slot.clone());
                            let slot = from_arg.unwrap_or_else(|| match entry.children().nth(1) {
                                Some(default) => Slot::Thunk(Thunk {
                                    node: default,
                                    env: scope_for_defaults.clone(),
                                    file: c.file.clone(),
                                }),
                                None => Slot::Value(V::Unknown),
                            });
                            vars.insert(name, slot);
                        }
                        K::NODE_PAT_BIND => {
                            if let Some(name) = entry.children().next() {
                                vars.insert(name.text().to_string(), arg.clone());
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => return None,
        }
        let env = Some(Rc::new(Scope {
            kind: ScopeKind::Vars(vars),
            parent: c.env.clone(),
            file: c.file.clone(),
        }));
        Some((body, env))
    }

    fn call(&self, c: &Closure, arg: Slot) -> V {
        match self.bind(c, arg) {
            Some((body, env)) => self.eval(&body, &env, &c.file),
            None => V::Unknown,
        }
    }

    /// An attribute set literal (its values unevaluated).
    pub fn attrs(&self, node: &SyntaxNode, env: &Env, file: &Path) -> Attrs {
        let is_rec = node
            .children_with_tokens()
            .any(|e| e.kind() == K::TOKEN_REC);
        let inner_env = if is_rec {
            Some(Rc::new(Scope {
                kind: ScopeKind::Rec(node.clone()),
                parent: env.clone(),
                file: file.to_path_buf(),
            }))
        } else {
            env.clone()
        };
        let mut map: BTreeMap<String, Attr> = BTreeMap::new();
        for child in node.children() {
            match child.kind() {
                K::NODE_ATTRPATH_VALUE => {
                    let (Some(keys), Some(value)) =
                        (syntax::binding_keys(&child), syntax::binding_value(&child))
                    else {
                        continue;
                    };
                    let thunk = Thunk {
                        node: value,
                        env: inner_env.clone(),
                        file: file.to_path_buf(),
                    };
                    self.insert_path(&mut map, &keys, thunk, &child, file);
                }
                K::NODE_INHERIT => {
                    let from = child.children().find(|c| c.kind() == K::NODE_INHERIT_FROM);
                    for name in child
                        .children()
                        .filter(|c| c.kind() != K::NODE_INHERIT_FROM)
                        .filter_map(|c| syntax::attr_key(&c))
                    {
                        let slot = match &from {
                            Some(from) => match from.children().next() {
                                Some(expr) => Slot::InheritFrom(
                                    Thunk {
                                        node: expr,
                                        env: inner_env.clone(),
                                        file: file.to_path_buf(),
                                    },
                                    name.clone(),
                                ),
                                None => Slot::Value(V::Unknown),
                            },
                            None => self.lookup(env, &name).unwrap_or_else(|| {
                                Slot::Value(builtin(&name).unwrap_or(V::Unknown))
                            }),
                        };
                        map.insert(
                            name,
                            Attr {
                                slot,
                                binding: Some(child.clone()),
                            },
                        );
                    }
                }
                _ => {}
            }
        }
        Attrs {
            map,
            file: file.to_path_buf(),
        }
    }

    /// `a.b.c = v;` into nested sets (merged with `a = { … };` written
    /// beside it).
    fn insert_path(
        &self,
        map: &mut BTreeMap<String, Attr>,
        keys: &[String],
        thunk: Thunk,
        binding: &SyntaxNode,
        file: &Path,
    ) {
        let Some((first, rest)) = keys.split_first() else {
            return;
        };
        if rest.is_empty() {
            map.insert(
                first.clone(),
                Attr {
                    slot: Slot::Thunk(thunk),
                    binding: Some(binding.clone()),
                },
            );
            return;
        }
        let mut inner: BTreeMap<String, Attr> = match map.remove(first) {
            Some(existing) => match self.force(&existing.slot) {
                V::Set(attrs) => attrs
                    .map
                    .iter()
                    .map(|(k, a)| {
                        (
                            k.clone(),
                            Attr {
                                slot: a.slot.clone(),
                                binding: a.binding.clone(),
                            },
                        )
                    })
                    .collect(),
                _ => BTreeMap::new(),
            },
            None => BTreeMap::new(),
        };
        self.insert_path(&mut inner, rest, thunk, binding, file);
        map.insert(
            first.clone(),
            Attr {
                slot: Slot::Value(V::Set(Rc::new(Attrs {
                    map: inner,
                    file: file.to_path_buf(),
                }))),
                binding: None,
            },
        );
    }

    /// Everything `node` refers to: paths, `self.nixosModules` names and
    /// strings, following functions applied to arguments into their bodies
    /// and `import FILE ARGS` into the file. A function that is not applied
    /// (a NixOS module) is not entered: its body is the module's business.
    pub fn refs(&self, node: &SyntaxNode, env: &Env, file: &Path, out: &mut Refs) {
        if !self.enter() {
            return;
        }
        self.refs_inner(node, env, file, out);
        self.leave();
    }

    pub fn refs_of(&self, thunk: &Thunk, out: &mut Refs) {
        self.refs(&thunk.node, &thunk.env, &thunk.file, out);
    }

    fn refs_inner(&self, node: &SyntaxNode, env: &Env, file: &Path, out: &mut Refs) {
        match node.kind() {
            K::NODE_PATH_REL | K::NODE_STRING | K::NODE_SELECT => {
                let v = self.eval(node, env, file);
                out.add(&v);
                if matches!(v, V::Unknown) && node.kind() == K::NODE_SELECT {
                    // `(import ./x.nix { … }).y`: what the base refers to.
                    if let Some(base) = node.children().next() {
                        self.refs(&base, env, file, out);
                    }
                }
            }
            K::NODE_IDENT => match self.lookup(env, &node.text().to_string()) {
                Some(Slot::Thunk(t)) => self.refs_of(&t, out),
                Some(slot) => out.add(&self.force(&slot)),
                None => {}
            },
            K::NODE_BIN_OP => match self.eval(node, env, file) {
                v @ (V::Path(_) | V::Str(_)) => out.add(&v),
                _ => {
                    for child in node.children() {
                        self.refs(&child, env, file, out);
                    }
                }
            },
            K::NODE_APPLY => {
                let (head, args) = spine(node);
                for arg in &args {
                    self.refs(arg, env, file, out);
                }
                let f = self.eval(&head, env, file);
                let slots: Vec<Slot> = args
                    .into_iter()
                    .map(|a| {
                        Slot::Thunk(Thunk {
                            node: a,
                            env: env.clone(),
                            file: file.to_path_buf(),
                        })
                    })
                    .collect();
                self.refs_applied(f, &slots, out);
            }
            K::NODE_LET_IN => {
                let scope = Some(Rc::new(Scope {
                    kind: ScopeKind::Rec(node.clone()),
                    parent: env.clone(),
                    file: file.to_path_buf(),
                }));
                if let Some(body) = body_of(node) {
                    self.refs(&body, &scope, file, out);
                }
            }
            K::NODE_ATTR_SET => {
                let attrs = self.attrs(node, env, file);
                for attr in attrs.map.values() {
                    self.refs_slot(&attr.slot, out);
                }
            }
            K::NODE_LAMBDA | K::NODE_LITERAL => {}
            _ => {
                for child in node.children() {
                    self.refs(&child, env, file, out);
                }
            }
        }
    }

    fn refs_slot(&self, slot: &Slot, out: &mut Refs) {
        match slot {
            Slot::Thunk(t) => self.refs_of(t, out),
            Slot::Value(V::Set(attrs)) => {
                for attr in attrs.map.values() {
                    self.refs_slot(&attr.slot, out);
                }
            }
            other => out.add(&self.force(other)),
        }
    }

    /// What applying `f` to `args` refers to: the body of a function (once
    /// every argument is bound), or the imported file's.
    fn refs_applied(&self, f: V, args: &[Slot], out: &mut Refs) {
        if !self.enter() {
            return;
        }
        match (f, args) {
            (V::Builtin("import"), [first, rest @ ..]) => {
                if let V::Path(p) = self.force(first) {
                    let target = self.import_target(&p);
                    out.add(&V::File(target.clone()));
                    if !rest.is_empty() {
                        self.refs_applied(V::File(target), rest, out);
                    }
                }
            }
            (V::File(path), [_, ..]) => {
                let value = self.eval_file(&path);
                self.refs_applied(value, args, out);
            }
            (V::Lambda(c), [first, rest @ ..]) => {
                if let Some((body, env)) = self.bind(&c, first.clone()) {
                    if rest.is_empty() {
                        // The result; a function left unapplied is a module.
                        if body.kind() != K::NODE_LAMBDA {
                            self.refs(&body, &env, &c.file, out);
                        }
                    } else {
                        let next = self.eval(&body, &env, &c.file);
                        self.refs_applied(next, rest, out);
                    }
                }
            }
            _ => {}
        }
        self.leave();
    }
}

/// `f a b` → (`f`, [`a`, `b`]).
pub fn spine(node: &SyntaxNode) -> (SyntaxNode, Vec<SyntaxNode>) {
    let mut head = node.clone();
    let mut args = Vec::new();
    while head.kind() == K::NODE_APPLY {
        let mut children = head.children();
        let (Some(f), Some(a)) = (children.next(), children.next()) else {
            break;
        };
        args.push(a);
        head = syntax::unparen(&f);
    }
    args.reverse();
    (head, args)
}

/// The body of a `let … in BODY`.
fn body_of(let_in: &SyntaxNode) -> Option<SyntaxNode> {
    let after_in = let_in
        .children_with_tokens()
        .skip_while(|e| e.kind() != K::TOKEN_IN)
        .find_map(|e| e.into_node());
    after_in.or_else(|| let_in.children().last())
}

fn is_indented(string: &SyntaxNode) -> bool {
    string
        .first_token()
        .is_some_and(|t| t.kind() == K::TOKEN_STRING_START && t.text() == "''")
}

/// The builtins the reader knows (and `builtins` itself).
fn builtin(name: &str) -> Option<V> {
    Some(V::Builtin(match name {
        "import" => "import",
        "builtins" => "builtins",
        "baseNameOf" => "baseNameOf",
        "toString" => "toString",
        _ => return None,
    }))
}

/// The scope at `node` in a module file, for reading a value written there:
/// the `let` bindings and recursive sets around it, and the parameters of the
/// functions around it, where a parameter named in `root_names` is the flake
/// root and `inputs` holds `self`. Other parameters (`config`, `lib`) are
/// unknown.
pub fn env_at(
    node: &SyntaxNode,
    file: &Path,
    root_names: &std::collections::BTreeSet<String>,
) -> Env {
    let mut enclosing: Vec<SyntaxNode> = node
        .ancestors()
        .skip(1)
        .filter(|a| {
            matches!(a.kind(), K::NODE_LET_IN | K::NODE_LAMBDA)
                || (a.kind() == K::NODE_ATTR_SET
                    && a.children_with_tokens().any(|e| e.kind() == K::TOKEN_REC))
        })
        .collect();
    enclosing.reverse();
    // Names of the flake root that no function of the file takes (they come
    // from `_module.args` or `specialArgs`) are still the root.
    let free: HashMap<String, Slot> = root_names
        .iter()
        .map(|n| (n.clone(), Slot::Value(V::Flake)))
        .collect();
    let mut env: Env = Some(Rc::new(Scope {
        kind: ScopeKind::Vars(free),
        parent: None,
        file: file.to_path_buf(),
    }));
    for a in enclosing {
        let kind = match a.kind() {
            K::NODE_LAMBDA => {
                let Some(param) = a.children().next() else {
                    continue;
                };
                let mut vars = HashMap::new();
                let mut bind = |name: String| {
                    let v = if root_names.contains(&name) {
                        V::Flake
                    } else if name == "inputs" {
                        let map = [(
                            "self".to_string(),
                            Attr {
                                slot: Slot::Value(V::Flake),
                                binding: None,
                            },
                        )]
                        .into_iter()
                        .collect();
                        V::Set(Rc::new(Attrs {
                            map,
                            file: file.to_path_buf(),
                        }))
                    } else {
                        V::Unknown
                    };
                    vars.insert(name, Slot::Value(v));
                };
                match param.kind() {
                    K::NODE_IDENT_PARAM => bind(param.text().to_string().trim().to_string()),
                    K::NODE_PATTERN => {
                        for entry in param.children() {
                            if let Some(name) = entry.children().next() {
                                bind(name.text().to_string());
                            }
                        }
                    }
                    _ => {}
                }
                ScopeKind::Vars(vars)
            }
            _ => ScopeKind::Rec(a.clone()),
        };
        env = Some(Rc::new(Scope {
            kind,
            parent: env,
            file: file.to_path_buf(),
        }));
    }
    env
}

impl Reader<'_> {
    /// The expression a variable is bound to (`let`, recursive set), with
    /// the scope it is written in; `None` for a parameter or a free name.
    pub fn binding_of(&self, env: &Env, name: &str) -> Option<(SyntaxNode, Env)> {
        match self.lookup(env, name)? {
            Slot::Thunk(t) => Some((t.node, t.env)),
            _ => None,
        }
    }
}
