//! The in-memory store: sharded maps of key → TAT, bounded in size.
//!
//! Keys hash (SipHash with a per-process random key, so clients cannot aim at
//! one shard or one bucket chain) to one of N mutex-protected maps. A key whose
//! TAT is in the past is the same as an absent key, so idle keys are dropped
//! whenever a shard reaches its share of the key cap, and by [`LocalStore::purge_idle`].
//! If a shard is still full of live keys, the eighth of its keys with the
//! smallest backlog (the ones closest to empty, so the least state is lost)
//! are evicted. Eviction resets those clients' buckets: it can only make the
//! limiter more lenient, never refuse a client that should pass.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::Clock;
use crate::gcra::{self, Part};
use crate::store::{CheckItem, Checked, RateStore, StoreCall};

/// Gauge: keys held by local rate-limit stores.
pub const METRIC_KEYS: &str = "rampart_ratelimit_local_keys";
/// Gauge: approximate bytes held by local rate-limit stores.
pub const METRIC_BYTES: &str = "rampart_ratelimit_local_bytes";

/// Sizing of a [`LocalStore`].
#[derive(Debug, Clone, Copy)]
pub struct LocalConfig {
    /// Number of independently locked maps (rounded up to a power of two).
    /// Default 64: enough that 2-64 cores rarely contend.
    pub shards: usize,
    /// Hard cap on tracked keys across all shards. Default 1,000,000 (about
    /// 60-80 MB with typical 20-40 byte keys; see the benchmark).
    pub max_keys: usize,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            shards: 64,
            max_keys: 1_000_000,
        }
    }
}

/// Size accounting for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSize {
    pub keys: usize,
    /// Approximate heap bytes: table slots plus key bytes.
    pub bytes: usize,
}

#[derive(Default)]
struct Shard {
    tats: HashMap<Box<[u8]>, u64>,
    key_bytes: usize,
}

/// A sharded in-memory store. Cheap checks (one lock, no allocation for a
/// known key); see the module docs for eviction.
pub struct LocalStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    clock: Arc<dyn Clock>,
    shard_cap: usize,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore")
            .field("shards", &self.shards.len())
            .field("shard_cap", &self.shard_cap)
            .finish_non_exhaustive()
    }
}

/// Approximate per-slot overhead of the hash table: the entry plus one
/// control byte.
const SLOT_BYTES: usize = std::mem::size_of::<(Box<[u8]>, u64)>() + 1;

/// Heap bytes of one boxed key: the allocator rounds to 16 bytes and keeps
/// a header of about 16 (glibc malloc).
fn key_cost(len: usize) -> usize {
    len.div_ceil(16) * 16 + 16
}

impl LocalStore {
    pub fn new(config: LocalConfig, clock: Arc<dyn Clock>) -> Self {
        let shards = config.shards.clamp(1, 4096).next_power_of_two();
        let shard_cap = (config.max_keys / shards).max(1);
        LocalStore {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            clock,
            shard_cap,
        }
    }

    /// Decides a request now. Items on one shard take one lock; items on
    /// several take their locks in shard order (no deadlock).
    pub fn check_now(&self, items: &[CheckItem]) -> Checked {
        let now = self.clock.now_nanos();
        if let [item] = items {
            let mut guard = self.lock(self.shard_of(&item.key));
            return decide(&mut [&mut *guard], &[0], items, now, self.shard_cap);
        }
        let idx: Vec<usize> = items.iter().map(|i| self.shard_of(&i.key)).collect();
        let mut order = idx.clone();
        order.sort_unstable();
        order.dedup();
        let mut guards: Vec<MutexGuard<'_, Shard>> = order.iter().map(|&s| self.lock(s)).collect();
        let slots: Vec<usize> = idx
            .iter()
            .map(|s| order.binary_search(s).unwrap_or(0))
            .collect();
        let mut refs: Vec<&mut Shard> = guards.iter_mut().map(|g| &mut **g).collect();
        decide(&mut refs, &slots, items, now, self.shard_cap)
    }

    /// Drops every key whose TAT has passed; returns how many.
    pub fn purge_idle(&self) -> usize {
        let now = self.clock.now_nanos();
        (0..self.shards.len())
            .map(|i| purge(&mut self.lock(i), now))
            .sum()
    }

