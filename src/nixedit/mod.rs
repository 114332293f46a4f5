//! The generic lossless attribute editor.
//!
//! Parse with `rnix`, find the binding that defines a path (through every
//! syntactic form a NixOS module uses), compute a text edit (byte range → new
//! text), apply it, prove the result parses cleanly and adds no duplicate
//! attribute (see [`verify`]: locally when it can, else by re-parsing all of
//! it), and refuse anything else. Bytes outside the edited range are never
//! touched.
//!
//! A lookup walks only the bindings on the way to its path; the walk of every
//! binding is made on first use of [`NixFile::bindings`].

pub mod error;
mod insert;
pub(crate) use insert::aligned_column;
pub mod path;
pub mod syntax;
pub mod value;
pub mod verify;
pub mod walk;

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::ops::Range;
use std::rc::Rc;

use miette::{LabeledSpan, NamedSource, SourceSpan};
use rnix::{SyntaxKind, SyntaxNode};

pub use error::EditError;
pub use path::AttrPath;
pub use value::Value;
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
    /// A Nix expression written as given (already checked to parse).
    Expr(String),
}

impl NewValue {
    /// An expression from the user, refused if it does not parse on its own.
    pub fn expr(text: &str) -> Result<NewValue, EditError> {
        let parsed = rnix::Root::parse(text);
        if parsed.errors().is_empty() && !text.trim().is_empty() {
            return Ok(NewValue::Expr(text.trim().to_string()));
        }
        Err(EditError::BadExpr {
            src: NamedSource::new("--expr", text.to_string()),
            labels: parse_error_labels(text, parsed.errors()),
        })
    }
}

/// A parsed `.nix` file and the bindings its module body defines.
pub struct NixFile {
    name: String,
    text: String,
    root: SyntaxNode,
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
    /// Set by `inherit`.
    pub inherited: bool,
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
            root: self.root.clone(),
            walk: OnceCell::new(),
            focused: RefCell::new(Vec::new()),
        }
    }
}

impl NixFile {
    /// Parse `text`; a file with any syntax error is refused.
    pub fn parse(name: impl Into<String>, text: impl Into<String>) -> Result<NixFile, EditError> {
        let text = text.into();
        let parsed = rnix::Root::parse(&text);
        NixFile::from_parse(name, text, parsed)
    }

