//! The fleet store: the same records in Redis, shared by every gateway
//! instance, plus a pub/sub channel announcing changes so each instance's
//! in-memory cache follows within milliseconds.
//!
//! Layout (all under a configurable prefix, default `rampart:`):
//! `consumer:<id>`, `key:<key_id>` (JSON), `keydigest:<hex>` -> key id,
//! `keyusage` hash (key id -> "secs ip"), `admin:<name>`, `token:<hex>`,
//! `session:<hex>` (with a TTL), `consumertotp:<id>` (a hash; its replay
//! and failure counters change only through Lua scripts), the sets
//! `consumers`, `keys`, `admins`, `tokens` indexing them, `audit` (a list)
//! and `audit:seq`. The audit list is only ever appended to (`RPUSH`);
//! nothing in this crate trims or edits it. Protect Redis with ACLs so
//! other clients cannot either.

mod consumer_totp;

use crate::error::StoreError;
use crate::model::*;
use crate::secret::Digest;
use crate::store::*;
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// Options for [`RedisStore::connect`].
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://host:port/db` (credentials in the URL are never logged).
    pub url: String,
    /// Prefix of every key and of the channel. Default `rampart:`.
    pub prefix: String,
    /// Timeout of one command. Default 2 s.
    pub response_timeout: Duration,
}

impl RedisOptions {
    pub fn new(url: impl Into<String>) -> RedisOptions {
        RedisOptions {
            url: url.into(),
            prefix: "rampart:".into(),
            response_timeout: Duration::from_secs(2),
        }
    }
}

/// The Redis store. Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: show only the prefix.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects (failing if Redis is unreachable now); later outages are
    /// retried by the connection manager.
    pub async fn connect(options: RedisOptions) -> Result<RedisStore> {
        let client = redis::Client::open(options.url.as_str())
            .map_err(|e| StoreError::Invalid(format!("redis url: {:?}", e.kind())))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(options.response_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client.clone(), config).await?;
        Ok(RedisStore {
            client,
            conn,
            prefix: options.prefix,
        })
    }

    fn k(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        key.push_str(&parts.join(":"));
        key
    }

    fn channel(&self) -> String {
        self.k(&["invalidate"])
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, key: String) -> Result<Option<T>> {
        let mut conn = self.conn.clone();
        let text: Option<String> = redis::cmd("GET").arg(key).query_async(&mut conn).await?;
        text.map(|t| Ok(serde_json::from_str(&t)?)).transpose()
    }

    /// Reads every record whose id is in `set`, under `kind:<id>`.
    async fn list_json<T: serde::de::DeserializeOwned>(
        &self,
        set: &str,
        kind: &str,
    ) -> Result<Vec<T>> {
        let mut conn = self.conn.clone();
        let mut ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.k(&[set]))
            .query_async(&mut conn)
            .await?;
        ids.sort();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.k(&[kind, id])).collect();
        let texts: Vec<Option<String>> =
            redis::cmd("MGET").arg(keys).query_async(&mut conn).await?;
        texts
            .into_iter()
            .flatten()
            .map(|t| Ok(serde_json::from_str(&t)?))
            .collect()
    }

    /// SET `key` = JSON and add `id` to `set`, atomically.
    async fn put_indexed(&self, set: &str, kind: &str, id: &str, json: String) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.k(&[kind, id]))
            .arg(json)
            .ignore()
            .cmd("SADD")
            .arg(self.k(&[set]))
            .arg(id)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// SET NX: `false` if the key already existed.
    async fn set_nx(&self, key: String, value: String) -> Result<bool> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    async fn apply_usage(&self, key: &mut ApiKeyRecord) -> Result<()> {
        let mut conn = self.conn.clone();
        let usage: Option<String> = redis::cmd("HGET")
            .arg(self.k(&["keyusage"]))
            .arg(&key.key_id)
            .query_async(&mut conn)
            .await?;
        merge_usage(key, usage.as_deref());
        Ok(())
    }
}

