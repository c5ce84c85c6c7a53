//! Local leases: the Redis store's fast path.
//!
//! When Redis admits a request whose limits all have plenty of room, the same
//! script also charges a *lease* of `L` more copies of that request (same keys,
//! limits and cost) and the node admits the next `L` such requests without a
//! round trip. Units are charged in Redis *before* they are handed out, so the
//! fleet never admits more units than Redis counted. The one effect of a lease
//! is timing: a unit charged at `t` may be used up to the lease TTL later. In
//! any window of length `d`, the whole fleet therefore admits at most what
//! exact GCRA allows over `d + ttl`, i.e. at most `rate × ttl` extra units,
//! whatever the number of nodes. The lease size is a fraction of the room
//! left, so it shrinks to zero near the limit: a client at or near its limit
//! is decided by Redis on every request.
//!
//! Refusals are cached too: Redis' `retry_after` is exact (a GCRA bucket
//! refills on a fixed schedule, and other nodes can only use more), so a
//! refused request is refused locally until then, sparing Redis the round
//! trips of a client that hammers at its limit.
//!
//! Unused lease units expire with the lease; they were charged but never
//! used, so the cost of leasing is at most `N × max_units` units of
//! under-admission per lease TTL in a fleet of N nodes.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use crate::gcra;
use crate::store::{CheckItem, Checked};

/// Tuning of the lease fast path.
#[derive(Debug, Clone, Copy)]
pub struct LeaseConfig {
    /// Off: every request goes to Redis. Default on.
    pub enabled: bool,
    /// Share of the room left (in units of this request) that one lease may
    /// take, in thousandths. Default 100 (10 %): each lease takes at most a
    /// tenth of what is left, so leases vanish within 10 units of the limit.
    pub fraction_permille: u32,
    /// Largest lease, in requests. Default 1000: a busy client far under its limit (thousands of requests a second on one key) costs about one round trip per lease.
    pub max_units: u64,
    /// How long a lease (or a cached refusal) may be used. Bounds the extra
    /// admission to `rate × ttl`. Default 250 ms.
    pub ttl_nanos: u64,
    /// Most signatures remembered. Default 100,000.
    pub max_entries: usize,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            enabled: true,
            fraction_permille: 100,
            max_units: 1000,
            ttl_nanos: 250_000_000,
            max_entries: 100_000,
        }
    }
}

/// What a node remembers about one request signature.
#[derive(Debug)]
enum Entry {
    /// `units` more copies may be admitted locally; `tats` mirror each
    /// limit's TAT (local clock) as if only this node used the key, to fill
    /// the headers.
    Lease {
        expires: u64,
        units: u64,
        tats: Vec<u64>,
    },
    /// Refused until `until`; `at` and `checked` give the answer to repeat.
    Refused {
        until: u64,
        at: u64,
        checked: Checked,
    },
}

const SHARDS: usize = 16;

/// Signature → entry, one map per shard.
type SigMap = HashMap<Box<[u8]>, Entry>;

/// The leases of one Redis store instance.
#[derive(Debug)]
pub struct LeaseTable {
    config: LeaseConfig,
    shards: Box<[Mutex<SigMap>]>,
    hasher: RandomState,
}

/// A request signature: every key, limit and cost, length-prefixed so that
/// different requests never share one.
pub fn signature(items: &[CheckItem]) -> Vec<u8> {
    let len = items.iter().map(|i| i.key.len() + 28).sum();
    let mut sig = Vec::with_capacity(len);
    for i in items {
        sig.extend_from_slice(&(i.key.len() as u32).to_le_bytes());
        sig.extend_from_slice(&i.key);
        sig.extend_from_slice(&i.limit.interval_nanos().to_le_bytes());
        sig.extend_from_slice(&i.limit.burst().to_le_bytes());
        sig.extend_from_slice(&i.cost.to_le_bytes());
    }
    sig
}

