//! Request cadence per client IP: machine-regular timing and bursts.
//!
//! Humans click irregularly; a script in a loop does not. For each client
//! address the tracker keeps the last [`INTERVALS`] inter-arrival times and
//! reports their coefficient of variation (standard deviation / mean): a low
//! value over enough samples means clockwork timing. It also counts requests
//! in a short window to spot bursts. The table is sharded (little lock
//! contention) and bounded (a flood of spoofed addresses evicts old entries
//! instead of growing memory).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Inter-arrival times kept per client.
pub const INTERVALS: usize = 16;
const SHARDS: usize = 64;

/// Cadence tracker settings.
#[derive(Debug, Clone)]
pub struct CadenceOptions {
    /// Maximum number of client addresses tracked (default 100 000).
    pub capacity: usize,
    /// Samples needed before timing is judged (default 8).
    pub min_samples: usize,
    /// Coefficient of variation below which timing is "machine-regular"
    /// (default 0.15; human browsing is usually well above 0.5).
    pub regular_cv: f32,
    /// Intervals longer than this reset the series: a pause means a new
    /// session, not a sample (default 60 s).
    pub max_interval: Duration,
    /// Burst window (default 1 s).
    pub burst_window: Duration,
    /// Requests within one burst window that count as a burst (default 20).
    pub burst_threshold: u32,
}

impl Default for CadenceOptions {
    fn default() -> Self {
        CadenceOptions {
            capacity: 100_000,
            min_samples: 8,
            regular_cv: 0.15,
            max_interval: Duration::from_secs(60),
            burst_window: Duration::from_secs(1),
            burst_threshold: 20,
        }
    }
}

/// What the tracker concluded after one request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CadenceReport {
    /// Coefficient of variation, once `min_samples` intervals are known.
    pub cv: Option<f32>,
    /// Whether the timing is machine-regular.
    pub regular: bool,
    /// Requests in the current burst window, this one included.
    pub window_count: u32,
    /// Whether that count reached the burst threshold.
    pub burst: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    last_ms: u64,
    intervals: [u32; INTERVALS],
    filled: u8,
    next: u8,
    window_start_ms: u64,
    window_count: u32,
}

/// The sharded, bounded per-IP table.
#[derive(Debug)]
pub struct CadenceTracker {
    options: CadenceOptions,
    shards: Vec<Mutex<HashMap<IpAddr, Entry>>>,
    hasher: RandomState,
    epoch: Instant,
}

impl CadenceTracker {
    pub fn new(options: CadenceOptions) -> Self {
        CadenceTracker {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            epoch: Instant::now(),
            options,
        }
    }

    /// Records a request from `ip` now.
    pub fn observe(&self, ip: IpAddr) -> CadenceReport {
        self.observe_at(ip, Instant::now())
    }

    /// Records a request from `ip` at `at` (for tests and replays).
    pub fn observe_at(&self, ip: IpAddr, at: Instant) -> CadenceReport {
        let now_ms = at.saturating_duration_since(self.epoch).as_millis() as u64;
        let shard = &self.shards[(self.hasher.hash_one(ip) as usize) % SHARDS];
        // A poisoned shard only means another thread panicked mid-update of
        // plain counters; the data is still usable.
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        let per_shard = (self.options.capacity / SHARDS).max(1);
        if map.len() >= per_shard && !map.contains_key(&ip) {
            evict_one(&mut map);
        }
        let entry = map.entry(ip).or_insert(Entry {
            last_ms: now_ms,
            intervals: [0; INTERVALS],
            filled: 0,
            next: 0,
            window_start_ms: now_ms,
            window_count: 0,
        });
        self.update(entry, now_ms)
    }

