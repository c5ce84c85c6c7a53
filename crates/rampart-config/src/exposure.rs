//! Config shapes for data-exposure protection: response DLP per route.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::FilterMode;
use crate::units::Bytes;

/// `dlp`: find leaked secrets and personal data in responses, and log, mask
/// or block them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlpPolicy {
    #[serde(default)]
    pub mode: FilterMode,
    /// Per-detector action overrides: `log`, `mask`, `block` or `off`
    /// (e.g. `{ email = "mask", phone = "off" }`). Unlisted detectors keep
    /// their default action.
    #[serde(default)]
    pub detectors: BTreeMap<String, String>,
    /// JSON-path rules forcing an action on selected fields whatever the
    /// detectors say: `{ "$.user.ssn" = "mask", "$.items[*].card" = "block" }`.
    #[serde(default)]
    pub json_paths: BTreeMap<String, String>,
    /// Media types inspected (exact, `text/*`, or `application/*+json`).
    pub content_types: Option<Vec<String>>,
    /// Response bytes held back for whole-body (JSON-aware) inspection.
    #[serde(default = "default_hold")]
    pub hold_limit: Bytes,
    /// Largest decompressed body inspected (gzip, br).
    #[serde(default = "default_decompressed")]
    pub max_decompressed: Bytes,
    /// The character that replaces masked letters and digits.
    #[serde(default = "default_mask_char")]
    pub mask_char: char,
}

fn default_hold() -> Bytes {
    Bytes(1 << 20)
}
fn default_decompressed() -> Bytes {
    Bytes(8 << 20)
}
fn default_mask_char() -> char {
    '*'
}

/// `openapi`: the route's API contract, enforced.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenApiPolicy {
    /// The OpenAPI 3.0 or 3.1 document (JSON or YAML).
    pub spec: std::path::PathBuf,
    /// Requests to paths or methods the spec does not declare (shadow APIs):
    /// `enforce` (404/405), `monitor` or `off`.
    #[serde(default = "enforce")]
    pub unknown_endpoints: String,
    /// Parameters and JSON bodies against their schemas (400).
    #[serde(default = "enforce")]
    pub request_validation: String,
    /// Request properties the schema does not declare (mass assignment):
    /// `off`, `monitor`, `reject` (400) or `strip` (removed before the
    /// upstream sees the body).
    #[serde(default = "off")]
    pub undeclared_request: String,
    /// Responses against their schemas (502 when enforced).
    #[serde(default = "off")]
    pub response_validation: String,
    /// Remove response fields the schema does not declare (excessive data
    /// exposure): `off`, `monitor` or `enforce`.
    #[serde(default = "off")]
    pub strip_response: String,
    #[serde(default = "default_hold")]
    pub max_request_body: Bytes,
    #[serde(default = "default_hold")]
    pub max_response_body: Bytes,
}

fn enforce() -> String {
    "enforce".into()
}
fn off() -> String {
    "off".into()
}

/// `auth`: the route requires a credential (API key, JWT or client
/// certificate, per `methods`) with these scopes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthPolicy {
    #[serde(default)]
    pub mode: FilterMode,
    /// Credentials accepted; any one of them is enough.
    #[serde(default = "crate::identity::default_methods")]
    pub methods: Vec<crate::identity::AuthMethodName>,
    /// Issuers (`[[jwt.issuers]].issuer`) whose tokens this route accepts;
    /// empty: every configured issuer.
    #[serde(default)]
    pub jwt_issuers: Vec<String>,
    /// A header carrying a bare JWT, besides `Authorization: Bearer`.
    pub jwt_header: Option<String>,
    /// A cookie carrying a JWT.
    pub jwt_cookie: Option<String>,
    /// Client-certificate names tried in order as the consumer id (mTLS);
    /// the first naming an active consumer wins.
    #[serde(default = "crate::identity::default_cert_names")]
    pub mtls_consumer_from: Vec<crate::identity::CertNameConfig>,
    /// Every scope listed is required (403 `insufficient_scope` otherwise).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Header carrying the key, besides `Authorization: Bearer`.
    #[serde(default = "default_key_header")]
    pub key_header: String,
    /// Accept the key from the URL query (`api_key`, `apikey`, `key`,
    /// `access_token`); refused with 400 `credential_in_query` otherwise.
    #[serde(default)]
    pub allow_query: bool,
    /// Headers the upstream receives with the consumer id and its scopes
    /// (client-sent copies are always removed).
    #[serde(default = "default_consumer_header")]
    pub consumer_header: String,
    #[serde(default = "default_scopes_header")]
    pub scopes_header: String,
    /// Remove the key from the request before forwarding it.
    #[serde(default = "hide")]
    pub hide_credentials: bool,
    /// Verify a key when one is sent, but let requests without one through
    /// (the OpenAPI spec's `x-rampart-auth` then decides per operation).
    #[serde(default)]
    pub optional: bool,
}

fn hide() -> bool {
    true
}

fn default_key_header() -> String {
    "x-api-key".into()
}
fn default_consumer_header() -> String {
    "x-consumer-id".into()
}
fn default_scopes_header() -> String {
    "x-consumer-scopes".into()
}
