//! Long-lived state that outlives any one configuration: counters must not
//! reset on reload, and a Redis connection is kept while `[cluster]` does not
//! change. The snapshot builder takes filters' stores from here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_config::traffic::FeedConfig;
use rampart_config::{Cluster, Config};
use rampart_ratelimit::{
    Clock, LocalConfig, LocalStore, RateStore, RedisConfig, RedisStore, SystemClock,
};
use rampart_reputation::{FeedSet, ThreatTracker};

pub struct Services {
    pub clock: Arc<dyn Clock>,
    /// Bans and threat scores (local, or shared through Redis); `None` only
    /// for `rampart check` and bare test gateways.
    pub tracker: Option<Arc<ThreatTracker>>,
    /// Whether security events feed the tracker (`[reputation.bans] auto`).
    pub auto_ban: bool,
    /// Consumers and API keys, admin users and tokens, the audit log.
    pub identity: Option<Identity>,
    /// Endpoints learnt from the traffic of routes with `discovery = true`.
    pub discovery: Arc<rampart_openapi::Discovery>,
    /// The `[reputation]` feeds, kept while their settings are unchanged.
    feeds: Mutex<Option<LoadedFeeds>>,
    /// This node's rate counters: the store without a cluster, and the
    /// fallback under `on_store_error = "local"` with one.
    pub rate_local: Arc<LocalStore>,
    /// The Redis rate store and the settings it was made with.
    rate_redis: Mutex<Option<(ClusterKey, Arc<RedisStore>)>>,
    /// Bot defence's keys and stores, and the `[cluster]` they were made for.
    bot: Mutex<Option<(Option<ClusterKey>, Arc<BotState>)>>,
    /// The bot secret of a gateway without an identity store (tests, `check`):
    /// random, made once per process.
    bot_fallback_secret: std::sync::OnceLock<BotSecret>,
    /// Clearance keys kept in the cluster's Redis (random per epoch, made by
    /// the first node that needs one), started with the process: the key
    /// source needs an async start the snapshot build cannot do.
    bot_redis_keys: Option<(ClusterKey, Arc<rampart_bot::shared::RedisKeys>)>,
}

/// Bot defence's process-wide state: the signing keys (rotated per epoch)
/// and the stores behind single-use challenges and the login guard. Routes
/// share it, and reloads keep it while `[cluster]` does not change, so
/// clearances and counters survive a reload.
pub struct BotState {
    pub keys: rampart_bot::KeyHandle,
    pub replay: Arc<dyn rampart_bot::replay::ReplayStore>,
    pub counters: Arc<dyn rampart_bot::login::CounterStore>,
    /// Key of the login guard's username hashes (the same on every node).
    pub username_secret: BotSecret,
    /// Background tasks (key refresh, mark sync), stopped with the state.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for BotState {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// 32 secret bytes for bot defence, derived from the server secret so every
/// node of a fleet (and every restart) agrees. Never shown in `Debug`.
#[derive(Clone)]
pub struct BotSecret([u8; 32]);

impl BotSecret {
    /// Derives the bot secret (and, with `label`, sub-keys) from the
    /// server secret: `HMAC(server secret, label)`.
    pub fn derive(secret: &rampart_store::ServerSecret, label: &[u8]) -> BotSecret {
        BotSecret(secret.digest(label).0)
    }

    fn random() -> BotSecret {
        BotSecret(rampart_store::secret::random_bytes::<32>())
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A sub-key for one purpose: `HMAC(self, label)`.
    fn derive_sub(&self, label: &[u8]) -> [u8; 32] {
        // 32 bytes always make a valid server secret; the fallback (the
        // secret itself) is unreachable.
        rampart_store::ServerSecret::new(&self.0).map_or(self.0, |s| s.digest(label).0)
    }
}

impl std::fmt::Debug for BotSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BotSecret(<redacted>)")
    }
}

