//! `ThreatTracker`: turns security events into decaying scores and escalating bans.
//!
//! Each event adds its kind's weight to the client's score (decayed lazily, see
//! [`crate::threat`]). When the score reaches the threshold the client is banned for
//! `base_ban · factor^(offence−1)` (capped), the offence is remembered for `offence_memory`,
//! and the score is reset. Manual bans and unbans go through the same store, so in Redis mode
//! they reach every node.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use crate::ban::{BanInfo, BanSource};
use crate::clock::{duration_ms, SharedClock};
use crate::store::{BanStore, StoreError};
use crate::threat::ThreatConfig;

/// Scores clients and bans them. Cheap to share behind an `Arc`.
pub struct ThreatTracker {
    config: ThreatConfig,
    node: Arc<str>,
    store: Arc<dyn BanStore>,
    clock: SharedClock,
}

impl std::fmt::Debug for ThreatTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreatTracker")
            .field("node", &self.node)
            .field("threshold", &self.config.threshold)
            .finish()
    }
}

impl ThreatTracker {
    /// A tracker over `store`, reading time from `clock`.
    pub fn new(
        config: ThreatConfig,
        store: Arc<dyn BanStore>,
        clock: SharedClock,
    ) -> ThreatTracker {
        ThreatTracker {
            node: Arc::from(config.node.as_str()),
            config,
            store,
            clock,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &ThreatConfig {
        &self.config
    }

    /// The active ban covering `ip`, if any. Synchronous and allocation-free (local mirror):
    /// safe to call at TCP accept time.
    pub fn is_banned(&self, ip: IpAddr) -> Option<BanInfo> {
        self.store.is_banned(ip, self.clock.now_ms())
    }

    /// Records a security event of `kind` from `ip`. Returns the ban when this event caused
    /// one. Store errors are logged and counted, and the event is then dropped (fail open:
    /// an outage of Redis must not ban or unban anybody).
    pub async fn record(&self, ip: IpAddr, kind: &str) -> Option<BanInfo> {
        let points = self.config.weight(kind);
        if points <= 0.0 || !points.is_finite() || self.is_banned(ip).is_some() {
            return None;
        }
        match self.score_and_maybe_ban(ip, kind, points).await {
            Ok(ban) => ban,
            Err(error) => {
                tracing::warn!(%ip, kind, %error, "threat event not recorded");
                metrics::counter!("rampart_reputation_record_errors_total").increment(1);
                None
            }
        }
    }

    async fn score_and_maybe_ban(
        &self,
        ip: IpAddr,
        kind: &str,
        points: f64,
    ) -> Result<Option<BanInfo>, StoreError> {
        let key = self.config.client_key(ip);
        let now = self.clock.now_ms();
        let half_life = self.config.half_life_ms();
        let score = self.store.add_points(key, points, now, half_life).await?;
        if score < self.config.threshold {
            return Ok(None);
        }
        let memory = duration_ms(self.config.offence_memory);
        let offence = self.store.record_offence(key, now, memory).await?;
        let ttl = self.config.ban_for_offence(offence);
        let ban = self.new_ban(key, kind, BanSource::Automatic, ttl, offence);
        self.store.ban(ban.clone()).await?;
        self.store.clear_score(key).await?;
        tracing::warn!(target_net = %key, kind, score, offence, ttl_secs = ttl.as_secs(), "client banned");
        metrics::counter!("rampart_reputation_bans_total", "source" => "automatic").increment(1);
        Ok(Some(ban))
    }

    /// Bans `target` (an address or network) for `ttl` on behalf of an operator.
    pub async fn ban(
        &self,
        target: IpNet,
        ttl: Duration,
        reason: &str,
    ) -> Result<BanInfo, StoreError> {
        let ban = self.new_ban(target.trunc(), reason, BanSource::Manual, ttl, 0);
        self.store.ban(ban.clone()).await?;
        metrics::counter!("rampart_reputation_bans_total", "source" => "manual").increment(1);
        Ok(ban)
    }

    /// Lifts the ban on exactly `target` and forgets its score. True when a ban was removed.
    pub async fn unban(&self, target: IpNet) -> Result<bool, StoreError> {
        let removed = self.store.unban(target.trunc()).await?;
        self.store.clear_score(target.trunc()).await?;
        Ok(removed)
    }

    /// Every active ban (from the local mirror).
    pub fn list(&self) -> Vec<BanInfo> {
        self.store.list(self.clock.now_ms())
    }

    /// The current decayed score of `ip`'s client key.
    pub async fn score(&self, ip: IpAddr) -> Result<f64, StoreError> {
        let key = self.config.client_key(ip);
        self.store
            .score(key, self.clock.now_ms(), self.config.half_life_ms())
            .await
    }

    fn new_ban(
        &self,
        target: IpNet,
        reason: &str,
        source: BanSource,
        ttl: Duration,
        offence: u32,
    ) -> BanInfo {
        let now = self.clock.now_ms();
        BanInfo {
            target,
            reason: Arc::from(reason),
            source,
            node: self.node.clone(),
            created_ms: now,
            expires_ms: now.saturating_add(duration_ms(ttl)),
            offence,
        }
    }
}
