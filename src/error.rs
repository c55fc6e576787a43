//! One error type for the whole tool. Every message says what went wrong and,
//! where the user can act on it, what to do next.

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem in a spec file, with its place in the file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{location}: {field}{message}")]
pub struct SpecError {
    /// `file:line:column` (or just `file` when no position is known).
    pub location: String,
    /// `field.path: ` or empty.
    pub field: String,
    pub message: String,
    #[help]
    pub hint: Option<String>,
    #[source_code]
    pub src: NamedSource<String>,
    #[label("here")]
    pub span: Option<SourceSpan>,
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Spec(Box<SpecError>),

    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("template {name}: {message}")]
    #[diagnostic(help("fix the template, or remove it from --templates to use the built-in one"))]
    Template { name: String, message: String },

    #[error("`{program}` is not installed or not on PATH")]
    #[diagnostic(help("{hint}"))]
    Missing { program: String, hint: String },

    #[error("`{command}` failed{code}\n{tail}")]
    #[diagnostic(help("{hint}"))]
    Command { command: String, code: String, tail: String, hint: String },

    #[error("verify failed: {0}")]
    #[diagnostic(help("`clusterlab status SPEC` shows what exists; `-v` shows every check"))]
    Verify(String),

    #[error("cluster `{cluster}` is busy: {holder} (lock {path})")]
    #[diagnostic(help("wait for it to finish; if that process is gone the lock is taken over automatically"))]
    Locked { cluster: String, holder: String, path: PathBuf },

    #[error("interrupted during {0}")]
    #[diagnostic(help("`clusterlab status SPEC` shows what is left; `clusterlab destroy SPEC` removes it"))]
    Interrupted(String),

    #[error("{message}")]
    #[diagnostic(help("{hint}"))]
    Usage { message: String, hint: String },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }

    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Usage { message: message.into(), hint: hint.into() }
    }

    /// Process exit code: 2 for bad input, 3 for a cluster that does not
    /// replicate, 4 for a busy cluster, 130 for an interrupt, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Spec(_) | Error::Usage { .. } | Error::Template { .. } => 2,
            Error::Verify(_) => 3,
            Error::Locked { .. } => 4,
            Error::Interrupted(_) => 130,
            _ => 1,
        }
    }
}

impl From<SpecError> for Error {
    fn from(e: SpecError) -> Self {
        Error::Spec(Box::new(e))
    }
}
