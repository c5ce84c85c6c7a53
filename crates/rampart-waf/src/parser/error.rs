//! Load errors. Every [`ParseError`] names the file and line it came from,
//! so a broken rule set can be fixed without guessing.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Where a directive (or an error) sits: file and 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: Arc<Path>,
    pub line: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A configuration that cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct ParseError {
    pub location: Location,
    pub kind: ErrorKind,
}

/// What went wrong, independent of where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("unknown directive `{0}`")]
    UnknownDirective(String),
    #[error("directive `{0}` is not supported: {1}")]
    UnsupportedDirective(String, &'static str),
    #[error("unknown variable `{0}`")]
    UnknownVariable(String),
    #[error("unknown operator `@{0}`")]
    UnknownOperator(String),
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    #[error("unknown transformation `t:{0}`")]
    UnknownTransformation(String),
    #[error("unknown ctl option `{0}`")]
    UnknownCtl(String),
    #[error("unbalanced quotes: no closing {0} for the quote opened here")]
    UnbalancedQuotes(char),
    #[error("{directive} expects {expected}, got {got} argument(s)")]
    ArgumentCount {
        directive: String,
        expected: &'static str,
        got: usize,
    },
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidValue {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot read `{path}`: {message}")]
    Io { path: String, message: String },
    #[error("Include pattern `{0}` matches no file")]
    IncludeNoMatch(String),
    #[error("Include cycle: {0}")]
    IncludeCycle(String),
}

impl ErrorKind {
    /// Shorthand for [`ErrorKind::InvalidValue`].
    pub(crate) fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        ErrorKind::InvalidValue {
            what,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// An error at a byte offset inside the text being parsed; the caller maps
/// the offset to a line once it knows where that text came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AtError {
    pub offset: usize,
    pub kind: ErrorKind,
}

impl AtError {
    pub(crate) fn new(offset: usize, kind: ErrorKind) -> Self {
        AtError { offset, kind }
    }

    /// Re-bases the offset when the parsed text was a slice of a larger one.
    pub(crate) fn shift(mut self, by: usize) -> Self {
        self.offset += by;
        self
    }
}

impl From<ErrorKind> for AtError {
    fn from(kind: ErrorKind) -> Self {
        AtError { offset: 0, kind }
    }
}

pub(crate) type PResult<T> = Result<T, AtError>;
