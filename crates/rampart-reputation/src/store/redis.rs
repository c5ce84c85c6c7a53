//! Fleet store: scores, offences and bans in Redis, bans mirrored locally and kept in step
//! through a pub/sub channel.
//!
//! Keys (all under `key_prefix`, default `rampart:rep:`):
//! - `bans` — hash, target CIDR → ban JSON; `ban_expiry` — sorted set, target → expiry ms;
//! - `score:<key>` — hash `{s, t}` updated by a Lua script (decay + add in one step),
//!   expiring after ten half-lives;
//! - `offences:<key>` — counter expiring `offence_memory` after the last offence;
//! - channel `events` — `{"op":"ban","ban":{…}}` / `{"op":"unban","target":"…"}`.
//!
//! A background task subscribes, then loads the full ban set, then applies messages. When
//! the connection drops (or a ping goes unanswered) it reconnects with backoff, subscribes
//! again and reloads everything, so bans issued during the outage are picked up. Errors are
//! logged and counted (`rampart_reputation_redis_errors_total`); the mirror keeps its last
//! known content meanwhile, and expired entries stop matching on their own.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use ipnet::IpNet;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use super::{BanStore, StoreError, StoreFuture};
use crate::ban::{prune_expired, BanIndex, BanInfo, BanMap};
use crate::clock::SharedClock;

/// Options of [`RedisBanStore`].
#[derive(Clone)]
pub struct RedisStoreOptions {
    /// `redis://[:password@]host:port/db`. Never logged.
    pub url: String,
    /// Prefix of every key and of the channel. Default `rampart:rep:`.
    pub key_prefix: String,
    /// Full reload of the ban set even without an outage (safety net). Default 30 s.
    pub resync_interval: Duration,
    /// Ping on the subscription connection to detect a dead link. Default 5 s.
    pub ping_interval: Duration,
    /// Timeout of each Redis command and connection attempt. Default 1 s.
    pub timeout: Duration,
}

impl std::fmt::Debug for RedisStoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreOptions")
            .field("url", &"<redacted>")
            .field("key_prefix", &self.key_prefix)
            .field("resync_interval", &self.resync_interval)
            .finish()
    }
}

impl RedisStoreOptions {
    /// Options with defaults for `url`.
    pub fn new(url: impl Into<String>) -> RedisStoreOptions {
        RedisStoreOptions {
            url: url.into(),
            key_prefix: "rampart:rep:".to_owned(),
            resync_interval: Duration::from_secs(30),
            ping_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
        }
    }
}

/// Decays the stored score to now, adds the points, stores and returns the result.
/// KEYS[1] score hash; ARGV points, now_ms, half_life_ms, ttl_ms.
const ADD_POINTS_LUA: &str = r"
local stored = redis.call('HMGET', KEYS[1], 's', 't')
local now = tonumber(ARGV[2])
local score = tonumber(stored[1]) or 0
local at = tonumber(stored[2]) or now
local half_life = tonumber(ARGV[3])
if now > at and half_life > 0 then
  score = score * math.pow(0.5, (now - at) / half_life)
end
if at > now then now = at end
score = score + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 's', tostring(score), 't', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return tostring(score)
";

/// Starts the offence count at 1 or adds one, and (re)arms its expiry. KEYS[1]; ARGV memory_ms.
const OFFENCE_LUA: &str = r"
local count = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return count
";

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Event {
    Ban { ban: BanInfo },
    Unban { target: IpNet },
}

struct Keys {
    bans: String,
    expiry: String,
    channel: String,
    prefix: String,
}

struct Inner {
    conn: ConnectionManager,
    keys: Keys,
    clock: SharedClock,
    mirror: Mutex<BanMap>,
    index: BanIndex,
    add_points: Script,
    offence: Script,
}

/// Redis-backed ban store with a local mirror. Must be created inside a tokio runtime.
pub struct RedisBanStore {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RedisBanStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBanStore")
            .field("prefix", &self.inner.keys.prefix)
            .field("mirrored_bans", &self.inner.index.len())
            .finish()
    }
}

