//! Flood guards: limits that hold before any filter runs.
//!
//! - At accept: open connections per client IP, and new connections per
//!   client IP per second (GCRA with burst). A refused connection is closed
//!   at once, before TLS or HTTP costs anything.
//! - Per request: a global and a per-route concurrency cap, and adaptive load
//!   shedding. Shedding watches an EWMA of upstream latency and the number of
//!   requests in flight; as pressure rises past 1.0 it refuses routes of
//!   `low`, then `normal`, then `high` criticality (never `critical`) with 503
//!   and `Retry-After`, so the important routes keep their latency.
//!
//! The tables are shared by all workers and survive reloads (the counts of
//! open connections must not reset); the limits come from the current
//! snapshot on every check.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SHARDS: usize = 32;
/// A shard is swept of idle entries when it grows past this many.
const SWEEP_AT: usize = if cfg!(test) { 64 } else { 4096 };

/// Accept-time limits, from the config.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ConnLimits {
    /// Open connections per client IP (0: unlimited).
    pub max_per_ip: u32,
    /// New connections per second per client IP (0: unlimited).
    pub rate_per_ip: u32,
    /// Extra connections allowed in a burst above the rate.
    pub burst_per_ip: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnRefusal {
    TooManyOpen,
    TooFast,
    /// The client is banned (checked by the server before the table).
    Banned,
    /// The listener's IP lists refuse the peer.
    IpList,
}

impl ConnRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnRefusal::TooManyOpen => "too_many_connections",
            ConnRefusal::TooFast => "connection_rate",
            ConnRefusal::Banned => "banned",
            ConnRefusal::IpList => "ip_list",
        }
    }
}

#[derive(Default)]
struct Entry {
    open: u32,
    /// GCRA theoretical arrival time, in nanoseconds since `ConnTable::epoch`.
    tat: u64,
}

/// Open-connection counts and connection-rate state per client IP.
pub struct ConnTable {
    epoch: Instant,
    shards: Vec<Mutex<HashMap<IpAddr, Entry>>>,
}

impl Default for ConnTable {
    fn default() -> Self {
        ConnTable {
            epoch: Instant::now(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

/// One admitted connection; dropping it releases its slot.
pub struct ConnPermit {
    table: Arc<ConnTable>,
    ip: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut shard = self.table.shard(&self.ip);
        if let Some(e) = shard.get_mut(&self.ip) {
            e.open = e.open.saturating_sub(1);
        }
    }
}

impl ConnTable {
    fn shard(&self, ip: &IpAddr) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        let h = match ip {
            IpAddr::V4(v4) => u32::from(*v4) as u64,
            IpAddr::V6(v6) => (u128::from(*v6) >> 64) as u64 ^ u128::from(*v6) as u64,
        };
        let i = (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a new connection from `ip`, or says why not.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        limits: ConnLimits,
    ) -> Result<ConnPermit, ConnRefusal> {
        self.admit_at(ip, limits, self.epoch.elapsed().as_nanos() as u64)
    }

    fn admit_at(
        self: &Arc<Self>,
        ip: IpAddr,
        limits: ConnLimits,
        now: u64,
    ) -> Result<ConnPermit, ConnRefusal> {
        let mut shard = self.shard(&ip);
        if shard.len() >= SWEEP_AT {
            shard.retain(|_, e| e.open > 0 || e.tat > now);
        }
        let e = shard.entry(ip).or_default();
        if limits.max_per_ip > 0 && e.open >= limits.max_per_ip {
            return Err(ConnRefusal::TooManyOpen);
        }
        if limits.rate_per_ip > 0 {
            let interval = 1_000_000_000 / u64::from(limits.rate_per_ip);
            let tolerance = interval * u64::from(limits.burst_per_ip);
            let tat = e.tat.max(now);
            if tat - now > tolerance {
                return Err(ConnRefusal::TooFast);
            }
            e.tat = tat + interval;
        }
        e.open += 1;
        drop(shard);
        Ok(ConnPermit {
            table: self.clone(),
            ip,
        })
    }

    /// Client IPs tracked now (for the metrics gauge).
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }
}

/// How much a route matters when the gateway must shed load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Criticality {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

impl Criticality {
    /// The pressure at which routes of this class start being shed.
    fn shed_at(self) -> f64 {
        match self {
            Criticality::Low => 1.0,
            Criticality::Normal => 1.25,
            Criticality::High => 1.5,
            Criticality::Critical => f64::INFINITY,
        }
    }
}

/// Shedding settings, from the config (`None` in the snapshot: off).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SheddingLimits {
    /// Upstream latency (EWMA) that counts as pressure 1.0.
    pub latency_target: Duration,
    /// Requests in flight across the gateway that count as pressure 1.0.
    pub max_in_flight: usize,
    /// `Retry-After` sent with shed requests.
    pub retry_after: Duration,
}

/// Time constant of the latency average: samples older than about this
/// weigh little, so a burst of slow answers must last to trip shedding.
const LATENCY_TAU_SECS: f64 = 1.0;

/// Gateway-wide load figures, shared by all workers.
pub struct Load {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// EWMA of upstream latency in microseconds, stored as f64 bits.
    latency_us: AtomicU64,
    /// When the last sample was folded in (nanoseconds since `epoch`).
    last_sample: AtomicU64,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            latency_us: AtomicU64::new(0),
            last_sample: AtomicU64::new(0),
        }
    }
}

/// A request counted as in flight until dropped.
pub struct InFlightRequest(Arc<Load>);