impl LeaseTable {
    pub fn new(config: LeaseConfig) -> Self {
        LeaseTable {
            config,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Answers locally if a lease or a cached refusal covers the request.
    pub fn try_local(&self, sig: &[u8], items: &[CheckItem], now: u64) -> Option<Checked> {
        if !self.config.enabled {
            return None;
        }
        let mut shard = self.lock(sig);
        let entry = shard.get_mut(sig)?;
        match entry {
            Entry::Lease { expires, .. } | Entry::Refused { until: expires, .. }
                if *expires <= now =>
            {
                shard.remove(sig);
                None
            }
            Entry::Lease { units, tats, .. } => {
                if *units == 0 {
                    return None;
                }
                *units -= 1;
                Some(admit_mirrored(items, tats, now))
            }
            Entry::Refused { at, checked, .. } => Some(aged(checked, now.saturating_sub(*at))),
        }
    }

    /// Records a lease of `units` granted with Redis' answer `checked`.
    pub fn grant(
        &self,
        sig: Vec<u8>,
        items: &[CheckItem],
        checked: &Checked,
        units: u64,
        now: u64,
    ) {
        if !self.config.enabled || units == 0 {
            return;
        }
        let tats = items
            .iter()
            .zip(&checked.outcomes)
            .map(|(_, o)| now.saturating_add(o.reset.as_nanos() as u64))
            .collect();
        let entry = Entry::Lease {
            expires: now.saturating_add(self.config.ttl_nanos),
            units,
            tats,
        };
        self.insert(sig, entry, now);
    }

    /// Caches a refusal until the shortest `retry_after` (capped by the TTL,
    /// so a changed configuration is seen soon).
    pub fn refuse(&self, sig: Vec<u8>, checked: &Checked, now: u64) {
        if !self.config.enabled {
            return;
        }
        let wait = checked
            .outcomes
            .iter()
            .filter(|o| !o.allowed)
            .filter_map(|o| o.retry_after)
            .max()
            .map_or(0, |d| d.as_nanos() as u64)
            .min(self.config.ttl_nanos);
        if wait == 0 {
            return;
        }
        let entry = Entry::Refused {
            until: now.saturating_add(wait),
            at: now,
            checked: checked.clone(),
        };
        self.insert(sig, entry, now);
    }

    /// Forgets everything (used when the store falls back, so stale leases
    /// do not outlive an outage).
    pub fn clear(&self) {
        for s in self.shards.iter() {
            s.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }

    fn insert(&self, sig: Vec<u8>, entry: Entry, now: u64) {
        let cap = (self.config.max_entries / SHARDS).max(1);
        let mut shard = self.lock(&sig);
        if shard.len() >= cap && !shard.contains_key(sig.as_slice()) {
            shard.retain(|_, e| match e {
                Entry::Lease { expires, .. } => *expires > now,
                Entry::Refused { until, .. } => *until > now,
            });
            if shard.len() >= cap {
                // Leases are an optimisation: dropping them costs at most
                // their unused units (under-admission), never safety.
                shard.clear();
            }
        }
        shard.insert(sig.into_boxed_slice(), entry);
    }

    fn lock(&self, sig: &[u8]) -> std::sync::MutexGuard<'_, SigMap> {
        let i = (self.hasher.hash_one(sig) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Admits one leased copy and reports outcomes from the mirrored TATs.
fn admit_mirrored(items: &[CheckItem], tats: &mut [u64], now: u64) -> Checked {
    let outcomes = items
        .iter()
        .zip(tats.iter_mut())
        .map(|(item, tat)| {
            let backlog = gcra::backlog(*tat, now);
            let o = gcra::outcome(&item.limit, backlog, item.cost, true);
            *tat = now.saturating_add(o.reset.as_nanos() as u64);
            // A leased unit was already charged in Redis: never report a
            // refusal for it, even if the local mirror ran ahead.
            gcra::Outcome { allowed: true, ..o }
        })
        .collect();
    Checked {
        admitted: true,
        outcomes,
    }
}

/// A cached refusal, with its times shortened by the time since.
fn aged(checked: &Checked, elapsed: u64) -> Checked {
    let e = std::time::Duration::from_nanos(elapsed);
    Checked {
        admitted: false,
        outcomes: checked
            .outcomes
            .iter()
            .map(|o| gcra::Outcome {
                reset: o.reset.saturating_sub(e),
                retry_after: o.retry_after.map(|r| r.saturating_sub(e)),
                ..*o
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcra::{outcome, Limit};
    use std::time::Duration;

    fn items() -> Vec<CheckItem> {
        let limit = Limit::per(100, Duration::from_secs(1)).unwrap();
        vec![CheckItem {
            key: b"k"[..].into(),
            limit,
            cost: 1,
        }]
    }

    fn admitted(items: &[CheckItem]) -> Checked {
        Checked {
            admitted: true,
            outcomes: vec![outcome(&items[0].limit, 0, 1, true)],
        }
    }

    #[test]
    fn lease_units_are_spent_then_exhausted() {
        let t = LeaseTable::new(LeaseConfig::default());
        let it = items();
        let sig = signature(&it);
        assert!(t.try_local(&sig, &it, 0).is_none());
        t.grant(sig.clone(), &it, &admitted(&it), 3, 0);
        let remaining: Vec<u64> = (0..3)
            .map(|_| t.try_local(&sig, &it, 0).unwrap().outcomes[0].remaining)
            .collect();
        // Redis' answer left 99; the three leased copies count down from it.
        assert_eq!(remaining, [98, 97, 96]);
        assert!(t.try_local(&sig, &it, 0).is_none(), "lease spent");
    }

    #[test]
    fn lease_expires_after_its_ttl() {
        let t = LeaseTable::new(LeaseConfig::default());
        let it = items();
        let sig = signature(&it);
        t.grant(sig.clone(), &it, &admitted(&it), 10, 0);
        assert!(t.try_local(&sig, &it, 249_999_999).is_some());
        assert!(t.try_local(&sig, &it, 250_000_000).is_none());
    }

    #[test]
    fn refusal_is_cached_until_retry_after() {
        let t = LeaseTable::new(LeaseConfig::default());
        let it = items();
        let sig = signature(&it);
        let limit = it[0].limit;
        let refused = Checked {
            admitted: false,
            outcomes: vec![outcome(&limit, limit.capacity_nanos(), 1, false)],
        };
        t.refuse(sig.clone(), &refused, 0);
        let cached = t.try_local(&sig, &it, 4_000_000).unwrap();
        assert!(!cached.admitted);
        assert_eq!(
            cached.outcomes[0].retry_after,
            Some(Duration::from_millis(6))
        );
        // retry_after was 10 ms: Redis decides again after that.
        assert!(t.try_local(&sig, &it, 10_000_000).is_none());
    }

    #[test]
    fn disabled_table_never_answers() {
        let t = LeaseTable::new(LeaseConfig {
            enabled: false,
            ..LeaseConfig::default()
        });
        let it = items();
        let sig = signature(&it);
        t.grant(sig.clone(), &it, &admitted(&it), 3, 0);
        assert!(t.try_local(&sig, &it, 0).is_none());
    }

    #[test]
    fn signatures_differ_by_cost_and_key() {
        let a = items();
        let mut b = items();
        b[0].cost = 2;
        let mut c = items();
        c[0].key = b"kk"[..].into();
        assert_ne!(signature(&a), signature(&b));
        assert_ne!(signature(&a), signature(&c));
    }

    #[test]
    fn table_stays_bounded() {
        let t = LeaseTable::new(LeaseConfig {
            max_entries: 32,
            ..LeaseConfig::default()
        });
        let it = items();
        for i in 0..1000u32 {
            t.grant(i.to_le_bytes().to_vec(), &it, &admitted(&it), 1, 0);
        }
        let total: usize = t.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= 32, "{total} entries");
    }
}