    /// Key count and approximate bytes.
    pub fn size(&self) -> StoreSize {
        let mut size = StoreSize { keys: 0, bytes: 0 };
        for i in 0..self.shards.len() {
            let s = self.lock(i);
            size.keys += s.tats.len();
            size.bytes += s.tats.capacity() * SLOT_BYTES + s.key_bytes;
        }
        size
    }

    /// Publishes [`METRIC_KEYS`] and [`METRIC_BYTES`] (call from a timer,
    /// not per request). With several local stores, the last call wins.
    pub fn publish_metrics(&self) {
        let size = self.size();
        metrics::gauge!(METRIC_KEYS).set(size.keys as f64);
        metrics::gauge!(METRIC_BYTES).set(size.bytes as f64);
    }

    fn shard_of(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) as usize) & (self.shards.len() - 1)
    }

    /// A poisoned shard only means another thread panicked mid-update of a
    /// plain map of integers; its data is still usable.
    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        self.shards[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl RateStore for LocalStore {
    fn check(&self, items: Vec<CheckItem>) -> StoreCall<'_> {
        StoreCall::Ready(Ok(self.check_now(&items)))
    }
}

/// The decision proper: read backlogs, decide all, write TATs if admitted.
fn decide(
    shards: &mut [&mut Shard],
    slots: &[usize],
    items: &[CheckItem],
    now: u64,
    cap: usize,
) -> Checked {
    let parts: Vec<Part> = items
        .iter()
        .zip(slots)
        .map(|(item, &s)| Part {
            limit: item.limit,
            backlog: shards[s]
                .tats
                .get(&*item.key)
                .map_or(0, |&tat| gcra::backlog(tat, now)),
            cost: item.cost,
        })
        .collect();
    let mut outcomes = Vec::with_capacity(items.len());
    let admitted = gcra::decide_all(&parts, &mut outcomes);
    if admitted {
        for ((item, &s), part) in items.iter().zip(slots).zip(&parts) {
            let after = part.backlog + part.limit.interval_nanos().saturating_mul(part.cost);
            store_tat(
                &mut *shards[s],
                &item.key,
                now.saturating_add(after),
                now,
                cap,
            );
        }
    }
    Checked { admitted, outcomes }
}

fn store_tat(shard: &mut Shard, key: &[u8], tat: u64, now: u64, cap: usize) {
    if let Some(slot) = shard.tats.get_mut(key) {
        *slot = tat;
        return;
    }
    if shard.tats.len() >= cap {
        purge(shard, now);
        if shard.tats.len() >= cap {
            evict_least_loaded(shard, cap);
        }
    }
    shard.key_bytes += key_cost(key.len());
    shard.tats.insert(Box::from(key), tat);
}

fn purge(shard: &mut Shard, now: u64) -> usize {
    let before = shard.tats.len();
    let mut freed = 0;
    shard.tats.retain(|k, &mut tat| {
        let keep = tat > now;
        if !keep {
            freed += key_cost(k.len());
        }
        keep
    });
    shard.key_bytes -= freed;
    before - shard.tats.len()
}

