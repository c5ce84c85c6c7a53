//! API key management and verification: consumers, key creation, rotation
//! with a grace period, revocation, and the fast `verify` the gateway calls
//! on every request.
//!
//! `verify` never touches storage: it computes one HMAC and looks the digest
//! up in the in-memory [`Cache`]. Writes go to the backend first, then to the
//! local cache, then are announced to other instances (fleet mode). Last-used
//! times are noted in memory and written in batches.

use crate::cache::{lock, Cache, CachedConsumer, CachedKey};
use crate::clock::{Clock, SystemClock};
use crate::error::{KeyError, StoreError};
use crate::keyformat::{self, KeyEnv};
use crate::model::*;
use crate::secret::{random_token, SecretString, ServerSecret};
use crate::store::{Backend, FeedEvent, Invalidation, NewAuditEvent, Result};
use rampart_core::IdentityHeaders;
use std::net::IpAddr;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

/// Options for [`Keyring::open`].
#[derive(Clone)]
pub struct KeyringOptions {
    /// How often noted last-used times are written. Default 10 s.
    pub usage_flush_interval: Duration,
    /// Full cache reload period in fleet mode, a safety net behind pub/sub.
    /// Default 60 s; `None` disables it.
    pub full_reload_interval: Option<Duration>,
    /// Time source (tests use [`crate::ManualClock`]).
    pub clock: Arc<dyn Clock>,
}

impl Default for KeyringOptions {
    fn default() -> Self {
        KeyringOptions {
            usage_flush_interval: Duration::from_secs(10),
            full_reload_interval: Some(Duration::from_secs(60)),
            clock: Arc::new(SystemClock),
        }
    }
}

/// A successfully verified key: what the gateway puts in the request's
/// identity and hands the rate limiter. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    pub key_id: Arc<str>,
    pub consumer_id: Arc<str>,
    pub tier: Option<Arc<str>>,
    /// The key's scopes, or the consumer's when the key sets none.
    pub scopes: Arc<[String]>,
    /// The quota tier this key counts under; `None`: its consumer's tier.
    pub rate_limit: Option<Arc<str>>,
    pub env: KeyEnv,
    /// The consumer and scopes header values for the upstream, rendered
    /// when the key and consumer were cached rather than per request.
    pub headers: IdentityHeaders,
}

impl VerifiedKey {
    fn of(key: &CachedKey, consumer: &CachedConsumer) -> VerifiedKey {
        let (scopes, scopes_header) = match &key.scopes {
            Some((scopes, header)) => (scopes.clone(), header.clone()),
            None => (consumer.scopes.clone(), consumer.headers.scopes.clone()),
        };
        VerifiedKey {
            key_id: key.key_id.clone(),
            consumer_id: consumer.id.clone(),
            tier: consumer.tier.clone(),
            scopes,
            rate_limit: key.rate_limit.clone(),
            env: key.env,
            headers: IdentityHeaders {
                consumer: consumer.headers.consumer.clone(),
                scopes: scopes_header,
            },
        }
    }

    /// [`identity`](Self::identity) and the upstream header values, moved
    /// out rather than copied: the auth filter's per-request path.
    pub fn into_identity(self) -> (rampart_core::Identity, IdentityHeaders) {
        let identity = rampart_core::Identity {
            method: rampart_core::AuthMethod::ApiKey,
            consumer_id: self.consumer_id,
            tier: self.rate_limit.or(self.tier),
            scopes: self.scopes,
            key_id: Some(self.key_id),
            claims: None,
        };
        (identity, self.headers)
    }

    /// The request identity the auth filter sets. A key's `rate_limit`
    /// names the quota tier its requests count under, overriding the
    /// consumer's tier: that is how one key gets its own quota.
    pub fn identity(&self) -> rampart_core::Identity {
        self.clone().into_identity().0
    }
}

/// A key just created: the full key is in `key` and is shown once.
#[derive(Debug)]
pub struct CreatedKey {
    pub key: SecretString,
    pub record: ApiKeyRecord,
}

/// The API key service. Cheap to clone; background tasks stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn Backend>,
    secret: ServerSecret,
    clock: Arc<dyn Clock>,
    cache: RwLock<Cache>,
    /// Serialises writes, reloads and applied invalidations so a reload
    /// never overwrites a newer change.
    writes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cache = self.inner.read_cache();
        f.debug_struct("Keyring")
            .field("keys", &cache.by_digest.len())
            .field("consumers", &cache.consumers.len())
            .finish_non_exhaustive()
    }
}

