//! Diagnostics of the lossless editor. Every refusal points at the span that
//! caused it and says what to do instead.

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum EditError {
    #[error("{file}: {message}")]
    #[diagnostic(code(nixflip::edit::parse), help("{help}"))]
    Parse {
        file: String,
        /// As Nix words it: "syntax error, unexpected end of file, expecting '\"'".
        message: String,
        help: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("here")]
        span: SourceSpan,
    },

    /// Something Nix rejects although it parses (a duplicate attribute, an
    /// integer out of range, …): see `strict`.
    #[error("{file}: {message}")]
    #[diagnostic(code(nixflip::edit::invalid), help("{help}"))]
    Invalid {
        file: String,
        message: String,
        help: String,
        #[source_code]
        src: NamedSource<String>,
        #[label(collection)]
        labels: Vec<LabeledSpan>,
    },

    #[error("{file} is empty: a Nix file holds one expression")]
    #[diagnostic(
        code(nixflip::edit::empty),
        help("write the expression first (for a module, `{{ }}`), then edit it with nixflip")
    )]
    Empty { file: String },

    #[error("{file} is not Nix source: {why}")]
    #[diagnostic(
        code(nixflip::edit::binary),
        help("nixflip reads UTF-8 text without NUL bytes (Nix stops reading at a NUL)")
    )]
    Binary { file: String, why: String },

    #[error("{file} nests deeper than {limit} levels at line {line}, column {column}")]
    #[diagnostic(
        code(nixflip::edit::too_deep),
        help("Nix's own parser gives up on nesting about this deep; nixflip refuses it rather than risk running out of stack")
    )]
    TooDeep {
        file: String,
        limit: usize,
        line: usize,
        column: usize,
    },

    #[error("cannot tell what defines `{path}` in {file}: {why}")]
    #[diagnostic(
        code(nixflip::edit::hidden),
        help("nixflip reads only what the file writes out; set the value where that expression is defined, or edit by hand")
    )]
    Hidden {
        path: String,
        file: String,
        why: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{why}")]
        span: SourceSpan,
    },

    #[error("cannot remove `{path}`: {why}")]
    #[diagnostic(code(nixflip::edit::still_used), help("{help}"))]
    StillUsed {
        path: String,
        why: String,
        help: String,
        #[source_code]
        src: NamedSource<String>,
        #[label(collection)]
        labels: Vec<LabeledSpan>,
    },

    #[error("`{path}` is not defined in {file}")]
    #[diagnostic(
        code(nixflip::edit::not_found),
        help("nixflip reads what the file itself sets; option defaults and values set in other files are not visible here")
    )]
    NotFound { path: String, file: String },

    #[error("`{path}` is {what}, not a literal nixflip can replace")]
    #[diagnostic(
        code(nixflip::edit::non_literal),
        help("nixflip writes only literals on its own; pass --expr 'EXPRESSION' to write an expression here, or edit it by hand")
    )]
    NonLiteral {
        path: String,
        what: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("this is {what}")]
        span: SourceSpan,
    },

    #[error("the expression for `{path}` uses `{name}`, which is not defined there: Nix would reject the file (undefined variable '{name}')")]
    #[diagnostic(
        code(nixflip::edit::undefined_variable),
        help("bring `{name}` into scope where the value goes (for a module, add it to the function's arguments: `{{ {name}, ... }}:`), or write the value without it")
    )]
    UndefinedVariable {
        path: String,
        name: String,
        /// What `span` is: the value replaced, or the set a binding goes into.
        place: &'static str,
        #[source_code]
        src: NamedSource<String>,
        #[label("{place}")]
        span: SourceSpan,
    },

    #[error("`{path}` is set by `inherit`, so its value lives elsewhere")]
    #[diagnostic(
        code(nixflip::edit::inherited),
        help("change the variable it inherits, or replace the `inherit` with an explicit binding")
    )]
    Inherited {
        path: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("inherited here")]
        span: SourceSpan,
    },

    #[error("cannot look inside `{prefix}` to reach `{path}`: it is {what}")]
    #[diagnostic(
        code(nixflip::edit::not_an_attrset),
        help("nixflip descends only into attribute sets written in the file (and mkIf, mkMerge and mkForce bodies); set the value where this expression is defined")
    )]
    NotAnAttrset {
        path: String,
        prefix: String,
        what: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{what}")]
        span: SourceSpan,
    },

    #[error(
        "`{path}` is defined {count} times in {file} and none of the definitions clearly wins"
    )]
    #[diagnostic(
        code(nixflip::edit::conflict),
        help("keep one definition, or mark the one that must win with lib.mkForce; nixflip will not guess which one to edit")
    )]
    Conflict {
        path: String,
        file: String,
        count: usize,
        #[source_code]
        src: NamedSource<String>,
        #[label(collection)]
        labels: Vec<LabeledSpan>,
    },

    #[error("`{path}` is defined twice in the same attribute set of {file}")]
    #[diagnostic(
        code(nixflip::edit::duplicate),
        help("Nix rejects this file with \"attribute already defined\"; remove one of the two definitions")
    )]
    Duplicate {
        path: String,
        file: String,
        #[source_code]
        src: NamedSource<String>,
        #[label(collection)]
        labels: Vec<LabeledSpan>,
    },

    #[error("the --expr value has a comment before or after the expression")]
    #[diagnostic(
        code(nixflip::edit::expr_comment),
        help("give the expression alone: nixflip writes exactly it, and a comment around it would be written again on every set")
    )]
    ExprComment {
        #[source_code]
        src: NamedSource<String>,
        #[label("the expression is only this")]
        span: SourceSpan,
    },

    #[error("the expression given with --expr is not valid Nix")]
    #[diagnostic(
        code(nixflip::edit::bad_expr),
        help("quote it for your shell, e.g. --expr 'config.sops.secrets.\"x\".path'")
    )]
    BadExpr {
        #[source_code]
        src: NamedSource<String>,
        #[label(collection)]
        labels: Vec<LabeledSpan>,
    },

    #[error("editing `{path}` would make {file} invalid: {message}; nothing was written")]
    #[diagnostic(code(nixflip::edit::would_break), help("{help}"))]
    WouldBreak {
        path: String,
        file: String,
        message: String,
        help: String,
        #[source_code]
        src: NamedSource<String>,
        #[label(collection)]
        labels: Vec<LabeledSpan>,
    },

    #[error("there is no attribute set in {file} to insert `{path}` into")]
    #[diagnostic(
        code(nixflip::edit::no_place),
        help("write the binding once by hand (nixflip edits it from then on), or pass the path of an attribute set the file defines")
    )]
    NoPlaceToInsert { path: String, file: String },

    #[error("{0}")]
    #[diagnostic(
        code(nixflip::edit::bad_path),
        help("write the path with dots, quoting segments that contain dots: a.b.\"c.d\"")
    )]
    BadPath(super::path::PathError),

    #[error("{0}")]
    #[diagnostic(
        code(nixflip::edit::bad_value),
        help("VALUE is JSON: \"text\", true, false, null, 42, or [\"a\", \"b\"]")
    )]
    BadValue(super::value::ValueError),
}

impl EditError {
    /// Exit code: a missing path is a finding (1), the rest bad input (2).
    pub fn exit_code(&self) -> i32 {
        match self {
            EditError::NotFound { .. } => 1,
            _ => 2,
        }
    }
}

// By hand rather than `#[from]`: that would also make the inner error the
// `source`, and miette would print the same sentence twice.
impl From<super::path::PathError> for EditError {
    fn from(e: super::path::PathError) -> Self {
        EditError::BadPath(e)
    }
}

impl From<super::value::ValueError> for EditError {
    fn from(e: super::value::ValueError) -> Self {
        EditError::BadValue(e)
    }
}
