#[macro_use]
mod macros;
pub mod ast;
mod kinds;
mod parser;
mod token_set;
mod tokenizer;

use std::marker::PhantomData;

pub use self::{kinds::ParseSyntaxKindError, kinds::SyntaxKind, tokenizer::tokenize};

use ast::AstNode;
pub use parser::ParseError;
use rowan::GreenNode;
pub use rowan::{NodeOrToken, TextRange, TextSize, TokenAtOffset, WalkEvent};
pub(crate) use token_set::TokenSet;
pub use tokenizer::Token;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NixLanguage {}

impl rowan::Language for NixLanguage {
    type Kind = SyntaxKind;
    fn kind_from_raw(raw: rowan::SyntaxKind) -> Self::Kind {
        // Raw kinds only ever come from `kind_to_raw`; an index into the
        // table of kinds keeps the conversion free of `unsafe`.
        kinds::ALL.get(usize::from(raw.0)).copied().unwrap_or(SyntaxKind::NODE_ERROR)
    }
    fn kind_to_raw(kind: Self::Kind) -> rowan::SyntaxKind {
        rowan::SyntaxKind(kind as u16)
    }
}

pub type SyntaxNode = rowan::SyntaxNode<NixLanguage>;
pub type SyntaxToken = rowan::SyntaxToken<NixLanguage>;
pub type SyntaxElement = rowan::NodeOrToken<SyntaxNode, SyntaxToken>;
pub type SyntaxElementChildren = rowan::SyntaxElementChildren<NixLanguage>;
pub type SyntaxNodeChildren = rowan::SyntaxNodeChildren<NixLanguage>;

pub use ast::Root;

/// How deeply the syntax tree of an accepted input may nest (nodes from the
/// root to the deepest token). An attribute set nested in another one takes
/// two levels, a list or a parenthesis one: this admits 3,000 nested
/// attribute sets, about what Nix's own parser takes. A deeper input is a
/// [`ParseError::TooDeep`] at the point where the limit was crossed.
pub const MAX_DEPTH: usize = 6_000;

/// Inputs nesting at most this deep are parsed on the calling thread (its
/// stack, 2 MiB for a spawned thread, holds that much recursion even in an
/// unoptimised build); deeper ones are parsed again on a thread with a stack
/// sized for [`MAX_DEPTH`].
const SHALLOW_DEPTH: usize = 160;

/// Stack for a parse up to [`MAX_DEPTH`]: the parser recurses through about
/// twenty functions per nesting level. Reserved, not touched, when unused.
const DEEP_STACK: usize = 512 << 20;

impl Root {
    pub fn parse(s: &str) -> Parse<Root> {
        let shallow = Self::parse_to_depth(s, SHALLOW_DEPTH);
        if !matches!(shallow.errors.first(), Some(ParseError::TooDeep(_))) {
            return shallow;
        }
        drop(shallow);
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("rnix-deep-parse".into())
                .stack_size(DEEP_STACK)
                .spawn_scoped(scope, || Self::parse_to_depth(s, MAX_DEPTH))
                .ok()
                .and_then(|thread| thread.join().ok())
        })
        // Without a thread for it, the input stays refused as too deep.
        .unwrap_or_else(|| Self::parse_to_depth(s, SHALLOW_DEPTH))
    }

    /// Parse on the calling thread, refusing a tree deeper than `max_depth`.
    /// The caller's stack must hold the parser's recursion to that depth.
    pub fn parse_to_depth(s: &str, max_depth: usize) -> Parse<Root> {
        let (green, errors) = parser::parse(tokenize(s), max_depth);
        Parse { green, errors, _ty: PhantomData }
    }
}

/// The result of a parse
#[derive(Clone)]
pub struct Parse<T> {
    green: GreenNode,
    errors: Vec<ParseError>,
    _ty: PhantomData<fn() -> T>,
}

impl<T> Parse<T> {
    pub fn syntax(&self) -> SyntaxNode {
        SyntaxNode::new_root(self.green.clone())
    }
}

impl<T: AstNode> Parse<T> {
    pub fn tree(&self) -> T {
        T::cast(self.syntax()).unwrap()
    }

    /// Return all errors in the tree, if any
    pub fn errors(&self) -> &[ParseError] {
        &self.errors
    }

    /// Either return the first error in the tree, or if there are none return self
    pub fn ok(self) -> Result<T, ParseError> {
        if let Some(err) = self.errors().first() {
            return Err(err.clone());
        }
        Ok(self.tree())
    }
}

/// Matches a `SyntaxNode` against an `ast` type.
///
/// # Example:
///
/// ```ignore
/// match_ast! {
///     match node {
///         ast::Apply(it) => { ... },
///         ast::Assert(it) => { ... },
///         ast::IfElse(it) => { ... },
///         _ => None,
///     }
/// }
/// ```
#[macro_export]
macro_rules! match_ast {
    (match $node:ident { $($tt:tt)* }) => { match_ast!(match ($node) { $($tt)* }) };

    (match ($node:expr) {
        $( ast::$ast:ident($it:pat) => $res:expr, )*
        _ => $catch_all:expr $(,)?
    }) => {{
        $( if let Some($it) = ast::$ast::cast($node.clone()) { $res } else )*
        { $catch_all }
    }};
}
