//! The storage traits, one per concern. [`crate::sqlite::SqliteStore`]
//! (embedded, single node) and [`crate::redis_store::RedisStore`] (fleet)
//! implement all of them; [`Backend`] bundles them for the services.

use crate::error::StoreError;
use crate::model::*;
use crate::secret::Digest;
use async_trait::async_trait;
use std::net::IpAddr;

pub type Result<T> = std::result::Result<T, StoreError>;

#[async_trait]
pub trait ConsumerStore: Send + Sync {
    /// Inserts or replaces a consumer.
    async fn put_consumer(&self, consumer: &Consumer) -> Result<()>;
    async fn get_consumer(&self, id: &str) -> Result<Option<Consumer>>;
    async fn list_consumers(&self) -> Result<Vec<Consumer>>;
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Inserts a new key; `Conflict` if its key id or digest exists.
    async fn insert_key(&self, key: &ApiKeyRecord) -> Result<()>;
    /// Replaces an existing key's record (usage fields are not written).
    async fn update_key(&self, key: &ApiKeyRecord) -> Result<()>;
    async fn get_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>>;
    async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>>;
    /// Writes coalesced last-used times and IPs.
    async fn record_key_usage(&self, usage: &[KeyUsage<'_>]) -> Result<()>;
}

#[async_trait]
pub trait AdminUserStore: Send + Sync {
    /// Inserts a new admin; `Conflict` if the username exists.
    async fn insert_admin(&self, user: &AdminUser) -> Result<()>;
    async fn update_admin(&self, user: &AdminUser) -> Result<()>;
    async fn get_admin(&self, username: &str) -> Result<Option<AdminUser>>;
    async fn list_admins(&self) -> Result<Vec<AdminUser>>;
}

#[async_trait]
pub trait AdminTokenStore: Send + Sync {
    /// Inserts or replaces a token record.
    async fn put_token(&self, token: &AdminToken) -> Result<()>;
    async fn get_token_by_digest(&self, digest: &Digest) -> Result<Option<AdminToken>>;
    async fn list_tokens(&self) -> Result<Vec<AdminToken>>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn put_session(&self, session: &Session) -> Result<()>;
    async fn get_session(&self, digest: &Digest) -> Result<Option<Session>>;
    async fn delete_session(&self, digest: &Digest) -> Result<()>;
    /// Deletes sessions that expired before `now`; returns how many.
    async fn purge_sessions(&self, now: u64) -> Result<u64>;
}

/// Consumer TOTP enrollments (MFA step-up). The replay and failure
/// counters are updated atomically in the store so that several gateway
/// instances sharing it cannot both accept one code.
#[async_trait]
pub trait ConsumerTotpStore: Send + Sync {
    /// Inserts or replaces a consumer's enrollment (all fields).
    async fn put_consumer_totp(&self, totp: &ConsumerTotp) -> Result<()>;
    async fn get_consumer_totp(&self, consumer_id: &str) -> Result<Option<ConsumerTotp>>;
    /// Removes the enrollment; `false` if there was none.
    async fn delete_consumer_totp(&self, consumer_id: &str) -> Result<bool>;
    /// Records `step` as used, atomically, if the enrollment is confirmed and
    /// `step` is later than the last used one; also clears failures and any
    /// lockout. `false` = the step was already used (a replay) or the
    /// enrollment is gone.
    async fn claim_totp_step(&self, consumer_id: &str, step: u64) -> Result<bool>;
    /// Counts one wrong code, atomically; returns the new count (0 if the
    /// enrollment is gone).
    async fn add_totp_failure(&self, consumer_id: &str) -> Result<u32>;
    /// Refuses codes until `until` (never shortens an existing lockout).
    async fn lock_totp(&self, consumer_id: &str, until: u64) -> Result<()>;
}

/// The fields of an audit event before the store numbers it.
#[derive(Debug, Clone)]
pub struct NewAuditEvent<'a> {
    pub at: u64,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub source_ip: Option<IpAddr>,
    pub detail: serde_json::Value,
}

/// Append-only: there is deliberately no update or delete.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends an event and returns its id.
    async fn append_audit(&self, event: NewAuditEvent<'_>) -> Result<u64>;
    /// The newest `limit` events, newest first.
    async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEvent>>;
}

/// A change other gateway instances must apply to their caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    Key(String),
    Consumer(String),
}

impl Invalidation {
    pub(crate) fn encode(&self) -> String {
        match self {
            Invalidation::Key(id) => format!("k:{id}"),
            Invalidation::Consumer(id) => format!("c:{id}"),
        }
    }

    pub(crate) fn decode(text: &str) -> Option<Invalidation> {
        if let Some(id) = text.strip_prefix("k:") {
            return Some(Invalidation::Key(id.to_string()));
        }
        text.strip_prefix("c:")
            .map(|id| Invalidation::Consumer(id.to_string()))
    }
}

/// What a shared backend tells each instance's cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// (Re)subscribed: changes may have been missed, reload everything.
    Resync,
    Changed(Invalidation),
}

/// All concerns together, plus fleet invalidation (no-op when embedded).
#[async_trait]
pub trait Backend:
    ConsumerStore
    + ApiKeyStore
    + AdminUserStore
    + AdminTokenStore
    + SessionStore
    + AuditLog
    + ConsumerTotpStore
{
    /// Tells other instances to reload a record.
    async fn publish(&self, _change: &Invalidation) -> Result<()> {
        Ok(())
    }

    /// A feed of changes made by other instances; `None` when this store is
    /// not shared.
    fn subscribe(&self) -> Option<tokio::sync::mpsc::Receiver<FeedEvent>> {
        None
    }
}
