//! The generic lossless attribute editor.
//!
//! Must never write a byte outside the edited range, and never write a file
//! that Nix rejects or that means something else than what was asked: a file
//! Nix would reject is refused before anything is planned (see [`load`] and
//! [`strict`]), and every edit is proven (see [`verify`]) before it is
//! returned.
//!
//! Parse with `rnix` (patched: `vendor/rnix`), find the binding that defines
//! a path (through every syntactic form a NixOS module uses), compute a text
//! edit (byte range → new text), apply it, prove the result valid. A lookup
//! walks only the bindings on the way to its path; the walk of every binding
//! is made on first use of [`NixFile::bindings`].

pub mod error;
mod insert;
pub mod invariants;
mod load;
pub(crate) use insert::aligned_column;
pub mod path;
mod refs;
mod replace;
mod scope;
pub mod strict;
pub mod syntax;
pub mod value;
pub mod verify;
pub mod walk;

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::ops::Range;
use std::rc::Rc;

use miette::{LabeledSpan, NamedSource, SourceSpan};
use rnix::{SyntaxKind, SyntaxNode};

pub use error::EditError;
pub use path::AttrPath;
pub use value::Value;
pub use walk::Reading;
use walk::{Binding, Focus, Walk};

/// A replacement of a byte range of the original text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextEdit {
    pub range: Range<usize>,
    pub replacement: String,
}

/// What to write at a path.
#[derive(Clone, Debug, PartialEq)]
pub enum NewValue {
    /// A literal, rendered by nixflip in the file's style.
    Literal(Value),
    /// A Nix expression written as given: made by [`NewValue::expr`], which
    /// trims it and checks that Nix reads it on its own.
    Expr(String),
}

impl NewValue {
    /// An expression from the user, refused if Nix would not read it on its
    /// own (a syntax error, or anything `strict` refuses).
    pub fn expr(text: &str) -> Result<NewValue, EditError> {
        let trimmed = text.trim();
        let parsed = rnix::Root::parse(trimmed);
        let checked = if trimmed.is_empty() {
            Err(EditError::Empty {
                file: "--expr".into(),
            })
        } else {
            load::check("--expr", trimmed, &parsed)
        };
        match checked {
            Ok(()) => {
                only_expression(trimmed, &parsed)?;
                Ok(NewValue::Expr(trimmed.to_string()))
            }
            Err(error) => Err(EditError::BadExpr {
                src: NamedSource::new("--expr", trimmed.to_string()),
                labels: vec![LabeledSpan::new_with_span(
                    Some(error.to_string().replace("--expr: ", "")),
                    SourceSpan::from((0, trimmed.len())),
                )],
            }),
        }
    }
}

/// Refuse a comment before or after the expression: the editor compares and
/// replaces the expression's own text, so a comment outside it would be
/// written again on every `set` (or, after it, swallow the `;`).
fn only_expression(text: &str, parsed: &rnix::Parse<rnix::Root>) -> Result<(), EditError> {
    let root = parsed.syntax();
    match root.first_child() {
        Some(expr) if expr.text_range() != root.text_range() => Err(EditError::ExprComment {
            src: NamedSource::new("--expr", text.to_string()),
            span: span(&expr),
        }),
        _ => Ok(()),
    }
}

/// A parsed `.nix` file and the bindings its body defines.
pub struct NixFile {
    name: String,
    text: String,
    /// `text` with lone CRs read as LFs (same length, same offsets), for the
    /// line-based measuring of layout; `None` when it would equal `text`.
    layout: Option<String>,
    root: SyntaxNode,
    reading: Reading,
    /// Every binding, walked on first use.
    walk: OnceCell<Walk>,
    /// Walks focused on a path, kept for [`NixFile::walk_under`].
    focused: RefCell<Vec<(Vec<String>, Rc<Walk>)>>,
}

/// The definition found at a path.
#[derive(Clone, Debug)]
pub struct Found {
    /// The literal value, when the (unwrapped) value is a literal.
    pub value: Option<Value>,
    /// The value's source text (unwrapped).
    pub expr: String,
    /// Byte range of the unwrapped value.
    pub span: Range<usize>,
    /// 1-based line and column of the value.
    pub line: usize,
    pub column: usize,
    /// Module-system priority of the definition (100 plain, 50 mkForce, …).
    pub priority: u32,
    /// Under a `mkIf`.
    pub conditional: bool,
    /// The conditions of the `mkIf`s it is under, outermost first, as written.
    pub conditions: Vec<String>,
    /// Set by `inherit`.
    pub inherited: bool,
}