impl Drop for RedisBanStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RedisBanStore {
    /// Connects, loads the full ban set and starts the subscription task. Fails when the URL
    /// is invalid or Redis cannot be reached now; later outages are survived.
    pub async fn connect(
        options: RedisStoreOptions,
        clock: SharedClock,
    ) -> Result<RedisBanStore, StoreError> {
        let client = redis::Client::open(options.url.as_str())
            .map_err(|error| StoreError::Redis(format!("invalid redis url: {:?}", error.kind())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(2)
            .set_max_delay(std::time::Duration::from_secs(1));
        let conn = client.get_connection_manager_with_config(config).await?;
        let prefix = options.key_prefix.clone();
        let inner = Arc::new(Inner {
            conn,
            keys: Keys {
                bans: format!("{prefix}bans"),
                expiry: format!("{prefix}ban_expiry"),
                channel: format!("{prefix}events"),
                prefix,
            },
            clock,
            mirror: Mutex::new(BanMap::new()),
            index: BanIndex::new(),
            add_points: Script::new(ADD_POINTS_LUA),
            offence: Script::new(OFFENCE_LUA),
        });
        inner.resync().await?;
        let (subscribed_tx, mut subscribed) = tokio::sync::watch::channel(false);
        let wait = options.timeout.saturating_mul(3);
        let task = tokio::spawn(subscription_loop(
            Arc::clone(&inner),
            client,
            options,
            subscribed_tx,
        ));
        // Return only once this node follows the channel, so no ban published from now on
        // can slip past it (until then only the periodic resync would catch it).
        if tokio::time::timeout(wait, subscribed.wait_for(|ready| *ready))
            .await
            .is_err()
        {
            tracing::warn!("ban channel not subscribed yet; continuing, will retry in background");
        }
        Ok(RedisBanStore { inner, task })
    }

    /// Reloads the full ban set from Redis now (also done after every reconnect).
    pub async fn resync(&self) -> Result<usize, StoreError> {
        self.inner.resync().await
    }
}

impl Inner {
    fn mirror(&self) -> std::sync::MutexGuard<'_, BanMap> {
        self.mirror.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the mirror with Redis' ban set, dropping expired bans on both sides.
    async fn resync(&self) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        let mut conn = self.conn.clone();
        let expired: Vec<String> = conn.zrangebyscore(&self.keys.expiry, "-inf", now).await?;
        if !expired.is_empty() {
            let _: () = redis::pipe()
                .hdel(&self.keys.bans, &expired)
                .zrem(&self.keys.expiry, &expired)
                .query_async(&mut conn)
                .await?;
        }
        let stored: Vec<(String, String)> = conn.hgetall(&self.keys.bans).await?;
        let mut bans = BanMap::with_capacity(stored.len());
        for (field, json) in stored {
            match serde_json::from_str::<BanInfo>(&json) {
                Ok(ban) => {
                    bans.insert(ban.target, ban);
                }
                Err(error) => {
                    tracing::warn!(%field, %error, "skipping corrupt ban record in redis");
                    count_error("corrupt_record");
                }
            }
        }
        prune_expired(&mut bans, now);
        let count = bans.len();
        let mut mirror = self.mirror();
        *mirror = bans;
        self.index.replace(mirror.values());
        Ok(count)
    }

    fn apply(&self, event: Event) {
        let mut mirror = self.mirror();
        match event {
            Event::Ban { ban } => {
                mirror.insert(ban.target, ban);
            }
            Event::Unban { target } => {
                mirror.remove(&target);
            }
        }
        prune_expired(&mut mirror, self.clock.now_ms());
        self.index.replace(mirror.values());
    }

    fn apply_message(&self, payload: &[u8]) {
        match serde_json::from_slice::<Event>(payload) {
            Ok(event) => self.apply(event),
            Err(error) => {
                tracing::warn!(%error, "ignoring malformed ban event");
                count_error("bad_event");
            }
        }
    }

    fn score_key(&self, key: IpNet) -> String {
        format!("{}score:{key}", self.keys.prefix)
    }

    fn offence_key(&self, key: IpNet) -> String {
        format!("{}offences:{key}", self.keys.prefix)
    }

    async fn ban(&self, ban: BanInfo) -> Result<(), StoreError> {
        let target = ban.target.to_string();
        let json = serde_json::to_string(&ban).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let event = serde_json::to_string(&Event::Ban { ban: ban.clone() })
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            .atomic()
            .hset(&self.keys.bans, &target, json)
            .zadd(&self.keys.expiry, &target, ban.expires_ms)
            .publish(&self.keys.channel, event)
            .query_async(&mut conn)
            .await
            .inspect_err(|_| count_error("ban"))?;
        self.apply(Event::Ban { ban });
        Ok(())
    }

    async fn unban(&self, target: IpNet) -> Result<bool, StoreError> {
        let target = target.trunc();
        let field = target.to_string();
        let event = serde_json::to_string(&Event::Unban { target })
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn.clone();
        let (removed, _, _): (u32, u32, u32) = redis::pipe()
            .atomic()
            .hdel(&self.keys.bans, &field)
            .zrem(&self.keys.expiry, &field)
            .publish(&self.keys.channel, event)
            .query_async(&mut conn)
            .await
            .inspect_err(|_| count_error("unban"))?;
        self.apply(Event::Unban { target });
        Ok(removed > 0)
    }

    async fn add_points(
        &self,
        key: IpNet,
        points: f64,
        now: u64,
        half_life: u64,
    ) -> Result<f64, StoreError> {
        let mut conn = self.conn.clone();
        let ttl = half_life.saturating_mul(10).max(1000);
        let text: String = self
            .add_points
            .key(self.score_key(key))
            .arg(points)
            .arg(now)
            .arg(half_life)
            .arg(ttl)
            .invoke_async(&mut conn)
            .await
            .inspect_err(|_| count_error("add_points"))?;
        text.parse::<f64>()
            .map_err(|_| StoreError::Corrupt("score is not a number".into()))
    }

    async fn score(&self, key: IpNet, now: u64, half_life: u64) -> Result<f64, StoreError> {
        let mut conn = self.conn.clone();
        let (score, at): (Option<f64>, Option<u64>) = redis::cmd("HMGET")
            .arg(self.score_key(key))
            .arg("s")
            .arg("t")
            .query_async(&mut conn)
            .await?;
        let elapsed = now.saturating_sub(at.unwrap_or(now));
        Ok(crate::threat::decayed(
            score.unwrap_or(0.0),
            elapsed,
            half_life,
        ))
    }

    async fn clear_score(&self, key: IpNet) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: () = conn.del(self.score_key(key)).await?;
        Ok(())
    }