fn merge_usage(key: &mut ApiKeyRecord, usage: Option<&str>) {
    if let Some((at, ip)) = usage.and_then(|u| u.split_once(' ')) {
        key.last_used_at = at.parse().ok();
        key.last_used_ip = ip.parse().ok();
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("encode: {e}")))
}

#[async_trait]
impl ConsumerStore for RedisStore {
    async fn put_consumer(&self, consumer: &Consumer) -> Result<()> {
        self.put_indexed("consumers", "consumer", &consumer.id, json(consumer)?)
            .await
    }

    async fn get_consumer(&self, id: &str) -> Result<Option<Consumer>> {
        self.get_json(self.k(&["consumer", id])).await
    }

    async fn list_consumers(&self) -> Result<Vec<Consumer>> {
        self.list_json("consumers", "consumer").await
    }
}

#[async_trait]
impl ApiKeyStore for RedisStore {
    async fn insert_key(&self, key: &ApiKeyRecord) -> Result<()> {
        let digest_key = self.k(&["keydigest", &key.digest.to_hex()]);
        if !self.set_nx(digest_key.clone(), key.key_id.clone()).await? {
            return Err(StoreError::Conflict(format!("api key {}", key.key_id)));
        }
        if !self
            .set_nx(self.k(&["key", &key.key_id]), json(key)?)
            .await?
        {
            let mut conn = self.conn.clone();
            redis::cmd("DEL")
                .arg(digest_key)
                .query_async::<()>(&mut conn)
                .await?;
            return Err(StoreError::Conflict(format!("api key {}", key.key_id)));
        }
        let mut conn = self.conn.clone();
        redis::cmd("SADD")
            .arg(self.k(&["keys"]))
            .arg(&key.key_id)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn update_key(&self, key: &ApiKeyRecord) -> Result<()> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.k(&["key", &key.key_id]))
            .arg(json(key)?)
            .arg("XX")
            .query_async(&mut conn)
            .await?;
        match set {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(format!("api key {}", key.key_id))),
        }
    }

    async fn get_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>> {
        let Some(mut key) = self
            .get_json::<ApiKeyRecord>(self.k(&["key", key_id]))
            .await?
        else {
            return Ok(None);
        };
        self.apply_usage(&mut key).await?;
        Ok(Some(key))
    }

    async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let mut keys: Vec<ApiKeyRecord> = self.list_json("keys", "key").await?;
        let mut conn = self.conn.clone();
        let usage: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.k(&["keyusage"]))
            .query_async(&mut conn)
            .await?;
        for key in &mut keys {
            merge_usage(key, usage.get(&key.key_id).map(String::as_str));
        }
        Ok(keys)
    }

    async fn record_key_usage(&self, usage: &[KeyUsage<'_>]) -> Result<()> {
        if usage.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.k(&["keyusage"]));
        for u in usage {
            cmd.arg(u.key_id).arg(format!("{} {}", u.at, u.ip));
        }
        let mut conn = self.conn.clone();
        cmd.query_async::<()>(&mut conn).await?;
        Ok(())
    }
}

#[async_trait]
impl AdminUserStore for RedisStore {
    async fn insert_admin(&self, user: &AdminUser) -> Result<()> {
        if !self
            .set_nx(self.k(&["admin", &user.username]), json(user)?)
            .await?
        {
            return Err(StoreError::Conflict(format!(
                "admin user {}",
                user.username
            )));
        }
        let mut conn = self.conn.clone();
        redis::cmd("SADD")
            .arg(self.k(&["admins"]))
            .arg(&user.username)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn update_admin(&self, user: &AdminUser) -> Result<()> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.k(&["admin", &user.username]))
            .arg(json(user)?)
            .arg("XX")
            .query_async(&mut conn)
            .await?;
        set.map(|_| ())
            .ok_or_else(|| StoreError::NotFound(format!("admin user {}", user.username)))
    }

    async fn get_admin(&self, username: &str) -> Result<Option<AdminUser>> {
        self.get_json(self.k(&["admin", username])).await
    }

    async fn list_admins(&self) -> Result<Vec<AdminUser>> {
        self.list_json("admins", "admin").await
    }
}

