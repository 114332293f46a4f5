//! Style-matching insertion of a missing attribute.
//!
//! The new binding goes into the deepest attribute set the file already has on
//! the path, next to the sibling that shares the most of its path, written the
//! way the siblings are written: dotted or nested, with their indentation, their
//! line ending and their aligned `=` column.

use rnix::{SyntaxKind, SyntaxNode};

use super::path::render_key;
use super::syntax;
use super::TextEdit;

/// How the file writes things: line ending and indentation unit. Whether it
/// prefers multi-line lists is [`prefers_multiline_lists`], asked only when a
/// list is written (it looks at every list in the file).
#[derive(Clone, Debug)]
pub struct Style {
    pub eol: &'static str,
    pub unit: String,
}

impl Style {
    /// The style of `text`; `layout` is the same text with lone CRs read as
    /// LFs (what the line-based measuring looks at).
    pub fn detect(text: &str, layout: &str) -> Style {
        let eol = if text.contains("\r\n") {
            "\r\n"
        } else if text.contains('\r') && !text.contains('\n') {
            "\r"
        } else {
            "\n"
        };
        Style {
            eol,
            unit: indent_unit(layout),
        }
    }
}

/// The smallest indentation step used in the file: a tab if lines are indented
/// with tabs, else the smallest positive run of leading spaces (two if none).
fn indent_unit(text: &str) -> String {
    let mut smallest: Option<usize> = None;
    for line in text.lines() {
        if line.starts_with('\t') {
            return "\t".into();
        }
        let spaces = line.len() - line.trim_start_matches(' ').len();
        if spaces > 0 && spaces < line.len() {
            smallest = Some(smallest.map_or(spaces, |s| s.min(spaces)));
        }
    }
    " ".repeat(smallest.unwrap_or(2))
}

/// Whether lists of two or more items are mostly written one item per line.
pub fn prefers_multiline_lists(root: &SyntaxNode, layout: &str) -> bool {
    // Line breaks by offset, so that each list costs a lookup, not a scan
    // of its text (nested lists would make that quadratic).
    let breaks: Vec<usize> = layout
        .bytes()
        .enumerate()
        .filter(|(_, b)| *b == b'\n')
        .map(|(i, _)| i)
        .collect();
    let (mut multi, mut single) = (0, 0);
    for list in root
        .descendants()
        .filter(|n| n.kind() == SyntaxKind::NODE_LIST)
    {
        if list.children().nth(1).is_none() {
            continue;
        }
        let r = list.text_range();
        let (start, end) = (usize::from(r.start()), usize::from(r.end()));
        if breaks.partition_point(|&b| b < end) > breaks.partition_point(|&b| b < start) {
            multi += 1;
        } else {
            single += 1;
        }
    }
    multi > single
}

/// Renders the value given the indentation of the line the binding starts on.
pub type RenderValue<'a> = &'a dyn Fn(&str) -> String;

/// Plan the insertion of `rest = value;` into the attribute set `set`.
pub fn plan_insert(
    text: &str,
    style: &Style,
    set: &SyntaxNode,
    rest: &[String],
    render: RenderValue,
) -> TextEdit {
    let entries: Vec<SyntaxNode> = set
        .children()
        .filter(|c| {
            matches!(
                c.kind(),
                SyntaxKind::NODE_ATTRPATH_VALUE | SyntaxKind::NODE_INHERIT
            )
        })
        .collect();
    let dotted = prefers_dotted(&entries);
    match anchor(&entries, rest) {
        Some(anchor) => insert_after(text, style, &entries, &anchor, rest, dotted, render),
        None => insert_into_empty(text, style, set, rest, dotted, render),
    }
}

