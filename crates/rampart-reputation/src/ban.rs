//! Ban records and the lock-free, allocation-free ban index every store keeps in memory.
//!
//! `BanIndex` is an immutable trie of active bans behind `arc-swap`: writers (a ban, an unban,
//! a message from another node, a resync) build a new trie and swap it in; `is_banned` at
//! TCP-accept time only loads the pointer and walks the trie.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::trie::IpTrie;

/// Who issued a ban.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BanSource {
    /// The threat tracker, after the score crossed the threshold.
    Automatic,
    /// An operator (admin API / CLI).
    Manual,
}

/// One ban. Cloning is cheap: the strings are shared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanInfo {
    /// Banned address (/32, /128) or network.
    pub target: IpNet,
    /// Why: the event kind that tipped the score, or the operator's text.
    pub reason: Arc<str>,
    /// Automatic or manual.
    pub source: BanSource,
    /// The gateway node that issued it.
    pub node: Arc<str>,
    /// Unix ms when issued.
    pub created_ms: u64,
    /// Unix ms when it ends.
    pub expires_ms: u64,
    /// Offence number for automatic bans (1 = first), 0 for manual ones.
    pub offence: u32,
}

impl BanInfo {
    /// True when the ban is still in force at `now_ms`.
    pub fn is_active(&self, now_ms: u64) -> bool {
        now_ms < self.expires_ms
    }

    /// Remaining time in whole seconds (for `Retry-After`), 0 once expired.
    pub fn remaining_secs(&self, now_ms: u64) -> u64 {
        self.expires_ms.saturating_sub(now_ms).div_ceil(1000)
    }
}

/// The in-memory set of bans with a trie for lookups.
#[derive(Debug, Default)]
pub struct BanIndex {
    trie: ArcSwap<IpTrie<BanInfo>>,
}

impl BanIndex {
    /// An empty index.
    pub fn new() -> BanIndex {
        BanIndex::default()
    }

    /// The most specific active ban covering `ip`. Lock-free; clones only reference counts.
    pub fn lookup(&self, ip: IpAddr, now_ms: u64) -> Option<BanInfo> {
        let trie = self.trie.load();
        // Walk shortest to longest and keep the last active one, so an expired /32 does
        // not hide an active /24 around it.
        trie.matches(ip)
            .filter(|(_, ban)| ban.is_active(now_ms))
            .last()
            .map(|(_, ban)| ban.clone())
    }

    /// Replaces the whole content (after a full sync or a local change).
    pub fn replace<'a>(&self, bans: impl IntoIterator<Item = &'a BanInfo>) {
        let trie: IpTrie<BanInfo> = bans
            .into_iter()
            .map(|ban| (ban.target, ban.clone()))
            .collect();
        self.trie.store(Arc::new(trie));
    }

    /// Every ban in the index that is active at `now_ms`.
    pub fn active(&self, now_ms: u64) -> Vec<BanInfo> {
        let trie = self.trie.load();
        trie.iter()
            .filter(|(_, ban)| ban.is_active(now_ms))
            .map(|(_, ban)| ban.clone())
            .collect()
    }

    /// Number of entries (active or not yet pruned).
    pub fn len(&self) -> usize {
        self.trie.load().len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A map of bans keyed by target, the authoritative copy behind a store's index.
pub type BanMap = HashMap<IpNet, BanInfo>;

/// Drops expired bans; returns how many went.
pub fn prune_expired(bans: &mut BanMap, now_ms: u64) -> usize {
    let before = bans.len();
    bans.retain(|_, ban| ban.is_active(now_ms));
    before - bans.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(target: &str, expires_ms: u64) -> BanInfo {
        BanInfo {
            target: target.parse().unwrap(),
            reason: Arc::from("test"),
            source: BanSource::Manual,
            node: Arc::from("n1"),
            created_ms: 0,
            expires_ms,
            offence: 0,
        }
    }

    #[test]
    fn expired_host_ban_does_not_hide_active_network_ban() {
        let index = BanIndex::new();
        index.replace(&[ban("10.0.0.0/24", 5_000), ban("10.0.0.7/32", 1_000)]);
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(index.lookup(ip, 500).unwrap().target.prefix_len(), 32);
        assert_eq!(index.lookup(ip, 2_000).unwrap().target.prefix_len(), 24);
        assert!(index.lookup(ip, 6_000).is_none());
    }

    #[test]
    fn remaining_seconds_round_up_and_stop_at_zero() {
        let b = ban("1.1.1.1/32", 10_500);
        assert_eq!(b.remaining_secs(9_000), 2);
        assert_eq!(b.remaining_secs(11_000), 0);
    }
}
