//! Errors raised while loading and compiling an OpenAPI document.
//!
//! These are operator-facing (bad spec file), never shown to API clients.

use thiserror::Error;

/// Why a document could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("the document is neither valid JSON nor valid YAML: {0}")]
    Parse(String),
    #[error("missing or unsupported `openapi` version {0:?} (3.0.x and 3.1.x are supported)")]
    Version(String),
    #[error("`$ref` {reference:?} at {at}: {problem}")]
    Ref {
        reference: String,
        at: String,
        problem: &'static str,
    },
    #[error("schema at {at} does not compile: {message}")]
    Schema { at: String, message: String },
    #[error("invalid document at {at}: {problem}")]
    Invalid { at: String, problem: String },
}
