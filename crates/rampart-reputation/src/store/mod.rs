//! Ban stores: where scores, offence counts and bans live (memory + file, or Redis).
//!
//! Every store keeps its active bans in a local [`BanIndex`](crate::ban::BanIndex) so the
//! ban check is synchronous and allocation-free; the async methods are used on security
//! events and admin actions, never per connection.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use ipnet::IpNet;

use crate::ban::BanInfo;

pub mod local;
pub mod redis;

/// Boxed future returned by [`BanStore`] methods (keeps the trait object-safe).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A store operation failed. Never carries credentials (Redis URLs are not echoed).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis answered with an error or could not be reached.
    #[error("redis: {0}")]
    Redis(String),
    /// Reading or writing the local ban file failed.
    #[error("ban file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A stored record could not be decoded.
    #[error("corrupt ban record: {0}")]
    Corrupt(String),
}

impl From<::redis::RedisError> for StoreError {
    fn from(error: ::redis::RedisError) -> Self {
        // The error's Display carries the kind and server message, not the connection URL.
        StoreError::Redis(error.to_string())
    }
}

/// Storage for threat scores, offence counts and bans.
///
/// Scores and offences are keyed by the client key (see
/// [`ThreatConfig::client_key`](crate::threat::ThreatConfig::client_key)).
pub trait BanStore: Send + Sync + 'static {
    /// The most specific active ban covering `ip`, from the local mirror. Synchronous,
    /// allocation-free, never touches the network.
    fn is_banned(&self, ip: IpAddr, now_ms: u64) -> Option<BanInfo>;

    /// All active bans, from the local mirror.
    fn list(&self, now_ms: u64) -> Vec<BanInfo>;

    /// Decays the stored score to `now_ms`, adds `points`, stores it, returns the new score.
    fn add_points(
        &self,
        key: IpNet,
        points: f64,
        now_ms: u64,
        half_life_ms: u64,
    ) -> StoreFuture<'_, f64>;

    /// The current (decayed) score, 0 when unknown.
    fn score(&self, key: IpNet, now_ms: u64, half_life_ms: u64) -> StoreFuture<'_, f64>;

    /// Forgets the score (after a ban, so the client starts fresh when it ends).
    fn clear_score(&self, key: IpNet) -> StoreFuture<'_, ()>;

    /// Counts one more offence and returns the count; counts older than `memory_ms` since the
    /// last offence restart at 1.
    fn record_offence(&self, key: IpNet, now_ms: u64, memory_ms: u64) -> StoreFuture<'_, u32>;

    /// Stores a ban (replacing one on the same target) and makes it visible everywhere.
    fn ban(&self, ban: BanInfo) -> StoreFuture<'_, ()>;

    /// Removes the ban on exactly `target`. True when there was one.
    fn unban(&self, target: IpNet) -> StoreFuture<'_, bool>;
}
