//! Error types. No variant ever carries a secret: messages name record kinds
//! and public ids only.

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database or Redis failed; the text comes from the driver and
    /// never contains bound values.
    #[error("storage backend error: {0}")]
    Backend(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The database was written by a newer rampart: refuse rather than
    /// misread it.
    #[error("database schema version {found} is newer than this binary supports ({supported}); upgrade rampart")]
    SchemaTooNew { found: u32, supported: u32 },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(format!("sqlite: {e}"))
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        // Only the kind and the server's message: never the command arguments.
        StoreError::Backend(format!(
            "redis: {:?}: {}",
            e.kind(),
            e.detail().unwrap_or("")
        ))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(format!("json: {e}"))
    }
}

/// Why an API key was refused. [`reason_code`](Self::reason_code) is what
/// the gateway shows the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Wrong prefix, length, alphabet or checksum: refused without a lookup.
    #[error("API key is malformed")]
    Malformed,
    /// Well-formed but not a key this gateway issued (or its consumer is gone).
    #[error("API key is not valid")]
    Unknown,
    /// Past its expiry (including a rotated key past its grace period).
    #[error("API key has expired")]
    Expired,
    #[error("API key has been revoked")]
    Revoked,
    #[error("consumer is disabled")]
    ConsumerDisabled,
    #[error("client IP is not allowed for this consumer")]
    IpNotAllowed,
}

impl KeyError {
    pub fn reason_code(self) -> &'static str {
        match self {
            KeyError::Malformed => "api_key_malformed",
            KeyError::Unknown => "api_key_invalid",
            KeyError::Expired => "api_key_expired",
            KeyError::Revoked => "api_key_revoked",
            KeyError::ConsumerDisabled => "consumer_disabled",
            KeyError::IpNotAllowed => "ip_not_allowed_for_consumer",
        }
    }
}

/// Why an admin login failed. Unknown user, wrong password and wrong TOTP
/// code are one variant so the answer does not reveal which part was wrong.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid username, password or one-time code")]
    InvalidCredentials,
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    Locked { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an admin API token or session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token is not valid")]
    Unknown,
    #[error("token has expired")]
    Expired,
    #[error("token has been revoked")]
    Revoked,
}