impl Drop for InFlightRequest {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Load {
    /// Counts a request in flight (even when no limit is set: shedding needs it).
    pub fn enter(self: &Arc<Self>) -> InFlightRequest {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlightRequest(self.clone())
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Folds one upstream latency into a time-weighted moving average: a
    /// sample's weight grows with the time since the previous one, so the
    /// average covers about the last second whatever the request rate.
    /// `at` is when the sample was taken (the caller has just read the
    /// clock to measure `d`; reading it again would cost a system clock call).
    pub fn record_latency(&self, d: Duration, at: Instant) {
        let now = at.saturating_duration_since(self.epoch).as_nanos() as u64;
        let before = self.last_sample.swap(now, Ordering::AcqRel);
        self.fold_latency(d, Duration::from_nanos(now.saturating_sub(before)));
    }

    fn fold_latency(&self, d: Duration, since_last: Duration) {
        let weight = 1.0 - (-since_last.as_secs_f64() / LATENCY_TAU_SECS).exp();
        let sample = d.as_secs_f64() * 1e6;
        let _ = self
            .latency_us
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                let old = f64::from_bits(bits);
                let new = if old == 0.0 {
                    sample
                } else {
                    old + (sample - old) * weight
                };
                Some(new.to_bits())
            });
    }

    pub fn latency(&self) -> Duration {
        Duration::from_secs_f64(f64::from_bits(self.latency_us.load(Ordering::Acquire)) / 1e6)
    }

    /// 1.0 means "at the configured bound"; the larger of the two ratios.
    pub fn pressure(&self, limits: &SheddingLimits) -> f64 {
        let lat = self.latency().as_secs_f64() / limits.latency_target.as_secs_f64().max(1e-6);
        let queue = self.in_flight() as f64 / limits.max_in_flight.max(1) as f64;
        lat.max(queue)
    }

    /// Whether a request to a route of `class` is shed now.
    pub fn should_shed(&self, limits: &SheddingLimits, class: Criticality) -> bool {
        self.pressure(limits) >= class.shed_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn open_connections_per_ip_are_capped_and_released() {
        let t = Arc::new(ConnTable::default());
        let limits = ConnLimits {
            max_per_ip: 2,
            ..Default::default()
        };
        let a = t.admit(ip("10.0.0.1"), limits).unwrap();
        let _b = t.admit(ip("10.0.0.1"), limits).unwrap();
        assert_eq!(
            t.admit(ip("10.0.0.1"), limits).err(),
            Some(ConnRefusal::TooManyOpen)
        );
        // Another client is unaffected.
        assert!(t.admit(ip("10.0.0.2"), limits).is_ok());
        drop(a);
        assert!(t.admit(ip("10.0.0.1"), limits).is_ok());
    }

    #[test]
    fn connection_rate_allows_burst_then_refuses_until_time_passes() {
        let t = Arc::new(ConnTable::default());
        let limits = ConnLimits {
            rate_per_ip: 10,
            burst_per_ip: 4,
            ..Default::default()
        };
        let c = ip("2001:db8::1");
        let now = 1_000_000_000;
        // 1 + burst connections at the same instant.
        for _ in 0..5 {
            std::mem::forget(t.admit_at(c, limits, now).unwrap());
        }
        assert_eq!(t.admit_at(c, limits, now).err(), Some(ConnRefusal::TooFast));
        // One interval (100 ms) later exactly one more fits.
        assert!(t.admit_at(c, limits, now + 100_000_000).is_ok());
        assert!(t.admit_at(c, limits, now + 100_000_000).is_err());
    }

    #[test]
    fn idle_entries_are_swept() {
        let t = Arc::new(ConnTable::default());
        let limits = ConnLimits {
            rate_per_ip: 1000,
            ..Default::default()
        };
        for i in 0..(SHARDS * SWEEP_AT * 2) as u32 {
            drop(t.admit_at(IpAddr::from(i.to_be_bytes()), limits, 0));
        }
        // Far in the future every entry is idle: admitting sweeps them.
        for i in 0..(SHARDS * 64) as u32 {
            drop(t.admit_at(
                IpAddr::from(((i + 1) << 12).to_be_bytes()),
                limits,
                u64::MAX / 2,
            ));
        }
        assert!(t.tracked() < SHARDS * SWEEP_AT * 2);
    }

    #[test]
    fn shedding_starts_with_low_routes_and_spares_critical_ones() {
        let load = Load::default();
        let limits = SheddingLimits {
            latency_target: Duration::from_millis(100),
            max_in_flight: 1000,
            retry_after: Duration::from_secs(2),
        };
        let tick = Duration::from_millis(10);
        load.fold_latency(Duration::from_millis(50), tick);
        assert!(!load.should_shed(&limits, Criticality::Low));
        // One slow answer among fast ones barely moves the average.
        load.fold_latency(Duration::from_secs(1), tick);
        assert!(!load.should_shed(&limits, Criticality::Low));
        for _ in 0..1000 {
            load.fold_latency(Duration::from_millis(130), tick);
        }
        assert!(load.should_shed(&limits, Criticality::Low));
        assert!(load.should_shed(&limits, Criticality::Normal));
        assert!(!load.should_shed(&limits, Criticality::High));
        for _ in 0..1000 {
            load.fold_latency(Duration::from_secs(10), tick);
        }
        assert!(load.should_shed(&limits, Criticality::High));
        assert!(!load.should_shed(&limits, Criticality::Critical));
    }

    #[test]
    fn queue_depth_alone_creates_pressure() {
        let load = Arc::new(Load::default());
        let limits = SheddingLimits {
            latency_target: Duration::from_secs(1),
            max_in_flight: 4,
            retry_after: Duration::from_secs(1),
        };
        let held: Vec<_> = (0..4).map(|_| load.enter()).collect();
        assert!(load.should_shed(&limits, Criticality::Low));
        drop(held);
        assert_eq!(load.in_flight(), 0);
        assert!(!load.should_shed(&limits, Criticality::Low));
    }
}