impl Found {
    /// The conditions as one expression: `c`, or `(a) && (b)`.
    pub fn condition(&self) -> Option<String> {
        match self.conditions.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            many => Some(
                many.iter()
                    .map(|c| format!("({c})"))
                    .collect::<Vec<_>>()
                    .join(" && "),
            ),
        }
    }
}

/// What a path holds when it is an attribute set: the set composed from
/// every definition under it (`a.b.c = 1; a.b.d = 2;` → `a.b` is
/// `{ c = 1; d = 2; }`).
#[derive(Clone, Debug)]
pub struct Composed {
    /// The set as JSON, when every value in it is a literal and no
    /// attribute is defined twice.
    pub value: Option<serde_json::Value>,
    /// Every definition, with its path, in file order.
    pub definitions: Vec<(AttrPath, Found)>,
}

/// What `get` finds at a path.
#[derive(Clone, Debug)]
pub enum Query {
    /// One definition (a value, or an attribute set written in one place).
    One(Found),
    /// An attribute set spread over several definitions.
    Set(Composed),
}

/// The result of an edit: the new text, and whether anything changed.
#[derive(Clone, Debug)]
pub struct Edited {
    pub text: String,
    pub changed: bool,
}

/// A copy shares the immutable syntax tree (a reference count, not a new
/// parse); its walk caches start empty.
impl Clone for NixFile {
    fn clone(&self) -> NixFile {
        NixFile {
            name: self.name.clone(),
            text: self.text.clone(),
            layout: self.layout.clone(),
            root: self.root.clone(),
            reading: self.reading,
            walk: OnceCell::new(),
            focused: RefCell::new(Vec::new()),
        }
    }
}

impl NixFile {
    /// Parse `text` as a NixOS module (paths are option paths, see
    /// [`Reading::Option`]); a file Nix would reject is refused.
    pub fn parse(name: impl Into<String>, text: impl Into<String>) -> Result<NixFile, EditError> {
        NixFile::parse_as(name, text, Reading::Option)
    }

    /// Parse `text`, reading paths as `reading` says.
    pub fn parse_as(
        name: impl Into<String>,
        text: impl Into<String>,
        reading: Reading,
    ) -> Result<NixFile, EditError> {
        let text = text.into();
        let parsed = rnix::Root::parse(&text);
        Ok(NixFile::from_parse(name, text, parsed)?.with_reading(reading))
    }

    /// Read a file's bytes: a binary file (NUL bytes, not UTF-8) is refused
    /// with a short message of its own.
    pub fn from_bytes(
        name: impl Into<String>,
        bytes: Vec<u8>,
        reading: Reading,
    ) -> Result<NixFile, EditError> {
        let name = name.into();
        let text = load::text_of(&name, bytes)?;
        NixFile::parse_as(name, text, reading)
    }

    /// A file from `rnix`'s parse of `text` (which can be made on another
    /// thread: the parse is `Send`, the tree built from it is not), read as
    /// a NixOS module.
    pub fn from_parse(
        name: impl Into<String>,
        text: String,
        parsed: rnix::Parse<rnix::Root>,
    ) -> Result<NixFile, EditError> {
        let name = name.into();
        load::check(&name, &text, &parsed)?;
        let layout = has_lone_cr(&text).then(|| lone_cr_as_lf(&text));
        Ok(NixFile {
            name,
            text,
            layout,
            root: parsed.syntax(),
            reading: Reading::Option,
            walk: OnceCell::new(),
            focused: RefCell::new(Vec::new()),
        })
    }

    /// The same file, its paths read as `reading` says.
    pub fn with_reading(mut self, reading: Reading) -> NixFile {
        if reading != self.reading {
            self.reading = reading;
            self.walk = OnceCell::new();
            self.focused = RefCell::new(Vec::new());
        }
        self
    }

