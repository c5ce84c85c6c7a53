//! Redis-backed state shared by a fleet of gateways.
//!
//! * [`RedisReplayStore`]: the used-token set (`SET NX EXAT`), so a puzzle
//!   solved on one node cannot be replayed on another;
//! * [`RedisCounterStore`]: the login guard's counters (`INCRBY`, `PFADD`)
//!   and marks (blocked IP, protected username, challenged subnet), with
//!   marks mirrored in memory on every node (set on write, `PUBLISH` to the
//!   others, periodic resync) so synchronous filter hooks never wait on
//!   the network;
//! * [`RedisKeys`]: per-epoch clearance signing secrets created once in
//!   Redis and read by every node.
//!
//! Failure policy when Redis is unreachable (never a panic): redeeming a
//! token fails closed (the client solves a new challenge), counting fails
//! open (no data means no block), key refresh keeps the last ring. Each
//! failure increments `rampart_bot_store_errors_total{kind}`.
//!
//! Wiring a gateway of a fleet (single node: [`crate::keys::EmbeddedKeys`],
//! [`crate::replay::MemoryReplayStore`] and
//! [`crate::login::MemoryCounterStore`] instead, nothing to spawn but the
//! key refresher):
//!
//! ```no_run
//! # async fn wire(username_secret: &[u8]) -> Result<(), rampart_bot::replay::StoreError> {
//! use std::sync::Arc;
//! use rampart_bot::keys::RotationOptions;
//! use rampart_bot::login::{GuardOptions, LoginGuard};
//! use rampart_bot::shared::{RedisBot, RedisCounterStore, RedisKeys, RedisOptions, RedisReplayStore};
//! use rampart_bot::ChallengeKit;
//!
//! let redis = RedisBot::connect(RedisOptions::new("redis://127.0.0.1:6379/")).await?;
//! let keys = RedisKeys::start(redis.clone(), RotationOptions::default()).await?;
//! let counters = RedisCounterStore::new(redis.clone(), 100_000);
//! // Background tasks: abort these handles on shutdown.
//! let tasks = [keys.spawn_refresher(), counters.spawn_sync()];
//! let kit = Arc::new(ChallengeKit::new(
//!     keys.handle(),
//!     Arc::new(RedisReplayStore::new(redis)),
//! ));
//! let guard = Arc::new(LoginGuard::new(GuardOptions::default(), counters, username_secret));
//! // ... BotFilter::new(scorer, kit.clone(), options),
//! //     LoginGuardFilter::new(guard, login_options).with_challenges(kit) ...
//! # let _ = (kit, guard);
//! for task in tasks {
//!     task.abort();
//! }
//! # Ok(())
//! # }
//! ```

mod counters;
mod keys;
mod replay;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use counters::RedisCounterStore;
pub use keys::RedisKeys;
pub use replay::RedisReplayStore;

use crate::replay::StoreError;

/// Name of the error counter (label `kind`: `replay`, `counter`, `mark`,
/// `subscribe`, `resync`, `keys`, `overloaded`).
pub const STORE_ERRORS_METRIC: &str = "rampart_bot_store_errors_total";

/// Counts one store failure of `kind`.
pub fn record_store_error(kind: &'static str) {
    metrics::counter!(STORE_ERRORS_METRIC, "kind" => kind).increment(1);
}

/// Connection settings.
#[derive(Clone)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]` (may hold a password: never
    /// shown in `Debug`).
    pub url: String,
    /// Prefix of every key and channel (default `rampart:bot:`); give each
    /// independent fleet its own.
    pub prefix: String,
    /// Longest wait for one command (default 250 ms). Redeeming a token
    /// waits this long at most before failing closed.
    pub timeout: Duration,
    /// How often marks are re-read from Redis in full, besides pub/sub
    /// (default 30 s); also the retry period after a lost subscription.
    pub resync_secs: u64,
}

impl RedisOptions {
    pub fn new(url: impl Into<String>) -> Self {
        RedisOptions {
            url: url.into(),
            prefix: "rampart:bot:".into(),
            timeout: Duration::from_millis(250),
            resync_secs: 30,
        }
    }
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("resync_secs", &self.resync_secs)
            .finish()
    }
}

/// One Redis connection (multiplexed, reconnecting) shared by the stores
/// of this crate. Cheap to clone.
#[derive(Clone)]
pub struct RedisBot {
    client: redis::Client,
    conn: ConnectionManager,
    options: Arc<RedisOptions>,
}

