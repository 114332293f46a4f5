//! An order-preserving document tree with 1-based line numbers, built from YAML (via
//! `yaml-rust2` parser events) or JSON (via `serde_json` with `preserve_order`, plus a small
//! scanner that finds the line of each object key).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::error::SopsError;

/// The type of a scalar, resolved the way sops' stores see it (YAML core schema / JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarKind {
    Str,
    Int,
    Float,
    Bool,
    Null,
}

#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    pub text: String,
    pub kind: ScalarKind,
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    Map(Vec<Entry>),
    List(Vec<Node>),
    Scalar(Scalar),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    /// 1-based line of the key.
    pub line: usize,
    pub node: Node,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// 1-based line where the node starts.
    pub line: usize,
    pub value: Value,
}

impl Node {
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.as_map()?.iter().find(|e| e.key == key)
    }

    pub fn scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------- YAML

enum Frame {
    Map {
        line: usize,
        anchor: usize,
        entries: Vec<Entry>,
        pending_key: Option<(String, usize)>,
    },
    List {
        line: usize,
        anchor: usize,
        items: Vec<Node>,
    },
}

#[derive(Default)]
struct YamlBuilder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    documents: Vec<Node>,
    error: Option<(usize, String)>,
}

impl YamlBuilder {
    fn fail(&mut self, line: usize, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some((line, message.into()));
        }
    }

    /// Attach a finished node to its parent (or the document list).
    fn push_node(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::List { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                Some((key, line)) => {
                    if entries.iter().any(|e| e.key == key) {
                        let msg = format!("duplicate key `{key}`");
                        self.fail(line, msg);
                    } else {
                        entries.push(Entry { key, line, node });
                    }
                }
                None => match node.value {
                    Value::Scalar(s) => *pending_key = Some((s.text, node.line)),
                    _ => self.fail(node.line, "mapping keys must be scalars"),
                },
            },
        }
    }
}

pub(crate) fn resolve_plain(text: &str) -> ScalarKind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarKind::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => return ScalarKind::Bool,
        _ => {}
    }
    if parse_yaml_int(text).is_some() {
        return ScalarKind::Int;
    }
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return ScalarKind::Float,
        _ => {}
    }
    let looks_numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && text.chars().any(|c| c.is_ascii_digit());
    if looks_numeric && text.parse::<f64>().is_ok() {
        return ScalarKind::Float;
    }
    ScalarKind::Str
}

/// Parse a YAML 1.2 core-schema integer (decimal, `0x`, `0o`).
pub(crate) fn parse_yaml_int(text: &str) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body.is_empty() {
        return None;
    }
    let magnitude = if let Some(hex) = body.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = body.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(if neg { -magnitude } else { magnitude })
}

impl MarkedEventReceiver for YamlBuilder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let line = mark.line();
        match ev {
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let mut node = node.clone();
                    node.line = line;
                    self.push_node(node, 0);
                }
                None => self.fail(line, "alias to an unknown anchor"),
            },
            Event::Scalar(text, style, anchor, tag) => {
                let kind = if let Some(tag) = &tag {
                    match tag.suffix.as_str() {
                        "str" => ScalarKind::Str,
                        "int" => ScalarKind::Int,
                        "float" => ScalarKind::Float,
                        "bool" => ScalarKind::Bool,
                        "null" => ScalarKind::Null,
                        _ => ScalarKind::Str,
                    }
                } else if style == TScalarStyle::Plain {
                    resolve_plain(&text)
                } else {
                    ScalarKind::Str
                };
                let node = Node {
                    line,
                    value: Value::Scalar(Scalar { text, kind }),
                };
                self.push_node(node, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::List {
                line,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                line,
                anchor,
                entries: Vec::new(),
                pending_key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::List {
                    line,
                    anchor,
                    items,
                }) => self.push_node(
                    Node {
                        line,
                        value: Value::List(items),
                    },
                    anchor,
                ),
                Some(Frame::Map {
                    line,
                    anchor,
                    mut entries,
                    ..
                }) => {
                    // YAML merge keys (`<<: *anchor`) are expanded like yaml.v3 does.
                    if let Some(pos) = entries.iter().position(|e| e.key == "<<") {
                        let merge = entries.remove(pos);
                        let sources: Vec<Node> = match merge.node.value {
                            Value::List(items) => items,
                            other => vec![Node {
                                line: merge.node.line,
                                value: other,
                            }],
                        };
                        for src in sources {
                            if let Value::Map(src_entries) = src.value {
                                for e in src_entries {
                                    if !entries.iter().any(|x| x.key == e.key) {
                                        entries.push(e);
                                    }
                                }
                            }
                        }
                    }
                    self.push_node(
                        Node {
                            line,
                            value: Value::Map(entries),
                        },
                        anchor,
                    )
                }
                None => self.fail(line, "unbalanced collection end"),
            },
        }
    }
}

