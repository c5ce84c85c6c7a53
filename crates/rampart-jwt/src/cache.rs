//! A refreshing JWKS cache.
//!
//! Requests read the current [`KeySet`] lock-free. A background task refreshes
//! it every `refresh_interval` (sooner, every `min_refresh_interval`, while
//! fetches fail). A token with an unknown `kid` may trigger an on-demand
//! refresh, but all fetches (background or on demand) share one rate limit, so
//! a flood of made-up `kid`s costs the identity provider at most one request
//! per `min_refresh_interval`. A failed fetch never replaces the last good set.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::config::JwksOptions;
use crate::fetch::{FetchError, Fetcher};
use crate::jwks::{parse_jwks, KeySet};

/// Shared state of one issuer's JWKS.
#[derive(Debug)]
pub(crate) struct JwksCache {
    fetcher: Fetcher,
    options: JwksOptions,
    current: ArcSwapOption<KeySet>,
    /// When the last fetch started; the rate limit for on-demand refreshes.
    last_attempt: Mutex<Option<Instant>>,
    /// Serialises fetches: concurrent callers wait for the one in flight.
    fetch_lock: tokio::sync::Mutex<()>,
}

impl JwksCache {
    pub(crate) fn new(fetcher: Fetcher, options: JwksOptions) -> Arc<Self> {
        Arc::new(JwksCache {
            fetcher,
            options,
            current: ArcSwapOption::empty(),
            last_attempt: Mutex::new(None),
            fetch_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The last good key set, if any was ever loaded.
    pub(crate) fn current(&self) -> Option<Arc<KeySet>> {
        self.current.load_full()
    }

    /// Refreshes unless a fetch started less than `min_refresh_interval` ago;
    /// waits (bounded by the fetch timeout) for a fetch already in flight.
    /// Returns the key set to use afterwards (possibly the unchanged one).
    pub(crate) async fn refresh_if_allowed(&self) -> Option<Arc<KeySet>> {
        let _guard = self.fetch_lock.lock().await;
        if self.recently_attempted() {
            return self.current();
        }
        // The outcome is logged inside; callers only need the resulting set.
        let _ = self.fetch_and_store().await;
        self.current()
    }

    fn recently_attempted(&self) -> bool {
        let last = *self.last_attempt.lock().unwrap_or_else(|p| p.into_inner());
        last.is_some_and(|t| t.elapsed() < self.options.min_refresh_interval)
    }

    /// One fetch under the timeout; on success the new set replaces the old.
    /// Callers must hold `fetch_lock`.
    async fn fetch_and_store(&self) -> Result<(), FetchError> {
        *self.last_attempt.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let fetched = tokio::time::timeout(
            self.options.fetch_timeout,
            self.fetcher.fetch(self.options.max_body_bytes),
        )
        .await
        .unwrap_or(Err(FetchError::Timeout))
        .and_then(|body| parse_jwks(&body).map_err(FetchError::from));
        match fetched {
            Ok(set) => {
                tracing::debug!(source = ?self.fetcher, keys = set.keys().len(), "JWKS loaded");
                self.current.store(Some(Arc::new(set)));
                Ok(())
            }
            Err(err) => {
                tracing::warn!(source = ?self.fetcher, %err, cached = self.current.load().is_some(),
                    "JWKS refresh failed; keeping the last good key set");
                Err(err)
            }
        }
    }

    /// Starts the background refresher. It holds only a weak reference and
    /// ends when the cache is dropped.
    pub(crate) fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(refresh_loop(weak))
    }
}

async fn refresh_loop(weak: Weak<JwksCache>) {
    let mut delay = Duration::ZERO;
    let mut first = true;
    loop {
        tokio::time::sleep(delay).await;
        let Some(cache) = weak.upgrade() else { return };
        let _guard = cache.fetch_lock.lock().await;
        if std::mem::take(&mut first) && cache.recently_attempted() {
            // The first request beat this task to the initial load; do not
            // fetch twice in a row at startup.
            delay = if cache.current.load().is_some() {
                cache.options.refresh_interval
            } else {
                cache.options.min_refresh_interval
            };
            continue;
        }
        delay = match cache.fetch_and_store().await {
            Ok(()) => cache.options.refresh_interval,
            // Retry sooner after a failure, but never faster than the rate limit.
            Err(_) => cache.options.min_refresh_interval,
        };
    }
}