    pub fn reading(&self) -> Reading {
        self.reading
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text for line-based layout decisions (lone CRs read as LFs).
    fn layout(&self) -> &str {
        self.layout.as_deref().unwrap_or(&self.text)
    }

    pub fn root(&self) -> &SyntaxNode {
        &self.root
    }

    /// Every binding of the body, with full paths.
    pub fn bindings(&self) -> &[Binding] {
        &self.full_walk().bindings
    }

    fn full_walk(&self) -> &Walk {
        self.walk
            .get_or_init(|| walk::walk(&self.root, self.reading))
    }

    /// The bindings (and containers) whose path leads to `prefix` or lies
    /// under it: exactly those of [`NixFile::bindings`], in the same order,
    /// without walking the rest of the file. Kept per prefix, for callers that
    /// only ever look under one or two paths of many files.
    pub fn walk_under(&self, prefix: &[String]) -> Rc<Walk> {
        let mut kept = self.focused.borrow_mut();
        if let Some((_, walk)) = kept.iter().find(|(p, _)| p == prefix) {
            return Rc::clone(walk);
        }
        let walk = Rc::new(walk::walk_focused(
            &self.root,
            self.reading,
            Focus::Path(prefix.to_vec()),
        ));
        kept.push((prefix.to_vec(), Rc::clone(&walk)));
        walk
    }

    /// The bindings and containers on the way to `keys` (and under it): the
    /// full walk when it is already made, else a walk focused on `keys`.
    fn walk_toward(&self, keys: &[String]) -> Cow<'_, Walk> {
        match self.walk.get() {
            Some(all) => Cow::Borrowed(all),
            None => Cow::Owned(walk::walk_focused(
                &self.root,
                self.reading,
                Focus::Path(keys.to_vec()),
            )),
        }
    }

    pub fn source(&self) -> NamedSource<String> {
        NamedSource::new(&self.name, self.text.clone()).with_language("nix")
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        line_col(self.layout(), offset)
    }

    /// The binding that defines `path`, if any. Several definitions resolve to
    /// the one with the strongest priority; a tie is a conflict.
    pub fn lookup(&self, path: &AttrPath) -> Result<Option<Binding>, EditError> {
        let walk = self.walk_toward(path.keys());
        Ok(self.lookup_in(&walk, path)?.cloned())
    }

