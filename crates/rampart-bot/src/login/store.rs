//! Counters and marks behind a small trait, so a fleet of gateways can share
//! them ([`crate::shared::RedisCounterStore`]: `INCRBY`, `PFADD`/`PFCOUNT`,
//! marks with `SET EXAT` mirrored locally on every node).
//!
//! Counters are fixed windows: the window id is part of the key, so an old
//! window simply stops being read and expires.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::replay::{StoreError, StoreFuture};

/// Shared state of the login guard. Keys are short ASCII strings built by
/// the guard (`ip:...`, `user:<keyed hash>`, ...), never raw usernames.
///
/// Counter updates and reads are asynchronous: the guard runs them inline
/// when the store answers at once (memory) and otherwise in a bounded
/// background task, so synchronous filter hooks never wait on a network.
/// Marks are read synchronously from a local mirror ([`is_marked`]), which
/// a shared implementation keeps in step with the other nodes. The guard
/// treats errors as "no data" and lets the login through (counting fails
/// open: a store outage must not lock every user out).
///
/// [`is_marked`]: CounterStore::is_marked
pub trait CounterStore: Send + Sync {
    /// Adds `by` to the counter `key` in the window of `window_secs`
    /// containing `now`; resolves to the new value.
    fn incr(&self, key: String, by: u64, window_secs: u64, now: u64) -> StoreFuture<'_, u64>;
    /// Current value of the counter (0 if absent).
    fn get(&self, key: String, window_secs: u64, now: u64) -> StoreFuture<'_, u64>;
    /// Adds `member` to the distinct-count set `key` for this window and
    /// resolves to the estimated number of distinct members.
    fn add_distinct(
        &self,
        key: String,
        member: u64,
        window_secs: u64,
        now: u64,
    ) -> StoreFuture<'_, u64>;
    /// Estimated distinct members of `key` in this window (0 if absent).
    fn count_distinct(&self, key: String, window_secs: u64, now: u64) -> StoreFuture<'_, u64>;
    /// Sets a mark (block, protection) until `until` (Unix seconds), on
    /// this node at once and on the others as soon as the store can.
    fn mark(&self, key: String, until: u64) -> StoreFuture<'_, ()>;
    /// Whether the mark is set and unexpired, as known on this node now
    /// (synchronous, no network).
    fn is_marked(&self, key: &str, now: u64) -> bool;
    /// The counter's value as last known on this node (synchronous, no
    /// network): exact in memory, the fleet-wide value as of this node's
    /// last update for a shared store.
    fn peek(&self, key: &str, window_secs: u64, now: u64) -> u64;
}

/// HyperLogLog with 64 registers (~13% standard error): 64 bytes per set,
/// enough to tell "3 usernames" from "300".
#[derive(Debug, Clone, Copy)]
pub struct Hll([u8; 64]);

impl Default for Hll {
    fn default() -> Self {
        Hll([0; 64])
    }
}

impl Hll {
    /// Adds a (well-mixed) 64-bit hash.
    pub fn add(&mut self, hash: u64) {
        let idx = (hash & 63) as usize;
        let rank = ((hash >> 6) | (1 << 58)).trailing_zeros() as u8 + 1;
        self.0[idx] = self.0[idx].max(rank);
    }

    /// Estimated number of distinct members.
    pub fn count(&self) -> u64 {
        let m = 64.0f64;
        let sum: f64 = self.0.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
        let raw = 0.709 * m * m / sum;
        let zeros = self.0.iter().filter(|&&r| r == 0).count();
        if raw <= 2.5 * m && zeros > 0 {
            (m * (m / zeros as f64).ln()).round() as u64
        } else {
            raw.round() as u64
        }
    }
}

#[derive(Debug)]
enum Slot {
    Counter { window: u64, value: u64 },
    Distinct { window: u64, hll: Box<Hll> },
    Mark { until: u64 },
}

const SHARDS: usize = 32;

