//! rampart-openapi: positive security from an OpenAPI document, and API discovery.
//!
//! Load a document with [`OpenApi::from_text`]; every operation is compiled
//! at load (router, parameters, JSON Schema validators, vendor extensions).
//! [`OpenApiFilter`] applies it to traffic as a `rampart_core::Filter`, and
//! [`Discovery`] learns the API actually served from observed exchanges.

pub mod discovery;
pub mod error;
pub mod extensions;
pub mod filter;
pub mod openapi;
pub mod operation;
pub mod params;
pub mod router;
pub mod schema;
pub mod spec;
pub mod undeclared;
pub mod violation;

pub use discovery::{DiffReport, Discovery, DiscoveryOptions, Endpoint, EndpointRef, Exchange};
pub use error::LoadError;
pub use extensions::{AuthExt, RateLimitExt};
pub use filter::{
    matched_operation, MatchedOperation, OpenApiFilter, OpenApiOptions, PolicyMode,
    UndeclaredPolicy,
};
pub use openapi::{Matched, OpenApi};
pub use operation::{BodyOutcome, Operation, ResponseOutcome, Undeclared};
pub use spec::SpecVersion;
pub use violation::{Place, Violation, ViolationKind};