    fn lookup_in<'w>(
        &self,
        walk: &'w Walk,
        path: &AttrPath,
    ) -> Result<Option<&'w Binding>, EditError> {
        let keys = path.keys();
        let exact: Vec<&Binding> = walk.bindings.iter().filter(|b| b.path == keys).collect();
        if exact.is_empty() {
            return self.check_reachable(walk, path).map(|()| None);
        }
        self.check_duplicates(path, &exact)?;
        let strongest = exact
            .iter()
            .map(|b| b.priority)
            .min()
            .unwrap_or(syntax::PLAIN_PRIORITY);
        let winners: Vec<&Binding> = exact
            .iter()
            .copied()
            .filter(|b| b.priority == strongest)
            .collect();
        match winners.as_slice() {
            [one] => Ok(Some(one)),
            // Attribute sets at the same path merge; that is not a conflict.
            many if many.iter().all(|b| b.descended) => Ok(many.first().copied()),
            many => Err(EditError::Conflict {
                path: path.to_string(),
                file: self.name.clone(),
                count: many.len(),
                src: self.source(),
                labels: many
                    .iter()
                    .map(|b| LabeledSpan::new_with_span(Some("defined here".into()), span(&b.node)))
                    .collect(),
            }),
        }
    }

    /// A path can only be missing if nothing on the way hides it: a prefix
    /// bound to a variable or a function call might define it, and so might
    /// an expression merged with `//` or a dynamic key; a definition that a
    /// `//` with such an operand covers may be replaced.
    fn check_reachable(&self, walk: &Walk, path: &AttrPath) -> Result<(), EditError> {
        let keys = path.keys();
        let blocker = walk
            .bindings
            .iter()
            .find(|b| b.path.len() < keys.len() && keys.starts_with(&b.path) && !b.descended);
        if let Some(b) = blocker {
            return Err(EditError::NotAnAttrset {
                path: path.to_string(),
                prefix: AttrPath::new(b.path.clone()).to_string(),
                what: if b.inherited {
                    "inherited from a variable".into()
                } else {
                    syntax::describe(&b.inner).to_string()
                },
                src: self.source(),
                span: span(&b.inner),
            });
        }
        let hidden = walk.shadowed.iter().find(|s| {
            s.opaque.is_some()
                && (s.binding.path == keys
                    || (keys.starts_with(&s.binding.path) && !s.binding.descended))
        });
        if let Some(s) = hidden {
            let operand = s.opaque.as_ref().unwrap_or(&s.update);
            return Err(self.hidden(path, operand, "the right side of `//` may replace it"));
        }
        if let Some(o) = walk.opaque.iter().find(|o| o.may_define(keys)) {
            let why = if o.node.kind() == SyntaxKind::NODE_ATTRPATH_VALUE {
                "a key computed at evaluation time may define it"
            } else {
                "this expression, merged with `//`, may define it"
            };
            return Err(self.hidden(path, &o.node, why));
        }
        Ok(())
    }

    fn hidden(&self, path: &AttrPath, node: &SyntaxNode, why: &str) -> EditError {
        EditError::Hidden {
            path: path.to_string(),
            file: self.name.clone(),
            why: why.to_string(),
            src: self.source(),
            span: span(node),
        }
    }

    fn check_duplicates(&self, path: &AttrPath, exact: &[&Binding]) -> Result<(), EditError> {
        for (i, a) in exact.iter().enumerate() {
            for b in &exact[i + 1..] {
                if a.scope == b.scope && !(a.descended && b.descended) {
                    return Err(EditError::Duplicate {
                        path: path.to_string(),
                        file: self.name.clone(),
                        src: self.source(),
                        labels: vec![
                            LabeledSpan::new_with_span(
                                Some("first definition".into()),
                                span(&a.node),
                            ),
                            LabeledSpan::new_with_span(
                                Some("second definition".into()),
                                span(&b.node),
                            ),
                        ],
                    });
                }
            }
        }
        Ok(())
    }

    /// The value defined at `path` (its one definition; see
    /// [`NixFile::query`] for a set spread over several).
    pub fn get(&self, path: &AttrPath) -> Result<Found, EditError> {
        let walk = self.walk_toward(path.keys());
        let binding = self
            .lookup_in(&walk, path)?
            .ok_or_else(|| self.not_found(path))?;
        Ok(self.found(binding))
    }

    /// What `path` holds: its value, or the attribute set composed from the
    /// definitions under it.
    pub fn query(&self, path: &AttrPath) -> Result<Query, EditError> {
        let keys = path.keys();
        let walk = self.walk_toward(keys);
        let winner = self.lookup_in(&walk, path)?;
        if let Some(b) = winner.filter(|b| !b.descended) {
            return Ok(Query::One(self.found(b)));
        }
        let under: Vec<&Binding> = walk
            .bindings
            .iter()
            .filter(|b| b.path.len() > keys.len() && b.path.starts_with(keys))
            .collect();
        if winner.is_none() && under.is_empty() {
            return Err(self.not_found(path));
        }
        if let Some(o) = walk.opaque.iter().find(|o| o.path.starts_with(keys)) {
            return Err(self.hidden(path, &o.node, "part of it is computed at evaluation time"));
        }
        let mut definitions: Vec<(AttrPath, Found)> = Vec::new();
        let mut leaves: BTreeMap<Vec<String>, Vec<&Binding>> = BTreeMap::new();
        for b in &under {
            if !b.descended {
                leaves.entry(b.path.clone()).or_default().push(b);
                definitions.push((AttrPath::new(b.path.clone()), self.found(b)));
            }
        }
        let mut value = Some(serde_json::Value::Object(serde_json::Map::new()));
        for (leaf, defs) in &leaves {
            let literal = match defs.as_slice() {
                [one] if !one.inherited && !one.conditional => Value::from_node(&one.inner),
                _ => None,
            };
            match (literal, value.as_mut()) {
                (Some(v), Some(json)) => {
                    if !insert_json(json, &leaf[keys.len()..], v.to_json()) {
                        value = None;
                    }
                }
                _ => value = None,
            }
        }
        Ok(Query::Set(Composed { value, definitions }))
    }

    /// Describe a binding's value.
    pub fn found(&self, binding: &Binding) -> Found {
        let range = node_range(&binding.inner);
        let (line, column) = self.position(range.start);
        Found {
            value: if binding.inherited {
                None
            } else {
                Value::from_node(&binding.inner)
            },
            expr: self.text[range.clone()].to_string(),
            span: range,
            line,
            column,
            priority: binding.priority,
            conditional: binding.conditional,
            conditions: binding
                .conditions
                .iter()
                .map(|c| self.text[node_range(&syntax::unparen(c))].to_string())
                .collect(),
            inherited: binding.inherited,
        }
    }

    fn not_found(&self, path: &AttrPath) -> EditError {
        EditError::NotFound {
            path: path.to_string(),
            file: self.name.clone(),
        }
    }

    /// The edit that makes `path` hold `new`, or `None` when it already does.
    pub fn plan_set(&self, path: &AttrPath, new: &NewValue) -> Result<Option<TextEdit>, EditError> {
        if let NewValue::Literal(value) = new {
            value.check_writable()?;
        }
        let walk = self.walk_toward(path.keys());
        match self.lookup_in(&walk, path)? {
            Some(binding) => self.plan_replace(path, binding, new),
            None => self.plan_insert(&walk, path, new).map(Some),
        }
    }

    fn plan_replace(
        &self,
        path: &AttrPath,
        binding: &Binding,
        new: &NewValue,
    ) -> Result<Option<TextEdit>, EditError> {
        if binding.inherited {
            return Err(EditError::Inherited {
                path: path.to_string(),
                src: self.source(),
                span: span(&binding.inner),
            });
        }
        let inner = &binding.inner;
        match new {
            NewValue::Expr(expr) => {
                // An expression that is itself a priority or condition
                // wrapper (`lib.mkForce true`) replaces the wrappers too:
                // kept around it, they would nest on every set.
                let target = if syntax::is_wrapper_expression(expr) {
                    &binding.value
                } else {
                    inner
                };
                let scope = scope::Scope::replacing(target);
                self.check_variables(path, expr, (target, "the value goes here"), &scope)?;
                if self.text[node_range(target)] == *expr {
                    Ok(None)
                } else {
                    Ok(Some(replace::expression(target, expr)))
                }
            }
            NewValue::Literal(value) => match Value::from_node(inner) {
                Some(current) if current == *value => Ok(None),
                Some(_) => Ok(Some(replace::literal(self, inner, value))),
                None => Err(EditError::NonLiteral {
                    path: path.to_string(),
                    what: syntax::describe(inner).to_string(),
                    src: self.source(),
                    span: span(inner),
                }),
            },
        }
    }

    /// Refuse an expression that uses a variable Nix would find undefined
    /// where it goes (`place`: the value it replaces, or the set it goes
    /// into, and how to call it).
    fn check_variables(
        &self,
        path: &AttrPath,
        expr: &str,
        (place, what): (&SyntaxNode, &'static str),
        scope: &scope::Scope,
    ) -> Result<(), EditError> {
        let parsed = rnix::Root::parse(expr).syntax();
        match scope.first_undefined(&parsed) {
            None => Ok(()),
            Some((name, _)) => Err(EditError::UndefinedVariable {
                path: path.to_string(),
                name,
                place: what,
                src: self.source(),
                span: span(place),
            }),
        }
    }

    fn plan_insert(
        &self,
        walk: &Walk,
        path: &AttrPath,
        new: &NewValue,
    ) -> Result<TextEdit, EditError> {
        let keys = path.keys();
        let container = walk
            .containers
            .iter()
            .filter(|c| {
                !c.explicit
                    && c.path.len() < keys.len()
                    && keys.starts_with(&c.path)
                    && c.accepts(&keys[c.path.len()])
            })
            .min_by_key(|c| (std::cmp::Reverse(c.path.len()), c.conditional))
            .ok_or_else(|| EditError::NoPlaceToInsert {
                path: path.to_string(),
                file: self.name.clone(),
            })?;
        if let NewValue::Expr(expr) = new {
            let scope = scope::Scope::inside(&container.node);
            let place = (&container.node, "the new binding goes into this set");
            self.check_variables(path, expr, place, &scope)?;
        }
        let layout = self.layout();
        let style = insert::Style::detect(&self.text, layout);
        let render = |indent: &str| -> String {
            match new {
                NewValue::Expr(expr) => expr.clone(),
                NewValue::Literal(value @ Value::List(items))
                    if items.len() > 1 && insert::prefers_multiline_lists(&self.root, layout) =>
                {
                    value.render_multiline(indent, &style.unit, style.eol)
                }
                NewValue::Literal(value) => value.render_value(),
            }
        };
        let rest = &keys[container.path.len()..];
        Ok(insert::plan_insert(
            layout,
            &style,
            &container.node,
            rest,
            &render,
        ))
    }

    /// The edit that removes the binding of `path` (with its own line when it
    /// had one), or `None` when the path is not defined. Refused when the
    /// file would still use it: a `rec` set or `let { }` that refers to it by
    /// name, or another operand of `//` that would then define it.
    pub fn plan_unset(&self, path: &AttrPath) -> Result<Option<TextEdit>, EditError> {
        let walk = self.walk_toward(path.keys());
        let Some(binding) = self.lookup_in(&walk, path)? else {
            return Ok(None);
        };
        if binding.path.len() - binding.prefix_len == 0 {
            return Err(self.not_found(path));
        }
        refs::check_other_definitions(self, &walk, binding, path)?;
        refs::check_update_operands(self, &walk, binding, path)?;
        refs::check_recursive_uses(self, binding, path)?;
        let edit = if binding.inherited
            && binding
                .node
                .children()
                .filter(|c| c.kind() != SyntaxKind::NODE_INHERIT_FROM)
                .count()
                > 1
        {
            // `inherit a b;`: drop just the one name and the space before it.
            let range = node_range(&binding.value);
            let start = self.text[..range.start].trim_end_matches([' ', '\t']).len();
            TextEdit {
                range: start..range.end,
                replacement: String::new(),
            }
        } else {
            TextEdit {
                range: removal_range(self.layout(), node_range(&binding.node)),
                replacement: String::new(),
            }
        };
        if !walk.opaque.is_empty() {
            refs::check_nothing_takes_over(self, &edit, path)?;
        }
        Ok(Some(edit))
    }
}

