//! Clearance signing keys shared by a fleet through Redis.
//!
//! Each epoch (see [`crate::keys`]) has a random 32-byte secret at
//! `<prefix>key:<epoch>`. The first node that needs an epoch creates it
//! (`SET NX EX`), every node then reads the same value (`GET`). Nodes fetch
//! the *next* epoch's secret ahead of time, so a rotation needs no Redis
//! round trip and survives a Redis outage at the boundary. Secrets this
//! node knows are written back if Redis lost them (restart without
//! persistence), so the fleet keeps agreeing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use crate::crypto::random_bytes;
use crate::keys::{epoch_ring, KeyHandle, RotationOptions};
use crate::replay::StoreError;

use super::{record_store_error, RedisBot};

type Secret = Zeroizing<[u8; 32]>;

/// Epoch keys from Redis, refreshed in the background.
pub struct RedisKeys {
    redis: RedisBot,
    options: RotationOptions,
    handle: KeyHandle,
    known: Mutex<BTreeMap<u64, Secret>>,
}

impl std::fmt::Debug for RedisKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKeys")
            .field("options", &self.options)
            .field("signing_key", &self.handle.load().current().id())
            .finish_non_exhaustive()
    }
}

impl RedisKeys {
    /// Loads (creating when needed) the current and next epoch secrets.
    /// Fails when Redis cannot be reached: without it this node would sign
    /// tokens no other node accepts. Start the refresher next.
    pub async fn start(redis: RedisBot, options: RotationOptions) -> Result<Arc<Self>, StoreError> {
        let epoch = options.epoch_at((options.clock)());
        let mut known = BTreeMap::new();
        for e in [epoch, epoch + 1] {
            let secret = ensure(&redis, &options, e, None).await?;
            known.insert(e, secret);
        }
        let ring = ring_from(&known, epoch)?;
        Ok(Arc::new(RedisKeys {
            redis,
            options,
            handle: KeyHandle::new(ring),
            known: Mutex::new(known),
        }))
    }

    /// The handle to give to the challengers and clearances.
    pub fn handle(&self) -> KeyHandle {
        self.handle.clone()
    }

    /// Re-reads the previous, current and next epoch secrets and swaps the
    /// ring. On a Redis failure the ring is still rotated from secrets
    /// already known (the next epoch is fetched ahead), and the error is
    /// returned and counted (`kind="keys"`).
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let epoch = self.options.epoch_at((self.options.clock)());
        let fetched = self.fetch(epoch).await;
        let ring = {
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            if let Ok(fresh) = &fetched {
                for (e, s) in fresh {
                    known.insert(*e, s.clone());
                }
            }
            // Epochs older than the previous one verify nothing any more.
            known.retain(|e, _| *e + 1 >= epoch);
            ring_from(&known, epoch)
        };
        match ring {
            Ok(ring) => self.handle.store(ring),
            Err(e) => tracing::warn!(error = %e, epoch, "no secret for the current epoch yet"),
        }
        fetched.map(|_| ()).inspect_err(|e| {
            record_store_error("keys");
            tracing::warn!(error = %e, "clearance key refresh failed");
        })
    }

    async fn fetch(&self, epoch: u64) -> Result<Vec<(u64, Secret)>, StoreError> {
        let mut out = Vec::with_capacity(3);
        for e in [epoch.checked_sub(1), Some(epoch), epoch.checked_add(1)]
            .into_iter()
            .flatten()
        {
            let cached = self.cached(e);
            if e < epoch && cached.is_none() {
                // Never create a past epoch: nobody signed with it here.
                if let Some(s) = read(&self.redis, e).await? {
                    out.push((e, s));
                }
                continue;
            }
            out.push((e, ensure(&self.redis, &self.options, e, cached).await?));
        }
        Ok(out)
    }

    fn cached(&self, epoch: u64) -> Option<Secret> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.get(&epoch).cloned()
    }

    /// Refreshes every `refresh_secs` until aborted (needs a Tokio
    /// runtime). Abort the handle on shutdown.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let keys = Arc::clone(self);
        tokio::spawn(async move {
            let period = keys.options.refresh_interval();
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let _ = keys.refresh().await;
            }
        })
    }
}

fn ring_from(
    known: &BTreeMap<u64, Secret>,
    epoch: u64,
) -> Result<crate::crypto::KeyRing, StoreError> {
    epoch_ring(epoch, |e| known.get(&e).map(|s| **s))
        .map_err(|_| StoreError::Unavailable("no key for the current epoch".into()))
}

fn redis_key(redis: &RedisBot, epoch: u64) -> String {
    redis.key("key", &epoch.to_string())
}

/// The epoch's secret, created with `candidate` (or fresh randomness) if
/// Redis has none; whatever Redis holds afterwards wins.
async fn ensure(
    redis: &RedisBot,
    options: &RotationOptions,
    epoch: u64,
    candidate: Option<Secret>,
) -> Result<Secret, StoreError> {
    let candidate = candidate.unwrap_or_else(|| Zeroizing::new(random_bytes::<32>()));
    // Lives until its epoch has served as "previous", plus a margin.
    let period = options.period_secs.max(1);
    let now = (options.clock)();
    let ttl = ((epoch + 3) * period).saturating_sub(now).max(60);
    let key = redis_key(redis, epoch);
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(&key)
        .arg(&candidate[..])
        .arg("NX")
        .arg("EX")
        .arg(ttl)
        .ignore()
        .cmd("GET")
        .arg(&key);
    let (stored,): (Option<Vec<u8>>,) = redis.pipe(&pipe).await?;
    to_secret(stored)?.ok_or_else(|| StoreError::Unavailable("epoch key vanished".into()))
}

async fn read(redis: &RedisBot, epoch: u64) -> Result<Option<Secret>, StoreError> {
    let stored: Option<Vec<u8>> = redis
        .cmd(redis::cmd("GET").arg(redis_key(redis, epoch)))
        .await?;
    to_secret(stored)
}

fn to_secret(stored: Option<Vec<u8>>) -> Result<Option<Secret>, StoreError> {
    let Some(bytes) = stored.map(Zeroizing::new) else {
        return Ok(None);
    };
    let secret: [u8; 32] = bytes[..]
        .try_into()
        .map_err(|_| StoreError::Unavailable("epoch key in redis is not 32 bytes".into()))?;
    Ok(Some(Zeroizing::new(secret)))
}