/// Siblings written `a.b = …` mean dotted; siblings that open nested sets
/// (`a = { … };`) mean nested; plain leaves alone say nothing, and a single line
/// is the smaller change. (Entries with a dynamic key say nothing either.)
fn prefers_dotted(entries: &[SyntaxNode]) -> bool {
    let mut nested = false;
    for entry in entries
        .iter()
        .filter(|e| e.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
    {
        let Some(attrs) = syntax::binding_attrpath(entry) else {
            continue;
        };
        if !attrs.children().all(|a| syntax::attr_is_static(&a)) {
            continue;
        }
        if attrs.children().nth(1).is_some() {
            return true;
        }
        nested |= syntax::binding_value(entry)
            .is_some_and(|v| syntax::unparen(&v).kind() == SyntaxKind::NODE_ATTR_SET);
    }
    !nested
}

/// The sibling sharing the longest key prefix with `rest` (the last of equals),
/// or the last entry when none shares anything. Keys are compared in place
/// (a large set has tens of thousands of entries).
fn anchor(entries: &[SyntaxNode], rest: &[String]) -> Option<SyntaxNode> {
    let shared = |entry: &SyntaxNode| -> usize {
        let Some(attrs) = syntax::binding_attrpath(entry) else {
            return 0;
        };
        if !attrs.children().all(|a| syntax::attr_is_static(&a)) {
            return 0;
        }
        attrs
            .children()
            .zip(rest)
            .take_while(|(attr, key)| syntax::attr_is(attr, key))
            .count()
    };
    let shares: Vec<usize> = entries.iter().map(shared).collect();
    let best = shares.iter().copied().max()?;
    let at = shares.iter().rposition(|&s| s == best)?;
    entries.get(at).cloned()
}

fn insert_after(
    text: &str,
    style: &Style,
    entries: &[SyntaxNode],
    anchor: &SyntaxNode,
    rest: &[String],
    dotted: bool,
    render: RenderValue,
) -> TextEdit {
    let start = usize::from(anchor.text_range().start());
    let end = usize::from(anchor.text_range().end());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..start];
    // Only indentation (and perhaps a `/* … */` comment) before the anchor.
    let leading = before.trim();
    let own_line = leading.is_empty() || (leading.starts_with("/*") && leading.ends_with("*/"));
    let indent_len = before.len() - before.trim_start_matches([' ', '\t']).len();
    let after_trivia = skip_trailing_trivia(text, end);
    let line_ends_here =
        after_trivia >= text.len() || text[after_trivia..].starts_with(['\n', '\r']);
    if !(own_line && line_ends_here) {
        // Single-line set or several bindings on a line: stay on the line.
        let binding = render_binding(rest, dotted, "", "", " ", &|_| render(""), None);
        return TextEdit {
            range: end..end,
            replacement: format!(" {binding}"),
        };
    }
    let indent = before[..indent_len].to_string();
    let align = aligned_column(text, entries, anchor);
    let binding = render_binding(rest, dotted, &indent, &style.unit, style.eol, render, align);
    let newline_end = text[after_trivia..]
        .find('\n')
        .map(|i| after_trivia + i + 1);
    match newline_end {
        Some(pos) => TextEdit {
            range: pos..pos,
            replacement: format!("{indent}{binding}{}", style.eol),
        },
        None => TextEdit {
            range: text.len()..text.len(),
            replacement: format!("{}{indent}{binding}", style.eol),
        },
    }
}

/// The offset after spaces and comments that follow `pos` on the same line.
fn skip_trailing_trivia(text: &str, mut pos: usize) -> usize {
    loop {
        let rest = &text[pos..];
        let trimmed = rest.trim_start_matches([' ', '\t']);
        pos += rest.len() - trimmed.len();
        if trimmed.starts_with('#') {
            return pos
                + trimmed.find('\n').map_or(trimmed.len(), |i| {
                    if trimmed[..i].ends_with('\r') {
                        i - 1
                    } else {
                        i
                    }
                });
        }
        if let Some(body) = trimmed.strip_prefix("/*") {
            match body.find("*/") {
                Some(close) if !body[..close].contains('\n') => pos += 2 + close + 2,
                _ => return pos,
            }
            continue;
        }
        return pos;
    }
}

/// When the anchor's `=` lines up with a neighbour's and the block pads keys to
/// do so, the column (in characters from the line start) to pad new keys to.
pub(crate) fn aligned_column(
    text: &str,
    entries: &[SyntaxNode],
    anchor: &SyntaxNode,
) -> Option<usize> {
    let index = entries.iter().position(|e| e == anchor)?;
    let info = |e: &SyntaxNode| eq_column(text, e);
    let (col, padded) = info(anchor)?;
    let neighbours = [index.checked_sub(1), Some(index + 1)];
    let mut matched = false;
    let mut any_padded = padded;
    for n in neighbours
        .into_iter()
        .flatten()
        .filter_map(|i| entries.get(i))
    {
        if let Some((c, p)) = info(n) {
            if c == col {
                matched = true;
                any_padded |= p;
            }
        }
    }
    (matched && any_padded).then_some(col)
}

