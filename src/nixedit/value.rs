//! Literal values: the only things nixflip writes without `--expr`.
//!
//! Must never write a literal that Nix reads as something else (a rounded or
//! out-of-range number, a string cut at a NUL). A [`Value`] is read from Nix
//! source when the expression is a plain literal (string without
//! interpolation, number, boolean, null, or a list of those), and rendered
//! back as Nix source. Anything else is an expression nixflip does not
//! interpret.

use rnix::{SyntaxKind, SyntaxNode};
use serde_json::Value as Json;

use super::{strict, syntax};

/// A Nix literal.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    List(Vec<Value>),
}

/// Why a JSON value cannot be written as a Nix literal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

impl Value {
    /// Parse the VALUE argument of `set`: JSON, or (as an operator convenience)
    /// a bare word that is not valid JSON is taken as a string.
    pub fn from_cli(text: &str) -> Result<Value, ValueError> {
        match serde_json::from_str::<Json>(text) {
            // JSON reads an integer beyond i64 as a float: refuse, never round.
            Ok(Json::Number(n)) if n.is_f64() && is_integer_text(text) => Err(ValueError(format!(
                "the integer {} is outside the range of Nix integers ({} to {})",
                text.trim(),
                i64::MIN,
                i64::MAX
            ))),
            Ok(json) => Value::from_json(&json),
            Err(_) => Err(ValueError(format!(
                "`{text}` is not valid JSON; write a string with quotes (for example '\"{text}\"'), \
                 or pass --expr to write a Nix expression"
            ))),
        }
    }

