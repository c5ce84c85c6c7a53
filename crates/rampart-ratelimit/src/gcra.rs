//! The Generic Cell Rate Algorithm, as pure functions of time.
//!
//! A limit of `count` per `period` with `burst` has an *emission interval*
//! `T = period / count` and a *capacity* `burst × T`. Each key remembers one
//! number, its theoretical arrival time (TAT). A request of cost `c` at time
//! `now` is allowed when `max(TAT, now) + c×T − now ≤ capacity`, and then TAT
//! becomes `max(TAT, now) + c×T`. A TAT in the past is the same as no state at
//! all, which is why idle keys can be dropped.
//!
//! Everything here works on the *backlog* `max(TAT − now, 0)`, so the same code
//! serves the local store (absolute TATs in clock nanoseconds) and the Redis
//! store (which reports backlogs computed with Redis' own clock).

use std::time::Duration;

/// A rate limit: `count` units per `period`, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    count: u64,
    period: Duration,
    burst: u64,
    interval_nanos: u64,
}

/// Why a [`Limit`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("a rate limit needs a count of at least 1")]
    ZeroCount,
    #[error("a rate limit needs a burst of at least 1")]
    ZeroBurst,
    #[error("a rate limit period must be at least 1 ms and at most 10 years")]
    BadPeriod,
    #[error("a rate limit of more than one unit per nanosecond cannot be enforced")]
    TooFast,
}

/// Longest accepted period: long enough for yearly quotas, short enough that
/// `burst × interval` cannot overflow nanoseconds in `u64`.
const MAX_PERIOD: Duration = Duration::from_secs(10 * 366 * 86_400);

impl Limit {
    /// `count` units per `period`, allowing `burst` units at once.
    pub fn new(count: u64, period: Duration, burst: u64) -> Result<Limit, LimitError> {
        if count == 0 {
            return Err(LimitError::ZeroCount);
        }
        if burst == 0 {
            return Err(LimitError::ZeroBurst);
        }
        if period < Duration::from_millis(1) || period > MAX_PERIOD {
            return Err(LimitError::BadPeriod);
        }
        let period_nanos = u64::try_from(period.as_nanos()).map_err(|_| LimitError::BadPeriod)?;
        let interval_nanos = period_nanos / count;
        if interval_nanos == 0 {
            return Err(LimitError::TooFast);
        }
        // Capacity must fit in u64 nanoseconds.
        if interval_nanos.checked_mul(burst).is_none() {
            return Err(LimitError::BadPeriod);
        }
        Ok(Limit {
            count,
            period,
            burst,
            interval_nanos,
        })
    }

    /// `count` per `period` with a burst equal to `count`.
    pub fn per(count: u64, period: Duration) -> Result<Limit, LimitError> {
        Limit::new(count, period, count)
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// `T`: the time one unit takes to drain.
    pub fn interval_nanos(&self) -> u64 {
        self.interval_nanos
    }

    /// `burst × T`: the largest backlog a request may leave behind.
    pub fn capacity_nanos(&self) -> u64 {
        self.interval_nanos * self.burst
    }

    /// The time an empty bucket takes to refill completely after a full
    /// burst (the policy window advertised in `RateLimit-Policy`).
    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.capacity_nanos())
    }

    fn cost_nanos(&self, cost: u64) -> u64 {
        self.interval_nanos.saturating_mul(cost)
    }
}

/// What one limit says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Whether this limit alone would admit the request.
    pub allowed: bool,
    /// The burst size: units available to a client that has been idle.
    pub limit: u64,
    /// Units still available right after this request.
    pub remaining: u64,
    /// Time until the bucket is full again (all `limit` units available).
    pub reset: Duration,
    /// When refused: time until this request (same cost) would fit. A cost
    /// above the burst never fits; the value then is the time to a full bucket.
    pub retry_after: Option<Duration>,
}

/// Whether a request of `cost` fits a limit whose current backlog is
/// `backlog`, and the backlog it leaves behind if admitted.
pub fn fits(limit: &Limit, backlog: u64, cost: u64) -> Option<u64> {
    let after = backlog.saturating_add(limit.cost_nanos(cost));
    (after <= limit.capacity_nanos()).then_some(after)
}

/// The outcome of a decision: `backlog` is the backlog before the request;
/// `admitted` says whether the request was admitted (by every limit, which
/// may differ from whether this limit alone fits it).
pub fn outcome(limit: &Limit, backlog: u64, cost: u64, admitted: bool) -> Outcome {
    let fits_alone = fits(limit, backlog, cost).is_some();
    let after = if admitted {
        backlog.saturating_add(limit.cost_nanos(cost))
    } else {
        backlog
    };
    let free = limit.capacity_nanos().saturating_sub(after);
    let retry_after = (!admitted).then(|| {
        if cost > limit.burst {
            Duration::from_nanos(backlog)
        } else {
            let needed = backlog.saturating_add(limit.cost_nanos(cost));
            Duration::from_nanos(needed.saturating_sub(limit.capacity_nanos()))
        }
    });
    Outcome {
        allowed: fits_alone,
        limit: limit.burst,
        remaining: free / limit.interval_nanos,
        reset: Duration::from_nanos(after),
        retry_after,
    }
}

