//! Plain options for the verifier: issuers, key sources, JWKS caching and
//! claims mapping. The gateway's TOML model maps onto these types.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::alg::{Algorithm, KeyFamily};
use crate::jwks::KeySet;
use crate::key::KeyError;

/// Why a verifier could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("issuer {0:?}: the algorithm allow list is empty")]
    NoAlgorithms(String),
    #[error("issuer {issuer:?}: algorithm {alg} cannot be verified with this key source")]
    AlgorithmKeyMismatch { issuer: String, alg: Algorithm },
    #[error("issuer {0:?} is configured twice")]
    DuplicateIssuer(String),
    #[error("issuer must not be empty")]
    EmptyIssuer,
    #[error("invalid key: {0}")]
    Key(#[from] KeyError),
    #[error("invalid JWKS URL: {0}")]
    JwksUrl(&'static str),
    #[error("TLS setup failed: {0}")]
    Tls(&'static str),
    #[error("JWKS sources need a running tokio runtime")]
    NoRuntime,
}

/// Where an issuer's verification keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// A shared HMAC secret (raw bytes, at least 32) for HS256/384/512. The
    /// caller reads it from a file or the environment.
    HmacSecret(Vec<u8>),
    /// One or more PEM public keys (`PUBLIC KEY` or `RSA PUBLIC KEY` blocks).
    /// They have no `kid`; see [`KeySet::select`] for how tokens pick them.
    Pem(String),
    /// Keys built by the caller (e.g. PEM keys given a `kid` with
    /// [`crate::VerifyingKey::with_kid`]).
    Static(KeySet),
    /// A JWKS document on disk, re-read on the refresh schedule.
    JwksFile(PathBuf),
    /// A JWKS URL: `https`, or `http` to loopback only.
    JwksUrl(String),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::HmacSecret(_) => f.write_str("HmacSecret(<redacted>)"),
            KeySource::Pem(_) => f.write_str("Pem(..)"),
            KeySource::Static(set) => write!(f, "Static({} keys)", set.keys().len()),
            KeySource::JwksFile(path) => write!(f, "JwksFile({})", path.display()),
            KeySource::JwksUrl(url) => write!(f, "JwksUrl({url})"),
        }
    }
}

impl KeySource {
    /// Whether keys from this source can ever verify `alg`'s family: HMAC
    /// secrets only HS*, PEM and JWKS only the public-key families.
    pub(crate) fn can_verify(&self, alg: Algorithm) -> bool {
        match self {
            KeySource::HmacSecret(_) => alg.family() == KeyFamily::Hmac,
            KeySource::Static(set) => set.keys().iter().any(|k| k.accepts(alg)),
            _ => alg.family() != KeyFamily::Hmac,
        }
    }
}

/// Caching and fetching of a JWKS (file or URL).
#[derive(Debug, Clone)]
pub struct JwksOptions {
    /// Regular refresh period. Default 5 minutes.
    pub refresh_interval: Duration,
    /// Minimum time between two fetches of any kind (on-demand refreshes for
    /// unknown `kid`s, retries after failures). Default 30 seconds.
    pub min_refresh_interval: Duration,
    /// Timeout for one fetch, connection included. Default 5 seconds.
    pub fetch_timeout: Duration,
    /// Largest accepted JWKS document. Default 1 MiB.
    pub max_body_bytes: usize,
    /// TLS client configuration for `https` URLs; `None` uses the system roots
    /// with rustls' ring provider. Set this for a private CA.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for JwksOptions {
    fn default() -> Self {
        JwksOptions {
            refresh_interval: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
            max_body_bytes: 1 << 20,
            tls: None,
        }
    }
}

/// How verified claims become a [`rampart_core::Identity`]. Claim names are
/// top-level claim names, matched exactly (dots are not paths, so namespaced
/// claims like `https://example.com/tier` work).
#[derive(Debug, Clone)]
pub struct ClaimsMapping {
    /// Claim holding the consumer id (string or integer). Default `sub`.
    /// A token without it is refused with `jwt_missing_claim`.
    pub consumer_claim: String,
    /// Claims holding scopes, each either a space-separated string (`scope`)
    /// or an array of strings (`scp`, `roles`, ...). Scopes of all listed
    /// claims are merged. Default `["scope", "scp"]`.
    pub scope_claims: Vec<String>,
    /// Claim holding the consumer's tier (a string). Default none.
    pub tier_claim: Option<String>,
}

impl Default for ClaimsMapping {
    fn default() -> Self {
        ClaimsMapping {
            consumer_claim: "sub".to_string(),
            scope_claims: vec!["scope".to_string(), "scp".to_string()],
            tier_claim: None,
        }
    }
}

/// Everything the gateway knows about one token issuer.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// Exact `iss` value; selects this configuration for a token.
    pub issuer: String,
    /// Algorithms accepted from this issuer; anything else is
    /// `jwt_alg_not_allowed`. Every entry must suit the key source.
    pub algorithms: Vec<Algorithm>,
    /// Accepted `aud` values; the token must carry at least one of them.
    /// Empty means the audience is not checked. Default empty.
    pub audiences: Vec<String>,
    /// Clock skew allowed for `exp`, `nbf` and `iat`. Default 60 seconds.
    pub leeway: Duration,
    /// Claims that must be present. Default `["exp"]`; `iss` is always
    /// required and `aud` whenever `audiences` is set.
    pub required_claims: Vec<String>,
    pub key_source: KeySource,
    /// Used only by the JWKS key sources.
    pub jwks: JwksOptions,
    pub claims: ClaimsMapping,
}

impl IssuerConfig {
    /// An issuer with default audiences (none), leeway, required claims,
    /// JWKS options and claims mapping.
    pub fn new(
        issuer: impl Into<String>,
        algorithms: Vec<Algorithm>,
        key_source: KeySource,
    ) -> Self {
        IssuerConfig {
            issuer: issuer.into(),
            algorithms,
            audiences: Vec::new(),
            leeway: Duration::from_secs(60),
            required_claims: vec!["exp".to_string()],
            key_source,
            jwks: JwksOptions::default(),
            claims: ClaimsMapping::default(),
        }
    }

    /// Checks the parts that do not need I/O.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.issuer.is_empty() {
            return Err(ConfigError::EmptyIssuer);
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithms(self.issuer.clone()));
        }
        if let Some(alg) = self
            .algorithms
            .iter()
            .find(|a| !self.key_source.can_verify(**a))
        {
            return Err(ConfigError::AlgorithmKeyMismatch {
                issuer: self.issuer.clone(),
                alg: *alg,
            });
        }
        Ok(())
    }
}

/// Options that apply to every token, whatever its issuer.
#[derive(Debug, Clone)]
pub struct VerifierOptions {
    /// Tokens longer than this are `jwt_malformed` before any decoding.
    /// Default 8 KiB.
    pub max_token_bytes: usize,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        VerifierOptions {
            max_token_bytes: 8 * 1024,
        }
    }
}
