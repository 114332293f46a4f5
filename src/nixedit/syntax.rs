//! Small, pure helpers over the `rnix` syntax tree: key normalisation, string
//! decoding, and recognising the module-system wrapper calls.

use rnix::{SyntaxKind, SyntaxNode, SyntaxToken};

/// Strip any number of parentheses around an expression.
pub fn unparen(node: &SyntaxNode) -> SyntaxNode {
    let mut node = node.clone();
    while node.kind() == SyntaxKind::NODE_PAREN {
        match node.children().next() {
            Some(inner) => node = inner,
            None => break,
        }
    }
    node
}

/// The value of a string without interpolation, as Nix reads it: escapes
/// decoded, and for an indented string (`''…''`) the indentation stripped.
/// `None` for a string with interpolation.
pub fn static_string(node: &SyntaxNode) -> Option<String> {
    if node.kind() != SyntaxKind::NODE_STRING {
        return None;
    }
    let mut indented = false;
    let mut raw = String::new();
    for element in node.children_with_tokens() {
        match element.kind() {
            SyntaxKind::TOKEN_STRING_START => {
                indented = element.as_token().map(SyntaxToken::text) == Some("''");
            }
            SyntaxKind::TOKEN_STRING_END => {}
            SyntaxKind::TOKEN_STRING_CONTENT => raw.push_str(element.as_token()?.text()),
            _ => return None,
        }
    }
    Some(if indented {
        indented_value(&raw)
    } else {
        quoted_value(&raw)
    })
}

/// A string's value from its raw content (between the quotes, without
/// interpolation).
pub fn string_value(raw: &str, indented: bool) -> String {
    if indented {
        indented_value(raw)
    } else {
        quoted_value(raw)
    }
}

/// Append `raw` (the content of a double-quoted string) with its escapes decoded.
pub fn decode_escapes(raw: &str, out: &mut String) {
    out.push_str(&quoted_value(raw));
}

/// Whether `node` is an indented string (`''…''`).
pub fn is_indented_string(node: &SyntaxNode) -> bool {
    node.kind() == SyntaxKind::NODE_STRING
        && node
            .first_token()
            .is_some_and(|t| t.kind() == SyntaxKind::TOKEN_STRING_START && t.text() == "''")
}

/// A `"…"` string's content decoded as Nix's `unescapeStr` does: `\n`,
/// `\r`, `\t`, any other escaped character as itself, and a raw CR or CR LF
/// read as LF.
fn quoted_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            c => out.push(c),
        }
    }
    out
}

/// An indented string's content as Nix reads it: its lexer's pieces (runs of
/// text, and the escapes `''$`, `'''`, `''\\x`), then `stripIndentation`:
/// the smallest indentation of the lines (escapes end a line's indentation)
/// removed from every line, and a last line of only spaces dropped.
fn indented_value(raw: &str) -> String {
    // The opening `''` takes spaces and a newline that follow it.
    let spaces = raw.len() - raw.trim_start_matches(' ').len();
    let raw = match raw[spaces..].strip_prefix('\n') {
        Some(rest) => rest,
        None => raw,
    };
    let pieces = indented_pieces(raw);
    // The smallest indentation.
    let (mut at_start, mut min_indent, mut indent) = (true, usize::MAX, 0usize);
    for (text, indentation) in &pieces {
        if !indentation {
            if at_start {
                at_start = false;
                min_indent = min_indent.min(indent);
            }
            continue;
        }
        for c in text.chars() {
            if at_start {
                match c {
                    ' ' => indent += 1,
                    '\n' => indent = 0,
                    _ => {
                        at_start = false;
                        min_indent = min_indent.min(indent);
                    }
                }
            } else if c == '\n' {
                at_start = true;
                indent = 0;
            }
        }
    }
    // Strip it.
    let (mut out, mut at_start, mut dropped) = (String::new(), true, 0usize);
    let count = pieces.len();
    for (i, (text, _)) in pieces.iter().enumerate() {
        let mut piece = String::new();
        for c in text.chars() {
            if at_start {
                match c {
                    ' ' => {
                        if dropped >= min_indent {
                            piece.push(c);
                        }
                        dropped += 1;
                    }
                    '\n' => {
                        dropped = 0;
                        piece.push(c);
                    }
                    _ => {
                        at_start = false;
                        dropped = 0;
                        piece.push(c);
                    }
                }
            } else {
                piece.push(c);
                if c == '\n' {
                    at_start = true;
                }
            }
        }
        if i + 1 == count {
            if let Some(nl) = piece.rfind('\n') {
                if piece[nl + 1..].bytes().all(|b| b == b' ') {
                    piece.truncate(nl + 1);
                }
            }
        }
        out.push_str(&piece);
    }
    out
}

