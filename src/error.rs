//! The application error: every failure nixflip reports, with its exit code.
//!
//! Exit codes (DESIGN §13): 0 success or nothing to do; 1 findings or
//! validation failed; 2 bad input or usage; 3 an external command failed;
//! 4 refused for safety.

use std::path::PathBuf;

use miette::Diagnostic;

use crate::nixedit::EditError;

pub const EXIT_OK: i32 = 0;
pub const EXIT_FINDINGS: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_EXTERNAL: i32 = 3;
pub const EXIT_REFUSED: i32 = 4;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Edit(#[from] EditError),

    #[error("cannot read {}", path.display())]
    #[diagnostic(
        code(nixflip::io::read),
        help("check that the path exists and is readable")
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write {}", path.display())]
    #[diagnostic(code(nixflip::io::write), help("{help}"))]
    Write {
        path: PathBuf,
        help: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{message}")]
    #[diagnostic(code(nixflip::usage), help("{help}"))]
    Usage { message: String, help: String },

    #[error("{message}")]
    #[diagnostic(code(nixflip::refused), help("{help}"))]
    Refused { message: String, help: String },

    #[error("{message}")]
    #[diagnostic(code(nixflip::external), help("{help}"))]
    External { message: String, help: String },

    #[error("{message}")]
    #[diagnostic(code(nixflip::failed), help("{help}"))]
    Failed { message: String, help: String },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Other(Box<dyn Diagnostic + Send + Sync + 'static>),
}

impl Error {
    pub fn usage(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error::Usage {
            message: message.into(),
            help: help.into(),
        }
    }

    pub fn refused(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error::Refused {
            message: message.into(),
            help: help.into(),
        }
    }

    pub fn external(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error::External {
            message: message.into(),
            help: help.into(),
        }
    }

    pub fn failed(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error::Failed {
            message: message.into(),
            help: help.into(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Edit(e) => e.exit_code(),
            Error::Read { .. } | Error::Usage { .. } => EXIT_BAD_INPUT,
            Error::Write { .. } | Error::External { .. } => EXIT_EXTERNAL,
            Error::Refused { .. } => EXIT_REFUSED,
            Error::Failed { .. } => EXIT_FINDINGS,
            Error::Other(_) => EXIT_BAD_INPUT,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Read a file as UTF-8 text with a diagnostic naming it.
pub fn read_text(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}
