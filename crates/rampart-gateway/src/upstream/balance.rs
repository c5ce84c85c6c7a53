//! Server selection: round robin, least connections, consistent hash.
//!
//! Selection only looks at atomics, so it is lock-free and shared by every
//! worker. Servers that are down (active check) or ejected (passive) are
//! skipped; when none is available the caller answers 503.

use std::sync::atomic::{AtomicUsize, Ordering};

use rampart_config::Balance;

/// Virtual nodes per server on the hash ring: enough for an even spread.
const VNODES: usize = 160;

pub enum Balancer {
    RoundRobin(AtomicUsize),
    LeastConnections(AtomicUsize),
    ConsistentHash(Vec<(u64, usize)>),
}

impl Balancer {
    /// `ids` are stable server identities (their addresses) for the ring.
    pub fn new(kind: Balance, ids: &[String]) -> Self {
        match kind {
            Balance::RoundRobin => Balancer::RoundRobin(AtomicUsize::new(0)),
            Balance::LeastConnections => Balancer::LeastConnections(AtomicUsize::new(0)),
            Balance::ConsistentHash => {
                let mut ring = Vec::with_capacity(ids.len() * VNODES);
                for (i, id) in ids.iter().enumerate() {
                    for v in 0..VNODES {
                        ring.push((hash64(format!("{id}#{v}").as_bytes()), i));
                    }
                }
                ring.sort_unstable();
                Balancer::ConsistentHash(ring)
            }
        }
    }

    /// Picks a server index among `n`, given availability and load.
    pub fn pick(
        &self,
        n: usize,
        key: Option<u64>,
        available: impl Fn(usize) -> bool,
        load: impl Fn(usize) -> usize,
    ) -> Option<usize> {
        if n == 0 {
            return None;
        }
        match self {
            Balancer::RoundRobin(next) => {
                let start = next.fetch_add(1, Ordering::Relaxed);
                (0..n).map(|k| (start + k) % n).find(|&i| available(i))
            }
            Balancer::LeastConnections(next) => {
                // Rotate the scan start so ties spread instead of piling on server 0.
                let start = next.fetch_add(1, Ordering::Relaxed);
                (0..n)
                    .map(|k| (start + k) % n)
                    .filter(|&i| available(i))
                    .min_by_key(|&i| load(i))
            }
            Balancer::ConsistentHash(ring) => {
                let key = key.unwrap_or(0);
                let at = ring.partition_point(|&(h, _)| h < key);
                (0..ring.len())
                    .map(|k| ring[(at + k) % ring.len()].1)
                    .find(|&i| available(i))
            }
        }
    }
}

/// FNV-1a with a final avalanche: stable across processes and machines, so
/// every gateway of a fleet sends a key to the same server.
pub fn hash64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64 finaliser
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}:80")).collect()
    }

    #[test]
    fn round_robin_cycles_and_skips_unavailable() {
        let b = Balancer::new(Balance::RoundRobin, &ids(3));
        let picks: Vec<_> = (0..6)
            .map(|_| b.pick(3, None, |_| true, |_| 0).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        let picks: Vec<_> = (0..4)
            .map(|_| b.pick(3, None, |i| i != 1, |_| 0).unwrap())
            .collect();
        assert!(!picks.contains(&1));
        assert_eq!(b.pick(3, None, |_| false, |_| 0), None);
    }

    #[test]
    fn least_connections_prefers_idle_servers() {
        let b = Balancer::new(Balance::LeastConnections, &ids(3));
        let load = [5, 1, 3];
        for _ in 0..5 {
            assert_eq!(b.pick(3, None, |_| true, |i| load[i]), Some(1));
        }
        assert_eq!(b.pick(3, None, |i| i != 1, |i| load[i]), Some(2));
    }

    #[test]
    fn consistent_hash_is_sticky_and_spreads() {
        let b = Balancer::new(Balance::ConsistentHash, &ids(4));
        let mut counts = [0usize; 4];
        for k in 0..4000u32 {
            let key = hash64(format!("user-{k}").as_bytes());
            let first = b.pick(4, Some(key), |_| true, |_| 0).unwrap();
            assert_eq!(b.pick(4, Some(key), |_| true, |_| 0), Some(first));
            counts[first] += 1;
        }
        for c in counts {
            assert!((600..1400).contains(&c), "uneven spread: {counts:?}");
        }
    }

    #[test]
    fn consistent_hash_moves_only_keys_of_a_lost_server() {
        let b = Balancer::new(Balance::ConsistentHash, &ids(4));
        let mut moved = 0;
        for k in 0..2000u32 {
            let key = hash64(format!("k{k}").as_bytes());
            let before = b.pick(4, Some(key), |_| true, |_| 0).unwrap();
            let after = b.pick(4, Some(key), |i| i != 2, |_| 0).unwrap();
            if before != 2 {
                assert_eq!(before, after, "a key on a healthy server moved");
            } else {
                moved += 1;
            }
        }
        assert!(moved > 0);
    }
}