    /// A file from `rnix`'s parse of `text` (which can be made on another
    /// thread: the parse is `Send`, the tree built from it is not).
    pub fn from_parse(
        name: impl Into<String>,
        text: String,
        parsed: rnix::Parse<rnix::Root>,
    ) -> Result<NixFile, EditError> {
        let name = name.into();
        if !parsed.errors().is_empty() {
            return Err(EditError::Parse {
                labels: parse_error_labels(&text, parsed.errors()),
                src: NamedSource::new(&name, text.clone()),
                file: name,
            });
        }
        Ok(NixFile {
            name,
            text,
            root: parsed.syntax(),
            walk: OnceCell::new(),
            focused: RefCell::new(Vec::new()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn root(&self) -> &SyntaxNode {
        &self.root
    }

    /// Every binding of the module body, with full paths.
    pub fn bindings(&self) -> &[Binding] {
        &self.full_walk().bindings
    }

    fn full_walk(&self) -> &Walk {
        self.walk.get_or_init(|| walk::walk(&self.root))
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
        let walk = Rc::new(walk::walk_focused(&self.root, Focus::Path(prefix.to_vec())));
        kept.push((prefix.to_vec(), Rc::clone(&walk)));
        walk
    }

    /// The bindings and containers on the way to `keys` (and under it): the
    /// full walk when it is already made, else a walk focused on `keys`.
    fn walk_toward(&self, keys: &[String]) -> Cow<'_, Walk> {
        match self.walk.get() {
            Some(all) => Cow::Borrowed(all),
            None => Cow::Owned(walk::walk_focused(&self.root, Focus::Path(keys.to_vec()))),
        }
    }

    pub fn source(&self) -> NamedSource<String> {
        NamedSource::new(&self.name, self.text.clone()).with_language("nix")
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        line_col(&self.text, offset)
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
    /// bound to a variable or a function call might define it.
    fn check_reachable(&self, walk: &Walk, path: &AttrPath) -> Result<(), EditError> {
        let keys = path.keys();
        let blocker = walk
            .bindings
            .iter()
            .find(|b| b.path.len() < keys.len() && keys.starts_with(&b.path) && !b.descended);
        match blocker {
            None => Ok(()),
            Some(b) => Err(EditError::NotAnAttrset {
                path: path.to_string(),
                prefix: AttrPath::new(b.path.clone()).to_string(),
                what: if b.inherited {
                    "inherited from a variable".into()
                } else {
                    syntax::describe(&b.inner).to_string()
                },
                src: self.source(),
                span: span(&b.inner),
            }),
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

    /// The value defined at `path`.
    pub fn get(&self, path: &AttrPath) -> Result<Found, EditError> {
        let walk = self.walk_toward(path.keys());
        let binding = self
            .lookup_in(&walk, path)?
            .ok_or_else(|| self.not_found(path))?;
        Ok(self.found(binding))
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
            expr: binding.inner.text().to_string(),
            span: range,
            line,
            column,
            priority: binding.priority,
            conditional: binding.conditional,
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
        let range = node_range(inner);
        let replacement = match new {
            NewValue::Expr(expr) if inner.text() == expr.as_str() => return Ok(None),
            NewValue::Expr(expr) => expr.clone(),
            NewValue::Literal(value) => match Value::from_node(inner) {
                Some(current) if current == *value => return Ok(None),
                Some(_) => self.render_like(value, inner),
                None => {
                    return Err(EditError::NonLiteral {
                        path: path.to_string(),
                        what: syntax::describe(inner).to_string(),
                        src: self.source(),
                        span: span(inner),
                    })
                }
            },
        };
        Ok(Some(TextEdit { range, replacement }))
    }

    /// Render `value` to replace `old`: a list keeps the old list's layout.
    fn render_like(&self, value: &Value, old: &SyntaxNode) -> String {
        let was_multiline =
            old.kind() == SyntaxKind::NODE_LIST && old.text().to_string().contains('\n');
        if was_multiline {
            let style = insert::Style::detect(&self.text);
            let indent = line_indent(&self.text, usize::from(old.text_range().start()));
            value.render_multiline(&indent, &style.unit, style.eol)
        } else {
            value.render_inline()
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
            .filter(|c| !c.explicit && c.path.len() < keys.len() && keys.starts_with(&c.path))
            .min_by_key(|c| (std::cmp::Reverse(c.path.len()), c.conditional))
            .ok_or_else(|| EditError::NoPlaceToInsert {
                path: path.to_string(),
                file: self.name.clone(),
            })?;
        let style = insert::Style::detect(&self.text);
        let render = |indent: &str| -> String {
            match new {
                NewValue::Expr(expr) => expr.clone(),
                NewValue::Literal(value @ Value::List(items))
                    if items.len() > 1 && insert::prefers_multiline_lists(&self.root) =>
                {
                    value.render_multiline(indent, &style.unit, style.eol)
                }
                NewValue::Literal(value) => value.render_inline(),
            }
        };
        let rest = &keys[container.path.len()..];
        Ok(insert::plan_insert(
            &self.text,
            &style,
            &container.node,
            rest,
            &render,
        ))
    }

    /// The edit that removes the binding of `path` (with its own line when it
    /// had one), or `None` when the path is not defined.
    pub fn plan_unset(&self, path: &AttrPath) -> Result<Option<TextEdit>, EditError> {
        let walk = self.walk_toward(path.keys());
        let Some(binding) = self.lookup_in(&walk, path)? else {
            return Ok(None);
        };
        if binding.path.len() - binding.prefix_len == 0 {
            return Err(self.not_found(path));
        }
        if binding.inherited
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
            return Ok(Some(TextEdit {
                range: start..range.end,
                replacement: String::new(),
            }));
        }
        Ok(Some(TextEdit {
            range: removal_range(&self.text, node_range(&binding.node)),
            replacement: String::new(),
        }))
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

/// Apply edits, then prove the result parses and has no new duplicate
/// attribute: around the edit when that suffices, else on the whole text.
fn finish(file: &NixFile, path: &AttrPath, edits: &[TextEdit]) -> Result<Edited, EditError> {
    let text = apply_edits(&file.text, edits);
    let local = match edits {
        [edit] => verify::local(file, edit),
        _ => None,
    };
    let verdict = match local {
        Some(verdict) => {
            debug_assert_eq!(
                verdict,
                verify::full(file, &text),
                "the local and the full check disagree on {path} in {}",
                file.name
            );
            verdict
        }
        None => verify::full(file, &text),
    };
    let refuse = |labels: Vec<LabeledSpan>| EditError::WouldNotReparse {
        path: path.to_string(),
        file: file.name.clone(),
        src: NamedSource::new(&file.name, text.clone()),
        labels,
    };
    match verdict {
        verify::Verdict::Valid => Ok(Edited {
            text,
            changed: true,
        }),
        verify::Verdict::Duplicate => Err(refuse(Vec::new())),
        verify::Verdict::Unparsable => {
            let parsed = rnix::Root::parse(&text);
            Err(refuse(parse_error_labels(&text, parsed.errors())))
        }
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
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn parse_error_labels(text: &str, errors: &[rnix::ParseError]) -> Vec<LabeledSpan> {
    errors
        .iter()
        .take(5)
        .map(|e| {
            let (range, message) = describe_parse_error(e, text.len());
            LabeledSpan::new_with_span(Some(message), range)
        })
        .collect()
}

fn describe_parse_error(error: &rnix::ParseError, len: usize) -> (SourceSpan, String) {
    use rnix::ParseError as E;
    let at = |r: rnix::TextRange| -> SourceSpan {
        let start = usize::from(r.start()).min(len);
        (start, usize::from(r.end()).min(len) - start).into()
    };
    match error {
        E::Unexpected(r) => (at(*r), "unexpected input".into()),
        E::UnexpectedExtra(r) => (at(*r), "unexpected extra input".into()),
        E::UnexpectedWanted(found, r, wanted) => {
            let wanted: Vec<String> = wanted.iter().map(|k| token_name(*k)).collect();
            (
                at(*r),
                format!(
                    "found {}, expected {}",
                    token_name(*found),
                    wanted.join(" or ")
                ),
            )
        }
        E::UnexpectedDoubleBind(r) => (at(*r), "double bind".into()),
        E::UnexpectedEOF => ((len, 0).into(), "unexpected end of file".into()),
        E::UnexpectedEOFWanted(wanted) => {
            let wanted: Vec<String> = wanted.iter().map(|k| token_name(*k)).collect();
            (
                (len, 0).into(),
                format!("unexpected end of file, expected {}", wanted.join(" or ")),
            )
        }
        E::DuplicatedArgs(r, name) => (at(*r), format!("argument `{name}` is listed twice")),
        E::RecursionLimitExceeded => ((0, 0).into(), "nesting too deep".into()),
        _ => ((0, 0).into(), error.to_string()),
    }
}

fn token_name(kind: SyntaxKind) -> String {
    let name = format!("{kind:?}");
    let pretty = match kind {
        SyntaxKind::TOKEN_SEMICOLON => "`;`",
        SyntaxKind::TOKEN_ASSIGN => "`=`",
        SyntaxKind::TOKEN_R_BRACE => "`}`",
        SyntaxKind::TOKEN_L_BRACE => "`{`",
        SyntaxKind::TOKEN_R_BRACK => "`]`",
        SyntaxKind::TOKEN_R_PAREN => "`)`",
        SyntaxKind::TOKEN_L_PAREN => "`(`",
        SyntaxKind::TOKEN_L_BRACK => "`[`",
        SyntaxKind::TOKEN_REC => "`rec`",
        SyntaxKind::TOKEN_COLON => "`:`",
        SyntaxKind::TOKEN_COMMA => "`,`",
        SyntaxKind::TOKEN_IN => "`in`",
        SyntaxKind::TOKEN_IDENT => "an identifier",
        SyntaxKind::TOKEN_STRING_START | SyntaxKind::TOKEN_STRING_END => "`\"`",
        _ => {
            return name
                .trim_start_matches("TOKEN_")
                .trim_start_matches("NODE_")
                .to_lowercase()
                .replace('_', " ")
        }
    };
    pretty.to_string()
}
