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
}

/// The identity store's services, over SQLite or the cluster's Redis.
#[derive(Clone)]
pub struct Identity {
    pub keyring: Arc<rampart_store::Keyring>,
    pub admin: Arc<rampart_store::AdminService>,
    pub audit: Arc<dyn rampart_store::store::AuditLog>,
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
        let keyring = rampart_store::Keyring::open(
            backend.clone(),
            secret.clone(),
            KeyringOptions::default(),
        )
        .await
        .map_err(|e| format!("store: cannot load API keys: {e}"))?;
        let admin = rampart_store::AdminService::new(backend, secret, Default::default())
            .await
            .map_err(|e| format!("store: cannot load admin users: {e}"))?;
        Ok(Identity {
            keyring: Arc::new(keyring),
            admin: Arc::new(admin),
            audit,
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