#[async_trait]
impl AdminTokenStore for RedisStore {
    async fn put_token(&self, token: &AdminToken) -> Result<()> {
        self.put_indexed("tokens", "token", &token.digest.to_hex(), json(token)?)
            .await
    }

    async fn get_token_by_digest(&self, digest: &Digest) -> Result<Option<AdminToken>> {
        self.get_json(self.k(&["token", &digest.to_hex()])).await
    }

    async fn list_tokens(&self) -> Result<Vec<AdminToken>> {
        self.list_json("tokens", "token").await
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn put_session(&self, session: &Session) -> Result<()> {
        let ttl = session
            .expires_at
            .saturating_sub(crate::clock::Clock::now_secs(&crate::clock::SystemClock));
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.k(&["session", &session.digest.to_hex()]))
            .arg(json(session)?)
            .arg("EX")
            .arg(ttl.max(1))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn get_session(&self, digest: &Digest) -> Result<Option<Session>> {
        self.get_json(self.k(&["session", &digest.to_hex()])).await
    }

    async fn delete_session(&self, digest: &Digest) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.k(&["session", &digest.to_hex()]))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn purge_sessions(&self, _now: u64) -> Result<u64> {
        // Redis expires sessions itself (SET ... EX).
        Ok(0)
    }
}

#[async_trait]
impl AuditLog for RedisStore {
    async fn append_audit(&self, event: NewAuditEvent<'_>) -> Result<u64> {
        let mut conn = self.conn.clone();
        let id: u64 = redis::cmd("INCR")
            .arg(self.k(&["audit", "seq"]))
            .query_async(&mut conn)
            .await?;
        let record = AuditEvent {
            id,
            at: event.at,
            actor: event.actor.to_string(),
            action: event.action.to_string(),
            target: event.target.to_string(),
            source_ip: event.source_ip,
            detail: event.detail,
        };
        redis::cmd("RPUSH")
            .arg(self.k(&["audit"]))
            .arg(json(&record)?)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(id)
    }

    async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEvent>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let texts: Vec<String> = redis::cmd("LRANGE")
            .arg(self.k(&["audit"]))
            .arg(-(limit as i64))
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        let mut events = texts
            .iter()
            .map(|t| Ok(serde_json::from_str(t)?))
            .collect::<Result<Vec<AuditEvent>>>()?;
        events.sort_by_key(|e| std::cmp::Reverse(e.id));
        Ok(events)
    }
}

#[async_trait]
impl Backend for RedisStore {
    async fn publish(&self, change: &Invalidation) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(self.channel())
            .arg(change.encode())
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    fn subscribe(&self) -> Option<tokio::sync::mpsc::Receiver<FeedEvent>> {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(run_subscriber(self.client.clone(), self.channel(), tx));
        Some(rx)
    }
}

/// Keeps a subscription open for as long as the receiver lives: after each
/// (re)subscribe it sends `Resync` so the cache reloads what it missed.
async fn run_subscriber(
    client: redis::Client,
    channel: String,
    tx: tokio::sync::mpsc::Sender<FeedEvent>,
) {
    let mut backoff = Duration::from_millis(100);
    while !tx.is_closed() {
        match subscribe_once(&client, &channel, &tx).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => tracing::warn!(error = %e, "store invalidation subscription lost; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn subscribe_once(
    client: &redis::Client,
    channel: &str,
    tx: &tokio::sync::mpsc::Sender<FeedEvent>,
) -> Result<()> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    if tx.send(FeedEvent::Resync).await.is_err() {
        return Ok(());
    }
    let mut messages = pubsub.on_message();
    loop {
        // Stop listening once the cache that wanted the feed is gone.
        let msg = tokio::select! {
            msg = messages.next() => msg,
            _ = tx.closed() => return Ok(()),
        };
        let Some(msg) = msg else { break };
        let Ok(text) = msg.get_payload::<String>() else {
            continue;
        };
        if let Some(change) = Invalidation::decode(&text) {
            if tx.send(FeedEvent::Changed(change)).await.is_err() {
                return Ok(());
            }
        }
    }
    Err(StoreError::Backend("pub/sub connection closed".into()))
}