const MAX_ID_LEN: usize = 64;

impl Keyring {
    /// Loads the cache from `backend` and starts the usage flusher and, for
    /// shared backends, the invalidation listener. Needs a Tokio runtime.
    pub async fn open(
        backend: Arc<dyn Backend>,
        secret: ServerSecret,
        options: KeyringOptions,
    ) -> Result<Keyring> {
        let inner = Arc::new(Inner {
            backend,
            secret,
            clock: options.clock.clone(),
            cache: RwLock::new(Cache::default()),
            writes: tokio::sync::Mutex::new(()),
        });
        let feed = inner.backend.subscribe();
        inner.reload().await?;
        tokio::spawn(flush_loop(
            Arc::downgrade(&inner),
            options.usage_flush_interval,
        ));
        if let Some(feed) = feed {
            tokio::spawn(feed_loop(
                Arc::downgrade(&inner),
                feed,
                options.full_reload_interval,
            ));
        }
        Ok(Keyring { inner })
    }

    /// Checks a presented key. Costs a length and prefix check, one HMAC
    /// and two hash lookups; never waits on storage. The checksum is
    /// checked only when the digest is unknown, to tell a malformed key
    /// from one never issued: a known digest is a key rampart generated.
    pub fn verify(
        &self,
        presented: &str,
        client_ip: IpAddr,
    ) -> std::result::Result<VerifiedKey, KeyError> {
        let key_id = keyformat::shape(presented).ok_or(KeyError::Malformed)?;
        let digest = self.inner.secret.digest(presented.as_bytes());
        let now = self.inner.clock.now_secs();
        // Everything is read under the one lock, borrowing the cached
        // entries: only the parts the result hands out are shared.
        let cache = self.inner.read_cache();
        let Some(key) = cache.by_digest.get(&digest) else {
            drop(cache);
            return Err(match keyformat::parse(presented) {
                Some(_) => KeyError::Unknown,
                None => KeyError::Malformed,
            });
        };
        // The map compared digests already; compare again in constant time
        // and check the id so a hash-map quirk can never admit a key.
        if !key.record.digest.ct_eq(&digest) || *key.key_id != *key_id {
            return Err(KeyError::Unknown);
        }
        check_key_state(key, now)?;
        let consumer = cache
            .consumers
            .get(&key.record.consumer_id)
            .ok_or(KeyError::Unknown)?;
        check_consumer(consumer, client_ip)?;
        note_usage(key, now, client_ip);
        Ok(VerifiedKey::of(key, consumer))
    }

    /// The identity of an active consumer for a credential verified
    /// elsewhere (a client certificate naming it). Reads the cache only.
    /// `Unknown` when no such consumer exists.
    pub fn consumer_identity(
        &self,
        consumer_id: &str,
        client_ip: IpAddr,
        method: rampart_core::AuthMethod,
    ) -> std::result::Result<rampart_core::Identity, KeyError> {
        let consumer = self
            .inner
            .read_cache()
            .consumers
            .get(consumer_id)
            .cloned()
            .ok_or(KeyError::Unknown)?;
        check_consumer(&consumer, client_ip)?;
        Ok(rampart_core::Identity {
            method,
            consumer_id: consumer.id.clone(),
            tier: consumer.tier.clone(),
            scopes: consumer.scopes.clone(),
            key_id: None,
            claims: None,
        })
    }

