//! Literal values: the only things nixflip writes without `--expr`.
//!
//! A [`Value`] is read from Nix source when the expression is a plain literal
//! (string without interpolation, number, boolean, null, or a list of those),
//! and rendered back as Nix source. Anything else is an expression nixflip does
//! not interpret.

use rnix::{SyntaxKind, SyntaxNode};
use serde_json::Value as Json;

use super::syntax;

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
                (Some(i), _) => Value::Int(i),
                // An integer beyond i64 would silently become a rounded float.
                (None, _) if n.is_u64() => {
                    return Err(ValueError(format!(
                        "the integer {n} is larger than Nix integers allow (at most {})",
                        i64::MAX
                    )))
                }
                (None, Some(f)) => Value::Float(f),
                _ => {
                    return Err(ValueError(format!(
                        "the number {n} does not fit a Nix integer or float"
                    )))
                }
            },
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

    /// Render on one line.
    pub fn render_inline(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) if *i < 0 => format!("({i})"),
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

    /// Read a literal from an expression node; `None` when it is not one.
    pub fn from_node(node: &SyntaxNode) -> Option<Value> {
        let node = syntax::unparen(node);
        match node.kind() {
            SyntaxKind::NODE_IDENT => match node.text().to_string().as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                "null" => Some(Value::Null),
                _ => None,
            },
            SyntaxKind::NODE_LITERAL => {
                let text = node.text().to_string();
                let token = node.first_token()?;
                match token.kind() {
                    SyntaxKind::TOKEN_INTEGER => text.parse().ok().map(Value::Int),
                    SyntaxKind::TOKEN_FLOAT => text.parse().ok().map(Value::Float),
                    _ => None,
                }
            }
            SyntaxKind::NODE_UNARY_OP => {
                let is_minus = node
                    .children_with_tokens()
                    .any(|e| e.kind() == SyntaxKind::TOKEN_SUB);
                match (
                    is_minus,
                    node.children().next().and_then(|c| Value::from_node(&c)),
                ) {
                    (true, Some(Value::Int(i))) => Some(Value::Int(-i)),
                    (true, Some(Value::Float(f))) => Some(Value::Float(-f)),
                    _ => None,
                }
            }
            SyntaxKind::NODE_STRING => syntax::static_string(&node).map(Value::String),
            SyntaxKind::NODE_LIST => node
                .children()
                .map(|item| Value::from_node(&item))
                .collect::<Option<Vec<_>>>()
                .map(Value::List),
            _ => None,
        }
    }
}

fn render_float(f: f64) -> String {
    let s = f.to_string();
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
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
