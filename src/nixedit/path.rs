//! Attribute paths as the user writes them: `a.b."c.d".e`.
//!
//! A quoted segment may contain dots; it is still one key. This is the same
//! normalisation the editor applies to keys in files (`role`, `"role"` and
//! `${"role"}` are one key), so a path typed on the command line and a path read
//! from a file compare equal.

use std::fmt;
use std::str::FromStr;

/// A parsed attribute path: a non-empty list of keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrPath(Vec<String>);

/// Why a path string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the attribute path is empty")]
    Empty,
    #[error("the attribute path `{0}` has an empty segment (two dots in a row, or a leading or trailing dot)")]
    EmptySegment(String),
    #[error("the attribute path `{0}` has an unterminated quoted segment")]
    Unterminated(String),
    #[error("the attribute path `{0}` has text after a closing quote; put a dot between segments")]
    TextAfterQuote(String),
}

impl AttrPath {
    pub fn new(keys: Vec<String>) -> Self {
        AttrPath(keys)
    }

    pub fn keys(&self) -> &[String] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// This path followed by `more`.
    pub fn join(&self, more: &AttrPath) -> AttrPath {
        let mut keys = self.0.clone();
        keys.extend(more.0.iter().cloned());
        AttrPath(keys)
    }

    /// This path followed by one more key.
    pub fn child(&self, key: &str) -> AttrPath {
        let mut keys = self.0.clone();
        keys.push(key.to_string());
        AttrPath(keys)
    }

    pub fn starts_with(&self, prefix: &[String]) -> bool {
        self.0.starts_with(prefix)
    }
}

/// Render one key the way Nix source would need it: bare when it is a valid
/// identifier, quoted otherwise.
pub fn render_key(key: &str) -> String {
    if is_bare_identifier(key) {
        key.to_string()
    } else {
        crate::nixedit::value::render_string(key)
    }
}

/// Whether `key` can be written without quotes as an attribute name.
pub fn is_bare_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    let first_ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\''))
        && !matches!(
            key,
            "if" | "then" | "else" | "let" | "in" | "with" | "rec" | "inherit" | "assert" | "or"
        )
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rendered: Vec<String> = self.0.iter().map(|k| render_key(k)).collect();
        f.write_str(&rendered.join("."))
    }
}

impl FromStr for AttrPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(PathError::Empty);
        }
        let mut keys = Vec::new();
        let mut chars = s.chars().peekable();
        loop {
            let key = match chars.peek() {
                Some('"') => {
                    chars.next();
                    let key =
                        read_quoted(&mut chars).ok_or_else(|| PathError::Unterminated(s.into()))?;
                    if !matches!(chars.peek(), None | Some('.')) {
                        return Err(PathError::TextAfterQuote(s.into()));
                    }
                    key
                }
                _ => {
                    let mut key = String::new();
                    while let Some(&c) = chars.peek() {
                        if c == '.' {
                            break;
                        }
                        key.push(c);
                        chars.next();
                    }
                    if key.is_empty() {
                        return Err(PathError::EmptySegment(s.into()));
                    }
                    key
                }
            };
            keys.push(key);
            match chars.next() {
                None => break,
                Some('.') if chars.peek().is_none() => {
                    return Err(PathError::EmptySegment(s.into()))
                }
                Some(_) => {}
            }
        }
        Ok(AttrPath(keys))
    }
}

/// Read a quoted segment up to its closing quote, honouring `\"` and `\\`.
fn read_quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    let mut key = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(key),
            '\\' => key.push(chars.next()?),
            c => key.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> Vec<String> {
        s.parse::<AttrPath>().map(|p| p.0).unwrap_or_default()
    }

    #[test]
    fn splits_on_dots_and_keeps_quoted_dots() {
        assert_eq!(keys("a.b.c"), ["a", "b", "c"]);
        assert_eq!(
            keys(r#"sops.secrets."matrix/secrets".path"#),
            ["sops", "secrets", "matrix/secrets", "path"]
        );
        assert_eq!(keys(r#"a."b.c""#), ["a", "b.c"]);
    }

    #[test]
    fn rejects_malformed_paths() {
        assert_eq!("".parse::<AttrPath>(), Err(PathError::Empty));
        assert!(matches!(
            "a..b".parse::<AttrPath>(),
            Err(PathError::EmptySegment(_))
        ));
        assert!(matches!(
            "a.".parse::<AttrPath>(),
            Err(PathError::EmptySegment(_))
        ));
        assert!(matches!(
            r#"a."b"#.parse::<AttrPath>(),
            Err(PathError::Unterminated(_))
        ));
        assert!(matches!(
            r#"a."b"c"#.parse::<AttrPath>(),
            Err(PathError::TextAfterQuote(_))
        ));
    }

    #[test]
    fn displays_with_quotes_only_where_needed() {
        let p: AttrPath = r#"a."b.c".d-e"#.parse().unwrap_or_else(|_| AttrPath(vec![]));
        assert_eq!(p.to_string(), r#"a."b.c".d-e"#);
    }
}