/// The identity store's services, over SQLite or the cluster's Redis.
#[derive(Clone)]
pub struct Identity {
    pub keyring: Arc<rampart_store::Keyring>,
    pub admin: Arc<rampart_store::AdminService>,
    pub audit: Arc<dyn rampart_store::store::AuditLog>,
    /// Consumers' TOTP enrollments, for MFA step-up.
    pub totp: Arc<rampart_store::ConsumerTotpService>,
    /// Signs step-up grant cookies (every instance shares the server secret).
    pub step_up_key: rampart_store::ServerSecret,
    /// Bot defence's secret, derived from the server secret.
    pub bot_secret: BotSecret,
}

impl Identity {
    /// Opens the store (`[store]` alone, Redis with `[cluster] redis`).
    pub async fn open(
        cfg: &Config,
        secret: rampart_store::ServerSecret,
    ) -> Result<Identity, String> {
        use rampart_store::{Backend, KeyringOptions};
        let (backend, audit): (Arc<dyn Backend>, Arc<dyn rampart_store::store::AuditLog>) =
            match &cfg.cluster.redis {
                Some(url) => {
                    let mut options = rampart_store::RedisOptions::new(url.clone());
                    options.prefix = format!("{}id:", cfg.cluster.key_prefix);
                    let store = rampart_store::RedisStore::connect(options)
                        .await
                        .map_err(|e| {
                            format!("cluster.redis: cannot open the identity store: {e}")
                        })?;
                    let store = Arc::new(store);
                    (store.clone(), store)
                }
                None => {
                    let dir = cfg.store.data_dir.clone();
                    let store =
                        tokio::task::spawn_blocking(move || rampart_store::SqliteStore::open(&dir))
                            .await
                            .map_err(|e| e.to_string())?
                            .map_err(|e| {
                                format!("store.data_dir: cannot open the identity store: {e}")
                            })?;
                    let store = Arc::new(store);
                    (store.clone(), store)
                }
            };
        let bot_secret = BotSecret::derive(&secret, b"rampart-bot secret v1");
        let keyring = rampart_store::Keyring::open(
            backend.clone(),
            secret.clone(),
            KeyringOptions::default(),
        )
        .await
        .map_err(|e| format!("store: cannot load API keys: {e}"))?;
        let totp =
            rampart_store::ConsumerTotpService::new(backend.clone(), &secret, Default::default())
                .map_err(|e| format!("store: cannot open consumer TOTP: {e}"))?;
        let step_up_key =
            rampart_store::ServerSecret::new(&secret.digest(b"rampart step-up grants v1").0)
                .map_err(|e| format!("store: step-up key: {e}"))?;
        let admin = rampart_store::AdminService::new(backend, secret, Default::default())
            .await
            .map_err(|e| format!("store: cannot load admin users: {e}"))?;
        Ok(Identity {
            keyring: Arc::new(keyring),
            admin: Arc::new(admin),
            audit,
            totp: Arc::new(totp),
            step_up_key,
            bot_secret,
        })
    }
}

struct LoadedFeeds {
    specs: Vec<FeedConfig>,
    set: Arc<FeedSet>,
    reloader: Option<tokio::task::JoinHandle<()>>,
}

/// What identifies a Redis store: a change here means a new connection.
#[derive(Clone, PartialEq, Eq)]
struct ClusterKey {
    url: String,
    prefix: String,
    timeout: Duration,
}

impl Default for Services {
    fn default() -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
        Services {
            rate_local: Arc::new(LocalStore::new(LocalConfig::default(), clock.clone())),
            clock,
            tracker: None,
            auto_ban: false,
            identity: None,
            discovery: Arc::new(rampart_openapi::Discovery::new(Default::default())),
            feeds: Mutex::new(None),
            rate_redis: Mutex::new(None),
            bot: Mutex::new(None),
            bot_fallback_secret: std::sync::OnceLock::new(),
            bot_redis_keys: None,
        }
    }
}

impl Services {
    /// Everything a configuration needs that must outlive it; connects to
    /// the cluster's Redis when there is one.
    pub async fn start(cfg: &Config) -> Result<Services, String> {
        let tracker = crate::reputation::tracker(cfg).await?;
        Ok(Services {
            tracker: Some(Arc::new(tracker)),
            auto_ban: cfg.reputation.bans.auto,
            bot_redis_keys: redis_bot_keys(&cfg.cluster).await,
            ..Services::default()
        })
    }

