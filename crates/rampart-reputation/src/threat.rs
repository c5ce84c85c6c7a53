//! Threat scoring settings and the pure math behind them: exponential decay and ban escalation.
//!
//! A client's score is stored as `(value, updated_at)`; the current value is computed lazily
//! as `value · 2^(−elapsed / half_life)`, so idle clients cost nothing and no sweeper runs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::{IpNet, Ipv6Net};

use crate::clock::duration_ms;

/// Common event kinds. Any other string works too: weights are looked up by name.
pub mod kinds {
    /// The WAF blocked a request.
    pub const WAF_BLOCK: &str = "waf_block";
    /// A rate limit rejected a request.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// A login or token check failed.
    pub const AUTH_FAILED: &str = "auth_failed";
    /// A bot challenge was failed or its proof forged.
    pub const BOT_CHALLENGE_FAILED: &str = "bot_challenge_failed";
    /// The request schema validation failed.
    pub const SCHEMA_VIOLATION: &str = "schema_violation";
    /// A request matched a deny feed (repeated knocking).
    pub const FEED_DENIED: &str = "feed_denied";
}

/// Settings of the threat tracker. `Default` gives the values documented on each field.
#[derive(Clone, Debug)]
pub struct ThreatConfig {
    /// Points each event kind adds. Default: `waf_block` 10, `auth_failed` 5,
    /// `bot_challenge_failed` 8, `rate_limited` 2, `schema_violation` 3, `feed_denied` 1.
    pub weights: HashMap<String, f64>,
    /// Points for kinds missing from `weights`. Default 0 (unknown kinds are ignored).
    pub default_weight: f64,
    /// Score at or above which the client is banned. Default 50.
    pub threshold: f64,
    /// Time for a score to halve. Default 10 minutes.
    pub half_life: Duration,
    /// Ban length of a first offence. Default 10 minutes.
    pub base_ban: Duration,
    /// Each further offence multiplies the ban length by this. Default 2.
    pub escalation_factor: u32,
    /// Upper bound of an automatic ban. Default 24 hours.
    pub max_ban: Duration,
    /// How long offences are remembered after the last one. Default 7 days.
    pub offence_memory: Duration,
    /// IPv6 clients are scored and banned per network of this length, since one host
    /// usually owns a whole /64. Default 64; 128 scores each address.
    pub ipv6_prefix: u8,
    /// Name of this gateway node, written into bans. Default `"local"`.
    pub node: String,
}

impl Default for ThreatConfig {
    fn default() -> Self {
        let weights = [
            (kinds::WAF_BLOCK, 10.0),
            (kinds::AUTH_FAILED, 5.0),
            (kinds::BOT_CHALLENGE_FAILED, 8.0),
            (kinds::RATE_LIMITED, 2.0),
            (kinds::SCHEMA_VIOLATION, 3.0),
            (kinds::FEED_DENIED, 1.0),
        ];
        ThreatConfig {
            weights: weights.iter().map(|(k, w)| ((*k).to_owned(), *w)).collect(),
            default_weight: 0.0,
            threshold: 50.0,
            half_life: Duration::from_secs(600),
            base_ban: Duration::from_secs(600),
            escalation_factor: 2,
            max_ban: Duration::from_secs(24 * 3600),
            offence_memory: Duration::from_secs(7 * 24 * 3600),
            ipv6_prefix: 64,
            node: "local".to_owned(),
        }
    }
}

impl ThreatConfig {
    /// Points for an event kind.
    pub fn weight(&self, kind: &str) -> f64 {
        self.weights
            .get(kind)
            .copied()
            .unwrap_or(self.default_weight)
    }

    /// The key a client is scored and banned under: the address itself for IPv4, its
    /// `ipv6_prefix` network for IPv6.
    pub fn client_key(&self, ip: IpAddr) -> IpNet {
        match ip {
            IpAddr::V4(_) => IpNet::from(ip),
            IpAddr::V6(v6) => Ipv6Net::new(v6, self.ipv6_prefix.min(128))
                .map_or(IpNet::from(ip), |net| IpNet::V6(net.trunc())),
        }
    }

    /// Ban length of offence number `offence` (1-based), see [`escalated_ban`].
    pub fn ban_for_offence(&self, offence: u32) -> Duration {
        escalated_ban(offence, self.base_ban, self.escalation_factor, self.max_ban)
    }

    /// Half-life in ms, at least 1 so the decay formula never divides by zero.
    pub fn half_life_ms(&self) -> u64 {
        duration_ms(self.half_life).max(1)
    }
}

/// `value` after `elapsed_ms` of exponential decay with the given half-life.
pub fn decayed(value: f64, elapsed_ms: u64, half_life_ms: u64) -> f64 {
    if elapsed_ms == 0 || half_life_ms == 0 {
        return value;
    }
    value * (-(elapsed_ms as f64) / half_life_ms as f64).exp2()
}

/// `base · factor^(offence−1)`, capped at `max` (saturating, never overflowing).
pub fn escalated_ban(offence: u32, base: Duration, factor: u32, max: Duration) -> Duration {
    let steps = offence.saturating_sub(1);
    let multiplier = factor.max(1).checked_pow(steps).unwrap_or(u32::MAX);
    base.checked_mul(multiplier).unwrap_or(max).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_halves_per_half_life() {
        assert_eq!(decayed(40.0, 0, 1000), 40.0);
        assert!((decayed(40.0, 1000, 1000) - 20.0).abs() < 1e-9);
        assert!((decayed(40.0, 3000, 1000) - 5.0).abs() < 1e-9);
    }

    #[test]
    fn escalation_doubles_then_caps() {
        let base = Duration::from_secs(60);
        let max = Duration::from_secs(300);
        let bans: Vec<u64> = (1..=5)
            .map(|n| escalated_ban(n, base, 2, max).as_secs())
            .collect();
        assert_eq!(bans, vec![60, 120, 240, 300, 300]);
        assert_eq!(escalated_ban(u32::MAX, base, 2, max), max);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_slash_64() {
        let config = ThreatConfig::default();
        let key = config.client_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        assert_eq!(key, "2001:db8:1:2::/64".parse::<IpNet>().unwrap());
        let v4 = config.client_key("192.0.2.9".parse().unwrap());
        assert_eq!(v4, "192.0.2.9/32".parse::<IpNet>().unwrap());
    }
}
