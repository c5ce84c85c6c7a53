//! The login guard's counters and marks in Redis, with marks mirrored in
//! memory on every node.
//!
//! Counters: `<prefix>c:<key>:<window>` (`INCRBY`) and `<prefix>d:<key>:<window>`
//! (HyperLogLog, `PFADD`/`PFCOUNT`), expiring after two windows. Marks:
//! `<prefix>m:<key>` holding the Unix second they end, expiring then
//! (`SET EXAT`). A mark is set in the local mirror at once, written to
//! Redis and announced on the `<prefix>marks` channel; every node's sync
//! task (see [`RedisCounterStore::spawn_sync`]) applies announcements as
//! they arrive and re-reads all marks on (re)connect and every
//! `resync_secs`, so a node that missed messages during an outage catches
//! up by itself.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use crate::crypto::unix_now;
use crate::login::store::{CounterStore, MemoryCounterStore};
use crate::replay::{StoreError, StoreFuture};

use super::{record_store_error, RedisBot};

/// [`CounterStore`] shared through Redis. Build with [`RedisCounterStore::new`]
/// and start its sync task with [`RedisCounterStore::spawn_sync`].
pub struct RedisCounterStore {
    redis: RedisBot,
    local: MemoryCounterStore,
    channel: String,
}

impl std::fmt::Debug for RedisCounterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounterStore")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

/// Keys read per `SCAN` step of a resync.
const SCAN_BATCH: usize = 500;
/// Longest pause between reconnect attempts of the sync task.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl RedisCounterStore {
    /// `local_capacity`: entries of the local mirror (marks and last-seen
    /// counter values), e.g. 100 000.
    pub fn new(redis: RedisBot, local_capacity: usize) -> Arc<Self> {
        let channel = redis.key("marks", "v1");
        Arc::new(RedisCounterStore {
            redis,
            local: MemoryCounterStore::new(local_capacity),
            channel,
        })
    }

    fn counter_key(&self, kind: &str, key: &str, window_secs: u64, now: u64) -> String {
        let window = now / window_secs.max(1);
        self.redis.key(kind, &format!("{key}:{window}"))
    }

    /// Re-reads every unexpired mark from Redis into the local mirror;
    /// returns how many were applied.
    pub async fn resync(&self) -> Result<usize, StoreError> {
        let pattern = self.redis.key("m", "*");
        let strip = self.redis.key("m", "").len();
        let now = unix_now();
        let mut cursor: u64 = 0;
        let mut applied = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_BATCH);
            let (next, keys): (u64, Vec<String>) = self.redis.cmd(&scan).await?;
            if !keys.is_empty() {
                let mut mget = redis::cmd("MGET");
                mget.arg(&keys);
                let values: Vec<Option<u64>> = self.redis.cmd(&mget).await?;
                for (key, until) in keys.iter().zip(values) {
                    match (key.get(strip..), until) {
                        (Some(mark), Some(until)) if until > now => {
                            self.local.mark_now(mark, until);
                            applied += 1;
                        }
                        _ => {}
                    }
                }
            }
            if next == 0 {
                return Ok(applied);
            }
            cursor = next;
        }
    }

    /// Starts the task that keeps the local marks in step with the other
    /// nodes: subscribe, resync, apply announcements, resync periodically,
    /// reconnect with backoff after any failure. Needs a Tokio runtime;
    /// abort the handle on shutdown.
    pub fn spawn_sync(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match store.follow().await {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(e) => {
                        tracing::warn!(error = %e, "bot mark sync lost; retrying");
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        })
    }

    /// One subscription's life: returns when it breaks.
    async fn follow(&self) -> Result<(), StoreError> {
        let timeout = self.redis.options().timeout;
        let connect = self.redis.client().get_async_pubsub();
        let mut pubsub = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Err(subscribe_failed(&e)),
            Err(_) => return Err(subscribe_failed_timeout()),
        };
        match tokio::time::timeout(timeout, pubsub.subscribe(&self.channel)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(subscribe_failed(&e)),
            Err(_) => return Err(subscribe_failed_timeout()),
        }
        // Subscribed first, then read everything: no mark falls in between.
        self.resync()
            .await
            .inspect_err(|_| record_store_error("resync"))?;
        let mut messages = pubsub.into_on_message();
        let period = Duration::from_secs(self.redis.options().resync_secs.max(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                msg = messages.next() => match msg {
                    Some(msg) => self.apply_announcement(msg.get_payload_bytes()),
                    None => {
                        record_store_error("subscribe");
                        return Err(StoreError::Unavailable("mark subscription closed".into()));
                    }
                },
                _ = tick.tick() => {
                    // A failing resync also means the subscription may be
                    // dead without knowing it: start over.
                    self.resync().await.inspect_err(|_| record_store_error("resync"))?;
                }
            }
        }
    }

    /// Applies `"<until> <key>"` from another node (malformed: ignored).
    fn apply_announcement(&self, payload: &[u8]) {
        let Some((until, key)) = std::str::from_utf8(payload)
            .ok()
            .and_then(|p| p.split_once(' '))
        else {
            return;
        };
        if let Ok(until) = until.parse::<u64>() {
            if until > unix_now() && !key.is_empty() && key.len() <= 256 {
                self.local.mark_now(key, until);
            }
        }
    }

    async fn write_mark(&self, key: &str, until: u64) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.redis.key("m", key))
            .arg(until)
            .arg("EXAT")
            .arg(until)
            .ignore()
            .cmd("PUBLISH")
            .arg(&self.channel)
            .arg(format!("{until} {key}"))
            .ignore();
        self.redis.pipe::<()>(&pipe).await
    }
}

