//! The editor's guarantees as executable checks: what the fuzz targets
//! (`fuzz/`), the replay of their corpus and the real-corpus test assert on
//! every input.
//!
//! Must never call a broken guarantee fine: each check returns the first one
//! that does not hold. They are, for any input the editor accepts:
//! - `get`: answers or refuses, and a value it reads can be set again as a
//!   no-op;
//! - `set`: the output loads again under Nix's rules, the edit lies inside
//!   the old value (or inserts only), the path reads back the new value, a
//!   second identical `set` changes nothing, and setting the old value back
//!   restores the original bytes when they were written the way nixflip
//!   writes them;
//! - `unset`: the output loads again, only the binding and the whitespace
//!   and comments around it are gone, and the path is no longer defined.
//!
//! [`Case::from_bytes`] turns fuzzer bytes into a file, a path and a value,
//! so the same bytes mean the same case to the fuzzer and to `cargo test`.

use super::value::Value;
use super::{
    apply_edits, node_range, replace, set, unset, AttrPath, NewValue, NixFile, Query, Reading,
};

/// One case: a file, how to read it, which path, and what to write.
#[derive(Clone, Debug)]
pub struct Case {
    pub text: Vec<u8>,
    pub reading: Reading,
    /// Which of the file's paths (modulo their count).
    pub pick: usize,
    /// A fresh key under the picked path's parent instead (an insertion).
    pub fresh: bool,
    pub new: NewValue,
}

impl Case {
    /// Decode fuzzer bytes: a flags byte, two bytes of path choice, a value
    /// length and the value's bytes, then the file.
    pub fn from_bytes(data: &[u8]) -> Case {
        let byte = |i: usize| data.get(i).copied().unwrap_or(0);
        let flags = byte(0);
        let pick = usize::from(u16::from_le_bytes([byte(1), byte(2)]));
        let len = usize::from(byte(3)).min(data.len().saturating_sub(4));
        let raw = data.get(4..4 + len).unwrap_or(&[]);
        let text = data.get(4 + len..).unwrap_or(&[]).to_vec();
        let word = |raw: &[u8]| {
            let mut bytes = [0u8; 8];
            for (b, r) in bytes.iter_mut().zip(raw) {
                *b = *r;
            }
            bytes
        };
        let string = String::from_utf8_lossy(raw).into_owned();
        let new = match (flags >> 2) & 7 {
            0 => NewValue::Literal(Value::Null),
            1 => NewValue::Literal(Value::Bool(raw.first().is_some_and(|b| b & 1 == 1))),
            2 => NewValue::Literal(Value::Int(i64::from_le_bytes(word(raw)))),
            3 => NewValue::Literal(Value::Float(f64::from_le_bytes(word(raw)))),
            4 => NewValue::Literal(Value::String(string)),
            5 => NewValue::Literal(Value::List(
                string
                    .split(',')
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            )),
            6 => NewValue::Literal(Value::Int(-i64::from(byte(4)))),
            // As the command line makes it: trimmed and checked, so only
            // what `--expr` accepts reaches the editor.
            _ => NewValue::expr(&string).unwrap_or(NewValue::Literal(Value::String(string))),
        };
        Case {
            text,
            reading: if flags & 1 == 1 {
                Reading::Option
            } else {
                Reading::Attrs
            },
            pick,
            fresh: flags & 2 == 2,
            new,
        }
    }

    /// The file, when the editor accepts it (refusing is fine: the checks
    /// are about what it does with what it accepts).
    pub fn file(&self) -> Option<NixFile> {
        NixFile::from_bytes("case.nix", self.text.clone(), self.reading).ok()
    }

    /// The path this case edits in `file`.
    pub fn path(&self, file: &NixFile) -> AttrPath {
        let mut paths: Vec<Vec<String>> = file.bindings().iter().map(|b| b.path.clone()).collect();
        paths.dedup();
        let mut keys = match paths.len() {
            0 => Vec::new(),
            n => paths[self.pick % n].clone(),
        };
        if self.fresh || keys.is_empty() {
            keys.pop();
            keys.push(format!("fz{}", self.pick % 7));
        }
        AttrPath::new(keys)
    }
}

/// Whether `expr` is an empty attribute set literal (in parentheses or not).
fn is_empty_set(expr: &str) -> bool {
    let root = rnix::Root::parse(expr).syntax();
    root.first_child()
        .map(|e| super::syntax::unparen(&e))
        .is_some_and(|e| e.kind() == rnix::SyntaxKind::NODE_ATTR_SET && e.first_child().is_none())
}

