//! Stored records: consumers, API keys, admin users, admin tokens, sessions
//! and audit events. Records holding anything secret (password hashes, TOTP
//! secrets, CSRF tokens) implement `Debug` by hand with redaction; key and
//! token records hold only HMAC digests, never the credential.

use crate::keyformat::KeyEnv;
use crate::secret::Digest;
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;

/// Whether a consumer's keys are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerState {
    Active,
    Disabled,
}

/// An API client (an application or customer) owning API keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consumer {
    pub id: String,
    pub name: String,
    /// Quota tier the rate limiter reads (e.g. "free", "pro").
    pub tier: Option<String>,
    /// Scopes granted to keys that do not set their own.
    pub scopes: Vec<String>,
    /// Free-form JSON the operator attaches (owner, ticket, ...).
    pub metadata: serde_json::Value,
    /// Networks the consumer may call from; empty = anywhere.
    pub allowed_cidrs: Vec<IpNet>,
    pub state: ConsumerState,
    pub created_at: u64,
    pub updated_at: u64,
}

/// What the caller supplies to create a consumer.
#[derive(Debug, Clone, Default)]
pub struct NewConsumer {
    /// `None` = a random id.
    pub id: Option<String>,
    pub name: String,
    pub tier: Option<String>,
    pub scopes: Vec<String>,
    pub metadata: serde_json::Value,
    pub allowed_cidrs: Vec<IpNet>,
}

/// An API key as stored: its HMAC digest, never the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Public id (first 8 characters of the secret), safe for logs.
    pub key_id: String,
    #[serde(with = "digest_hex")]
    pub digest: Digest,
    pub consumer_id: String,
    pub env: KeyEnv,
    /// Operator label ("ci", "mobile app").
    pub name: String,
    /// Scopes of this key; empty = the consumer's scopes.
    pub scopes: Vec<String>,
    /// Rate-limit quota for the rate limiter: a tier name or a limit string
    /// such as "100/s"; `None` = the consumer's tier.
    pub rate_limit: Option<String>,
    pub created_at: u64,
    /// Unix seconds after which the key is refused; `None` = never.
    pub expires_at: Option<u64>,
    pub revoked_at: Option<u64>,
    /// Set on a key that was rotated: the id of its successor.
    pub rotated_to: Option<String>,
    /// Last successful use (coalesced, written at most every flush period).
    pub last_used_at: Option<u64>,
    pub last_used_ip: Option<IpAddr>,
}

/// What the caller supplies to create an API key.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub consumer_id: String,
    pub env: KeyEnv,
    pub name: String,
    pub scopes: Vec<String>,
    pub rate_limit: Option<String>,
    /// Lifetime in seconds from now; `None` = no expiry.
    pub ttl_secs: Option<u64>,
}

/// One coalesced "key was used" update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsage<'a> {
    pub key_id: &'a str,
    pub at: u64,
    pub ip: IpAddr,
}

/// An operator of the admin API and dashboard.
#[derive(Clone, Serialize, Deserialize)]
pub struct AdminUser {
    pub username: String,
    /// Argon2id PHC string (includes its per-user salt and parameters).
    pub password_hash: String,
    /// Confirmed TOTP secret; logins need a code once it is set.
    #[serde(with = "opt_bytes_b32", default)]
    pub totp_secret: Option<Vec<u8>>,
    /// Secret issued by `enroll_totp`, waiting for a first valid code.
    #[serde(with = "opt_bytes_b32", default)]
    pub totp_pending: Option<Vec<u8>>,
    /// Last accepted TOTP time step (replay protection).
    pub totp_last_step: Option<u64>,
    pub failed_logins: u32,
    pub locked_until: Option<u64>,
    pub disabled: bool,
    pub created_at: u64,
    pub updated_at: u64,
}

impl fmt::Debug for AdminUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminUser")
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("totp_enabled", &self.totp_secret.is_some())
            .field("totp_pending", &self.totp_pending.is_some())
            .field("totp_last_step", &self.totp_last_step)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// A TOTP secret encrypted under a key derived from the server secret
/// (ChaCha20-Poly1305, bound to its consumer id).
/// The text is not secret on its own, but `Debug` still redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(pub String);

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedSecret(<redacted>)")
    }
}

/// A consumer's TOTP enrollment for MFA step-up, as stored. Kept apart from
/// [`Consumer`] so the key cache and consumer listings never carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsumerTotp {
    pub consumer_id: String,
    /// Confirmed secret: step-up codes are checked against it.
    pub secret: Option<SealedSecret>,
    /// Secret issued by enrollment, waiting for a first valid code.
    pub pending: Option<SealedSecret>,
    /// Last accepted time step (replay protection).
    pub last_step: Option<u64>,
    /// Wrong codes since the last accepted one.
    pub failed_attempts: u32,
    /// Codes are refused unchecked until this unix time.
    pub locked_until: Option<u64>,
    pub created_at: u64,
    pub updated_at: u64,
}

impl ConsumerTotp {
    /// Whether step-up codes are required (a secret is confirmed).
    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }
}

impl fmt::Debug for ConsumerTotp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerTotp")
            .field("consumer_id", &self.consumer_id)
            .field("enabled", &self.secret.is_some())
            .field("pending", &self.pending.is_some())
            .field("last_step", &self.last_step)
            .field("failed_attempts", &self.failed_attempts)
            .field("locked_until", &self.locked_until)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// What an admin API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    Read,
    Write,
}

/// An admin API token as stored (digest only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminToken {
    /// Public id, safe for logs and the token list.
    pub token_id: String,
    #[serde(with = "digest_hex")]
    pub digest: Digest,
    pub username: String,
    pub name: String,
    pub scopes: Vec<TokenScope>,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    pub revoked_at: Option<u64>,
}

impl AdminToken {
    pub fn allows(&self, scope: TokenScope) -> bool {
        // Write implies read.
        self.scopes.contains(&scope)
            || (scope == TokenScope::Read && self.scopes.contains(&TokenScope::Write))
    }
}

/// A dashboard login session, stored under the digest of its id.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    #[serde(with = "digest_hex")]
    pub digest: Digest,
    pub username: String,
    /// Per-session CSRF token; compare with [`Session::csrf_matches`].
    pub csrf_token: String,
    pub created_at: u64,
    pub expires_at: u64,
}

impl Session {
    /// Constant-time comparison of a submitted CSRF token.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.csrf_token
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("digest", &self.digest)
            .field("username", &self.username)
            .field("csrf_token", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Who performed an administrative action, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub ip: Option<IpAddr>,
}

impl Actor {
    pub fn new(name: impl Into<String>, ip: Option<IpAddr>) -> Actor {
        Actor {
            name: name.into(),
            ip,
        }
    }

    /// The gateway itself (migrations, automatic actions).
    pub fn system() -> Actor {
        Actor::new("system", None)
    }
}

/// An audit log entry. Never holds a secret: only ids and names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Assigned by the store, increasing.
    pub id: u64,
    pub at: u64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source_ip: Option<IpAddr>,
    pub detail: serde_json::Value,
}

mod digest_hex {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(d)?;
        Digest::from_hex(&text).ok_or_else(|| serde::de::Error::custom("bad digest hex"))
    }
}

mod opt_bytes_b32 {
    use super::*;
    use crate::secret::{base32_decode, base32_encode};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_some(&base32_encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => base32_decode(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("bad base32")),
            None => Ok(None),
        }
    }
}
