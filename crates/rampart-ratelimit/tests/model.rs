//! Property tests: the local store against a reference token bucket.
//!
//! The model is written independently of GCRA: it keeps a token count
//! (scaled by the emission interval, so integers stay exact), refills it by
//! the elapsed time up to the burst, and admits a request when enough tokens
//! are there. GCRA must agree on every decision and every `remaining`.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use rampart_ratelimit::{CheckItem, Limit, LocalConfig, LocalStore, ManualClock};

/// A token bucket: `tokens` in nanoseconds of drain time (units × T).
struct Bucket {
    interval: u64,
    capacity: u64,
    tokens: u64,
    last: u64,
}

impl Bucket {
    fn new(limit: &Limit, now: u64) -> Self {
        Bucket {
            interval: limit.interval_nanos(),
            capacity: limit.capacity_nanos(),
            tokens: limit.capacity_nanos(),
            last: now,
        }
    }

    fn refill(&mut self, now: u64) {
        self.tokens = (self.tokens + (now - self.last)).min(self.capacity);
        self.last = now;
    }

    fn fits(&self, cost: u64) -> bool {
        self.tokens >= cost * self.interval
    }

    fn take(&mut self, cost: u64) {
        self.tokens -= cost * self.interval;
    }

    fn remaining(&self) -> u64 {
        self.tokens / self.interval
    }
}

fn limit_strategy() -> impl Strategy<Value = Limit> {
    (1u64..50, 1u64..5_000, 1u64..60).prop_map(|(count, period_ms, burst)| {
        Limit::new(count, Duration::from_millis(period_ms), burst).unwrap()
    })
}

fn steps() -> impl Strategy<Value = Vec<(u64, u64)>> {
    // (time advance in microseconds, cost)
    prop::collection::vec((0u64..400_000, 0u64..8), 1..200)
}

proptest! {
    #[test]
    fn single_limit_matches_token_bucket(limit in limit_strategy(), steps in steps()) {
        let clock = ManualClock::new(1_000_000_000);
        let store = LocalStore::new(LocalConfig::default(), Arc::new(clock.clone()));
        let mut model = Bucket::new(&limit, 1_000_000_000);
        for (advance_us, cost) in steps {
            clock.advance(Duration::from_micros(advance_us));
            model.refill(clock_now(&clock));
            let got = store.check_now(&[CheckItem { key: b"k"[..].into(), limit, cost }]);
            let expect = model.fits(cost);
            prop_assert_eq!(got.admitted, expect);
            if expect {
                model.take(cost);
            }
            prop_assert_eq!(got.outcomes[0].remaining, model.remaining());
        }
    }

    #[test]
    fn two_limits_are_all_or_nothing(a in limit_strategy(), b in limit_strategy(), steps in steps()) {
        let clock = ManualClock::new(1_000_000_000);
        let store = LocalStore::new(LocalConfig::default(), Arc::new(clock.clone()));
        let mut ma = Bucket::new(&a, 1_000_000_000);
        let mut mb = Bucket::new(&b, 1_000_000_000);
        for (advance_us, cost) in steps {
            clock.advance(Duration::from_micros(advance_us));
            let now = clock_now(&clock);
            ma.refill(now);
            mb.refill(now);
            let got = store.check_now(&[
                CheckItem { key: b"a"[..].into(), limit: a, cost },
                CheckItem { key: b"b"[..].into(), limit: b, cost: 1 },
            ]);
            let expect = ma.fits(cost) && mb.fits(1);
            prop_assert_eq!(got.admitted, expect);
            if expect {
                ma.take(cost);
                mb.take(1);
            }
            prop_assert_eq!(got.outcomes[0].remaining, ma.remaining());
            prop_assert_eq!(got.outcomes[1].remaining, mb.remaining());
        }
    }
}

fn clock_now(clock: &ManualClock) -> u64 {
    use rampart_ratelimit::Clock;
    clock.now_nanos()
}
