//! The rate-limit filter: builds keys, asks the store, answers 429.
//!
//! For each request the applicable rules (see [`crate::rules`]) become one
//! store check, decided all-or-nothing. A refusal is `429` with reason
//! `rate_limited` (or `quota_exceeded` when a tier quota refused) and the
//! `Retry-After`, `RateLimit-Policy` and `RateLimit` headers. Admitted
//! responses get the two `RateLimit` headers too (enforce mode only: in
//! monitor mode clients see nothing of the limiter).
//!
//! The hook returns `Verdict::Ready` whenever the store answers at once (the
//! local store always; the Redis store from its leases) and `Pending` only
//! for a Redis round trip.

use std::sync::Arc;

use http::header::{HeaderName, RETRY_AFTER};
use http::StatusCode;
use rampart_core::{
    Decision, Denial, Filter, Mode, RequestCtx, RequestHead, ResponseHead, Verdict,
};

use crate::gcra::Outcome;
use crate::headers::{self, PolicyState};
use crate::rules::{self, LimitRule};
use crate::store::local::LocalStore;
use crate::store::{CheckItem, Checked, RateStore, StoreCall, StoreResult};

pub const REASON_RATE_LIMITED: &str = "rate_limited";
pub const REASON_QUOTA_EXCEEDED: &str = "quota_exceeded";
pub const REASON_STORE_UNAVAILABLE: &str = "rate_limit_store_unavailable";

static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// What to do when the store cannot decide (error or timeout).
#[derive(Debug, Clone)]
pub enum OnStoreError {
    /// Let the request through unlimited (availability first).
    Allow,
    /// Refuse with 503 `rate_limit_store_unavailable` (protection first).
    Deny,
    /// Decide with this node-local store instead: limits then hold per node
    /// (a fleet of N admits up to N times the limit) until the store is back.
    Local(Arc<LocalStore>),
}

/// Options of a [`RateLimitFilter`].
#[derive(Debug, Clone)]
pub struct RateLimitOptions {
    /// The limits, checked together for each request.
    pub limits: Vec<LimitRule>,
    /// Enforce, or only record what would have been refused.
    pub mode: Mode,
    /// Where buckets live ([`LocalStore`] or [`crate::RedisStore`]).
    pub store: Arc<dyn RateStore>,
    /// Policy when the store fails. The gateway default should be `Local`.
    pub on_store_error: OnStoreError,
}

/// What the response hook needs: which rules decided, and how.
#[derive(Debug, Clone)]
struct Decided {
    rules: Vec<usize>,
    outcomes: Vec<Outcome>,
}

/// The rate-limit filter.
#[derive(Debug)]
pub struct RateLimitFilter {
    options: RateLimitOptions,
}

impl RateLimitFilter {
    pub fn new(options: RateLimitOptions) -> Self {
        RateLimitFilter { options }
    }

    /// The applicable rules and the store request for them.
    fn plan(&self, ctx: &RequestCtx, head: &RequestHead) -> (Vec<usize>, Vec<CheckItem>) {
        let mut chosen = Vec::new();
        let mut items = Vec::new();
        for i in rules::select(&self.options.limits, ctx) {
            let rule = &self.options.limits[i];
            if let Some(key) = rule.key.build(&rule.name, ctx, head) {
                chosen.push(i);
                items.push(CheckItem {
                    key,
                    limit: rule.limit,
                    cost: rule.cost.cost(&head.method),
                });
            }
        }
        (chosen, items)
    }

    /// Applies the error policy, then turns the store's answer into a decision.
    fn finish(
        &self,
        ctx: &mut RequestCtx,
        head: &RequestHead,
        chosen: Vec<usize>,
        result: StoreResult,
    ) -> Decision {
        let checked = match result {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "rate-limit store failed; applying on_store_error");
                match &self.options.on_store_error {
                    OnStoreError::Allow => return Decision::Continue,
                    OnStoreError::Deny => return store_unavailable(),
                    OnStoreError::Local(local) => local.check_now(&self.plan(ctx, head).1),
                }
            }
        };
        let decision = self.decide(&chosen, &checked);
        if self.options.mode == Mode::Enforce && checked.admitted {
            ctx.extensions.insert(Decided {
                rules: chosen,
                outcomes: checked.outcomes,
            });
        }
        decision
    }

    fn decide(&self, chosen: &[usize], checked: &Checked) -> Decision {
        if checked.admitted {
            return Decision::Continue;
        }
        let quota = chosen
            .iter()
            .zip(&checked.outcomes)
            .any(|(&i, o)| !o.allowed && self.options.limits[i].is_quota());
        let (reason, detail) = if quota {
            (REASON_QUOTA_EXCEEDED, "quota exceeded")
        } else {
            (REASON_RATE_LIMITED, "too many requests")
        };
        let mut denial = Denial::new(StatusCode::TOO_MANY_REQUESTS, reason, detail);
        if let Some(h) = self.render(chosen, &checked.outcomes) {
            if let Some(retry) = h.retry_after {
                denial = denial.with_header(RETRY_AFTER, retry);
            }
            denial = denial
                .with_header(RATELIMIT_POLICY.clone(), h.policy)
                .with_header(RATELIMIT.clone(), h.ratelimit);
        }
        Decision::Deny(denial)
    }

    fn render(&self, chosen: &[usize], outcomes: &[Outcome]) -> Option<headers::RateLimitHeaders> {
        let states: Vec<PolicyState<'_>> = chosen
            .iter()
            .zip(outcomes)
            .map(|(&i, outcome)| {
                let rule = &self.options.limits[i];
                PolicyState {
                    name: &rule.name,
                    limit: &rule.limit,
                    outcome,
                }
            })
            .collect();
        headers::render(&states)
    }
}

fn store_unavailable() -> Decision {
    Decision::deny(
        StatusCode::SERVICE_UNAVAILABLE,
        REASON_STORE_UNAVAILABLE,
        "rate limiting is temporarily unavailable",
    )
}

impl Filter for RateLimitFilter {
    fn name(&self) -> &'static str {
        "rate_limit"
    }

    fn mode(&self) -> Mode {
        self.options.mode
    }

    fn request_headers<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        let (chosen, items) = self.plan(ctx, head);
        if items.is_empty() {
            return Verdict::Ready(Decision::Continue);
        }
        match self.options.store.check(items) {
            StoreCall::Ready(result) => Verdict::Ready(self.finish(ctx, head, chosen, result)),
            StoreCall::Pending(fut) => Verdict::Pending(Box::pin(async move {
                let result = fut.await;
                self.finish(ctx, head, chosen, result)
            })),
        }
    }

    fn response_headers(&self, ctx: &mut RequestCtx, head: &mut ResponseHead) -> Decision {
        if let Some(decided) = ctx.extensions.remove::<Decided>() {
            if let Some(h) = self.render(&decided.rules, &decided.outcomes) {
                head.headers.insert(RATELIMIT_POLICY.clone(), h.policy);
                head.headers.insert(RATELIMIT.clone(), h.ratelimit);
            }
        }
        Decision::Continue
    }
}