/// Nix's lexer on an indented string's content: runs of text (which count
/// for indentation) and escapes (which do not).
fn indented_pieces(raw: &str) -> Vec<(String, bool)> {
    let mut pieces: Vec<(String, bool)> = Vec::new();
    let mut run = String::new();
    let mut rest = raw;
    let flush = |run: &mut String, pieces: &mut Vec<(String, bool)>| {
        if !run.is_empty() {
            pieces.push((std::mem::take(run), true));
        }
    };
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("''$") {
            flush(&mut run, &mut pieces);
            pieces.push(("$".into(), false));
            rest = after;
        } else if let Some(after) = rest.strip_prefix("'''") {
            flush(&mut run, &mut pieces);
            pieces.push(("''".into(), false));
            rest = after;
        } else if let Some(after) = rest.strip_prefix("''\\") {
            flush(&mut run, &mut pieces);
            let mut chars = after.chars();
            let escaped = match chars.next() {
                Some('n') => "\n".to_string(),
                Some('r') => "\r".to_string(),
                Some('t') => "\t".to_string(),
                Some('\r') => "\n".to_string(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            pieces.push((escaped, false));
            rest = chars.as_str();
        } else if c == '$' || c == '\'' {
            // `$` or `'` starts a run with the character after it, unless that
            // is `{` (interpolation) or `'` (and for `'`, `$`): then Nix's
            // lexer makes it a piece of its own.
            let stops: &[char] = if c == '$' { &['{', '\''] } else { &['\'', '$'] };
            match rest[1..].chars().next() {
                Some(next) if !stops.contains(&next) => {
                    let len = 1 + next.len_utf8();
                    run.push_str(&rest[..len]);
                    rest = &rest[len..];
                }
                _ => {
                    flush(&mut run, &mut pieces);
                    pieces.push((c.to_string(), false));
                    rest = &rest[1..];
                }
            }
        } else {
            run.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    flush(&mut run, &mut pieces);
    pieces
}

/// The key named by one attribute of an attrpath: `role`, `"role"` and
/// `${"role"}` are all `role`. `None` for a key computed at evaluation time.
pub fn attr_key(attr: &SyntaxNode) -> Option<String> {
    match attr.kind() {
        // The identifier's one token, without assembling the node's text.
        SyntaxKind::NODE_IDENT => Some(match attr.first_token() {
            Some(token) if token.text_range() == attr.text_range() => token.text().to_string(),
            _ => attr.text().to_string(),
        }),
        SyntaxKind::NODE_STRING => static_string(attr),
        SyntaxKind::NODE_DYNAMIC => attr
            .children()
            .next()
            .and_then(|inner| static_string(&unparen(&inner))),
        _ => None,
    }
}

/// Whether an attribute names a key known before evaluation.
pub fn attr_is_static(attr: &SyntaxNode) -> bool {
    attr.kind() == SyntaxKind::NODE_IDENT || attr_key(attr).is_some()
}

/// Whether an attribute names `key` (an identifier is compared without
/// building a string).
pub fn attr_is(attr: &SyntaxNode, key: &str) -> bool {
    match attr.kind() {
        SyntaxKind::NODE_IDENT => attr.first_token().is_some_and(|t| t.text() == key),
        _ => attr_key(attr).as_deref() == Some(key),
    }
}

/// The keys of a binding `a.b."c" = …;`, or `None` if any key is dynamic.
pub fn binding_keys(binding: &SyntaxNode) -> Option<Vec<String>> {
    let attrpath = binding
        .children()
        .find(|c| c.kind() == SyntaxKind::NODE_ATTRPATH)?;
    attrpath.children().map(|attr| attr_key(&attr)).collect()
}

/// The attrpath node of a binding.
pub fn binding_attrpath(binding: &SyntaxNode) -> Option<SyntaxNode> {
    binding
        .children()
        .find(|c| c.kind() == SyntaxKind::NODE_ATTRPATH)
}

/// The value expression of a binding (`… = VALUE;`).
pub fn binding_value(binding: &SyntaxNode) -> Option<SyntaxNode> {
    binding
        .children()
        .filter(|c| c.kind() != SyntaxKind::NODE_ATTRPATH)
        .last()
}

/// A function application `f a b …` flattened: the function's final name
/// (`lib.mkForce` and `mkForce` are both `mkForce`) and its arguments.
pub struct Call {
    pub name: String,
    pub args: Vec<SyntaxNode>,
}

pub fn as_call(node: &SyntaxNode) -> Option<Call> {
    let mut node = unparen(node);
    let mut args = Vec::new();
    while node.kind() == SyntaxKind::NODE_APPLY {
        let mut children = node.children();
        let function = children.next()?;
        let argument = children.next()?;
        args.push(argument);
        node = unparen(&function);
    }
    if args.is_empty() {
        return None;
    }
    args.reverse();
    let name = match node.kind() {
        SyntaxKind::NODE_IDENT => node.text().to_string(),
        SyntaxKind::NODE_SELECT => {
            let attrpath = node
                .children()
                .find(|c| c.kind() == SyntaxKind::NODE_ATTRPATH)?;
            attr_key(&attrpath.children().last()?)?
        }
        _ => return None,
    };
    Some(Call { name, args })
}

/// How the module system sees a value wrapped in a known function.
pub enum Wrapped {
    /// `mkForce v`, `mkDefault v`, `mkOverride N v`, …: `v` at a priority.
    Priority { priority: u32, inner: SyntaxNode },
    /// `mkIf cond v`: `v` under a condition.
    Conditional {
        condition: SyntaxNode,
        inner: SyntaxNode,
    },
    /// `mkMerge [ a b … ]`: several definitions.
    Merge { items: Vec<SyntaxNode> },
}

/// Default priority of a plain definition in the NixOS module system.
pub const PLAIN_PRIORITY: u32 = 100;

/// Recognise the module-system wrappers nixflip sees through. Any other call
/// is opaque: nixflip refuses to guess what it returns.
/// Whether `expr` (Nix source text) is a priority or condition wrapper
/// call, such as `lib.mkForce true` or `mkIf cond { … }`.
pub fn is_wrapper_expression(expr: &str) -> bool {
    let parsed = rnix::Root::parse(expr);
    parsed.errors().is_empty()
        && parsed
            .syntax()
            .children()
            .next()
            .is_some_and(|node| as_wrapper(&unparen(&node)).is_some())
}

pub fn as_wrapper(node: &SyntaxNode) -> Option<Wrapped> {
    let call = as_call(node)?;
    let one = |priority: u32| match call.args.as_slice() {
        [inner] => Some(Wrapped::Priority {
            priority,
            inner: inner.clone(),
        }),
        _ => None,
    };
    match call.name.as_str() {
        "mkForce" => one(50),
        "mkVMOverride" => one(10),
        "mkDefault" => one(1000),
        "mkOptionDefault" => one(1500),
        "mkBefore" | "mkAfter" | "mkOrder" if call.args.len() == 1 => one(PLAIN_PRIORITY),
        "mkOverride" => match call.args.as_slice() {
            [level, inner] => {
                let priority = unparen(level).text().to_string().parse().ok()?;
                Some(Wrapped::Priority {
                    priority,
                    inner: inner.clone(),
                })
            }
            _ => None,
        },
        "mkIf" => match call.args.as_slice() {
            [condition, inner] => Some(Wrapped::Conditional {
                condition: condition.clone(),
                inner: inner.clone(),
            }),
            _ => None,
        },
        "mkMerge" => match call.args.as_slice() {
            [list] if unparen(list).kind() == SyntaxKind::NODE_LIST => Some(Wrapped::Merge {
                items: unparen(list).children().collect(),
            }),
            _ => None,
        },
        _ => None,
    }
}

/// Whether Nix reads `node` as one operand where a list item or an argument
/// stands (its grammar's `expr_select`): a negative number (`-1` is an
/// operator applied to `1`), a call or an operator expression is not.
pub fn is_simple(node: &SyntaxNode) -> bool {
    matches!(
        node.kind(),
        SyntaxKind::NODE_LITERAL
            | SyntaxKind::NODE_IDENT
            | SyntaxKind::NODE_STRING
            | SyntaxKind::NODE_LIST
            | SyntaxKind::NODE_ATTR_SET
            | SyntaxKind::NODE_PAREN
            | SyntaxKind::NODE_SELECT
            | SyntaxKind::NODE_PATH_ABS
            | SyntaxKind::NODE_PATH_REL
            | SyntaxKind::NODE_PATH_HOME
            | SyntaxKind::NODE_PATH_SEARCH
            | SyntaxKind::NODE_LEGACY_LET
            | SyntaxKind::NODE_CUR_POS
    )
}

/// Describe an expression kind for a diagnostic ("a variable", "a function call", …).
pub fn describe(node: &SyntaxNode) -> &'static str {
    match unparen(node).kind() {
        SyntaxKind::NODE_IDENT => "a variable",
        SyntaxKind::NODE_SELECT => "an attribute selection",
        SyntaxKind::NODE_APPLY => "a function call",
        SyntaxKind::NODE_IF_ELSE => "an if-then-else",
        SyntaxKind::NODE_STRING => "a string with interpolation",
        SyntaxKind::NODE_LET_IN => "a let-expression",
        SyntaxKind::NODE_WITH => "a with-expression",
        SyntaxKind::NODE_BIN_OP => "an operator expression",
        SyntaxKind::NODE_LAMBDA => "a function",
        SyntaxKind::NODE_ATTR_SET => "an attribute set",
        SyntaxKind::NODE_LIST => "a list with non-literal items",
        SyntaxKind::NODE_PATH_ABS | SyntaxKind::NODE_PATH_REL | SyntaxKind::NODE_PATH_HOME => {
            "a path"
        }
        SyntaxKind::NODE_PATH_SEARCH => "a search path",
        _ => "an expression",
    }
}