/// Put `value` at `path` inside the JSON object `json`; false when the path
/// runs into a value that is not an object.
fn insert_json(json: &mut serde_json::Value, path: &[String], value: serde_json::Value) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut at = json;
    for key in parents {
        let serde_json::Value::Object(map) = at else {
            return false;
        };
        at = map
            .entry(key.clone())
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    }
    match at {
        serde_json::Value::Object(map) if !map.contains_key(last) => {
            map.insert(last.clone(), value);
            true
        }
        _ => false,
    }
}

/// Set `path` to `new` in `file`: plan, apply, verify.
pub fn set(file: &NixFile, path: &AttrPath, new: &NewValue) -> Result<Edited, EditError> {
    match file.plan_set(path, new)? {
        None => Ok(Edited {
            text: file.text.clone(),
            changed: false,
        }),
        Some(edit) => finish(file, path, &[edit]),
    }
}

/// Remove `path` from `file`.
pub fn unset(file: &NixFile, path: &AttrPath) -> Result<Edited, EditError> {
    match file.plan_unset(path)? {
        None => Ok(Edited {
            text: file.text.clone(),
            changed: false,
        }),
        Some(edit) => finish(file, path, &[edit]),
    }
}

/// Apply several assignments one after another, re-parsing between them so
/// that each sees the previous (two insertions under one new parent share it).
/// Paths are option paths (the cluster's reading).
pub fn set_many(
    name: &str,
    text: &str,
    changes: &[(AttrPath, NewValue)],
) -> Result<Edited, EditError> {
    let mut current = NixFile::parse(name, text)?;
    let mut changed = false;
    for (path, new) in changes {
        let edited = set(&current, path, new)?;
        if edited.changed {
            changed = true;
            current = NixFile::parse(name, edited.text)?;
        }
    }
    Ok(Edited {
        text: current.text,
        changed,
    })
}

