//! JWT bearer-token authentication for the rampart gateway.
//!
//! * [`Verifier`] checks JWS compact tokens (RS/PS 256/384/512, ES256, ES384,
//!   EdDSA with Ed25519, HS256/384/512) from configured issuers, each with its
//!   own algorithm allow list, audiences, leeway, required claims and key
//!   source ([`KeySource`]: HMAC secret, PEM public keys, JWKS file or URL).
//! * Algorithm confusion is impossible by construction: every key belongs to
//!   one [`KeyFamily`] and only verifies algorithms of that family; an
//!   issuer's allow list is checked against its key source at startup.
//! * JWKS are cached, refreshed in the background, refreshed on an unknown
//!   `kid` at most once per `min_refresh_interval`, and the last good set is
//!   kept when the identity provider is down.
//! * Verified claims become a [`rampart_core::Identity`] ([`ClaimsMapping`]).
//! * [`extract_token`] finds the token in a request; [`JwtError`] gives the
//!   reason code, HTTP status and RFC 6750 `WWW-Authenticate` value.
//!
//! Signature math is done by `ring`.

#![forbid(unsafe_code)]

mod alg;
mod cache;
mod claims;
mod config;
mod der;
mod error;
mod extract;
mod fetch;
mod jwks;
mod key;
mod verifier;

pub use alg::{Algorithm, KeyFamily};
pub use claims::MAX_SCOPES;
pub use config::{
    ClaimsMapping, ConfigError, IssuerConfig, JwksOptions, KeySource, VerifierOptions,
};
pub use der::{key_from_spki, keys_from_pem, rsa_from_pkcs1};
pub use error::{codes, www_authenticate, JwtError};
pub use extract::{extract_token, TokenLocation};
pub use fetch::FetchError;
pub use jwks::{parse_jwks, KeySet, MAX_KEYS};
pub use key::{KeyError, VerifyingKey, MIN_HMAC_SECRET_LEN};
pub use verifier::{VerifiedToken, Verifier};
