//! Config shapes for traffic control: rate limits and quotas per route, and
//! the `[cluster]` section that moves shared state to Redis.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::model::FilterMode;
use crate::units::{parse_duration, Dur};

/// `[cluster]`: with `redis` set, rate counters, bans and threat scores are
/// shared by every instance on that Redis; without it all state is local.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// `redis://host:port/db` (or `rediss://` for TLS). Credentials may come
    /// from the environment: `redis://:${REDIS_PASSWORD}@host/`.
    pub redis: Option<String>,
    /// Longest wait for one Redis answer before the failure policy applies.
    #[serde(default = "default_redis_timeout")]
    pub timeout: Dur,
    /// Prefix of every Redis key rampart writes (several fleets may share one Redis).
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// This instance's name in shared records (bans say which node made them).
    #[serde(default)]
    pub node_name: Option<String>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            redis: None,
            timeout: default_redis_timeout(),
            key_prefix: default_prefix(),
            node_name: None,
        }
    }
}

fn default_redis_timeout() -> Dur {
    Dur::millis(50)
}
fn default_prefix() -> String {
    "rampart:".into()
}

/// `[store]`: where consumers, API keys, admin users and the audit log live.
/// Alone, an embedded SQLite database in `data_dir`; with `[cluster] redis`,
/// Redis (every instance shares it, revocations reach all within a second).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    #[serde(default = "default_data_dir")]
    pub data_dir: std::path::PathBuf,
    /// A file holding the server secret (at least 32 bytes) that keys API
    /// keys' hashes. Without it, a secret is generated on first start into
    /// `<data_dir>/server.secret` (mode 0600). Every instance of a fleet
    /// needs the same secret.
    pub secret_file: Option<std::path::PathBuf>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            data_dir: default_data_dir(),
            secret_file: None,
        }
    }
}

fn default_data_dir() -> std::path::PathBuf {
    "rampart-data".into()
}

/// `[reputation]`: address feeds, the MaxMind databases, and
/// behaviour-based bans.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reputation {
    /// Lists of addresses from files (plain, FireHOL netset, Spamhaus DROP).
    #[serde(default)]
    pub feeds: Vec<FeedConfig>,
    /// How often feed files are checked for changes.
    #[serde(default = "default_feed_poll")]
    pub feed_poll: Dur,
    /// MaxMind GeoLite2/GeoIP2 Country (or City) database.
    pub country_db: Option<std::path::PathBuf>,
    /// MaxMind GeoLite2/GeoIP2 ASN database.
    pub asn_db: Option<std::path::PathBuf>,
    #[serde(default)]
    pub bans: Bans,
}

impl Default for Reputation {
    fn default() -> Self {
        Reputation {
            feeds: Vec::new(),
            feed_poll: default_feed_poll(),
            country_db: None,
            asn_db: None,
            bans: Bans::default(),
        }
    }
}

fn default_feed_poll() -> Dur {
    Dur::secs(60)
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    pub name: String,
    pub path: std::path::PathBuf,
    /// `auto`, `plain`, `netset` or `spamhaus`.
    #[serde(default = "default_feed_format")]
    pub format: String,
    /// `deny` or `allow` (an allow match beats every deny list).
    #[serde(default = "default_feed_action")]
    pub action: String,
}

fn default_feed_format() -> String {
    "auto".into()
}
fn default_feed_action() -> String {
    "deny".into()
}

/// Behaviour-based bans: security events add points to a client's decaying
/// threat score; at the threshold the client is banned.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bans {
    /// Ban automatically on the threat score (manual bans work regardless).
    #[serde(default)]
    pub auto: bool,
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    #[serde(default = "default_half_life")]
    pub half_life: Dur,
    /// First ban's length; each repeat offence doubles it up to `max_ttl`.
    #[serde(default = "default_ban_ttl")]
    pub ttl: Dur,
    #[serde(default = "default_max_ban")]
    pub max_ttl: Dur,
    /// Points per event kind: `waf_block`, `rate_limited`, `auth_failed`,
    /// `bot_challenge_failed`, `schema_violation`, `feed_denied`.
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
    /// Refuse banned clients' connections at accept, before TLS and HTTP.
    #[serde(default = "yes")]
    pub check_at_accept: bool,
}

impl Default for Bans {
    fn default() -> Self {
        Bans {
            auto: false,
            threshold: default_threshold(),
            half_life: default_half_life(),
            ttl: default_ban_ttl(),
            max_ttl: default_max_ban(),
            weights: BTreeMap::new(),
            check_at_accept: true,
        }
    }
}

fn default_threshold() -> f64 {
    50.0
}
fn default_half_life() -> Dur {
    Dur::secs(600)
}
fn default_ban_ttl() -> Dur {
    Dur::secs(600)
}
fn default_max_ban() -> Dur {
    Dur::secs(86_400)
}
fn yes() -> bool {
    true
}

/// A route's reputation checks: bans, the feeds, and country/ASN rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReputationPolicy {
    #[serde(default)]
    pub mode: FilterMode,
    /// Apply the `[reputation] feeds` lists on this route.
    #[serde(default = "yes")]
    pub feeds: bool,
    #[serde(default)]
    pub deny_countries: Vec<String>,
    #[serde(default)]
    pub allow_countries: Vec<String>,
    #[serde(default)]
    pub deny_asns: Vec<u32>,
    #[serde(default)]
    pub allow_asns: Vec<u32>,
    #[serde(default)]
    pub deny_unknown_country: bool,
    /// Filters that clients on an allow feed skip (e.g. `["waf", "rate_limit"]`).
    #[serde(default)]
    pub allow_skips: Vec<String>,
}