/// In-memory [`CounterStore`]: sharded and bounded (when a shard is full,
/// stale entries go first, then arbitrary ones).
#[derive(Debug)]
pub struct MemoryCounterStore {
    shards: Vec<Mutex<HashMap<String, Slot>>>,
    per_shard: usize,
    hasher: std::collections::hash_map::RandomState,
}

impl MemoryCounterStore {
    pub fn new(capacity: usize) -> Self {
        MemoryCounterStore {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: (capacity / SHARDS).max(4),
            hasher: Default::default(),
        }
    }

    fn with_shard<T>(&self, key: &str, f: impl FnOnce(&mut HashMap<String, Slot>) -> T) -> T {
        use std::hash::BuildHasher;
        let i = self.hasher.hash_one(key) as usize % SHARDS;
        let mut map = self.shards[i].lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }

    fn make_room(&self, map: &mut HashMap<String, Slot>, key: &str, now: u64, window: u64) {
        if map.len() < self.per_shard || map.contains_key(key) {
            return;
        }
        let current = now / window.max(1);
        map.retain(|_, s| match s {
            Slot::Counter { window, .. } | Slot::Distinct { window, .. } => *window >= current,
            Slot::Mark { until } => *until > now,
        });
        if map.len() >= self.per_shard {
            if let Some(k) = map.keys().next().cloned() {
                map.remove(&k);
            }
        }
    }
}

impl Default for MemoryCounterStore {
    fn default() -> Self {
        MemoryCounterStore::new(500_000)
    }
}

impl MemoryCounterStore {
    /// Synchronous [`CounterStore::incr`].
    pub fn incr_now(&self, key: &str, by: u64, window_secs: u64, now: u64) -> u64 {
        let w = now / window_secs.max(1);
        self.with_shard(key, |map| {
            self.make_room(map, key, now, window_secs);
            let slot = map.entry(key.to_string()).or_insert(Slot::Counter {
                window: w,
                value: 0,
            });
            match slot {
                Slot::Counter { window, value } if *window == w => {
                    *value = value.saturating_add(by);
                    *value
                }
                other => {
                    *other = Slot::Counter {
                        window: w,
                        value: by,
                    };
                    by
                }
            }
        })
    }

    /// Synchronous [`CounterStore::get`].
    pub fn get_now(&self, key: &str, window_secs: u64, now: u64) -> u64 {
        let w = now / window_secs.max(1);
        self.with_shard(key, |map| match map.get(key) {
            Some(Slot::Counter { window, value }) if *window == w => *value,
            _ => 0,
        })
    }

    /// Synchronous [`CounterStore::add_distinct`].
    pub fn add_distinct_now(&self, key: &str, member: u64, window_secs: u64, now: u64) -> u64 {
        let w = now / window_secs.max(1);
        self.with_shard(key, |map| {
            self.make_room(map, key, now, window_secs);
            let slot = map.entry(key.to_string()).or_insert(Slot::Distinct {
                window: w,
                hll: Box::default(),
            });
            if !matches!(slot, Slot::Distinct { window, .. } if *window == w) {
                *slot = Slot::Distinct {
                    window: w,
                    hll: Box::default(),
                };
            }
            match slot {
                Slot::Distinct { hll, .. } => {
                    hll.add(member);
                    hll.count()
                }
                _ => 0,
            }
        })
    }

    /// Synchronous [`CounterStore::count_distinct`].
    pub fn count_distinct_now(&self, key: &str, window_secs: u64, now: u64) -> u64 {
        let w = now / window_secs.max(1);
        self.with_shard(key, |map| match map.get(key) {
            Some(Slot::Distinct { window, hll }) if *window == w => hll.count(),
            _ => 0,
        })
    }

