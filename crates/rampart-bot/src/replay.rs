//! The used-token set that makes stateless puzzles and CAPTCHAs single-use.
//!
//! Tokens are HMAC-signed, so the server keeps no state per issued puzzle;
//! only tokens that were *redeemed* are remembered, until they expire
//! anyway. The trait is small and asynchronous so a fleet of gateways can
//! share one set in Redis ([`crate::shared::RedisReplayStore`]:
//! `SET id 1 NX EXAT expires_at`). It is only awaited on the verify path
//! (from `request_headers`, which may return a pending verdict), never on
//! ordinary traffic.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// Why the used-token set could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("replay store is full")]
    Full,
    #[error("replay store is unavailable: {0}")]
    Unavailable(String),
}

/// The answer of a store operation, boxed so the traits stay object-safe.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Records redeemed token ids.
///
/// Awaited only on the verify path (once per solved challenge). A network
/// implementation must bound its wait (short timeout). Callers fail closed
/// on error: the challenge must be solved again.
pub trait ReplayStore: Send + Sync {
    /// Marks `id` as used until `expires_at` (Unix seconds). Resolves to
    /// `Ok(true)` the first time, `Ok(false)` for a replay.
    fn consume(&self, id: [u8; 16], expires_at: u64, now: u64) -> StoreFuture<'_, bool>;
}

const SHARDS: usize = 16;

/// In-memory used-token set: sharded, bounded, expired ids purged lazily.
#[derive(Debug)]
pub struct MemoryReplayStore {
    shards: Vec<Mutex<HashMap<[u8; 16], u64>>>,
    per_shard: usize,
}

impl MemoryReplayStore {
    /// A store holding at most `capacity` unexpired ids. When full of
    /// unexpired ids it refuses new ones (fail closed): filling it requires
    /// solving that many puzzles first.
    pub fn new(capacity: usize) -> Self {
        MemoryReplayStore {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: (capacity / SHARDS).max(1),
        }
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        MemoryReplayStore::new(1_000_000)
    }
}

impl ReplayStore for MemoryReplayStore {
    fn consume(&self, id: [u8; 16], expires_at: u64, now: u64) -> StoreFuture<'_, bool> {
        Box::pin(std::future::ready(self.consume_now(&id, expires_at, now)))
    }
}

impl MemoryReplayStore {
    /// The synchronous check behind [`ReplayStore::consume`].
    pub fn consume_now(
        &self,
        id: &[u8; 16],
        expires_at: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        // Ids are HMAC-derived random nonces, so their first byte spreads
        // evenly over shards and cannot be aimed by a client.
        let shard = &self.shards[id[0] as usize % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&exp) = map.get(id) {
            if exp > now {
                return Ok(false);
            }
        }
        if map.len() >= self.per_shard {
            map.retain(|_, exp| *exp > now);
            if map.len() >= self.per_shard {
                return Err(StoreError::Full);
            }
        }
        map.insert(*id, expires_at);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_is_a_replay() {
        let s = MemoryReplayStore::new(100);
        assert_eq!(s.consume_now(&[1; 16], 200, 100), Ok(true));
        assert_eq!(s.consume_now(&[1; 16], 200, 150), Ok(false));
        assert_eq!(s.consume_now(&[2; 16], 200, 150), Ok(true));
    }

    #[test]
    fn full_store_purges_expired_then_fails_closed() {
        let s = MemoryReplayStore::new(16);
        let mut id = [0u8; 16];
        id[1] = 1;
        assert_eq!(s.consume_now(&id, 10, 0), Ok(true));
        id[1] = 2;
        assert_eq!(
            s.consume_now(&id, 100, 50),
            Ok(true),
            "expired entry purged"
        );
        id[1] = 3;
        assert_eq!(s.consume_now(&id, 100, 50), Err(StoreError::Full));
    }
}
