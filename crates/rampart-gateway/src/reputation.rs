//! Wiring of IP reputation: the threat tracker and its ban store, the
//! feeds, the per-route filter, and the event sink that turns security
//! events into threat points.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rampart_config::traffic::FeedConfig;
use rampart_config::{Config, ReputationPolicy};
use rampart_core::{EventRecord, EventSink};
use rampart_guard::reputation::ReputationFilter;
use rampart_reputation::{
    kinds, BanStore, CountryCode, FeedFormat, FeedSet, FeedSpec, GeoDb, GeoPolicy, GeoRules,
    ListAction, LocalBanStore, LocalStoreOptions, RedisBanStore, RedisStoreOptions, SharedClock,
    SystemClock, ThreatConfig, ThreatTracker,
};

use crate::build::BuildError;

/// The tracker over the fleet's Redis, or over a local store persisted in
/// the data folder (bans survive a restart either way).
pub async fn tracker(cfg: &Config) -> Result<ThreatTracker, String> {
    let clock: SharedClock = Arc::new(SystemClock);
    let bans = &cfg.reputation.bans;
    let mut config = ThreatConfig {
        threshold: bans.threshold,
        half_life: bans.half_life.0,
        base_ban: bans.ttl.0,
        max_ban: bans.max_ttl.0,
        node: cfg
            .cluster
            .node_name
            .clone()
            .unwrap_or_else(|| "local".into()),
        ..ThreatConfig::default()
    };
    config.weights.extend(bans.weights.clone());
    let store: Arc<dyn BanStore> = match &cfg.cluster.redis {
        Some(url) => {
            let mut options = RedisStoreOptions::new(url.clone());
            options.key_prefix = format!("{}rep:", cfg.cluster.key_prefix);
            let store = RedisBanStore::connect(options, clock.clone())
                .await
                .map_err(|e| format!("cluster.redis: cannot load bans from Redis: {e}"))?;
            Arc::new(store)
        }
        None => {
            let options = LocalStoreOptions {
                data_dir: Some(cfg.store.data_dir.clone()),
                ..LocalStoreOptions::default()
            };
            let store = LocalBanStore::open(options, clock.now_ms())
                .map_err(|e| format!("store.data_dir: cannot load bans: {e}"))?;
            Arc::new(store)
        }
    };
    Ok(ThreatTracker::new(config, store, clock))
}

pub fn load_feeds(specs: &[FeedConfig]) -> Result<FeedSet, String> {
    let specs = specs
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let key = format!("reputation.feeds[{i}]");
            let format = FeedFormat::from_name(&f.format)
                .ok_or_else(|| format!("{key}.format: expected auto, plain, netset or spamhaus"))?;
            let action = match f.action.as_str() {
                "deny" => ListAction::Deny,
                "allow" => ListAction::Allow,
                other => {
                    return Err(format!(
                        "{key}.action: expected deny or allow, found {other:?}"
                    ))
                }
            };
            Ok(FeedSpec {
                name: f.name.clone(),
                path: f.path.clone(),
                format,
                action,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    FeedSet::load(specs).map_err(|e| format!("reputation.feeds: {e}"))
}

/// The `reputation` section of a route → its filter.
pub fn filter(
    p: &ReputationPolicy,
    cfg: &Config,
    services: &crate::services::Services,
) -> Result<ReputationFilter, BuildError> {
    let key = |k: &str| format!(".reputation{k}");
    let feeds = if p.feeds {
        services.feeds(cfg).map_err(|e| (key(""), e))?
    } else {
        None
    };
    let rules = GeoRules {
        deny_countries: countries(&p.deny_countries).map_err(|e| (key(".deny_countries"), e))?,
        allow_countries: countries(&p.allow_countries).map_err(|e| (key(".allow_countries"), e))?,
        deny_asns: p.deny_asns.iter().copied().collect(),
        allow_asns: p.allow_asns.iter().copied().collect(),
        deny_unknown_country: p.deny_unknown_country,
    };
    let geo = geo_policy(rules, cfg).map_err(|e| (key(""), e))?;
    Ok(ReputationFilter {
        mode: rampart_guard::mode(p.mode),
        tracker: services.tracker.clone(),
        feeds,
        geo,
        allow_skips: p.allow_skips.clone().into(),
    })
}

fn countries(codes: &[String]) -> Result<HashSet<CountryCode>, String> {
    codes
        .iter()
        .map(|c| {
            CountryCode::parse(c)
                .ok_or_else(|| format!("expected two-letter ISO country codes, found {c:?}"))
        })
        .collect()
}

/// Country and ASN rules need their database; one named but missing is an
/// error only when rules use it.
fn geo_policy(rules: GeoRules, cfg: &Config) -> Result<Option<GeoPolicy>, String> {
    let (needs_country, needs_asn) = (rules.needs_country_db(), rules.needs_asn_db());
    if !needs_country && !needs_asn {
        return Ok(None);
    }
    let rep = &cfg.reputation;
    if needs_country && rep.country_db.is_none() {
        return Err("country rules need reputation.country_db (a MaxMind .mmdb file)".into());
    }
    if needs_asn && rep.asn_db.is_none() {
        return Err("ASN rules need reputation.asn_db (a MaxMind .mmdb file)".into());
    }
    let country = rep.country_db.as_deref().filter(|_| needs_country);
    let asn = rep.asn_db.as_deref().filter(|_| needs_asn);
    let db = GeoDb::open(country, asn).map_err(|e| e.to_string())?;
    Ok(Some(GeoPolicy::new(db, rules)))
}

/// Turns enforced refusals into threat points (`[reputation.bans] auto`).
pub struct ThreatSink(pub Arc<ThreatTracker>);

impl EventSink for ThreatSink {
    fn on_security_event(&self, record: &Arc<EventRecord>) {
        for e in record.enforced() {
            let Some(kind) = kind_of(e.filter, e.reason) else {
                continue;
            };
            let tracker = self.0.clone();
            let ip = record.client_ip;
            tokio::spawn(async move {
                // Bounded: a slow store must not pile up tasks.
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), tracker.record(ip, kind)).await;
            });
        }
    }
}

/// Which threat kind a refusal counts as (others add no points).
fn kind_of(filter: &str, reason: &str) -> Option<&'static str> {
    Some(match (filter, reason) {
        ("waf", _) => kinds::WAF_BLOCK,
        (_, "rate_limited" | "quota_exceeded") => kinds::RATE_LIMITED,
        ("auth", _) => kinds::AUTH_FAILED,
        ("bot", _) | ("login_guard", _) => kinds::BOT_CHALLENGE_FAILED,
        ("openapi", _) => kinds::SCHEMA_VIOLATION,
        ("reputation", "ip_reputation_denied") => kinds::FEED_DENIED,
        _ => return None,
    })
}