/// Apply edits, then prove that Nix accepts the result: around the edit when
/// that suffices, else on the whole text.
fn finish(file: &NixFile, path: &AttrPath, edits: &[TextEdit]) -> Result<Edited, EditError> {
    let text = apply_edits(&file.text, edits);
    let local = match edits {
        [edit] => verify::local(file, edit),
        _ => None,
    };
    let valid = match local {
        Some(valid) => {
            debug_assert_eq!(
                valid,
                verify::full(&text).is_none(),
                "the local and the full check disagree on {path} in {}",
                file.name
            );
            valid
        }
        None => verify::full(&text).is_none(),
    };
    if valid {
        return Ok(Edited {
            text,
            changed: true,
        });
    }
    // Refused: say why, on the whole new text.
    let (message, help, labels) = match verify::full(&text) {
        Some(verify::Problem::Syntax(error)) => (
            error.to_string(),
            "this is a bug in nixflip's editor (it wrote something Nix cannot parse); please report it with the file".to_string(),
            error_labels(&error),
        ),
        Some(verify::Problem::Rule(v)) => (
            v.message.clone(),
            format!("{}; nixflip refuses an edit that would make the file invalid", v.help),
            load::violation_labels(&v.at, v.first.as_ref()),
        ),
        None => (
            "the local check refused it".to_string(),
            "this is a bug in nixflip's editor; please report it with the file".to_string(),
            Vec::new(),
        ),
    };
    Err(EditError::WouldBreak {
        path: path.to_string(),
        file: file.name.clone(),
        message,
        help,
        src: NamedSource::new(&file.name, text.clone()),
        labels,
    })
}

