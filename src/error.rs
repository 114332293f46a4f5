//! The application error: every failure nixflip reports, with its exit code.
//!
//! Exit codes: 0 success or nothing to do; 1 findings or
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

    /// A diagnostic from another layer (`nixflip.toml`, a SOPS file, a
    /// forge, a revision of the flake), with the exit code its cause calls for.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Caused(Caused),
}

/// Another layer's diagnostic and the exit code of its cause. Each layer
/// converts its own errors (`From` impls next to them), so this module
/// depends on none of them.
#[derive(Debug)]
pub struct Caused {
    pub exit: i32,
    pub inner: Box<dyn Diagnostic + Send + Sync + 'static>,
}

impl std::fmt::Display for Caused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl std::error::Error for Caused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

impl Diagnostic for Caused {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.inner.code()
    }
    fn severity(&self) -> Option<miette::Severity> {
        self.inner.severity()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.inner.help()
    }
    fn url<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.inner.url()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.inner.source_code()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.inner.labels()
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        self.inner.related()
    }
    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.inner.diagnostic_source()
    }
}

impl Error {
    /// Wrap another layer's diagnostic with the exit code of its cause.
    pub fn caused(exit: i32, inner: impl Diagnostic + Send + Sync + 'static) -> Error {
        Error::Caused(Caused {
            exit,
            inner: Box::new(inner),
        })
    }

    /// The wrapped diagnostic, when it is a `T`.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        match self {
            Error::Caused(c) => {
                let inner: &(dyn std::error::Error + 'static) = c.inner.as_ref();
                inner.downcast_ref::<T>()
            }
            _ => None,
        }
    }
}

/// SOPS: a file that cannot be read is an I/O failure (or a wrong path);
/// everything else the secrets layer refuses is bad input.
impl From<crate::secrets::SopsError> for Error {
    fn from(e: crate::secrets::SopsError) -> Self {
        let exit = match &e {
            crate::secrets::SopsError::Io { source, .. } => io_exit_code(source),
            _ => EXIT_BAD_INPUT,
        };
        Error::caused(exit, e)
    }
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
            Error::Read { source, .. } => io_exit_code(source),
            Error::Usage { .. } => EXIT_BAD_INPUT,
            Error::Caused(c) => c.exit,
            Error::Write { .. } | Error::External { .. } => EXIT_EXTERNAL,
            Error::Refused { .. } => EXIT_REFUSED,
            Error::Failed { .. } => EXIT_FINDINGS,
        }
    }
}

/// A file the user named that is not there, is a directory, or is not text is
/// bad input (2); any other read failure (permissions, an I/O error) is the
/// system failing nixflip (3).
pub fn io_exit_code(error: &std::io::Error) -> i32 {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::InvalidData => EXIT_BAD_INPUT,
        _ => EXIT_EXTERNAL,
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
