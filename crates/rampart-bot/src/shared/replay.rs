//! The used-token set in Redis: one key per redeemed token, expiring with
//! the token, so every node of a fleet refuses a replay.

use crate::crypto::hex;
use crate::replay::{ReplayStore, StoreFuture};

use super::RedisBot;

/// [`ReplayStore`] in Redis (`SET <prefix>used:<id> 1 NX EXAT <expiry>`).
/// Errors and timeouts refuse the token (the caller fails closed).
#[derive(Debug, Clone)]
pub struct RedisReplayStore {
    redis: RedisBot,
}

impl RedisReplayStore {
    pub fn new(redis: RedisBot) -> Self {
        RedisReplayStore { redis }
    }
}

impl ReplayStore for RedisReplayStore {
    fn consume(&self, id: [u8; 16], expires_at: u64, now: u64) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            if expires_at <= now {
                // An expired token is refused before this point; never
                // ask Redis to store an already-expired key.
                return Ok(false);
            }
            let key = self.redis.key("used", &hex(&id));
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key).arg(1).arg("NX").arg("EXAT").arg(expires_at);
            let reply: Option<String> = self.redis.cmd(&cmd).await?;
            Ok(reply.is_some())
        })
    }
}