    async fn record_offence(&self, key: IpNet, memory_ms: u64) -> Result<u32, StoreError> {
        let mut conn = self.conn.clone();
        let count: u32 = self
            .offence
            .key(self.offence_key(key))
            .arg(memory_ms.max(1))
            .invoke_async(&mut conn)
            .await
            .inspect_err(|_| count_error("record_offence"))?;
        Ok(count)
    }
}

fn count_error(operation: &'static str) {
    metrics::counter!("rampart_reputation_redis_errors_total", "op" => operation).increment(1);
}

/// Keeps a subscription alive forever: subscribe, resync, apply messages; on any failure wait
/// (exponential backoff up to 5 s) and start over.
async fn subscription_loop(
    inner: Arc<Inner>,
    client: redis::Client,
    options: RedisStoreOptions,
    subscribed: tokio::sync::watch::Sender<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match follow_channel(&inner, &client, &options, &subscribed).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(error) => {
                tracing::warn!(%error, "ban channel lost; reconnecting");
                count_error("subscription");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One subscription session; returns when the connection ends.
async fn follow_channel(
    inner: &Inner,
    client: &redis::Client,
    options: &RedisStoreOptions,
    subscribed: &tokio::sync::watch::Sender<bool>,
) -> Result<(), StoreError> {
    let pubsub = tokio::time::timeout(options.timeout, client.get_async_pubsub())
        .await
        .map_err(|_| StoreError::Redis("connect timeout".into()))??;
    let (mut sink, mut stream) = pubsub.split();
    sink.subscribe(&inner.keys.channel).await?;
    // Subscribe first, then load: a ban published in between is in one or the other.
    let count = inner.resync().await?;
    tracing::info!(bans = count, "ban channel subscribed and mirror loaded");
    subscribed.send_replace(true);
    let mut ping = tokio::time::interval(options.ping_interval);
    let mut resync = tokio::time::interval(options.resync_interval);
    ping.tick().await;
    resync.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(message) => inner.apply_message(message.get_payload_bytes()),
                None => return Err(StoreError::Redis("subscription closed".into())),
            },
            _ = ping.tick() => {
                let pong = tokio::time::timeout(options.timeout, sink.ping::<String>()).await;
                if !matches!(pong, Ok(Ok(_))) {
                    return Err(StoreError::Redis("subscription ping failed".into()));
                }
            }
            _ = resync.tick() => {
                if let Err(error) = inner.resync().await {
                    tracing::warn!(%error, "periodic ban resync failed");
                    count_error("resync");
                }
            }
        }
    }
}

impl BanStore for RedisBanStore {
    fn is_banned(&self, ip: IpAddr, now_ms: u64) -> Option<BanInfo> {
        self.inner.index.lookup(ip, now_ms)
    }

    fn list(&self, now_ms: u64) -> Vec<BanInfo> {
        self.inner.index.active(now_ms)
    }

    fn add_points(
        &self,
        key: IpNet,
        points: f64,
        now_ms: u64,
        half_life_ms: u64,
    ) -> StoreFuture<'_, f64> {
        Box::pin(self.inner.add_points(key, points, now_ms, half_life_ms))
    }

    fn score(&self, key: IpNet, now_ms: u64, half_life_ms: u64) -> StoreFuture<'_, f64> {
        Box::pin(self.inner.score(key, now_ms, half_life_ms))
    }

    fn clear_score(&self, key: IpNet) -> StoreFuture<'_, ()> {
        Box::pin(self.inner.clear_score(key))
    }

    fn record_offence(&self, key: IpNet, _now_ms: u64, memory_ms: u64) -> StoreFuture<'_, u32> {
        Box::pin(self.inner.record_offence(key, memory_ms))
    }

    fn ban(&self, ban: BanInfo) -> StoreFuture<'_, ()> {
        Box::pin(self.inner.ban(ban))
    }

    fn unban(&self, target: IpNet) -> StoreFuture<'_, bool> {
        Box::pin(self.inner.unban(target))
    }
}
