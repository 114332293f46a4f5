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

/// The text of a double-quoted string without interpolation, escapes decoded.
/// Indented strings (`''…''`) and interpolated strings are not static here.
pub fn static_string(node: &SyntaxNode) -> Option<String> {
    if node.kind() != SyntaxKind::NODE_STRING {
        return None;
    }
    let mut out = String::new();
    for element in node.children_with_tokens() {
        match element.kind() {
            SyntaxKind::TOKEN_STRING_START => {
                if element.as_token().map(SyntaxToken::text) != Some("\"") {
                    return None;
                }
            }
            SyntaxKind::TOKEN_STRING_END => {}
            SyntaxKind::TOKEN_STRING_CONTENT => {
                decode_escapes(element.as_token()?.text(), &mut out);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Append `raw` (the content of a double-quoted string) with its escapes decoded.
pub fn decode_escapes(raw: &str, out: &mut String) {
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
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
    Conditional { inner: SyntaxNode },
    /// `mkMerge [ a b … ]`: several definitions.
    Merge { items: Vec<SyntaxNode> },
}

/// Default priority of a plain definition in the NixOS module system.
pub const PLAIN_PRIORITY: u32 = 100;

/// Recognise the module-system wrappers nixflip sees through. Any other call
/// is opaque: nixflip refuses to guess what it returns.
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
            [_cond, inner] => Some(Wrapped::Conditional {
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