/// Column of a binding's `=` and whether its key is padded by more than one space.
fn eq_column(text: &str, binding: &SyntaxNode) -> Option<(usize, bool)> {
    let eq = binding
        .children_with_tokens()
        .find(|t| t.kind() == SyntaxKind::TOKEN_ASSIGN)?;
    let attrpath = syntax::binding_attrpath(binding)?;
    let eq_at = usize::from(eq.text_range().start());
    let key_end = usize::from(attrpath.text_range().end());
    let line_start = text[..eq_at].rfind('\n').map_or(0, |i| i + 1);
    if line_start > usize::from(binding.text_range().start()) {
        return None; // key and `=` on different lines
    }
    let col = text[line_start..eq_at].chars().count();
    Some((col, eq_at - key_end > 1))
}

fn insert_into_empty(
    text: &str,
    style: &Style,
    set: &SyntaxNode,
    rest: &[String],
    dotted: bool,
    render: RenderValue,
) -> TextEdit {
    let open = set
        .children_with_tokens()
        .find(|t| t.kind() == SyntaxKind::TOKEN_L_BRACE);
    let close = set
        .children_with_tokens()
        .filter(|t| t.kind() == SyntaxKind::TOKEN_R_BRACE)
        .last();
    let (Some(open), Some(close)) = (open, close) else {
        let at = usize::from(set.text_range().end());
        return TextEdit {
            range: at..at,
            replacement: String::new(),
        };
    };
    let open_end = usize::from(open.text_range().end());
    let close_start = usize::from(close.text_range().start());
    let inside = &text[open_end..close_start];
    if !inside.contains('\n') {
        // `{ }` or `{}` on one line: keep it on one line.
        let binding = render_binding(rest, dotted, "", "", " ", &|_| render(""), None);
        return TextEdit {
            range: open_end..close_start,
            replacement: format!(" {binding} "),
        };
    }
    // Braces on separate lines: a new line just above the closing brace.
    let close_line_start = text[..close_start].rfind('\n').map_or(0, |i| i + 1);
    let close_indent: String = text[close_line_start..close_start]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    let indent = format!("{close_indent}{}", style.unit);
    let binding = render_binding(rest, dotted, &indent, &style.unit, style.eol, render, None);
    if text[close_line_start..close_start].trim().is_empty() {
        TextEdit {
            range: close_line_start..close_line_start,
            replacement: format!("{indent}{binding}{}", style.eol),
        }
    } else {
        TextEdit {
            range: close_start..close_start,
            replacement: format!("{}{indent}{binding}{}{close_indent}", style.eol, style.eol),
        }
    }
}

/// `a.b.c = v;` (dotted) or `a = { b = { c = v; }; };` (nested, one key per
/// level, each level indented one unit deeper). Built level by level: a path
/// may be as long as the user types it.
fn render_binding(
    keys: &[String],
    dotted: bool,
    indent: &str,
    unit: &str,
    eol: &str,
    render: RenderValue,
    align: Option<usize>,
) -> String {
    let pad = |key: String| -> String {
        let width = indent.chars().count() + key.chars().count();
        match align {
            Some(col) if col > width => format!("{key}{}", " ".repeat(col - width)),
            _ => format!("{key} "),
        }
    };
    let Some((last, parents)) = keys.split_last() else {
        return String::new();
    };
    if dotted || parents.is_empty() {
        let key: Vec<String> = keys.iter().map(|k| render_key(k)).collect();
        return format!("{}= {};", pad(key.join(".")), render(indent));
    }
    let mut out = String::new();
    let mut closes: Vec<String> = Vec::new();
    let mut level_indent = indent.to_string();
    for (i, key) in parents.iter().enumerate() {
        let key = if i == 0 {
            pad(render_key(key))
        } else {
            format!("{} ", render_key(key))
        };
        let inner_indent = format!("{level_indent}{unit}");
        if eol == " " {
            out.push_str(&format!("{key}= {{ "));
            closes.push(" };".to_string());
        } else {
            out.push_str(&format!("{key}= {{{eol}{inner_indent}"));
            closes.push(format!("{eol}{level_indent}}};"));
        }
        level_indent = inner_indent;
    }
    out.push_str(&format!(
        "{} = {};",
        render_key(last),
        render(&level_indent)
    ));
    for close in closes.into_iter().rev() {
        out.push_str(&close);
    }
    out
}
