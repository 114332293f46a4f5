//! The text that replaces a value, written the way Nix reads it and the way
//! the file already writes it.
//!
//! Must never change the meaning around the value (a negative number or an
//! operator expression as an argument gets parentheses, so `f -1` never
//! becomes a subtraction), and never pile up parentheses or drop the file's
//! comments and layout: setting a value back restores the original bytes.

use rnix::{SyntaxKind, SyntaxNode};
use similar::{Algorithm, DiffOp};

use super::value::Value;
use super::{insert, line_indent, node_range, syntax, NixFile, TextEdit};

/// Replace the value `inner` (parentheses and wrappers already peeled) with
/// the expression `expr`.
pub fn expression(inner: &SyntaxNode, expr: &str) -> TextEdit {
    let simple = rnix::Root::parse(expr)
        .syntax()
        .children()
        .next()
        .is_some_and(|node| syntax::is_simple(&node));
    slot_edit(inner, expr.to_string(), simple)
}

/// Replace the literal `inner` with `value`, in the file's style.
pub fn literal(file: &NixFile, inner: &SyntaxNode, value: &Value) -> TextEdit {
    match (value, inner.kind()) {
        (Value::List(items), SyntaxKind::NODE_LIST) => TextEdit {
            range: node_range(inner),
            replacement: list(file, inner, items),
        },
        (Value::String(s), SyntaxKind::NODE_STRING) if syntax::is_indented_string(inner) => {
            let text = indented(file, inner, s).unwrap_or_else(|| value.render_value());
            slot_edit(inner, text, true)
        }
        (Value::List(_), _) => {
            let layout = file.layout();
            let style = insert::Style::detect(file.text(), layout);
            let indent = line_indent(layout, node_range(inner).start);
            let text = if insert::prefers_multiline_lists(file.root(), layout) {
                value.render_multiline(&indent, &style.unit, style.eol)
            } else {
                value.render_inline()
            };
            slot_edit(inner, text, true)
        }
        _ => slot_edit(inner, value.render_value(), !value.is_negative()),
    }
}

/// The edit that puts `text` where `inner` is. Where the place needs a
/// simple expression (an argument, a list item), a value that is not one
/// gets one pair of parentheses, and a pair that only a replaced value needed
/// goes with it: `mkForce 5` → `mkForce (-22)` → `mkForce 5`, never
/// `mkForce ((5))`. Elsewhere the file's own parentheses stay as they are.
fn slot_edit(inner: &SyntaxNode, text: String, simple: bool) -> TextEdit {
    let mut parens: Vec<SyntaxNode> = Vec::new();
    let mut outer = inner.clone();
    while let Some(parent) = outer.parent() {
        if parent.kind() != SyntaxKind::NODE_PAREN {
            break;
        }
        parens.push(parent.clone());
        outer = parent;
    }
    let needs_simple = outer.parent().is_some_and(|p| match p.kind() {
        SyntaxKind::NODE_LIST => true,
        SyntaxKind::NODE_APPLY => p.children().next().as_ref() != Some(&outer),
        _ => false,
    });
    let was_simple = syntax::is_simple(inner);
    let (range, replacement) = match (needs_simple, parens.first()) {
        (false, _) => (node_range(inner), text),
        (true, None) if simple => (node_range(inner), text),
        (true, None) => (node_range(inner), format!("({text})")),
        (true, Some(innermost)) if !was_simple && simple => (node_range(innermost), text),
        (true, Some(_)) if was_simple && !simple => (node_range(inner), format!("({text})")),
        (true, Some(_)) => (node_range(inner), text),
    };
    TextEdit { range, replacement }
}