    fn update(&self, e: &mut Entry, now_ms: u64) -> CadenceReport {
        let gap = now_ms.saturating_sub(e.last_ms);
        if e.window_count > 0 || e.filled > 0 {
            if gap > self.options.max_interval.as_millis() as u64 {
                e.filled = 0;
                e.next = 0;
            } else {
                e.intervals[e.next as usize] = gap as u32;
                e.next = ((e.next as usize + 1) % INTERVALS) as u8;
                e.filled = (e.filled + 1).min(INTERVALS as u8);
            }
        }
        e.last_ms = now_ms;
        if now_ms.saturating_sub(e.window_start_ms) >= self.options.burst_window.as_millis() as u64
        {
            e.window_start_ms = now_ms;
            e.window_count = 0;
        }
        e.window_count = e.window_count.saturating_add(1);
        let cv = (e.filled as usize >= self.options.min_samples)
            .then(|| coefficient_of_variation(&e.intervals[..e.filled as usize]));
        CadenceReport {
            cv,
            regular: cv.is_some_and(|cv| cv < self.options.regular_cv),
            window_count: e.window_count,
            burst: e.window_count >= self.options.burst_threshold,
        }
    }

    /// Number of tracked addresses.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops one entry. Which one does not matter for correctness (the table
/// only has to stay bounded); HashMap iteration order is randomised per
/// process, so an attacker cannot aim evictions.
fn evict_one(map: &mut HashMap<IpAddr, Entry>) {
    if let Some(victim) = map.keys().next().copied() {
        map.remove(&victim);
    }
}

fn coefficient_of_variation(samples: &[u32]) -> f32 {
    let n = samples.len() as f64;
    let mean = samples.iter().map(|&s| s as f64).sum::<f64>() / n;
    if mean <= 0.0 {
        // All requests in the same millisecond: as regular as it gets.
        return 0.0;
    }
    let var = samples
        .iter()
        .map(|&s| (s as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (var.sqrt() / mean) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, n])
    }

    #[test]
    fn clockwork_timing_is_regular() {
        let t = CadenceTracker::new(CadenceOptions::default());
        let start = Instant::now();
        let mut last = CadenceReport::default();
        for i in 0..12u64 {
            last = t.observe_at(ip(1), start + Duration::from_millis(500 * i + (i % 2) * 5));
        }
        assert!(last.regular, "{last:?}");
        assert!(last.cv.unwrap() < 0.05);
    }

    #[test]
    fn human_timing_is_not_regular() {
        let t = CadenceTracker::new(CadenceOptions::default());
        let start = Instant::now();
        let gaps = [
            300u64, 4200, 900, 12000, 150, 2500, 7000, 600, 3300, 1800, 9000,
        ];
        let mut at = start;
        let mut last = CadenceReport::default();
        for g in gaps {
            at += Duration::from_millis(g);
            last = t.observe_at(ip(2), at);
        }
        assert!(last.cv.unwrap() > 0.5, "{last:?}");
        assert!(!last.regular);
    }

    #[test]
    fn too_few_samples_are_not_judged() {
        let t = CadenceTracker::new(CadenceOptions::default());
        let start = Instant::now();
        let mut last = CadenceReport::default();
        for i in 0..4u64 {
            last = t.observe_at(ip(3), start + Duration::from_secs(i));
        }
        assert_eq!(last.cv, None);
        assert!(!last.regular);
    }

    #[test]
    fn bursts_are_counted_and_reset() {
        let t = CadenceTracker::new(CadenceOptions::default());
        let start = Instant::now();
        let mut last = CadenceReport::default();
        for i in 0..25u64 {
            last = t.observe_at(ip(4), start + Duration::from_millis(i * 10));
        }
        assert!(last.burst && last.window_count == 25);
        let later = t.observe_at(ip(4), start + Duration::from_secs(5));
        assert!(!later.burst && later.window_count == 1);
    }

    #[test]
    fn table_stays_bounded() {
        let t = CadenceTracker::new(CadenceOptions {
            capacity: 640,
            ..CadenceOptions::default()
        });
        for i in 0..20_000u32 {
            t.observe(IpAddr::from(i.to_be_bytes()));
        }
        assert!(t.len() <= 640, "{}", t.len());
    }
}