fn subscribe_failed(e: &redis::RedisError) -> StoreError {
    record_store_error("subscribe");
    StoreError::Unavailable(format!("redis subscribe {:?}", e.kind()))
}

fn subscribe_failed_timeout() -> StoreError {
    record_store_error("subscribe");
    StoreError::Unavailable("redis subscribe timed out".into())
}

impl CounterStore for RedisCounterStore {
    fn incr(&self, key: String, by: u64, window_secs: u64, now: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let rkey = self.counter_key("c", &key, window_secs, now);
            let mut pipe = redis::pipe();
            pipe.cmd("INCRBY")
                .arg(&rkey)
                .arg(by)
                .cmd("EXPIRE")
                .arg(&rkey)
                .arg(window_secs.max(1) * 2)
                .ignore();
            let (value,): (u64,) = self.redis.pipe(&pipe).await?;
            self.local.set_now(&key, value, window_secs, now);
            Ok(value)
        })
    }

    fn get(&self, key: String, window_secs: u64, now: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let rkey = self.counter_key("c", &key, window_secs, now);
            let value: Option<u64> = self.redis.cmd(redis::cmd("GET").arg(&rkey)).await?;
            let value = value.unwrap_or(0);
            self.local.set_now(&key, value, window_secs, now);
            Ok(value)
        })
    }

    fn add_distinct(
        &self,
        key: String,
        member: u64,
        window_secs: u64,
        now: u64,
    ) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let rkey = self.counter_key("d", &key, window_secs, now);
            let mut pipe = redis::pipe();
            pipe.cmd("PFADD")
                .arg(&rkey)
                .arg(member)
                .ignore()
                .cmd("PFCOUNT")
                .arg(&rkey)
                .cmd("EXPIRE")
                .arg(&rkey)
                .arg(window_secs.max(1) * 2)
                .ignore();
            let (count,): (u64,) = self.redis.pipe(&pipe).await?;
            Ok(count)
        })
    }

    fn count_distinct(&self, key: String, window_secs: u64, now: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let rkey = self.counter_key("d", &key, window_secs, now);
            self.redis.cmd(redis::cmd("PFCOUNT").arg(&rkey)).await
        })
    }

    fn mark(&self, key: String, until: u64) -> StoreFuture<'_, ()> {
        // Local first: this node enforces at once, whatever Redis does.
        self.local.mark_now(&key, until);
        Box::pin(async move { self.write_mark(&key, until).await })
    }

    fn is_marked(&self, key: &str, now: u64) -> bool {
        self.local.is_marked_now(key, now)
    }

    fn peek(&self, key: &str, window_secs: u64, now: u64) -> u64 {
        self.local.get_now(key, window_secs, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn announcements_are_applied_and_garbage_ignored() {
        let redis = RedisBot::connect(super::super::RedisOptions::new("redis://127.0.0.1:1/"))
            .await
            .unwrap();
        let store = RedisCounterStore::new(redis, 100);
        let until = unix_now() + 60;
        store.apply_announcement(format!("{until} blk:192.0.2.1").as_bytes());
        assert!(store.is_marked("blk:192.0.2.1", unix_now()));
        for garbage in [
            &b"nonsense"[..],
            b"12x blk:192.0.2.2",
            b"1 blk:192.0.2.2",
            b"\xff\xfe blk:192.0.2.2",
        ] {
            store.apply_announcement(garbage);
        }
        assert!(!store.is_marked("blk:192.0.2.2", unix_now()));
    }

    #[tokio::test]
    async fn unreachable_redis_marks_locally_and_reports_the_error() {
        let redis = RedisBot::connect(super::super::RedisOptions::new("redis://127.0.0.1:1/"))
            .await
            .unwrap();
        let store = RedisCounterStore::new(redis, 100);
        let until = unix_now() + 60;
        assert!(store.mark("prot:abc".into(), until).await.is_err());
        assert!(store.is_marked("prot:abc", unix_now()), "local mark kept");
        assert!(store.incr("ip:x".into(), 1, 60, unix_now()).await.is_err());
    }
}