/// Parse a single YAML document into a tree.
pub(crate) fn parse_yaml(text: &str) -> Result<Node, SopsError> {
    let mut builder = YamlBuilder::default();
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut builder, true)
        .map_err(|e| SopsError::Yaml {
            line: e.marker().line(),
            message: e.info().to_string(),
        })?;
    if let Some((line, message)) = builder.error {
        return Err(SopsError::Yaml { line, message });
    }
    let mut docs = builder.documents.into_iter();
    let first = docs.next();
    if let Some(second) = docs.next() {
        return Err(SopsError::Yaml {
            line: second.line,
            message: "more than one YAML document".into(),
        });
    }
    Ok(first.unwrap_or(Node {
        line: 1,
        value: Value::Scalar(Scalar {
            text: String::new(),
            kind: ScalarKind::Null,
        }),
    }))
}

// ---------------------------------------------------------------- JSON

/// Lines of every object key, in textual order (which is serde_json's traversal order), and the
/// line of every value start is not needed: list items get their parent's key line.
fn json_key_lines(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut line = 1usize;
    let mut i = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => line += 1,
            b'"' => {
                let start_line = line;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    match bytes[i] {
                        b'\\' => i += 1,
                        b'\n' => line += 1,
                        _ => {}
                    }
                    i += 1;
                }
                // i is at the closing quote (or end)
                let mut j = i + 1;
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                if j < bytes.len() && bytes[j] == b':' {
                    lines.push(start_line);
                }
            }
            _ => {}
        }
        i += 1;
    }
    lines
}

fn from_json(
    value: serde_json::Value,
    line: usize,
    key_lines: &mut std::slice::Iter<usize>,
) -> Node {
    use serde_json::Value as J;
    let value = match value {
        J::Null => Value::Scalar(Scalar {
            text: String::new(),
            kind: ScalarKind::Null,
        }),
        J::Bool(b) => Value::Scalar(Scalar {
            text: b.to_string(),
            kind: ScalarKind::Bool,
        }),
        // sops' JSON store decodes every number as a float64.
        J::Number(n) => Value::Scalar(Scalar {
            text: n.to_string(),
            kind: ScalarKind::Float,
        }),
        J::String(s) => Value::Scalar(Scalar {
            text: s,
            kind: ScalarKind::Str,
        }),
        J::Array(items) => Value::List(
            items
                .into_iter()
                .map(|v| from_json(v, line, key_lines))
                .collect(),
        ),
        J::Object(map) => {
            let entries: Vec<Entry> = map
                .into_iter()
                .map(|(key, v)| {
                    let key_line = key_lines.next().copied().unwrap_or(line);
                    let node = from_json(v, key_line, key_lines);
                    Entry {
                        key,
                        line: key_line,
                        node,
                    }
                })
                .collect();
            // An object starts at its first key's line (at least for list items).
            let line = entries.first().map_or(line, |e| e.line);
            return Node {
                line,
                value: Value::Map(entries),
            };
        }
    };
    Node { line, value }
}

fn count_keys(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => items.iter().map(count_keys).sum(),
        serde_json::Value::Object(map) => map.len() + map.values().map(count_keys).sum::<usize>(),
        _ => 0,
    }
}

/// Parse JSON into a tree, with key line numbers.
pub(crate) fn parse_json(text: &str) -> Result<Node, SopsError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| SopsError::Json {
        line: e.line(),
        message: e.to_string(),
    })?;
    let lines = json_key_lines(text);
    if lines.len() != count_keys(&value) {
        return Err(SopsError::Json {
            line: 1,
            message: "duplicate key in a JSON object".into(),
        });
    }
    let mut iter = lines.iter();
    Ok(from_json(value, 1, &mut iter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_lines_and_order() {
        let node = parse_yaml("b: 1\na:\n  - x\n  - y: true\nc: \"7\"\n").unwrap();
        let map = node.as_map().unwrap();
        let keys: Vec<_> = map.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(keys, vec![("b", 1), ("a", 2), ("c", 5)]);
        assert_eq!(map[0].node.scalar().unwrap().kind, ScalarKind::Int);
        assert_eq!(map[2].node.scalar().unwrap().kind, ScalarKind::Str);
    }

    #[test]
    fn yaml_aliases_resolve() {
        let node = parse_yaml("keys:\n  - &a age1x\nrule:\n  - *a\n").unwrap();
        let rule = node.get("rule").unwrap();
        match &rule.node.value {
            Value::List(items) => assert_eq!(items[0].scalar().unwrap().text, "age1x"),
            _ => panic!("not a list"),
        }
    }

    #[test]
    fn yaml_duplicate_key_rejected() {
        assert!(parse_yaml("a: 1\na: 2\n").is_err());
    }

    #[test]
    fn json_lines() {
        let node =
            parse_json("{\n \"a\": {\"b\": [1, {\"c\": \"x:\"}]},\n \"d\": null\n}").unwrap();
        let map = node.as_map().unwrap();
        assert_eq!(map[0].line, 2);
        assert_eq!(map[1].line, 3);
    }

    #[test]
    fn json_duplicate_key_rejected() {
        assert!(parse_json("{\"a\": 1, \"a\": 2}").is_err());
    }

    #[test]
    fn plain_scalar_resolution() {
        assert_eq!(resolve_plain("3.8.1"), ScalarKind::Str);
        assert_eq!(resolve_plain("3.14"), ScalarKind::Float);
        assert_eq!(resolve_plain("0x1F"), ScalarKind::Int);
        assert_eq!(resolve_plain("inf"), ScalarKind::Str);
        assert_eq!(resolve_plain("~"), ScalarKind::Null);
    }
}
