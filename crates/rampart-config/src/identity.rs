//! Config shapes for authentication beyond API keys: the process-wide
//! `[jwt]` issuers, and the names a route's `auth` section uses to pick its
//! credential methods and map client certificates to consumers.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::units::Dur;

/// A credential a route accepts.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethodName {
    /// rampart API keys (`rk_live_…`) from the identity store.
    ApiKey,
    /// JSON Web Tokens from an issuer in `[jwt]`.
    Jwt,
    /// A client certificate verified by the listener (`tls.client_auth`).
    Mtls,
}

/// A certificate name that can identify a consumer: the name is looked up
/// as a consumer id, so only kinds that fit the id alphabet
/// (`A-Z a-z 0-9 _ - .`) are offered.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CertNameConfig {
    SubjectCn,
    SanDns,
}

/// `[jwt]`: the token issuers the gateway trusts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwt {
    #[serde(default)]
    pub issuers: Vec<JwtIssuer>,
    /// Longer tokens are refused as malformed before any decoding.
    #[serde(default = "default_max_token")]
    pub max_token_bytes: usize,
}

impl Default for Jwt {
    fn default() -> Self {
        Jwt {
            issuers: Vec::new(),
            max_token_bytes: default_max_token(),
        }
    }
}

fn default_max_token() -> usize {
    8 * 1024
}

/// `[[jwt.issuers]]`: one issuer. Exactly one key source is set:
/// `jwks_url`, `jwks_file`, `public_key_file` or `hmac_secret(_file)`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuer {
    /// The exact `iss` value.
    pub issuer: String,
    /// Allowed algorithms (`RS256`, `PS256`, `ES256`, `EdDSA`, `HS256`, …).
    pub algorithms: Vec<String>,
    /// Accepted `aud` values; empty: not checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default = "default_leeway")]
    pub leeway: Dur,
    #[serde(default = "default_required")]
    pub required_claims: Vec<String>,
    pub jwks_url: Option<String>,
    pub jwks_file: Option<PathBuf>,
    /// PEM public keys (`PUBLIC KEY` / `RSA PUBLIC KEY` blocks).
    pub public_key_file: Option<PathBuf>,
    /// HMAC secret (at least 32 bytes); use `${ENV}` rather than a literal.
    pub hmac_secret: Option<String>,
    pub hmac_secret_file: Option<PathBuf>,
    #[serde(default = "default_refresh")]
    pub jwks_refresh: Dur,
    #[serde(default = "default_min_refresh")]
    pub jwks_min_refresh: Dur,
    #[serde(default = "default_fetch_timeout")]
    pub jwks_timeout: Dur,
    /// Claim holding the consumer id.
    #[serde(default = "default_consumer_claim")]
    pub consumer_claim: String,
    /// Claims holding scopes (space-separated string or array).
    #[serde(default = "default_scope_claims")]
    pub scope_claims: Vec<String>,
    /// Claim holding the consumer's tier (for quotas).
    pub tier_claim: Option<String>,
}

impl fmt::Debug for JwtIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtIssuer")
            .field("issuer", &self.issuer)
            .field("algorithms", &self.algorithms)
            .field("audiences", &self.audiences)
            .field("jwks_url", &self.jwks_url)
            .field("jwks_file", &self.jwks_file)
            .field("public_key_file", &self.public_key_file)
            .field(
                "hmac_secret",
                &self.hmac_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("hmac_secret_file", &self.hmac_secret_file)
            .finish_non_exhaustive()
    }
}

fn default_leeway() -> Dur {
    Dur::secs(60)
}
fn default_required() -> Vec<String> {
    vec!["exp".to_string()]
}
fn default_refresh() -> Dur {
    Dur::secs(300)
}
fn default_min_refresh() -> Dur {
    Dur::secs(30)
}
fn default_fetch_timeout() -> Dur {
    Dur::secs(5)
}
fn default_consumer_claim() -> String {
    "sub".to_string()
}
fn default_scope_claims() -> Vec<String> {
    vec!["scope".to_string(), "scp".to_string()]
}

pub(crate) fn default_methods() -> Vec<AuthMethodName> {
    vec![AuthMethodName::ApiKey]
}

pub(crate) fn default_cert_names() -> Vec<CertNameConfig> {
    vec![CertNameConfig::SubjectCn, CertNameConfig::SanDns]
}

/// A route's `step_up`: consumers with TOTP enrolled must also send a
/// current code (MFA step-up) on this route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepUpPolicy {
    #[serde(default)]
    pub mode: crate::model::FilterMode,
    /// Header carrying the code.
    #[serde(default = "default_otp_header")]
    pub header: String,
    /// How long a verified code spares the consumer further codes (a signed
    /// cookie); `"0s"` asks every time.
    #[serde(default = "default_grant")]
    pub grant_lifetime: Dur,
    #[serde(default = "default_grant_cookie")]
    pub cookie_name: String,
    /// Mark the grant cookie `Secure` (sent over HTTPS only).
    #[serde(default = "yes")]
    pub cookie_secure: bool,
    /// Consumers without TOTP: `allow` or `deny` (403 `step_up_not_enrolled`).
    #[serde(default)]
    pub not_enrolled: NotEnrolledPolicy,
    /// Refuse anonymous requests (401 `step_up_unauthenticated`).
    #[serde(default)]
    pub require_identity: bool,
    /// Offer browsers a page with a code form.
    #[serde(default = "yes")]
    pub challenge_page: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NotEnrolledPolicy {
    #[default]
    Allow,
    Deny,
}

fn default_otp_header() -> String {
    "x-rampart-otp".to_string()
}
fn default_grant() -> Dur {
    Dur::secs(600)
}
fn default_grant_cookie() -> String {
    "rampart_step_up".to_string()
}
fn yes() -> bool {
    true
}
