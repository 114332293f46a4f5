//! From a file's bytes to a syntax tree Nix would accept, or a diagnostic in
//! Nix's own words.
//!
//! Must never accept what Nix rejects (see `strict` for the rules beyond
//! rnix's grammar), and never show a parser's internal token list: a syntax
//! error reads like Nix's (`syntax error, unexpected end of file, expecting
//! '"'`), an empty or binary file gets a short message of its own, and a file
//! nested too deeply is refused at the place where it gets too deep.

use miette::{LabeledSpan, NamedSource, SourceSpan};
use rnix::{ParseError, SyntaxKind, SyntaxNode};

use super::error::EditError;
use super::strict::{self, Violation};

/// The text of a file's bytes: UTF-8 without NUL bytes (Nix stops reading at
/// a NUL, so such a file never means to Nix what it shows).
pub fn text_of(name: &str, bytes: Vec<u8>) -> Result<String, EditError> {
    let nul = |at: usize| EditError::Binary {
        file: name.to_string(),
        why: format!("it has a NUL byte (at byte {at}), so it is a binary file"),
    };
    match String::from_utf8(bytes) {
        Ok(text) => match text.find('\0') {
            Some(at) => Err(nul(at)),
            None => Ok(text),
        },
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            match e.as_bytes()[..valid].iter().position(|&b| b == 0) {
                Some(at) => Err(nul(at)),
                None => Err(EditError::Binary {
                    file: name.to_string(),
                    why: format!("it is not UTF-8 text (an invalid byte at {valid})"),
                }),
            }
        }
    }
}

/// Check `text` and its parse: empty, NUL bytes, syntax errors (the first
/// one, as Nix reports only the first), too deep, then Nix's own rules.
pub fn check(name: &str, text: &str, parsed: &rnix::Parse<rnix::Root>) -> Result<(), EditError> {
    if let Some(at) = text.find('\0') {
        return Err(EditError::Binary {
            file: name.to_string(),
            why: format!("it has a NUL byte (at byte {at}), so it is a binary file"),
        });
    }
    let root = parsed.syntax();
    if is_empty(&root) {
        return Err(EditError::Empty {
            file: name.to_string(),
        });
    }
    if let Some(error) = parsed.errors().first() {
        return Err(parse_error(name, text, &root, error));
    }
    strict_rules(name, text, &root)
}

/// The rules of `strict`, as a diagnostic.
pub fn strict_rules(name: &str, text: &str, root: &SyntaxNode) -> Result<(), EditError> {
    match strict::check(root) {
        None => Ok(()),
        Some(violation) => Err(invalid(name, text, violation)),
    }
}

/// A violation of Nix's rules as a diagnostic on `text`.
pub fn invalid(name: &str, text: &str, v: Violation) -> EditError {
    EditError::Invalid {
        file: name.to_string(),
        message: v.message,
        help: v.help,
        src: NamedSource::new(name, text.to_string()).with_language("nix"),
        labels: violation_labels(&v.at, v.first.as_ref()),
    }
}

pub fn violation_labels(
    at: &std::ops::Range<usize>,
    first: Option<&std::ops::Range<usize>>,
) -> Vec<LabeledSpan> {
    let span = |r: &std::ops::Range<usize>| SourceSpan::from((r.start, r.end - r.start));
    let mut labels = Vec::new();
    if let Some(first) = first {
        labels.push(LabeledSpan::new_with_span(
            Some("first defined here".into()),
            span(first),
        ));
        labels.push(LabeledSpan::new_with_span(
            Some("defined again here".into()),
            span(at),
        ));
    } else {
        labels.push(LabeledSpan::new_with_span(Some("here".into()), span(at)));
    }
    labels
}

/// Only whitespace and comments.
fn is_empty(root: &SyntaxNode) -> bool {
    root.children().next().is_none()
        && root
            .descendants_with_tokens()
            .filter_map(|e| e.into_token())
            .all(|t| t.kind().is_trivia())
}

/// The first syntax error as Nix would word it.
pub fn parse_error(name: &str, text: &str, root: &SyntaxNode, error: &ParseError) -> EditError {
    let len = text.len();
    if let ParseError::TooDeep(at) = error {
        let (line, column) = super::line_col(text, usize::from(*at));
        return EditError::TooDeep {
            file: name.to_string(),
            limit: rnix::MAX_DEPTH,
            line,
            column,
        };
    }
    let token_at = |offset: usize| -> Option<rnix::SyntaxToken> {
        let offset = rnix::TextSize::try_from(offset).ok()?;
        root.token_at_offset(offset).right_biased()
    };
    let (at, message) = match error {
        ParseError::UnexpectedWanted(_, range, wanted) => {
            let start = usize::from(range.start()).min(len);
            match token_at(start) {
                // An unterminated string: Nix's lexer reaches the end of
                // the file looking for its close.
                Some(t) if t.kind() == SyntaxKind::TOKEN_ERROR && unterminated(&t) => (
                    len..len,
                    format!("unexpected end of file, expecting {}", closer(&t)),
                ),
                Some(t) => (
                    start..usize::from(t.text_range().end()),
                    format!("unexpected {}{}", nix_token(&t), expecting(wanted)),
                ),
                None => (len..len, "unexpected end of file".to_string()),
            }
        }
        ParseError::UnexpectedEOFWanted(wanted) => (
            len..len,
            format!("unexpected end of file{}", expecting(wanted)),
        ),
        ParseError::UnexpectedExtra(range) => {
            let start = usize::from(range.start()).min(len);
            match token_at(start) {
                Some(t) => (
                    start..usize::from(t.text_range().end()),
                    format!("unexpected {}, expecting end of file", nix_token(&t)),
                ),
                None => (len..len, "unexpected end of file".to_string()),
            }
        }
        ParseError::Unexpected(range) | ParseError::UnexpectedDoubleBind(range) => {
            let start = usize::from(range.start()).min(len);
            match token_at(start) {
                Some(t) => (
                    start..usize::from(t.text_range().end()),
                    format!("unexpected {}", nix_token(&t)),
                ),
                None => (len..len, "unexpected end of file".to_string()),
            }
        }
        ParseError::DuplicatedArgs(range, arg) => (
            usize::from(range.start()).min(len)..usize::from(range.end()).min(len),
            format!("duplicate formal function argument '{arg}'"),
        ),
        _ => (len..len, "unexpected end of file".to_string()),
    };
    let message = if message.starts_with("duplicate") {
        message
    } else {
        format!("syntax error, {message}")
    };
    EditError::Parse {
        file: name.to_string(),
        message,
        help: "fix the syntax first: nixflip never edits a file Nix cannot read".into(),
        src: NamedSource::new(name, text.to_string()).with_language("nix"),
        span: (at.start, at.end - at.start).into(),
    }
}

