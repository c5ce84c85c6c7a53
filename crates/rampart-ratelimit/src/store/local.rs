//! The in-memory store: sharded hash tables of key → TAT, bounded in size.
//!
//! Each key is hashed once (foldhash, seeded at random per store, so clients
//! cannot aim at one shard or one probe chain without first recovering the
//! seed); the same hash picks the shard and probes that shard's table. Keys up
//! to [`INLINE_KEY`] bytes (client-IP keys, identity keys) live inside the
//! table slot, so a check touches one cache line of the table and allocates
//! nothing for a known key.
//!
//! A key whose TAT is in the past is the same as an absent key, so idle keys
//! are dropped whenever a shard reaches its share of the key cap, and by
//! [`LocalStore::purge_idle`]. If a shard is still full of live keys, the
//! eighth of its keys with the smallest backlog (the ones closest to empty, so
//! the least state is lost) are evicted. Eviction resets those clients'
//! buckets: it can only make the limiter more lenient, never refuse a client
//! that should pass.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::HashTable;
use smallvec::SmallVec;

use crate::clock::Clock;
use crate::gcra::{self, Outcome, Part};
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
    /// 40-60 MB with keys of up to 22 bytes, which are stored inline; see the
    /// benchmark).
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
    /// Approximate heap bytes: table slots plus out-of-line key bytes.
    pub bytes: usize,
}

/// Longest key stored inside its table slot; longer keys are boxed.
pub const INLINE_KEY: usize = 22;

/// A key as the table holds it: inline when short (no allocation, no pointer
/// to chase on lookup), boxed otherwise.
enum StoredKey {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Boxed(Box<[u8]>),
}

impl StoredKey {
    fn new(key: &[u8]) -> StoredKey {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0; INLINE_KEY];
            bytes[..key.len()].copy_from_slice(key);
            StoredKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            StoredKey::Boxed(Box::from(key))
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            StoredKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            StoredKey::Boxed(b) => b,
        }
    }

    /// Heap bytes outside the slot: the allocator rounds to 16 bytes and
    /// keeps a header of about 16 (glibc malloc).
    fn heap_bytes(&self) -> usize {
        match self {
            StoredKey::Inline { .. } => 0,
            StoredKey::Boxed(b) => b.len().div_ceil(16) * 16 + 16,
        }
    }
}

struct Entry {
    key: StoredKey,
    tat: u64,
}

#[derive(Default)]
struct Shard {
    table: HashTable<Entry>,
    /// Heap bytes of boxed keys.
    key_bytes: usize,
}

/// The hasher: foldhash's quality variant, whose output bits are all well
/// mixed (the shard index and the table probe use different bits of it).
type Hasher = foldhash::quality::RandomState;

/// A sharded in-memory store. Cheap checks (one hash, one lock, no
/// allocation for a known key); see the module docs for eviction.
pub struct LocalStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: Hasher,
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
const SLOT_BYTES: usize = std::mem::size_of::<Entry>() + 1;

/// Items of one request handled without heap allocation.
const INLINE_ITEMS: usize = 4;

/// Where the shard index is taken from in a key's hash: the table probes with
/// the low bits and filters with the top 7, so the shard uses bits in
/// between (shards are capped at 4096 = 12 bits: bits 40..52).
const SHARD_SHIFT: u32 = 40;

impl LocalStore {
    pub fn new(config: LocalConfig, clock: Arc<dyn Clock>) -> Self {
        let shards = config.shards.clamp(1, 4096).next_power_of_two();
        let shard_cap = (config.max_keys / shards).max(1);
        LocalStore {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: Hasher::default(),
            clock,
            shard_cap,
        }
    }

    /// Decides a request now. Items on one shard take one lock; items on
    /// several take their locks in shard order (no deadlock).
    pub fn check_now(&self, items: &[CheckItem]) -> Checked {
        let mut outcomes = Vec::with_capacity(items.len());
        let admitted = self.check_now_into(items, &mut outcomes);
        Checked { admitted, outcomes }
    }

    /// [`check_now`](Self::check_now) with the outcomes appended to a
    /// caller's buffer (one per item, in order); returns whether the request
    /// was admitted. Allocates nothing for up to four items when `out` has
    /// room and every key is known or at most [`INLINE_KEY`] bytes.
    pub fn check_now_into(&self, items: &[CheckItem], out: &mut Vec<Outcome>) -> bool {
        let now = self.clock.now_nanos();
        match items {
            [] => true,
            [item] => self.check_one(item, now, out),
            _ => self.check_many(items, now, out),
        }
    }

    /// The common case: one limit, one lock, one probe of the table.
    fn check_one(&self, item: &CheckItem, now: u64, out: &mut Vec<Outcome>) -> bool {
        let hash = self.hasher.hash_one(&*item.key);
        let mut shard = self.lock(self.shard_of(hash));
        let slot = shard.tat_mut(hash, &item.key);
        let backlog = slot.as_deref().map_or(0, |&tat| gcra::backlog(tat, now));
        let after = gcra::fits(&item.limit, backlog, item.cost);
        out.push(gcra::outcome(
            &item.limit,
            backlog,
            item.cost,
            after.is_some(),
        ));
        let Some(after) = after else { return false };
        let tat = now.saturating_add(after);
        match slot {
            Some(slot) => *slot = tat,
            None => self.insert(&mut shard, hash, &item.key, tat, now),
        }
        true
    }