    pub fn from_json(json: &Json) -> Result<Value, ValueError> {
        Ok(match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => match (n.as_i64(), n.as_f64()) {
                // Nix reads `-9223372036854775808` as `-(9223372036854775808)`,
                // and that positive literal is out of range.
                (Some(i64::MIN), _) => {
                    return Err(ValueError(format!(
                        "Nix cannot read {} back as a literal (it is minus an integer one \
                         past the largest); pass --expr '(-9223372036854775807 - 1)'",
                        i64::MIN
                    )))
                }
                (Some(i), _) => Value::Int(i),
                // An integer beyond i64 would silently become a rounded float.
                (None, _) if n.is_u64() => {
                    return Err(ValueError(format!(
                        "the integer {n} is larger than Nix integers allow (at most {})",
                        i64::MAX
                    )))
                }
                (None, Some(f)) => Value::Float(writable_float(f)?),
                _ => {
                    return Err(ValueError(format!(
                        "the number {n} does not fit a Nix integer or float"
                    )))
                }
            },
            Json::String(s) if s.contains('\0') => {
                return Err(ValueError(
                    "a Nix string cannot hold a NUL character (Nix stops reading the string \
                     there)"
                        .into(),
                ))
            }
            Json::String(s) => Value::String(s.clone()),
            Json::Array(items) => Value::List(
                items
                    .iter()
                    .map(Value::from_json)
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(_) => {
                return Err(ValueError(
                    "a JSON object cannot be written as a literal; set its attributes one by one, \
                     or pass --expr with a Nix attribute set"
                        .into(),
                ))
            }
        })
    }

    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Value::String(s) => Json::String(s.clone()),
            Value::List(items) => Json::Array(items.iter().map(Value::to_json).collect()),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The strings of a list of strings.
    pub fn as_string_list(&self) -> Option<Vec<String>> {
        match self {
            Value::List(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => None,
        }
    }

    /// Refuse a value Nix would not read back as itself (the checks of
    /// [`Value::from_json`], for values built some other way).
    pub fn check_writable(&self) -> Result<(), ValueError> {
        let mut pending = vec![self];
        while let Some(value) = pending.pop() {
            match value {
                Value::Int(i64::MIN) => {
                    Value::from_json(&Json::from(i64::MIN))?;
                }
                Value::Float(f) => {
                    writable_float(*f)?;
                }
                Value::String(s) => {
                    Value::from_json(&Json::String(s.clone()))?;
                }
                Value::List(items) => pending.extend(items),
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether the literal is a negative number: written `-5`, which is an
    /// operator in Nix, so a list item or an argument needs it in
    /// parentheses.
    pub fn is_negative(&self) -> bool {
        match self {
            Value::Int(i) => *i < 0,
            Value::Float(f) => f.is_sign_negative() && *f != 0.0,
            _ => false,
        }
    }

    /// Render on one line, as a binding's value (`a = -5;`).
    pub fn render_value(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Float(f) => render_float(*f),
            other => other.render_inline(),
        }
    }

    /// Render on one line, in a place that needs a simple expression (a
    /// list item, an argument): a negative number gets parentheses.
    pub fn render_inline(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(_) | Value::Float(_) if self.is_negative() => {
                format!("({})", self.render_value())
            }
            Value::Int(i) => i.to_string(),
            Value::Float(f) => render_float(*f),
            Value::String(s) => render_string(s),
            Value::List(items) if items.is_empty() => "[ ]".into(),
            Value::List(items) => {
                let inner: Vec<String> = items.iter().map(Value::render_inline).collect();
                format!("[ {} ]", inner.join(" "))
            }
        }
    }

    /// Render a list one item per line; `indent` is the indentation of the
    /// line holding the binding, `unit` one level of indentation, `eol` the
    /// file's line ending. Other values render inline.
    pub fn render_multiline(&self, indent: &str, unit: &str, eol: &str) -> String {
        match self {
            Value::List(items) if !items.is_empty() => {
                let mut out = String::from("[");
                for item in items {
                    out.push_str(eol);
                    out.push_str(indent);
                    out.push_str(unit);
                    out.push_str(&item.render_inline());
                }
                out.push_str(eol);
                out.push_str(indent);
                out.push(']');
                out
            }
            other => other.render_inline(),
        }
    }

    /// Read a literal from an expression node; `None` when it is not one
    /// (lists nested deeper than [`MAX_LIST_NESTING`] are not read as
    /// literals either).
    pub fn from_node(node: &SyntaxNode) -> Option<Value> {
        let node = syntax::unparen(node);
        if node.kind() != SyntaxKind::NODE_LIST {
            return scalar(&node);
        }
        // Without recursion: a list may be nested thousands of levels deep.
        // Each frame is a list being read: its items so far and the rest.
        let mut frames = vec![(Vec::new(), node.children())];
        loop {
            let (items, rest) = frames.last_mut()?;
            match rest.next().map(|item| syntax::unparen(&item)) {
                Some(item) if item.kind() == SyntaxKind::NODE_LIST => {
                    if frames.len() >= MAX_LIST_NESTING {
                        return None;
                    }
                    frames.push((Vec::new(), item.children()));
                }
                Some(item) => items.push(scalar(&item)?),
                None => {
                    let (items, _) = frames.pop()?;
                    let list = Value::List(items);
                    match frames.last_mut() {
                        Some((outer, _)) => outer.push(list),
                        None => return Some(list),
                    }
                }
            }
        }
    }
}

/// Lists nested deeper than this are not read as literals (and so never
/// rendered, compared or dropped by recursion).
pub const MAX_LIST_NESTING: usize = 64;

/// A literal that is not a list.
fn scalar(node: &SyntaxNode) -> Option<Value> {
    match node.kind() {
        SyntaxKind::NODE_IDENT => match node.text().to_string().as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            "null" => Some(Value::Null),
            _ => None,
        },
        SyntaxKind::NODE_LITERAL => {
            let token = node.first_token()?;
            match token.kind() {
                SyntaxKind::TOKEN_INTEGER => strict::parse_integer(token.text()).map(Value::Int),
                SyntaxKind::TOKEN_FLOAT => strict::parse_float(token.text()).map(Value::Float),
                _ => None,
            }
        }
        SyntaxKind::NODE_UNARY_OP => {
            let is_minus = node
                .children_with_tokens()
                .any(|e| e.kind() == SyntaxKind::TOKEN_SUB);
            let operand = syntax::unparen(&node.children().next()?);
            if !is_minus || operand.kind() != SyntaxKind::NODE_LITERAL {
                return None;
            }
            match scalar(&operand)? {
                Value::Int(i) => Some(Value::Int(-i)),
                Value::Float(f) => Some(Value::Float(-f)),
                _ => None,
            }
        }
        SyntaxKind::NODE_STRING => syntax::static_string(node).map(Value::String),
        _ => None,
    }
}

/// A float as nixflip writes it: Rust's shortest form that reads back to the
/// same double (`strtod` agrees), with a `.` (Nix's float syntax needs one)
/// and an exponent where the plain form would be long.
fn render_float(f: f64) -> String {
    let plain = f.to_string();
    if plain.len() <= 21 {
        return if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        };
    }
    let exp = format!("{f:e}");
    match exp.split_once('e') {
        Some((mantissa, power)) if !mantissa.contains('.') => format!("{mantissa}.0e{power}"),
        _ => exp,
    }
}