    /// Synchronous [`CounterStore::mark`]. A later `until` wins, so a
    /// mark heard twice (own write, then pub/sub) is not shortened.
    pub fn mark_now(&self, key: &str, until: u64) {
        self.with_shard(key, |map| {
            self.make_room(map, key, 0, 1);
            let until = match map.get(key) {
                Some(Slot::Mark { until: old }) => until.max(*old),
                _ => until,
            };
            map.insert(key.to_string(), Slot::Mark { until });
        });
    }

    /// Sets a counter to a value learnt from a shared store.
    pub fn set_now(&self, key: &str, value: u64, window_secs: u64, now: u64) {
        let w = now / window_secs.max(1);
        self.with_shard(key, |map| {
            self.make_room(map, key, now, window_secs);
            map.insert(key.to_string(), Slot::Counter { window: w, value });
        });
    }

    /// Synchronous [`CounterStore::is_marked`].
    pub fn is_marked_now(&self, key: &str, now: u64) -> bool {
        self.with_shard(
            key,
            |map| matches!(map.get(key), Some(Slot::Mark { until }) if *until > now),
        )
    }
}

impl CounterStore for MemoryCounterStore {
    fn incr(&self, key: String, by: u64, window_secs: u64, now: u64) -> StoreFuture<'_, u64> {
        ready(Ok(self.incr_now(&key, by, window_secs, now)))
    }

    fn get(&self, key: String, window_secs: u64, now: u64) -> StoreFuture<'_, u64> {
        ready(Ok(self.get_now(&key, window_secs, now)))
    }

    fn add_distinct(
        &self,
        key: String,
        member: u64,
        window_secs: u64,
        now: u64,
    ) -> StoreFuture<'_, u64> {
        ready(Ok(self.add_distinct_now(&key, member, window_secs, now)))
    }

    fn count_distinct(&self, key: String, window_secs: u64, now: u64) -> StoreFuture<'_, u64> {
        ready(Ok(self.count_distinct_now(&key, window_secs, now)))
    }

    fn mark(&self, key: String, until: u64) -> StoreFuture<'_, ()> {
        self.mark_now(&key, until);
        ready(Ok(()))
    }

    fn is_marked(&self, key: &str, now: u64) -> bool {
        self.is_marked_now(key, now)
    }

    fn peek(&self, key: &str, window_secs: u64, now: u64) -> u64 {
        self.get_now(key, window_secs, now)
    }
}

fn ready<'a, T: Send + 'a>(v: Result<T, StoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(v))
}

/// A well-mixed 64-bit hash (SplitMix64 finaliser) for HLL members.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_per_window() {
        let s = MemoryCounterStore::new(1000);
        assert_eq!(s.incr_now("k", 1, 60, 0), 1);
        assert_eq!(s.incr_now("k", 2, 60, 59), 3);
        assert_eq!(s.get_now("k", 60, 59), 3);
        assert_eq!(s.get_now("k", 60, 60), 0);
        assert_eq!(s.incr_now("k", 1, 60, 61), 1);
    }

    #[test]
    fn hll_estimates_within_tolerance() {
        for n in [1u64, 5, 50, 500, 5000] {
            let mut h = Hll::default();
            for i in 0..n {
                h.add(mix64(i + 1));
                h.add(mix64(i + 1));
            }
            let est = h.count() as f64;
            let err = (est - n as f64).abs() / n as f64;
            assert!(err < 0.35, "n={n} est={est}");
        }
    }

    #[test]
    fn marks_expire() {
        let s = MemoryCounterStore::new(1000);
        s.mark_now("block:x", 100);
        assert!(s.is_marked_now("block:x", 99));
        assert!(!s.is_marked_now("block:x", 100));
        assert!(!s.is_marked_now("block:y", 0));
    }

    #[test]
    fn store_is_bounded() {
        let s = MemoryCounterStore::new(64);
        for i in 0..10_000 {
            s.incr_now(&format!("k{i}"), 1, 60, 0);
        }
        let total: usize = s.shards.iter().map(|m| m.lock().unwrap().len()).sum();
        assert!(total <= 128, "{total}");
    }
}