    /// The feeds of `[reputation]`, loaded once per distinct setting and
    /// watched for file changes.
    pub fn feeds(&self, cfg: &Config) -> Result<Option<Arc<FeedSet>>, String> {
        let specs = &cfg.reputation.feeds;
        if specs.is_empty() {
            return Ok(None);
        }
        let mut slot = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(loaded) = slot.as_ref() {
            if loaded.specs == *specs {
                return Ok(Some(loaded.set.clone()));
            }
        }
        let set = Arc::new(crate::reputation::load_feeds(specs)?);
        let reloader = tokio::runtime::Handle::try_current()
            .is_ok()
            .then(|| FeedSet::spawn_reloader(&set, cfg.reputation.feed_poll.0, None));
        let old = slot.replace(LoadedFeeds {
            specs: specs.clone(),
            set: set.clone(),
            reloader,
        });
        if let Some(task) = old.and_then(|o| o.reloader) {
            task.abort();
        }
        Ok(Some(set))
    }

    /// Where rate counters live under this `[cluster]`: Redis when set (the
    /// connection is reused while the settings are unchanged), else the
    /// local store. Outside a runtime (`rampart check`) nothing connects.
    pub fn rate_store(&self, cluster: &Cluster) -> Result<Arc<dyn RateStore>, String> {
        let Some(url) = &cluster.redis else {
            return Ok(self.rate_local.clone());
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(self.rate_local.clone());
        }
        let key = ClusterKey {
            url: url.clone(),
            prefix: format!("{}rl:", cluster.key_prefix),
            timeout: cluster.timeout.0,
        };
        let mut slot = self.rate_redis.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, store)) = slot.as_ref() {
            if *k == key {
                return Ok(store.clone());
            }
        }
        let config = RedisConfig {
            prefix: key.prefix.clone(),
            timeout: key.timeout,
            ..RedisConfig::default()
        };
        // The error never includes the URL: it may hold a password.
        let store = RedisStore::new(url, config, self.clock.clone())
            .map(Arc::new)
            .map_err(|e| format!("cannot use the cluster's Redis: {e}"))?;
        *slot = Some((key, store.clone()));
        Ok(store)
    }

    /// Bot defence's keys and stores under this `[cluster]`: Redis-backed
    /// used-token set and login counters with `redis` set, in memory
    /// otherwise. Keys are epoch keys derived from the server secret either
    /// way (a fleet shares that secret already), so no node has to agree on
    /// keys through Redis. Made once and kept while `[cluster]` is unchanged.
    pub fn bot_state(&self, cluster: &Cluster) -> Result<Arc<BotState>, String> {
        let in_runtime = tokio::runtime::Handle::try_current().is_ok();
        let key = cluster
            .redis
            .as_ref()
            .filter(|_| in_runtime)
            .map(|url| ClusterKey {
                url: url.clone(),
                prefix: format!("{}bot:", cluster.key_prefix),
                timeout: cluster.timeout.0,
            });
        let mut slot = self.bot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, state)) = slot.as_ref() {
            if *k == key {
                return Ok(state.clone());
            }
        }
        let secret = self.bot_secret();
        let mut tasks = Vec::new();
        let keys = match (&key, &self.bot_redis_keys) {
            (Some(k), Some((started_for, redis_keys))) if k == started_for => redis_keys.handle(),
            _ => {
                let keys = rampart_bot::EmbeddedKeys::new(
                    secret.expose(),
                    rampart_bot::RotationOptions::default(),
                )
                .map_err(|e| format!("bot defence keys: {e}"))?;
                let keys = Arc::new(keys);
                if in_runtime {
                    tasks.push(keys.clone().spawn_refresher());
                }
                keys.handle()
            }
        };
        let (replay, counters) = match &key {
            Some(k) => {
                let ((replay, counters), sync) = redis_bot_stores(k)?;
                tasks.push(sync);
                (replay, counters)
            }
            None => memory_bot_stores(),
        };
        let state = Arc::new(BotState {
            keys,
            replay,
            counters,
            username_secret: BotSecret(secret.derive_sub(b"login usernames")),
            tasks,
        });
        *slot = Some((key, state.clone()));
        Ok(state)
    }

    /// The identity store's bot secret, or this process's random one.
    fn bot_secret(&self) -> BotSecret {
        match &self.identity {
            Some(id) => id.bot_secret.clone(),
            None => self
                .bot_fallback_secret
                .get_or_init(BotSecret::random)
                .clone(),
        }
    }

    /// Periodic housekeeping: idle counters out, size gauges up to date.
    pub async fn upkeep(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.rate_local.purge_idle();
                    self.rate_local.publish_metrics();
                }
                _ = stop.wait_for(|&s| s) => return,
            }
        }
    }
}