fn error_labels(error: &EditError) -> Vec<LabeledSpan> {
    match error {
        EditError::Parse { span, .. } => {
            vec![LabeledSpan::new_with_span(Some("here".into()), *span)]
        }
        EditError::Invalid { labels, .. } => labels.clone(),
        _ => Vec::new(),
    }
}

/// Apply non-overlapping edits back to front so earlier offsets stay valid.
pub fn apply_edits(text: &str, edits: &[TextEdit]) -> String {
    let mut sorted: Vec<&TextEdit> = edits.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.range.start));
    let mut out = text.to_string();
    for edit in sorted {
        out.replace_range(edit.range.clone(), &edit.replacement);
    }
    out
}

/// A binding on its own line goes with its whole line (and trailing comment);
/// one sharing a line goes with the spaces before it.
fn removal_range(text: &str, range: Range<usize>) -> Range<usize> {
    let line_start = text[..range.start].rfind('\n').map_or(0, |i| i + 1);
    let own_line = text[line_start..range.start]
        .chars()
        .all(|c| c == ' ' || c == '\t');
    let rest = &text[range.end..];
    let line_rest_len = rest.find('\n').unwrap_or(rest.len());
    let line_rest = rest[..line_rest_len].trim();
    if own_line && (line_rest.is_empty() || line_rest.starts_with('#')) {
        let end = (range.end + line_rest_len + 1).min(text.len());
        return leading_comment_start(text, line_start)..end;
    }
    let start = text[..range.start].trim_end_matches([' ', '\t']).len();
    start..range.end
}

/// The start of the `#` comment lines directly above the line at
/// `line_start` (no blank line between): a binding's own comment goes with
/// it when the binding is removed (comments stay attached to their bindings).
fn leading_comment_start(text: &str, line_start: usize) -> usize {
    let mut start = line_start;
    while start > 0 {
        let prev_start = text[..start - 1].rfind('\n').map_or(0, |i| i + 1);
        if !text[prev_start..start].trim_start().starts_with('#') {
            break;
        }
        start = prev_start;
    }
    start
}

fn node_range(node: &SyntaxNode) -> Range<usize> {
    let r = node.text_range();
    usize::from(r.start())..usize::from(r.end())
}

fn span(node: &SyntaxNode) -> SourceSpan {
    let r = node_range(node);
    (r.start, r.end - r.start).into()
}

/// The leading whitespace of the line holding `offset`.
fn line_indent(text: &str, offset: usize) -> String {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A CR not followed by LF: a line ending of its own.
fn has_lone_cr(text: &str) -> bool {
    if !text.contains('\r') {
        return false;
    }
    let bytes = text.as_bytes();
    bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
}

fn lone_cr_as_lf(text: &str) -> String {
    let bytes = text.as_bytes();
    let mapped: Vec<u8> = bytes
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if b == b'\r' && bytes.get(i + 1) != Some(&b'\n') {
                b'\n'
            } else {
                b
            }
        })
        .collect();
    // Only ASCII bytes changed, so the text is still UTF-8.
    String::from_utf8(mapped).unwrap_or_else(|_| text.to_string())
}