/// Evicts about an eighth of a full shard: the keys with the smallest TAT.
fn evict_least_loaded(shard: &mut Shard, cap: usize) {
    let mut tats: Vec<u64> = shard.tats.values().copied().collect();
    let n = (cap / 8).clamp(1, tats.len());
    let (_, &mut threshold, _) = tats.select_nth_unstable(n - 1);
    let mut left = n;
    let mut freed = 0;
    shard.tats.retain(|k, &mut tat| {
        if left > 0 && tat <= threshold {
            left -= 1;
            freed += key_cost(k.len());
            false
        } else {
            true
        }
    });
    shard.key_bytes -= freed;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::gcra::Limit;
    use std::time::Duration;

    fn store(max_keys: usize, shards: usize) -> (LocalStore, ManualClock) {
        let clock = ManualClock::new(1_000_000_000);
        let s = LocalStore::new(LocalConfig { shards, max_keys }, Arc::new(clock.clone()));
        (s, clock)
    }

    fn item(key: &str, limit: Limit) -> CheckItem {
        CheckItem {
            key: key.as_bytes().into(),
            limit,
            cost: 1,
        }
    }

    #[test]
    fn enforces_burst_then_refills_with_time() {
        let (s, clock) = store(100, 4);
        let l = Limit::new(10, Duration::from_secs(1), 5).unwrap();
        let admitted = (0..8)
            .filter(|_| s.check_now(&[item("k", l)]).admitted)
            .count();
        assert_eq!(admitted, 5);
        clock.advance(Duration::from_millis(200));
        let admitted = (0..8)
            .filter(|_| s.check_now(&[item("k", l)]).admitted)
            .count();
        assert_eq!(admitted, 2);
    }

    #[test]
    fn keys_are_independent() {
        let (s, _) = store(100, 4);
        let l = Limit::per(1, Duration::from_secs(1)).unwrap();
        assert!(s.check_now(&[item("a", l)]).admitted);
        assert!(!s.check_now(&[item("a", l)]).admitted);
        assert!(s.check_now(&[item("b", l)]).admitted);
    }

    #[test]
    fn refused_multi_limit_request_charges_no_limit() {
        let (s, _) = store(100, 16);
        let loose = Limit::per(100, Duration::from_secs(1)).unwrap();
        let tight = Limit::per(1, Duration::from_secs(1)).unwrap();
        assert!(s.check_now(&[item("t", tight)]).admitted);
        let r = s.check_now(&[item("l", loose), item("t", tight)]);
        assert!(!r.admitted);
        assert_eq!(r.outcomes.len(), 2);
        // The loose key was never written.
        assert_eq!(s.size().keys, 1);
        let r = s.check_now(&[item("l", loose)]);
        assert_eq!(r.outcomes[0].remaining, 99);
    }

    #[test]
    fn idle_keys_are_purged() {
        let (s, clock) = store(100, 4);
        let l = Limit::per(10, Duration::from_secs(1)).unwrap();
        for k in ["a", "b", "c"] {
            s.check_now(&[item(k, l)]);
        }
        assert_eq!(s.size().keys, 3);
        assert_eq!(s.purge_idle(), 0);
        clock.advance(Duration::from_millis(101));
        assert_eq!(s.purge_idle(), 3);
        assert_eq!(
            s.size(),
            StoreSize {
                keys: 0,
                bytes: s.size().bytes
            }
        );
    }

    #[test]
    fn full_shard_drops_idle_keys_first() {
        let (s, clock) = store(4, 1);
        let l = Limit::per(10, Duration::from_secs(1)).unwrap();
        for k in ["a", "b", "c", "d"] {
            s.check_now(&[item(k, l)]);
        }
        clock.advance(Duration::from_secs(1));
        s.check_now(&[item("e", l)]);
        assert_eq!(s.size().keys, 1);
    }

    #[test]
    fn hard_cap_holds_under_a_flood_of_live_keys() {
        let (s, _) = store(64, 1);
        let l = Limit::per(10, Duration::from_secs(60)).unwrap();
        for i in 0..1000 {
            s.check_now(&[item(&format!("k{i}"), l)]);
            assert!(s.size().keys <= 64);
        }
        assert!(s.size().keys >= 56, "evicts an eighth, not everything");
    }

    #[test]
    fn eviction_keeps_the_most_loaded_keys() {
        let (s, _) = store(8, 1);
        let l = Limit::per(10, Duration::from_secs(1)).unwrap();
        for _ in 0..5 {
            s.check_now(&[item("heavy", l)]);
        }
        for i in 0..20 {
            s.check_now(&[item(&format!("light{i}"), l)]);
        }
        // "heavy" kept its state: 5 of 10 used.
        assert_eq!(s.check_now(&[item("heavy", l)]).outcomes[0].remaining, 4);
    }

    #[test]
    fn size_counts_key_bytes() {
        let (s, _) = store(100, 2);
        let l = Limit::per(10, Duration::from_secs(1)).unwrap();
        s.check_now(&[item("0123456789", l)]);
        let size = s.size();
        assert_eq!(size.keys, 1);
        assert!(size.bytes >= 10 + SLOT_BYTES);
    }
}