    /// Creates a consumer (active).
    pub async fn create_consumer(&self, new: NewConsumer, actor: &Actor) -> Result<Consumer> {
        let id = match new.id {
            Some(id) => validate_id(id)?,
            None => format!("c_{}", &random_token()[..16]),
        };
        if new.name.trim().is_empty() {
            return Err(StoreError::Invalid("consumer name is empty".into()));
        }
        let now = self.inner.clock.now_secs();
        let consumer = Consumer {
            id,
            name: new.name,
            tier: new.tier,
            scopes: new.scopes,
            metadata: new.metadata,
            allowed_cidrs: new.allowed_cidrs,
            state: ConsumerState::Active,
            created_at: now,
            updated_at: now,
        };
        let _w = self.inner.writes.lock().await;
        if self
            .inner
            .backend
            .get_consumer(&consumer.id)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!("consumer {}", consumer.id)));
        }
        self.inner.save_consumer(&consumer).await?;
        self.inner
            .audit(
                actor,
                "consumer.create",
                &consumer.id,
                serde_json::json!({"name": consumer.name}),
            )
            .await?;
        Ok(consumer)
    }

    /// Replaces a consumer's editable fields (name, tier, scopes, metadata,
    /// CIDRs, state); `created_at` is kept.
    pub async fn update_consumer(&self, mut consumer: Consumer, actor: &Actor) -> Result<Consumer> {
        let _w = self.inner.writes.lock().await;
        let existing = self.inner.existing_consumer(&consumer.id).await?;
        consumer.created_at = existing.created_at;
        consumer.updated_at = self.inner.clock.now_secs();
        self.inner.save_consumer(&consumer).await?;
        self.inner
            .audit(
                actor,
                "consumer.update",
                &consumer.id,
                serde_json::json!({"state": consumer.state}),
            )
            .await?;
        Ok(consumer)
    }

    /// Enables or disables a consumer; disabling refuses all its keys at once.
    pub async fn set_consumer_state(
        &self,
        id: &str,
        state: ConsumerState,
        actor: &Actor,
    ) -> Result<Consumer> {
        let _w = self.inner.writes.lock().await;
        let mut consumer = self.inner.existing_consumer(id).await?;
        consumer.state = state;
        consumer.updated_at = self.inner.clock.now_secs();
        self.inner.save_consumer(&consumer).await?;
        self.inner
            .audit(
                actor,
                "consumer.state",
                id,
                serde_json::json!({"state": state}),
            )
            .await?;
        Ok(consumer)
    }

    pub async fn get_consumer(&self, id: &str) -> Result<Option<Consumer>> {
        self.inner.backend.get_consumer(id).await
    }

    pub async fn list_consumers(&self) -> Result<Vec<Consumer>> {
        self.inner.backend.list_consumers().await
    }

    /// Issues a key for an existing consumer. The full key is returned once.
    pub async fn create_key(&self, new: NewKey, actor: &Actor) -> Result<CreatedKey> {
        let _w = self.inner.writes.lock().await;
        self.inner.existing_consumer(&new.consumer_id).await?;
        let now = self.inner.clock.now_secs();
        let template = KeyTemplate {
            consumer_id: new.consumer_id,
            env: new.env,
            name: new.name,
            scopes: new.scopes,
            rate_limit: new.rate_limit,
            expires_at: new.ttl_secs.map(|ttl| now.saturating_add(ttl)),
        };
        let created = self.inner.issue_key(template, now).await?;
        self.inner
            .audit(
                actor,
                "key.create",
                &created.record.key_id,
                key_detail(&created.record),
            )
            .await?;
        Ok(created)
    }

    /// Replaces a key with a new one (same consumer, scopes, quota and
    /// lifetime). The old key stays valid for `grace` more, then expires.
    pub async fn rotate_key(
        &self,
        key_id: &str,
        grace: Duration,
        actor: &Actor,
    ) -> Result<CreatedKey> {
        let _w = self.inner.writes.lock().await;
        let mut old = self.inner.existing_key(key_id).await?;
        if old.revoked_at.is_some() {
            return Err(StoreError::Invalid(format!("api key {key_id} is revoked")));
        }
        let now = self.inner.clock.now_secs();
        let lifetime = old.expires_at.map(|e| e.saturating_sub(old.created_at));
        let template = KeyTemplate {
            consumer_id: old.consumer_id.clone(),
            env: old.env,
            name: old.name.clone(),
            scopes: old.scopes.clone(),
            rate_limit: old.rate_limit.clone(),
            expires_at: lifetime.map(|l| now.saturating_add(l)),
        };
        let created = self.inner.issue_key(template, now).await?;
        let grace_end = now.saturating_add(grace.as_secs());
        old.expires_at = Some(old.expires_at.map_or(grace_end, |e| e.min(grace_end)));
        old.rotated_to = Some(created.record.key_id.clone());
        self.inner.save_key(&old).await?;
        let detail =
            serde_json::json!({"new_key_id": created.record.key_id, "grace_secs": grace.as_secs()});
        self.inner
            .audit(actor, "key.rotate", key_id, detail)
            .await?;
        Ok(created)
    }

    /// Revokes a key; every instance refuses it from now on.
    pub async fn revoke_key(&self, key_id: &str, actor: &Actor) -> Result<ApiKeyRecord> {
        let _w = self.inner.writes.lock().await;
        let mut key = self.inner.existing_key(key_id).await?;
        if key.revoked_at.is_none() {
            key.revoked_at = Some(self.inner.clock.now_secs());
            self.inner.save_key(&key).await?;
        }
        self.inner
            .audit(
                actor,
                "key.revoke",
                key_id,
                serde_json::json!({"consumer_id": key.consumer_id}),
            )
            .await?;
        Ok(key)
    }

    pub async fn get_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>> {
        self.inner.backend.get_key(key_id).await
    }

    /// All keys, or one consumer's.
    pub async fn list_keys(&self, consumer_id: Option<&str>) -> Result<Vec<ApiKeyRecord>> {
        let keys = self.inner.backend.list_keys().await?;
        Ok(match consumer_id {
            Some(id) => keys.into_iter().filter(|k| k.consumer_id == id).collect(),
            None => keys,
        })
    }

    /// Writes noted last-used times now (also done periodically; call it at
    /// shutdown).
    pub async fn flush_usage(&self) -> Result<()> {
        self.inner.flush_usage().await
    }

    /// Reloads the whole cache from the backend.
    pub async fn reload(&self) -> Result<()> {
        self.inner.reload().await
    }

    /// The audit log's newest entries (newest first).
    pub async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEvent>> {
        self.inner.backend.recent_audit(limit).await
    }
}