/// Refuse a float Nix would not read back as itself: not finite, too small
/// to be a normal double (`strtod` reports a range error), or negative zero
/// (`-0.0` is `0 - 0.0` in Nix, which is `0.0`).
fn writable_float(f: f64) -> Result<f64, ValueError> {
    if !f.is_finite() || (f != 0.0 && !f.is_normal()) {
        return Err(ValueError(format!(
            "the float {f:e} cannot be written so that Nix reads it back (Nix's strtod \
             refuses values below {:e})",
            f64::MIN_POSITIVE
        )));
    }
    if f == 0.0 && f.is_sign_negative() {
        return Err(ValueError(
            "-0.0 cannot be written: Nix reads `-0.0` as 0.0".into(),
        ));
    }
    Ok(f)
}

/// A Nix double-quoted string literal for `s`, escaping what Nix would
/// otherwise interpret (`"`, `\`, `${`, control characters).
pub fn render_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A literal, or an identifier bound to a literal by an enclosing `let` in the
/// same file (`let matrixDomain = "accord.tube"; in { inherit matrixDomain; }`).
/// Used for reading values only; nixflip never edits through a variable.
pub fn resolve_literal(node: &SyntaxNode) -> Option<Value> {
    resolve_depth(node, 0)
}

fn resolve_depth(node: &SyntaxNode, depth: usize) -> Option<Value> {
    if let Some(value) = Value::from_node(node) {
        return Some(value);
    }
    let node = syntax::unparen(node);
    if node.kind() != SyntaxKind::NODE_IDENT || depth > 8 {
        return None;
    }
    let name = node.text().to_string();
    for scope in node
        .ancestors()
        .filter(|a| a.kind() == SyntaxKind::NODE_LET_IN)
    {
        for entry in scope
            .children()
            .filter(|c| c.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
        {
            if syntax::binding_keys(&entry).as_deref() == Some(std::slice::from_ref(&name)) {
                return syntax::binding_value(&entry).and_then(|v| resolve_depth(&v, depth + 1));
            }
        }
    }
    None
}

/// `-?digits`: how an integer is written (no fraction, no exponent).
fn is_integer_text(text: &str) -> bool {
    let digits = text.trim().strip_prefix('-').unwrap_or(text.trim());
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_what_nix_interprets() {
        assert_eq!(render_string(r#"a"b\c${d}$e"#), r#""a\"b\\c\${d}$e""#);
        assert_eq!(render_string("x\ny"), r#""x\ny""#);
    }

    #[test]
    fn integers_beyond_nix_range_are_refused_not_rounded() {
        for text in [
            "12345678901234567890",
            "-99999999999999999999",
            "9223372036854775808",
        ] {
            let err = Value::from_cli(text).expect_err(text);
            assert!(err.0.contains("Nix integers"), "{text}: {}", err.0);
        }
    }

    #[test]
    fn cli_values_are_json() {
        assert_eq!(
            Value::from_cli(r#""primary""#),
            Ok(Value::String("primary".into()))
        );
        assert_eq!(Value::from_cli("true"), Ok(Value::Bool(true)));
        assert_eq!(Value::from_cli("-3"), Ok(Value::Int(-3)));
        assert!(Value::from_cli("primary").is_err());
        assert!(Value::from_cli(r#"{"a":1}"#).is_err());
        assert_eq!(Value::from_cli("2.5"), Ok(Value::Float(2.5)));
        assert_eq!(Value::from_cli("1e3"), Ok(Value::Float(1000.0)));
        assert_eq!(
            Value::from_cli("9223372036854775807"),
            Ok(Value::Int(i64::MAX))
        );
    }

    #[test]
    fn renders_lists_inline_and_multiline() {
        let v = Value::List(vec![Value::String("a".into()), Value::String("b".into())]);
        assert_eq!(v.render_inline(), r#"[ "a" "b" ]"#);
        assert_eq!(
            v.render_multiline("  ", "  ", "\n"),
            "[\n    \"a\"\n    \"b\"\n  ]"
        );
        assert_eq!(Value::List(vec![]).render_inline(), "[ ]");
        assert_eq!(Value::Float(2.0).render_inline(), "2.0");
    }
}