type BotStores = (
    Arc<dyn rampart_bot::replay::ReplayStore>,
    Arc<dyn rampart_bot::login::CounterStore>,
);

/// Bot stores of a single node.
fn memory_bot_stores() -> BotStores {
    (
        Arc::new(rampart_bot::replay::MemoryReplayStore::default()),
        Arc::new(rampart_bot::login::MemoryCounterStore::new(
            BOT_COUNTER_CAPACITY,
        )),
    )
}

/// Counters and marks one node keeps in memory (also the Redis store's
/// local mirror size).
const BOT_COUNTER_CAPACITY: usize = 200_000;

/// Bot stores shared through the cluster's Redis, and the task keeping the
/// login guard's marks in sync.
/// The cluster's shared clearance keys, or `None` without `[cluster]
/// redis` or when Redis cannot be reached at start: the node then signs with
/// keys derived from the server secret (the same on every node that shares
/// it) and says so.
async fn redis_bot_keys(
    cluster: &Cluster,
) -> Option<(ClusterKey, Arc<rampart_bot::shared::RedisKeys>)> {
    use rampart_bot::shared::{RedisBot, RedisKeys, RedisOptions};
    let url = cluster.redis.as_ref()?;
    let key = ClusterKey {
        url: url.clone(),
        prefix: format!("{}bot:", cluster.key_prefix),
        timeout: cluster.timeout.0,
    };
    let mut options = RedisOptions::new(key.url.clone());
    options.prefix = key.prefix.clone();
    options.timeout = key.timeout;
    let started = match RedisBot::connect(options).await {
        Ok(redis) => RedisKeys::start(redis, rampart_bot::RotationOptions::default()).await,
        Err(e) => Err(e),
    };
    match started {
        Ok(keys) => {
            // Detached: it refreshes the keys for as long as the process runs.
            drop(keys.spawn_refresher());
            Some((key, keys))
        }
        Err(e) => {
            tracing::warn!(target: "rampart::bot", error = %e, "clearance keys not shared through Redis; using keys derived from the server secret");
            None
        }
    }
}

fn redis_bot_stores(key: &ClusterKey) -> Result<(BotStores, tokio::task::JoinHandle<()>), String> {
    use futures_util::FutureExt as _;
    use rampart_bot::shared::{RedisBot, RedisCounterStore, RedisOptions, RedisReplayStore};
    let mut options = RedisOptions::new(key.url.clone());
    options.prefix = key.prefix.clone();
    options.timeout = key.timeout;
    // `connect` only prepares a lazy, reconnecting connection and never
    // waits on the network, so it completes on its first poll.
    let redis = RedisBot::connect(options)
        .now_or_never()
        .ok_or_else(|| "cluster.redis: the bot store connection did not start".to_string())?
        // The error never includes the URL: it may hold a password.
        .map_err(|e| format!("cannot use the cluster's Redis for bot defence: {e}"))?;
    let counters = RedisCounterStore::new(redis.clone(), BOT_COUNTER_CAPACITY);
    let sync = counters.spawn_sync();
    let counters: Arc<dyn rampart_bot::login::CounterStore> = counters;
    Ok(((Arc::new(RedisReplayStore::new(redis)), counters), sync))
}