/// The list `old` holding `new`, item by item: items that stay keep their
/// bytes (and the comments and line breaks around them), a changed item is
/// replaced in place, and new items follow the list's layout (one per line
/// stays one per line).
fn list(file: &NixFile, old: &SyntaxNode, new: &[Value]) -> String {
    let text = file.text();
    let layout = file.layout();
    let items: Vec<SyntaxNode> = old.children().collect();
    let old_range = node_range(old);
    let style = insert::Style::detect(text, layout);
    if items.is_empty() && !layout[old_range.clone()].contains('\n') {
        return Value::List(new.to_vec()).render_inline();
    }
    let old_keys: Vec<String> = items
        .iter()
        .map(|item| {
            Value::from_node(item)
                .map(|v| v.render_inline())
                .unwrap_or_else(|| item.text().to_string())
        })
        .collect();
    let new_keys: Vec<String> = new.iter().map(Value::render_inline).collect();
    let multiline = layout[old_range.clone()].contains('\n');
    // Edits relative to the file; applied to the list's text at the end.
    let mut edits: Vec<TextEdit> = Vec::new();
    // The indentation of an item that starts its own line, else one unit
    // in from the closing bracket's line.
    let own_line = |item: &&SyntaxNode| {
        let start = node_range(item).start;
        let line_start = layout[..start].rfind('\n').map_or(0, |i| i + 1);
        layout[line_start..start]
            .bytes()
            .all(|b| b == b' ' || b == b'\t')
    };
    let item_indent = match items.iter().find(own_line) {
        Some(item) => line_indent(layout, node_range(item).start),
        None => {
            let close = old_range.end.saturating_sub(1);
            format!("{}{}", line_indent(layout, close), style.unit)
        }
    };
    let insert_after = |at: Option<&SyntaxNode>, values: &[Value], edits: &mut Vec<TextEdit>| {
        if values.is_empty() {
            return;
        }
        let rendered: Vec<String> = values.iter().map(Value::render_inline).collect();
        match (multiline, at) {
            (true, Some(item)) => {
                let end = node_range(item).end;
                let line_end = layout[end..].find('\n').map_or(layout.len(), |i| end + i);
                let line_end = if layout[..line_end].ends_with('\r') {
                    line_end - 1
                } else {
                    line_end
                };
                let lines: String = rendered
                    .iter()
                    .map(|r| format!("{}{item_indent}{r}", style.eol))
                    .collect();
                edits.push(TextEdit {
                    range: line_end..line_end,
                    replacement: lines,
                });
            }
            (true, None) => {
                // Before the first item's line, or the closing bracket's.
                let anchor = items
                    .first()
                    .map_or(old_range.end - 1, |first| node_range(first).start);
                let line_start = layout[..anchor].rfind('\n').map_or(0, |i| i + 1);
                let lines: String = rendered
                    .iter()
                    .map(|r| format!("{item_indent}{r}{}", style.eol))
                    .collect();
                edits.push(TextEdit {
                    range: line_start..line_start,
                    replacement: lines,
                });
            }
            (false, Some(item)) => {
                let end = node_range(item).end;
                edits.push(TextEdit {
                    range: end..end,
                    replacement: rendered.iter().map(|r| format!(" {r}")).collect(),
                });
            }
            (false, None) => {
                // Before the first item (a list without items was written
                // anew above).
                let at = items
                    .first()
                    .map_or(old_range.start + 1, |f| node_range(f).start);
                edits.push(TextEdit {
                    range: at..at,
                    replacement: rendered.iter().map(|r| format!("{r} ")).collect(),
                });
            }
        }
    };
    let mut removals: Vec<std::ops::Range<usize>> = Vec::new();
    let mut remove = |item: &SyntaxNode| removals.push(item_removal(layout, node_range(item)));
    let ops = similar::capture_diff_slices(Algorithm::Myers, &old_keys, &new_keys);
    for op in ops {
        match op {
            DiffOp::Equal { .. } => {}
            DiffOp::Delete {
                old_index, old_len, ..
            } => {
                for item in &items[old_index..old_index + old_len] {
                    remove(item);
                }
            }
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => {
                let at = old_index.checked_sub(1).and_then(|i| items.get(i));
                insert_after(at, &new[new_index..new_index + new_len], &mut edits);
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                let paired = old_len.min(new_len);
                for k in 0..paired {
                    let item = &items[old_index + k];
                    let value = &new[new_index + k];
                    let inner = syntax::unparen(item);
                    edits.push(slot_edit(
                        &inner,
                        value.render_value(),
                        !value.is_negative(),
                    ));
                }
                for item in &items[old_index + paired..old_index + old_len] {
                    remove(item);
                }
                // A replacement pairs at least one item (both sides are
                // non-empty): the rest goes after the last paired one.
                let last = items.get(old_index + paired.max(1) - 1);
                insert_after(
                    last,
                    &new[new_index + paired..new_index + new_len],
                    &mut edits,
                );
            }
        }
    }
    // Removals of neighbouring items may share the spaces between them.
    removals.sort_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
    for r in removals {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    edits.extend(merged.into_iter().map(|range| TextEdit {
        range,
        replacement: String::new(),
    }));
    // Apply inside the list's text, back to front.
    edits.sort_by_key(|e| std::cmp::Reverse((e.range.start, e.range.end)));
    let mut out = text[old_range.clone()].to_string();
    for edit in edits {
        let range = edit.range.start - old_range.start..edit.range.end - old_range.start;
        out.replace_range(range, &edit.replacement);
    }
    out
}

/// The bytes that go with a list item: its whole line (and a comment after
/// it) when it has a line of its own, else the spaces before it.
fn item_removal(layout: &str, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let line_start = layout[..range.start].rfind('\n').map_or(0, |i| i + 1);
    let own_line = layout[line_start..range.start]
        .chars()
        .all(|c| c == ' ' || c == '\t');
    let rest = &layout[range.end..];
    let line_rest_len = rest.find('\n').unwrap_or(rest.len());
    let line_rest = rest[..line_rest_len].trim();
    if own_line && (line_rest.is_empty() || line_rest.starts_with('#')) && line_start > 0 {
        let end = (range.end + line_rest_len + 1).min(layout.len());
        return line_start..end;
    }
    let start = layout[..range.start].trim_end_matches([' ', '\t']).len();
    if start < range.start {
        start..range.end
    } else {
        let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        range.start..range.end + spaces
    }
}

/// `s` as an indented string in the place of the indented string `old`,
/// indented as `old`'s content is; `None` when that would not read back as
/// `s` (a CR, a leading space on every line, a tab-indented file, …).
fn indented(file: &NixFile, old: &SyntaxNode, s: &str) -> Option<String> {
    let layout = file.layout();
    let style = insert::Style::detect(file.text(), layout);
    if style.eol != "\n" || s.contains('\r') || s.ends_with('\'') {
        return None;
    }
    let escaped = s.replace("''", "'''").replace("${", "''${");
    let range = node_range(old);
    let old_text = &layout[range.clone()];
    let open_indent = line_indent(layout, range.start);
    let text = if !s.contains('\n') {
        if s.starts_with(' ') {
            return None;
        }
        format!("''{escaped}''")
    } else {
        // The content's indentation: the old content's, else one unit in.
        let content_indent = old_text
            .lines()
            .skip(1)
            .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with("''"))
            .map(|l| l[..l.len() - l.trim_start_matches(' ').len()].to_string())
            .unwrap_or_else(|| format!("{open_indent}{}", style.unit));
        let close_indent = old_text
            .lines()
            .last()
            .filter(|l| l.trim() == "''")
            .map(|l| l[..l.len() - l.trim_start().len()].to_string())
            .unwrap_or_else(|| open_indent.clone());
        if !content_indent.bytes().all(|b| b == b' ') || !close_indent.bytes().all(|b| b == b' ') {
            return None;
        }
        let mut out = String::from("''\n");
        let lines: Vec<&str> = escaped.split('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let last = i + 1 == lines.len();
            if last {
                if line.is_empty() {
                    out.push_str(&close_indent);
                } else {
                    out.push_str(&content_indent);
                    out.push_str(line);
                }
                break;
            }
            if !line.is_empty() {
                out.push_str(&content_indent);
                out.push_str(line);
            }
            out.push('\n');
        }
        out.push_str("''");
        out
    };
    // Only what reads back as `s`.
    let parsed = rnix::Root::parse(&text);
    let node = parsed.syntax().children().next()?;
    (parsed.errors().is_empty() && syntax::static_string(&node).as_deref() == Some(s))
        .then_some(text)
}