fn check_key_state(key: &CachedKey, now: u64) -> std::result::Result<(), KeyError> {
    if key.record.revoked_at.is_some() {
        return Err(KeyError::Revoked);
    }
    match key.record.expires_at {
        Some(expiry) if now >= expiry => Err(KeyError::Expired),
        _ => Ok(()),
    }
}

fn check_consumer(consumer: &CachedConsumer, ip: IpAddr) -> std::result::Result<(), KeyError> {
    if !consumer.active {
        return Err(KeyError::ConsumerDisabled);
    }
    if !consumer.allows_ip(ip) {
        return Err(KeyError::IpNotAllowed);
    }
    Ok(())
}

/// Notes a use in memory; the flusher writes it. Coalesced: many uses
/// between flushes cost one write.
fn note_usage(key: &CachedKey, now: u64, ip: IpAddr) {
    if key.noted.matches(now, ip) {
        return;
    }
    let mut usage = lock(&key.usage);
    if usage.at != now || usage.ip != Some(ip) {
        usage.at = now;
        usage.ip = Some(ip);
        usage.dirty = true;
    }
    key.noted.set(now, ip);
}

fn validate_id(id: String) -> Result<String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    match ok {
        true => Ok(id),
        false => Err(StoreError::Invalid(
            "consumer id must be 1-64 characters of A-Z a-z 0-9 _ - .".into(),
        )),
    }
}

fn key_detail(record: &ApiKeyRecord) -> serde_json::Value {
    serde_json::json!({
        "consumer_id": record.consumer_id,
        "env": record.env,
        "scopes": record.scopes,
        "expires_at": record.expires_at,
    })
}

struct KeyTemplate {
    consumer_id: String,
    env: KeyEnv,
    name: String,
    scopes: Vec<String>,
    rate_limit: Option<String>,
    expires_at: Option<u64>,
}

/// Attempts at finding an unused key id (8 base62 characters collide rarely).
const ISSUE_ATTEMPTS: usize = 5;

