//! rampart-dlp: response data-loss prevention.
//!
//! Finds sensitive data in upstream responses — payment cards, IBANs, SSNs,
//! e-mail addresses, phone numbers, JWTs, private keys, cloud and SaaS
//! credentials, rampart API keys, stack traces, SQL errors and framework
//! debug pages — and logs, masks or blocks it.
//!
//! * [`Scanner`]: per-detector patterns (literal prefilters, or candidate
//!   regions from one table-driven pass for cards, SSNs, phones, IBANs)
//!   and validators (Luhn, issuer ranges, mod 97, ...).
//! * [`Engine`]: detectors + actions + JSON-path rules over a whole body,
//!   JSON-aware (only offending string values are rewritten) or as text.
//! * [`StreamScanner`]: the same over a chunked body, with a bounded
//!   overlap window so values split across chunks are still caught.
//! * [`DlpFilter`]: the gateway [`rampart_core::Filter`], with gzip/br
//!   handling.
//!
//! Findings never hold the leaked value, only a keyed fingerprint.

pub mod compress;
pub mod detector;
pub mod engine;
pub mod filter;
pub mod finding;
mod gate;
pub mod json;
pub mod jsonpath;
pub mod mask;
pub mod scanner;
pub mod stream;
pub mod validate;

pub use detector::{Action, DetectorId};
pub use engine::{ConfigError, Engine, EngineOptions, Inspection};
pub use filter::{DlpFilter, DlpOptions};
pub use finding::{Finding, FindingKind, Fingerprint, Location};
pub use jsonpath::JsonPath;
pub use scanner::{KeyCheck, Match, Scanner};
pub use stream::StreamScanner;