/// `get` on `path`: it answers or refuses; a literal it reads is a no-op to
/// set.
pub fn check_get(file: &NixFile, path: &AttrPath) -> Result<(), String> {
    let _ = file.lookup(path);
    if let Ok(Query::One(found)) = file.query(path) {
        if let Some(value) = found.value {
            let again = set(file, path, &NewValue::Literal(value.clone()));
            if let Ok(edited) = again {
                if edited.changed {
                    return Err(format!(
                        "setting {path} to the value get read ({value:?}) changed the file"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `set` of `path` to `new`, with every guarantee of the module comment.
pub fn check_set(file: &NixFile, path: &AttrPath, new: &NewValue) -> Result<(), String> {
    let text = file.text();
    let before = file.lookup(path).ok().flatten();
    let plan = file.plan_set(path, new);
    let edited = match set(file, path, new) {
        Ok(edited) => edited,
        Err(_) => return Ok(()), // refused: nothing written
    };
    let Ok(plan) = plan else {
        return Err(format!("set {path} succeeded but its plan failed"));
    };
    let Some(edit) = plan else {
        return (edited.text == text && !edited.changed)
            .then_some(())
            .ok_or_else(|| format!("set {path} changed the file without an edit"));
    };
    if edited.text != apply_edits(text, std::slice::from_ref(&edit)) {
        return Err(format!(
            "set {path}: the output is not the planned edit applied"
        ));
    }
    match &before {
        Some(binding) => {
            let slot = node_range(&binding.value);
            if !(slot.start <= edit.range.start && edit.range.end <= slot.end) {
                return Err(format!(
                    "set {path}: the edit {:?} reaches outside the old value {slot:?}",
                    edit.range
                ));
            }
        }
        None => {
            if !text[edit.range.clone()].trim().is_empty() {
                return Err(format!(
                    "set {path}: the insertion replaced {:?}",
                    &text[edit.range.clone()]
                ));
            }
        }
    }
    let out = NixFile::parse_as(file.name(), edited.text.clone(), file.reading())
        .map_err(|e| format!("set {path}: the output does not load: {e}\n{}", edited.text))?;
    match (out.query(path), new) {
        (Ok(Query::One(found)), NewValue::Literal(value))
            if found.value.as_ref() == Some(value) => {}
        (Ok(Query::One(found)), NewValue::Expr(expr))
            if found.expr == *expr
                || found.expr.trim_start_matches('(').trim_end_matches(')') == expr => {}
        // A wrapper written as an expression (`lib.mkForce true`) reads back
        // as the value it wraps: it must come from the written text, which
        // holds the expression as given.
        (Ok(Query::One(found)), NewValue::Expr(expr))
            if edit.range.start <= found.span.start
                && found.span.end <= edit.range.start + edit.replacement.len()
                && edit.replacement.contains(expr.as_str()) => {}
        // An attribute set written as an expression reads back as the set
        // it composes: every definition must come from the written text.
        (Ok(Query::Set(composed)), NewValue::Expr(_))
            if !composed.definitions.is_empty()
                && composed.definitions.iter().all(|(_, found)| {
                    edit.range.start <= found.span.start
                        && found.span.end <= edit.range.start + edit.replacement.len()
                }) => {}
        // An empty set (`{ }`) written as an expression reads back as the
        // empty set, with no definitions to trace.
        (Ok(Query::Set(composed)), NewValue::Expr(expr))
            if composed.definitions.is_empty()
                && composed.value == Some(serde_json::json!({}))
                && edit.replacement.contains(expr.as_str())
                && is_empty_set(expr) => {}
        (other, _) => {
            return Err(format!(
                "set {path}: reads back {other:?}, not {new:?}\n{}",
                edited.text
            ))
        }
    }
    match set(&out, path, new) {
        Ok(again) if !again.changed => {}
        other => return Err(format!("set {path} a second time: {other:?}")),
    }
    set_back(file, &out, path, new, before.as_ref())
}

/// Setting the old value back restores the bytes, when the old value was
/// written as nixflip writes it and the new one has the same shape.
fn set_back(
    file: &NixFile,
    out: &NixFile,
    path: &AttrPath,
    new: &NewValue,
    before: Option<&super::walk::Binding>,
) -> Result<(), String> {
    let Some(binding) = before else { return Ok(()) };
    let (Some(old), NewValue::Literal(value)) = (Value::from_node(&binding.inner), new) else {
        return Ok(());
    };
    let same_shape = match (&old, value) {
        (Value::List(a), Value::List(b)) => a.len() == b.len(),
        (Value::List(_), _) | (_, Value::List(_)) => false,
        _ => true,
    };
    if !same_shape || !canonical(file, &binding.inner, &old) {
        return Ok(());
    }
    let back = set(out, path, &NewValue::Literal(old.clone()))
        .map_err(|e| format!("setting {path} back to {old:?} failed: {e}"))?;
    if back.text != file.text() {
        return Err(format!(
            "setting {path} back to {old:?} did not restore the file:\n--- before\n{}\n--- after\n{}",
            file.text(),
            back.text
        ));
    }
    Ok(())
}

/// Whether nixflip would write `value` exactly as `inner` is written: for a
/// list, each of its items.
fn canonical(file: &NixFile, inner: &rnix::SyntaxNode, value: &Value) -> bool {
    let same = |node: &rnix::SyntaxNode, v: &Value| {
        let edit = replace::literal(file, node, v);
        file.text()[edit.range.clone()] == edit.replacement
    };
    match (value, inner.kind()) {
        (Value::List(items), rnix::SyntaxKind::NODE_LIST) => {
            inner.children().count() == items.len()
                && inner.children().zip(items).all(|(item, v)| {
                    let item = super::syntax::unparen(&item);
                    !matches!(v, Value::List(_)) && same(&item, v)
                })
        }
        _ => same(inner, value),
    }
}

/// `unset` of `path`, with every guarantee of the module comment.
pub fn check_unset(file: &NixFile, path: &AttrPath) -> Result<(), String> {
    let text = file.text();
    let before = file.lookup(path).ok().flatten();
    let plan = file.plan_unset(path);
    let edited = match unset(file, path) {
        Ok(edited) => edited,
        Err(_) => return Ok(()),
    };
    let (Ok(Some(edit)), Some(binding)) = (plan, before) else {
        return (!edited.changed)
            .then_some(())
            .ok_or_else(|| format!("unset {path} changed the file without a binding"));
    };
    if edited.text != apply_edits(text, std::slice::from_ref(&edit)) {
        return Err(format!(
            "unset {path}: the output is not the planned edit applied"
        ));
    }
    // Only the binding (or its name in `inherit`, or the whole `inherit …;`
    // when it was the last name there) and trivia go.
    let node = if binding.inherited {
        let names = binding
            .node
            .children()
            .filter(|c| c.kind() != rnix::SyntaxKind::NODE_INHERIT_FROM)
            .count();
        if names == 1 {
            node_range(&binding.node)
        } else {
            node_range(&binding.value)
        }
    } else {
        node_range(&binding.node)
    };
    if !(edit.range.start <= node.start && node.end <= edit.range.end) {
        return Err(format!(
            "unset {path}: the edit {:?} misses the binding {node:?}",
            edit.range
        ));
    }
    let rest = format!(
        "{}{}",
        &text[edit.range.start..node.start],
        &text[node.end..edit.range.end]
    );
    if rnix::tokenize(&rest).any(|(kind, _)| !kind.is_trivia()) {
        return Err(format!(
            "unset {path}: removed more than the binding: {rest:?}"
        ));
    }
    let out = NixFile::parse_as(file.name(), edited.text.clone(), file.reading()).map_err(|e| {
        format!(
            "unset {path}: the output does not load: {e}\n{}",
            edited.text
        )
    })?;
    match out.lookup(path) {
        Ok(None) => Ok(()),
        other => Err(format!(
            "unset {path}: still defined after ({:?})\n{}",
            other.map(|b| b.map(|b| b.node.text().to_string())),
            edited.text
        )),
    }
}

/// Run one operation of a fuzz case: decode, load, check.
pub fn run(operation: Operation, data: &[u8]) -> Result<(), String> {
    let case = Case::from_bytes(data);
    let Some(file) = case.file() else {
        return Ok(());
    };
    let path = case.path(&file);
    match operation {
        Operation::Get => check_get(&file, &path),
        Operation::Set => check_set(&file, &path, &case.new),
        Operation::Unset => check_unset(&file, &path),
    }
}

/// The editor operations the checks cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Get,
    Set,
    Unset,
}