/// A string or comment that runs to the end of the file.
fn unterminated(token: &rnix::SyntaxToken) -> bool {
    let end = token.text_range().end();
    let at_end = token
        .next_token()
        .is_none_or(|n| n.text_range().start() >= end)
        && token
            .parent()
            .and_then(|p| p.ancestors().last())
            .is_none_or(|root| root.text_range().end() == end);
    at_end
        && token
            .prev_token()
            .is_some_and(|p| p.kind() == SyntaxKind::TOKEN_STRING_START)
}

fn closer(token: &rnix::SyntaxToken) -> &'static str {
    match token.prev_token() {
        Some(p) if p.text() == "''" => "IND_STRING_CLOSE",
        _ => "'\"'",
    }
}

/// `, expecting X` or `, expecting X or Y` when rnix wanted one or two
/// tokens; nothing for more (bison, and so Nix, lists only a few).
fn expecting(wanted: &[SyntaxKind]) -> String {
    let names: Vec<String> = wanted.iter().map(|k| kind_name(*k, "")).collect();
    match names.as_slice() {
        [one] => format!(", expecting {one}"),
        [a, b] => format!(", expecting {a} or {b}"),
        _ => String::new(),
    }
}

fn nix_token(token: &rnix::SyntaxToken) -> String {
    kind_name(token.kind(), token.text())
}

/// A token as Nix's grammar names it (`ID`, `'{'`, `IND_STRING_OPEN`, …).
fn kind_name(kind: SyntaxKind, text: &str) -> String {
    use SyntaxKind as K;
    let name = match kind {
        K::TOKEN_IDENT => "ID",
        K::TOKEN_INTEGER => "INT",
        K::TOKEN_FLOAT => "FLOAT",
        K::TOKEN_PATH_ABS | K::TOKEN_PATH_REL => "PATH",
        K::TOKEN_PATH_HOME => "HPATH",
        K::TOKEN_PATH_SEARCH => "SPATH",
        K::TOKEN_URI => "URI",
        K::TOKEN_IF => "IF",
        K::TOKEN_THEN => "THEN",
        K::TOKEN_ELSE => "ELSE",
        K::TOKEN_ASSERT => "ASSERT",
        K::TOKEN_WITH => "WITH",
        K::TOKEN_LET => "LET",
        K::TOKEN_IN => "IN",
        K::TOKEN_REC => "REC",
        K::TOKEN_INHERIT => "INHERIT",
        K::TOKEN_OR => "OR_KW",
        K::TOKEN_EQUAL => "EQ",
        K::TOKEN_NOT_EQUAL => "NEQ",
        K::TOKEN_AND_AND => "AND",
        K::TOKEN_OR_OR => "OR",
        K::TOKEN_IMPLICATION => "IMPL",
        K::TOKEN_UPDATE => "UPDATE",
        K::TOKEN_CONCAT => "CONCAT",
        K::TOKEN_LESS_OR_EQ => "LEQ",
        K::TOKEN_MORE_OR_EQ => "GEQ",
        K::TOKEN_ELLIPSIS => "ELLIPSIS",
        K::TOKEN_INTERPOL_START => "DOLLAR_CURLY",
        K::TOKEN_STRING_START if text == "''" => "IND_STRING_OPEN",
        K::TOKEN_STRING_END if text == "''" => "IND_STRING_CLOSE",
        K::TOKEN_STRING_START | K::TOKEN_STRING_END => "'\"'",
        K::TOKEN_STRING_CONTENT => "STR",
        K::TOKEN_ERROR => "invalid token",
        K::TOKEN_INTERPOL_END | K::TOKEN_R_BRACE => "'}'",
        K::TOKEN_L_BRACE => "'{'",
        K::TOKEN_L_BRACK => "'['",
        K::TOKEN_R_BRACK => "']'",
        K::TOKEN_L_PAREN => "'('",
        K::TOKEN_R_PAREN => "')'",
        K::TOKEN_SEMICOLON => "';'",
        K::TOKEN_COLON => "':'",
        K::TOKEN_COMMA => "','",
        K::TOKEN_AT => "'@'",
        K::TOKEN_DOT => "'.'",
        K::TOKEN_ASSIGN => "'='",
        K::TOKEN_QUESTION => "'?'",
        K::TOKEN_ADD => "'+'",
        K::TOKEN_SUB => "'-'",
        K::TOKEN_MUL => "'*'",
        K::TOKEN_DIV => "'/'",
        K::TOKEN_LESS => "'<'",
        K::TOKEN_MORE => "'>'",
        K::TOKEN_INVERT => "'!'",
        K::TOKEN_PIPE_LEFT | K::TOKEN_PIPE_RIGHT => "'|'",
        _ => "token",
    };
    name.to_string()
}