/// The backlog a stored TAT means at `now`.
pub fn backlog(tat: u64, now: u64) -> u64 {
    tat.saturating_sub(now)
}

/// One limit's part in a combined check: its limit, the key's backlog and the
/// request's cost for it.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    pub limit: Limit,
    pub backlog: u64,
    pub cost: u64,
}

/// Several limits decided together: admitted only if every limit fits, and
/// then every limit is charged. Returns whether the request was admitted;
/// `out` receives one outcome per part, in order.
pub fn decide_all(parts: &[Part], out: &mut Vec<Outcome>) -> bool {
    let admitted = parts
        .iter()
        .all(|p| fits(&p.limit, p.backlog, p.cost).is_some());
    out.extend(
        parts
            .iter()
            .map(|p| outcome(&p.limit, p.backlog, p.cost, admitted)),
    );
    admitted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ten_per_sec_burst_20() -> Limit {
        Limit::new(10, Duration::from_secs(1), 20).unwrap()
    }

    #[test]
    fn limit_rejects_nonsense() {
        let s = Duration::from_secs(1);
        assert_eq!(Limit::new(0, s, 1), Err(LimitError::ZeroCount));
        assert_eq!(Limit::new(1, s, 0), Err(LimitError::ZeroBurst));
        assert_eq!(Limit::new(1, Duration::ZERO, 1), Err(LimitError::BadPeriod));
        assert_eq!(Limit::new(2_000_000_000, s, 1), Err(LimitError::TooFast));
        assert_eq!(Limit::new(1, s, u64::MAX), Err(LimitError::BadPeriod));
    }

    #[test]
    fn limit_exposes_interval_capacity_window() {
        let l = ten_per_sec_burst_20();
        assert_eq!(l.interval_nanos(), 100_000_000);
        assert_eq!(l.capacity_nanos(), 2_000_000_000);
        assert_eq!(l.window(), Duration::from_secs(2));
        let hourly = Limit::per(1000, Duration::from_secs(3600)).unwrap();
        assert_eq!(hourly.interval_nanos(), 3_600_000_000);
        assert_eq!(hourly.window(), Duration::from_secs(3600));
    }

    #[test]
    fn idle_bucket_admits_a_full_burst_then_refuses() {
        let l = ten_per_sec_burst_20();
        let mut b = 0;
        for i in 0..20 {
            let after = fits(&l, b, 1).unwrap_or_else(|| panic!("request {i} refused"));
            let o = outcome(&l, b, 1, true);
            assert_eq!(o.remaining, 19 - i);
            b = after;
        }
        assert!(fits(&l, b, 1).is_none());
        let o = outcome(&l, b, 1, false);
        assert!(!o.allowed);
        assert_eq!(o.remaining, 0);
        assert_eq!(o.retry_after, Some(Duration::from_millis(100)));
        assert_eq!(o.reset, Duration::from_secs(2));
    }

    #[test]
    fn cost_charges_several_units() {
        let l = ten_per_sec_burst_20();
        let o = outcome(&l, 0, 5, true);
        assert_eq!(o.remaining, 15);
        assert_eq!(o.reset, Duration::from_millis(500));
        // 18 units used: a cost of 5 needs 3 units to drain (300 ms).
        let o = outcome(&l, 1_800_000_000, 5, false);
        assert!(!o.allowed);
        assert_eq!(o.retry_after, Some(Duration::from_millis(300)));
    }

    #[test]
    fn cost_above_burst_never_fits() {
        let l = ten_per_sec_burst_20();
        assert!(fits(&l, 0, 21).is_none());
        let o = outcome(&l, 0, 21, false);
        assert_eq!(o.retry_after, Some(Duration::ZERO));
        assert_eq!(o.remaining, 20);
    }

    #[test]
    fn past_tat_is_an_empty_bucket() {
        assert_eq!(backlog(100, 500), 0);
        assert_eq!(backlog(500, 100), 400);
    }

    #[test]
    fn refused_combined_check_charges_nothing() {
        let a = Limit::per(10, Duration::from_secs(1)).unwrap();
        let b = Limit::per(1, Duration::from_secs(1)).unwrap();
        let parts = [
            Part {
                limit: a,
                backlog: 0,
                cost: 1,
            },
            Part {
                limit: b,
                backlog: b.capacity_nanos(),
                cost: 1,
            },
        ];
        let mut out = Vec::new();
        assert!(!decide_all(&parts, &mut out));
        assert!(out[0].allowed && !out[1].allowed);
        // Limit `a` was not charged: all 10 units still free.
        assert_eq!(out[0].remaining, 10);
        assert_eq!(out[0].reset, Duration::ZERO);
    }
}
