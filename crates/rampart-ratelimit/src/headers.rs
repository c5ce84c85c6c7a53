//! `RateLimit-Policy`, `RateLimit` and `Retry-After` header values.
//!
//! Follows draft-ietf-httpapi-ratelimit-headers-10 (September 2025; the
//! syntax is unchanged in -11): both fields are Structured Field Lists whose
//! items are policy names (sf-strings) with parameters.
//!
//! - `RateLimit-Policy: "burst";q=20;w=2` — `q` the quota (units), `w` the
//!   window in seconds.
//! - `RateLimit: "burst";r=5;t=1` — `r` the remaining units, `t` seconds until
//!   the quota is fully restored.
//!
//! GCRA mapping: `q` is the burst, `w` the time an emptied bucket takes to
//! refill (`burst × period / count`, rounded up to whole seconds), `t` the
//! time until the bucket is full again, rounded up.

use std::fmt::Write as _;
use std::time::Duration;

use http::HeaderValue;

use crate::gcra::{Limit, Outcome};

/// One limit's state for rendering: its policy name, the limit and what it
/// said about the request.
#[derive(Debug, Clone, Copy)]
pub struct PolicyState<'a> {
    pub name: &'a str,
    pub limit: &'a Limit,
    pub outcome: &'a Outcome,
}

/// Rendered header values for one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitHeaders {
    pub policy: HeaderValue,
    pub ratelimit: HeaderValue,
    /// Set when some limit refused the request: whole seconds, rounded up.
    pub retry_after: Option<HeaderValue>,
}

/// Renders the headers for a set of limit states; `None` for an empty set.
pub fn render(states: &[PolicyState<'_>]) -> Option<RateLimitHeaders> {
    if states.is_empty() {
        return None;
    }
    let mut policy = String::with_capacity(32 * states.len());
    let mut ratelimit = String::with_capacity(24 * states.len());
    let mut retry: Option<Duration> = None;
    for (i, s) in states.iter().enumerate() {
        if i > 0 {
            policy.push_str(", ");
            ratelimit.push_str(", ");
        }
        push_sf_string(&mut policy, s.name);
        let _ = write!(
            policy,
            ";q={};w={}",
            s.limit.burst(),
            ceil_secs(s.limit.window()).max(1)
        );
        push_sf_string(&mut ratelimit, s.name);
        let _ = write!(
            ratelimit,
            ";r={};t={}",
            s.outcome.remaining,
            ceil_secs(s.outcome.reset)
        );
        if let Some(after) = s.outcome.retry_after.filter(|_| !s.outcome.allowed) {
            retry = Some(retry.map_or(after, |r| r.max(after)));
        }
    }
    Some(RateLimitHeaders {
        policy: to_value(policy),
        ratelimit: to_value(ratelimit),
        retry_after: retry.map(|d| HeaderValue::from(ceil_secs(d).max(1))),
    })
}

/// Whole seconds, rounded up; clamped to the sf-integer range.
pub fn ceil_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.min(999_999_999_999_999)
}

/// Appends an sf-string: printable ASCII with `"` and `\` escaped; anything
/// else (control, non-ASCII) becomes `_` so the value stays valid.
fn push_sf_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
    out.push('"');
}

fn to_value(s: String) -> HeaderValue {
    // Only printable ASCII is ever written above, so this cannot fail; the
    // fallback keeps the no-panic rule without an unwrap.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcra::outcome;

    #[test]
    fn renders_policy_and_state() {
        let l = Limit::new(10, Duration::from_secs(1), 20).unwrap();
        // 15 units used: 5 remaining, full again in 1.5 s.
        let o = outcome(&l, 1_400_000_000, 1, true);
        let h = render(&[PolicyState {
            name: "burst",
            limit: &l,
            outcome: &o,
        }])
        .unwrap();
        assert_eq!(h.policy, "\"burst\";q=20;w=2");
        assert_eq!(h.ratelimit, "\"burst\";r=5;t=2");
        assert_eq!(h.retry_after, None);
    }

    #[test]
    fn several_policies_form_a_list_and_retry_after_is_the_longest() {
        let a = Limit::per(10, Duration::from_secs(1)).unwrap();
        let d = Limit::per(1000, Duration::from_secs(86_400)).unwrap();
        let oa = outcome(&a, a.capacity_nanos(), 1, false);
        let od = outcome(&d, d.capacity_nanos(), 1, false);
        let h = render(&[
            PolicyState {
                name: "sec",
                limit: &a,
                outcome: &oa,
            },
            PolicyState {
                name: "day",
                limit: &d,
                outcome: &od,
            },
        ])
        .unwrap();
        assert_eq!(h.policy, "\"sec\";q=10;w=1, \"day\";q=1000;w=86400");
        assert_eq!(h.ratelimit, "\"sec\";r=0;t=1, \"day\";r=0;t=86400");
        // A day divided by 1000 is 86.4 s until one unit is back.
        assert_eq!(h.retry_after.unwrap(), "87");
    }

    #[test]
    fn names_are_escaped_into_valid_sf_strings() {
        let mut s = String::new();
        push_sf_string(&mut s, "a\"b\\c\u{e9}\n");
        assert_eq!(s, "\"a\\\"b\\\\c__\"");
    }

    #[test]
    fn empty_set_renders_nothing() {
        assert!(render(&[]).is_none());
    }

    #[test]
    fn ceil_secs_rounds_up() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(3)), 3);
    }
}