    /// Several limits decided together: read every backlog, decide, then
    /// charge every limit (or none).
    fn check_many(&self, items: &[CheckItem], now: u64, out: &mut Vec<Outcome>) -> bool {
        let hashes: SmallVec<[u64; INLINE_ITEMS]> = items
            .iter()
            .map(|i| self.hasher.hash_one(&*i.key))
            .collect();
        let shard_of: SmallVec<[usize; INLINE_ITEMS]> =
            hashes.iter().map(|&h| self.shard_of(h)).collect();
        let mut order = shard_of.clone();
        order.sort_unstable();
        order.dedup();
        let mut guards: SmallVec<[MutexGuard<'_, Shard>; INLINE_ITEMS]> =
            order.iter().map(|&s| self.lock(s)).collect();
        let guard_of = |shard: usize| order.binary_search(&shard).unwrap_or(0);
        let parts: SmallVec<[Part; INLINE_ITEMS]> = items
            .iter()
            .zip(&hashes)
            .zip(&shard_of)
            .map(|((item, &hash), &s)| Part {
                limit: item.limit,
                backlog: guards[guard_of(s)]
                    .tat_mut(hash, &item.key)
                    .map_or(0, |tat| gcra::backlog(*tat, now)),
                cost: item.cost,
            })
            .collect();
        let admitted = gcra::decide_all(&parts, out);
        if admitted {
            for (((item, &hash), &s), part) in items.iter().zip(&hashes).zip(&shard_of).zip(&parts)
            {
                let charge = part.limit.interval_nanos().saturating_mul(part.cost);
                let tat = now.saturating_add(part.backlog.saturating_add(charge));
                let shard = &mut guards[guard_of(s)];
                match shard.tat_mut(hash, &item.key) {
                    Some(slot) => *slot = tat,
                    None => self.insert(shard, hash, &item.key, tat, now),
                }
            }
        }
        admitted
    }

    /// Adds a key to a shard, making room first when the shard is full.
    fn insert(&self, shard: &mut Shard, hash: u64, key: &[u8], tat: u64, now: u64) {
        if shard.table.len() >= self.shard_cap {
            purge(shard, now);
            if shard.table.len() >= self.shard_cap {
                evict_least_loaded(shard, self.shard_cap);
            }
        }
        let key = StoredKey::new(key);
        shard.key_bytes += key.heap_bytes();
        shard.table.insert_unique(hash, Entry { key, tat }, |e| {
            self.hasher.hash_one(e.key.as_bytes())
        });
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
            size.keys += s.table.len();
            size.bytes += s.table.capacity() * SLOT_BYTES + s.key_bytes;
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

    fn shard_of(&self, hash: u64) -> usize {
        ((hash >> SHARD_SHIFT) as usize) & (self.shards.len() - 1)
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

impl Shard {
    /// The stored TAT of a key, looked up by borrowed bytes (no allocation).
    fn tat_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut u64> {
        self.table
            .find_mut(hash, |e| e.key.as_bytes() == key)
            .map(|e| &mut e.tat)
    }
}

fn purge(shard: &mut Shard, now: u64) -> usize {
    let before = shard.table.len();
    let mut freed = 0;
    shard.table.retain(|e| {
        let keep = e.tat > now;
        if !keep {
            freed += e.key.heap_bytes();
        }
        keep
    });
    shard.key_bytes -= freed;
    before - shard.table.len()
}

/// Evicts about an eighth of a full shard: the keys with the smallest TAT.
fn evict_least_loaded(shard: &mut Shard, cap: usize) {
    let mut tats: Vec<u64> = shard.table.iter().map(|e| e.tat).collect();
    let n = (cap / 8).clamp(1, tats.len());
    let (_, &mut threshold, _) = tats.select_nth_unstable(n - 1);
    let mut left = n;
    let mut freed = 0;
    shard.table.retain(|e| {
        if left > 0 && e.tat <= threshold {
            left -= 1;
            freed += e.key.heap_bytes();
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
        // Short keys live in the slot; a long one adds its heap bytes.
        let inline = s.size().bytes;
        let long = "k".repeat(INLINE_KEY + 1);
        s.check_now(&[item(&long, l)]);
        let grown = s.size();
        assert_eq!(grown.keys, 2);
        assert!(grown.bytes > inline + INLINE_KEY);
    }

    #[test]
    fn a_slot_is_one_key_of_up_to_22_bytes_and_a_tat() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        for len in [0, 1, INLINE_KEY, INLINE_KEY + 1, 300] {
            let key = vec![b'x'; len];
            assert_eq!(StoredKey::new(&key).as_bytes(), &key[..]);
            assert_eq!(StoredKey::new(&key).heap_bytes() > 0, len > INLINE_KEY);
        }
    }

    #[test]
    fn many_keys_stay_distinct_across_shards_and_growth() {
        let (s, _) = store(100_000, 8);
        let l = Limit::per(2, Duration::from_secs(60)).unwrap();
        for i in 0..5000 {
            assert!(s.check_now(&[item(&format!("key-{i}"), l)]).admitted);
        }
        for i in 0..5000 {
            let r = s.check_now(&[item(&format!("key-{i}"), l)]);
            assert_eq!(r.outcomes[0].remaining, 0, "key-{i} kept its state");
        }
        assert_eq!(s.size().keys, 5000);
    }
}