impl Inner {
    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|e| e.into_inner())
    }

    async fn issue_key(&self, t: KeyTemplate, now: u64) -> Result<CreatedKey> {
        for _ in 0..ISSUE_ATTEMPTS {
            let generated = keyformat::generate(t.env);
            let record = ApiKeyRecord {
                key_id: generated.key_id,
                digest: self.secret.digest(generated.text.as_bytes()),
                consumer_id: t.consumer_id.clone(),
                env: t.env,
                name: t.name.clone(),
                scopes: t.scopes.clone(),
                rate_limit: t.rate_limit.clone(),
                created_at: now,
                expires_at: t.expires_at,
                revoked_at: None,
                rotated_to: None,
                last_used_at: None,
                last_used_ip: None,
            };
            match self.backend.insert_key(&record).await {
                Ok(()) => {
                    self.write_cache().put_key(record.clone());
                    self.backend
                        .publish(&Invalidation::Key(record.key_id.clone()))
                        .await?;
                    let key = SecretString::new(generated.text);
                    return Ok(CreatedKey { key, record });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(
            "api key id (retries exhausted)".into(),
        ))
    }

    async fn save_key(&self, key: &ApiKeyRecord) -> Result<()> {
        self.backend.update_key(key).await?;
        self.write_cache().put_key(key.clone());
        self.backend
            .publish(&Invalidation::Key(key.key_id.clone()))
            .await
    }

    async fn save_consumer(&self, consumer: &Consumer) -> Result<()> {
        self.backend.put_consumer(consumer).await?;
        self.write_cache().put_consumer(consumer);
        self.backend
            .publish(&Invalidation::Consumer(consumer.id.clone()))
            .await
    }

    async fn existing_consumer(&self, id: &str) -> Result<Consumer> {
        self.backend
            .get_consumer(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("consumer {id}")))
    }

    async fn existing_key(&self, key_id: &str) -> Result<ApiKeyRecord> {
        self.backend
            .get_key(key_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("api key {key_id}")))
    }

    async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let event = NewAuditEvent {
            at: self.clock.now_secs(),
            actor: &actor.name,
            action,
            target,
            source_ip: actor.ip,
            detail,
        };
        self.backend.append_audit(event).await.map(|_| ())
    }

    async fn reload(&self) -> Result<()> {
        let _w = self.writes.lock().await;
        let consumers = self.backend.list_consumers().await?;
        let keys = self.backend.list_keys().await?;
        let fresh = Cache::build(&consumers, keys);
        let mut cache = self.write_cache();
        // Carry over usage noted since the last flush.
        for (digest, entry) in fresh.by_digest.iter() {
            if let Some(old) = cache.by_digest.get(digest) {
                *lock(&entry.usage) = *lock(&old.usage);
            }
        }
        *cache = fresh;
        Ok(())
    }

    /// Re-reads one changed record announced by another instance.
    async fn apply(&self, change: Invalidation) -> Result<()> {
        let _w = self.writes.lock().await;
        match change {
            Invalidation::Key(id) => match self.backend.get_key(&id).await? {
                Some(key) => self.write_cache().put_key(key),
                None => self.write_cache().remove_key(&id),
            },
            Invalidation::Consumer(id) => match self.backend.get_consumer(&id).await? {
                Some(c) => self.write_cache().put_consumer(&c),
                None => self.write_cache().remove_consumer(&id),
            },
        }
        Ok(())
    }

    async fn flush_usage(&self) -> Result<()> {
        let pending: Vec<(Arc<str>, u64, IpAddr)> = {
            let cache = self.read_cache();
            cache
                .by_digest
                .values()
                .filter_map(|entry| {
                    let mut usage = lock(&entry.usage);
                    let ip = usage.ip.filter(|_| usage.dirty)?;
                    usage.dirty = false;
                    Some((entry.key_id.clone(), usage.at, ip))
                })
                .collect()
        };
        if pending.is_empty() {
            return Ok(());
        }
        let batch: Vec<KeyUsage<'_>> = pending
            .iter()
            .map(|(id, at, ip)| KeyUsage {
                key_id: id,
                at: *at,
                ip: *ip,
            })
            .collect();
        self.backend.record_key_usage(&batch).await
    }
}

async fn flush_loop(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if let Err(e) = inner.flush_usage().await {
            tracing::warn!(error = %e, "writing API key usage failed");
        }
    }
}

/// How often an idle feed task checks whether its keyring still exists.
const LIVENESS_CHECK: Duration = Duration::from_secs(5);

/// Applies other instances' changes; reloads everything on (re)subscribe
/// and periodically as a safety net.
async fn feed_loop(
    inner: Weak<Inner>,
    mut feed: tokio::sync::mpsc::Receiver<FeedEvent>,
    full_reload: Option<Duration>,
) {
    let mut tick = tokio::time::interval(full_reload.unwrap_or(Duration::from_secs(3600)));
    tick.tick().await;
    loop {
        let event = tokio::select! {
            event = feed.recv() => match event {
                Some(event) => event,
                None => return,
            },
            _ = tick.tick() => match full_reload {
                Some(_) => FeedEvent::Resync,
                None => continue,
            },
            // Notice a dropped keyring even when no changes arrive.
            _ = tokio::time::sleep(LIVENESS_CHECK) => {
                if inner.strong_count() == 0 {
                    return;
                }
                continue;
            }
        };
        let Some(inner) = inner.upgrade() else { return };
        let result = match event {
            FeedEvent::Resync => inner.reload().await,
            FeedEvent::Changed(change) => inner.apply(change).await,
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "applying a store change failed; will reload");
            // A missed change must not stick: retry with a full reload soon.
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Err(e) = inner.reload().await {
                tracing::warn!(error = %e, "store reload failed");
            }
        }
    }
}