/// A route's rate limits: all listed limits are checked together; a request
/// is admitted only if every one admits it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitPolicy {
    #[serde(default)]
    pub mode: FilterMode,
    /// What to do when the shared store (Redis) fails or is slow.
    #[serde(default)]
    pub on_store_error: OnStoreError,
    pub limits: Vec<LimitConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreError {
    /// Let requests through unlimited.
    Allow,
    /// Refuse with 503 `rate_limit_store_unavailable`.
    Deny,
    /// Decide with this node's own counters until the store is back.
    #[default]
    Local,
}

/// One limit: `rate = "10/s"` with `burst = 20`, keyed by `key`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// Shown in the `RateLimit-Policy` header; unique within the route.
    pub name: String,
    pub rate: Rate,
    /// Requests allowed at once above the steady rate (default: none, i.e.
    /// the bucket holds `count` for the period).
    pub burst: Option<u64>,
    /// What the bucket is per: any of `ip`, `ip_prefix`, `consumer`,
    /// `api_key`, `route`, `header:NAME`, `cookie:NAME`, `claim:NAME`.
    /// Several parts combine (e.g. `["consumer", "route"]`).
    #[serde(default = "default_key")]
    pub key: Vec<String>,
    /// Prefix lengths for `ip_prefix`.
    #[serde(default = "default_v4_prefix")]
    pub ipv4_prefix: u8,
    #[serde(default = "default_v6_prefix")]
    pub ipv6_prefix: u8,
    /// When a key part is absent (no such header, anonymous client):
    /// `ip` keys the request by client IP instead, `skip` leaves it unlimited.
    #[serde(default)]
    pub on_missing: OnMissingKey,
    /// What one request costs (default 1).
    #[serde(default = "one")]
    pub cost: u64,
    /// Costs per method, e.g. `{ POST = 5 }`.
    #[serde(default)]
    pub method_costs: BTreeMap<String, u64>,
    /// A quota for consumers of this tier only (e.g. per day or month).
    pub tier: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnMissingKey {
    #[default]
    Ip,
    Skip,
}

fn default_key() -> Vec<String> {
    vec!["ip".into()]
}
fn default_v4_prefix() -> u8 {
    24
}
fn default_v6_prefix() -> u8 {
    64
}
fn one() -> u64 {
    1
}

/// `COUNT/PERIOD`: `"10/s"`, `"1000/h"`, `"50/10s"`, `"100000/30d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u64,
    pub period: Duration,
}

pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let expected = || format!("expected a rate such as \"10/s\" or \"1000/1h\", found {s:?}");
    let (count, period) = s.split_once('/').ok_or_else(expected)?;
    let count: u64 = count.trim().parse().map_err(|_| expected())?;
    let period = period.trim();
    let period = if period.starts_with(|c: char| c.is_ascii_digit()) {
        parse_duration(period)?
    } else {
        parse_duration(&format!("1{period}"))?
    };
    if count == 0 || period.is_zero() {
        return Err(format!(
            "a rate needs a count and a period above zero, found {s:?}"
        ));
    }
    Ok(Rate { count, period })
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a rate string such as \"10/s\" or \"1000/1h\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Rate, E> {
                parse_rate(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A key part as written in the config, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPartConfig {
    Ip,
    IpPrefix,
    Consumer,
    ApiKey,
    Route,
    Header(String),
    Cookie(String),
    Claim(String),
}

pub fn parse_key_part(s: &str) -> Result<KeyPartConfig, String> {
    let named = |prefix: &str| {
        s.strip_prefix(prefix)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    };
    Ok(match s {
        "ip" => KeyPartConfig::Ip,
        "ip_prefix" => KeyPartConfig::IpPrefix,
        "consumer" => KeyPartConfig::Consumer,
        "api_key" => KeyPartConfig::ApiKey,
        "route" => KeyPartConfig::Route,
        _ => {
            if let Some(n) = named("header:") {
                KeyPartConfig::Header(n)
            } else if let Some(n) = named("cookie:") {
                KeyPartConfig::Cookie(n)
            } else if let Some(n) = named("claim:") {
                KeyPartConfig::Claim(n)
            } else {
                return Err(format!(
                    "expected ip, ip_prefix, consumer, api_key, route, header:NAME, cookie:NAME or claim:NAME, found {s:?}"
                ));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_and_without_a_period_count() {
        assert_eq!(
            parse_rate("10/s").unwrap(),
            Rate {
                count: 10,
                period: Duration::from_secs(1)
            }
        );
        assert_eq!(
            parse_rate("1000/1h").unwrap().period,
            Duration::from_secs(3600)
        );
        assert_eq!(
            parse_rate("50/10s").unwrap().period,
            Duration::from_secs(10)
        );
        assert_eq!(
            parse_rate("5/30d").unwrap().period,
            Duration::from_secs(30 * 86400)
        );
        for bad in ["10", "x/s", "0/s", "10/0s", "10/fortnight"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_parts_parse() {
        assert_eq!(parse_key_part("ip").unwrap(), KeyPartConfig::Ip);
        assert_eq!(
            parse_key_part("header:X-Tenant").unwrap(),
            KeyPartConfig::Header("X-Tenant".into())
        );
        assert_eq!(
            parse_key_part("claim:sub").unwrap(),
            KeyPartConfig::Claim("sub".into())
        );
        assert!(parse_key_part("header:").is_err());
        assert!(parse_key_part("user").is_err());
    }
}
