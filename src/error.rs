//! One error type for the whole tool. Every message says what went wrong and,
//! where the user can act on it, what to do next.

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::path::PathBuf;

/// The process's exit codes, named once; `EXIT_CODES` says what each means.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const BROKEN: i32 = 3;
    pub const BUSY: i32 = 4;
    pub const SQL: i32 = 5;
    pub const INTERRUPTED: i32 = 130;
}

/// Every exit code and its one meaning, as `--help` shows them.
pub const EXIT_CODES: &[(i32, &str)] = &[
    (exit::OK, "success"),
    (exit::FAILED, "a command, file or machine failed (its message says which)"),
    (exit::BAD_INPUT, "bad input: the spec, the command line or a template"),
    (exit::BROKEN, "replication broken: verify found the cluster not replicating"),
    (exit::BUSY, "the cluster is busy: another clusterlab command holds its lock"),
    (exit::SQL, "a SQL statement failed (`clusterlab sql`, a drill's own query)"),
    (exit::INTERRUPTED, "interrupted (Ctrl-C, SIGTERM)"),
];

/// `EXIT_CODES` as the text after `--help`.
pub fn exit_codes_help() -> String {
    let mut out = String::from("Exit codes:\n");
    for (code, meaning) in EXIT_CODES {
        out += &format!("  {code:<4} {meaning}\n");
    }
    out
}

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

    /// A statement failed: in `clusterlab sql`, or one a drill sends.
    #[error("SQL failed on {node}: {message}")]
    #[diagnostic(help("the message is PostgreSQL's; `clusterlab status SPEC` shows whether the node is up"))]
    Sql { node: String, message: String },

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

    /// The message and, on a line of its own, the hint: for reports that keep errors as text.
    pub fn with_hint(&self) -> String {
        match self.help() {
            Some(h) => format!("{self}\nhint: {h}"),
            None => self.to_string(),
        }
    }

    pub fn sql(node: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Sql { node: node.into(), message: message.into() }
    }

    /// Process exit code: one meaning each, as `EXIT_CODES` says.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Spec(_) | Error::Usage { .. } | Error::Template { .. } => exit::BAD_INPUT,
            Error::Verify(_) => exit::BROKEN,
            Error::Locked { .. } => exit::BUSY,
            Error::Sql { .. } => exit::SQL,
            Error::Interrupted(_) => exit::INTERRUPTED,
            Error::Io { .. } | Error::Missing { .. } | Error::Command { .. } => exit::FAILED,
        }
    }
}

impl From<Box<SpecError>> for Error {
    fn from(e: Box<SpecError>) -> Self {
        Error::Spec(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_exit_code_means_one_thing_and_is_in_the_table() {
        let errors = [
            Error::usage("x", "y"),
            Error::Verify("x".into()),
            Error::sql("pg1", "x"),
            Error::Locked { cluster: "c".into(), holder: "h".into(), path: "p".into() },
            Error::Interrupted("up".into()),
            Error::io("p", std::io::Error::other("x")),
        ];
        let codes: Vec<i32> = errors.iter().map(Error::exit_code).collect();
        assert_eq!(codes, [2, 3, 5, 4, 130, 1]);
        for c in codes {
            assert!(EXIT_CODES.iter().any(|(code, _)| *code == c), "{c} is in the table");
        }
        let mut all: Vec<i32> = EXIT_CODES.iter().map(|(c, _)| *c).collect();
        all.dedup();
        assert_eq!(all.len(), EXIT_CODES.len(), "no code twice");
        assert!(exit_codes_help().contains("  3    replication broken"));
    }
}