impl std::fmt::Debug for RedisBot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBot")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisBot {
    /// Prepares the connection without contacting Redis (it connects on
    /// first use and reconnects by itself), so the gateway starts even
    /// while Redis is down. Never waits: completes on its first poll.
    /// Fails on a malformed URL, or outside a Tokio runtime (the
    /// connection needs one for its background task).
    pub async fn connect(options: RedisOptions) -> Result<RedisBot, StoreError> {
        RedisBot::new(options)
    }

    /// [`RedisBot::connect`] without the `async`: call it from inside a
    /// Tokio runtime context.
    pub fn new(options: RedisOptions) -> Result<RedisBot, StoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::Unavailable(
                "redis connection needs a Tokio runtime".into(),
            ));
        }
        let client = redis::Client::open(options.url.as_str())
            .map_err(|e| StoreError::Unavailable(format!("redis url: {:?}", e.kind())))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.timeout))
            .set_connection_timeout(Some(options.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| unavailable(&e))?;
        Ok(RedisBot {
            client,
            conn,
            options: Arc::new(options),
        })
    }

    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    /// `prefix` + `kind` + `:` + `rest`.
    pub(crate) fn key(&self, kind: &str, rest: &str) -> String {
        let mut k = String::with_capacity(self.options.prefix.len() + kind.len() + rest.len() + 1);
        k.push_str(&self.options.prefix);
        k.push_str(kind);
        k.push(':');
        k.push_str(rest);
        k
    }

    /// Runs one command with the command timeout.
    pub(crate) async fn cmd<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        self.bounded(cmd.query_async::<T>(&mut conn)).await
    }

    /// Runs a pipeline with the command timeout.
    pub(crate) async fn pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        self.bounded(pipe.query_async::<T>(&mut conn)).await
    }

    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.options.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(&e)),
            Err(_) => Err(StoreError::Unavailable("redis timed out".into())),
        }
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }
}

/// A Redis error as a store error: its kind only (messages may echo
/// arguments, and arguments may be keys or secrets).
fn unavailable(e: &redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis {:?}", e.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::TokenError;
    use crate::pow::Redemption;
    use crate::replay::{ReplayStore, StoreFuture};
    use futures_util::FutureExt;
    use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};
    use std::sync::Mutex;

    /// Records the name and labels of every counter increment.
    #[derive(Default)]
    struct Capture(Arc<Mutex<Vec<String>>>);

    struct Seen(Arc<Mutex<Vec<String>>>, String);

    impl metrics::CounterFn for Seen {
        fn increment(&self, _: u64) {
            self.0.lock().unwrap().push(self.1.clone());
        }
        fn absolute(&self, _: u64) {}
    }

    impl metrics::Recorder for Capture {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            Counter::from_arc(Arc::new(Seen(self.0.clone(), name)))
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    struct Down;

    impl ReplayStore for Down {
        fn consume(&self, _: [u8; 16], _: u64, _: u64) -> StoreFuture<'_, bool> {
            Box::pin(std::future::ready(Err(StoreError::Unavailable(
                "down".into(),
            ))))
        }
    }

    #[test]
    fn store_outage_fails_closed_and_is_counted() {
        let capture = Capture::default();
        let seen = capture.0.clone();
        let redemption = Redemption {
            nonce: [1; 16],
            expires_at: 200,
        };
        let result = metrics::with_local_recorder(&capture, || {
            redemption.redeem(&Down, 100).now_or_never().unwrap()
        });
        assert_eq!(result, Err(TokenError::StoreUnavailable));
        assert_eq!(
            *seen.lock().unwrap(),
            vec!["rampart_bot_store_errors_total{kind=replay}".to_string()]
        );
    }

    #[test]
    fn connect_outside_a_runtime_is_an_error_not_a_panic() {
        let r = RedisBot::new(RedisOptions::new("redis://127.0.0.1:6379/"));
        assert!(matches!(r, Err(StoreError::Unavailable(_))));
        let bad = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(RedisBot::connect(RedisOptions::new("not a url")));
        assert!(bad.is_err());
    }

    #[test]
    fn options_debug_hides_the_url() {
        let o = RedisOptions::new("redis://user:hunter2@db:6379/");
        let dbg = format!("{o:?}");
        assert!(
            dbg.contains("redacted") && !dbg.contains("hunter2"),
            "{dbg}"
        );
    }
}
