//! Which limits apply to a request, and what it costs.
//!
//! A [`LimitRule`] is one named limit with its key and cost rules. A rule
//! with a `tier` is a quota: it applies only to clients whose
//! `ctx.identity.tier` matches (typically a long period: per day, per month),
//! and refusing with it says `quota_exceeded` rather than `rate_limited`.

use std::sync::Arc;

use http::Method;
use rampart_core::RequestCtx;

use crate::gcra::Limit;
use crate::key::KeySpec;

/// What a request costs against one limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostRule {
    /// Cost of a request whose method has no entry. Default 1.
    pub default: u64,
    /// Per-method costs, e.g. `POST` = 5. Looked up linearly (a few entries).
    pub per_method: Vec<(Method, u64)>,
}

impl Default for CostRule {
    fn default() -> Self {
        CostRule {
            default: 1,
            per_method: Vec::new(),
        }
    }
}

impl CostRule {
    pub fn cost(&self, method: &Method) -> u64 {
        self.per_method
            .iter()
            .find(|(m, _)| m == method)
            .map_or(self.default, |&(_, c)| c)
    }
}

/// One named limit of the filter.
#[derive(Debug, Clone)]
pub struct LimitRule {
    /// Policy name, shown in the `RateLimit-Policy` / `RateLimit` headers and
    /// part of every key (two rules never share buckets).
    pub name: Arc<str>,
    pub limit: Limit,
    pub key: KeySpec,
    pub cost: CostRule,
    /// `Some(tier)`: a quota for that consumer tier only. `None`: applies to
    /// every request.
    pub tier: Option<Arc<str>>,
}

impl LimitRule {
    /// A rule with default cost, keyed by `key`, for every request.
    pub fn new(name: &str, limit: Limit, key: KeySpec) -> Self {
        LimitRule {
            name: Arc::from(name),
            limit,
            key,
            cost: CostRule::default(),
            tier: None,
        }
    }

    pub fn with_cost(mut self, cost: CostRule) -> Self {
        self.cost = cost;
        self
    }

    pub fn for_tier(mut self, tier: &str) -> Self {
        self.tier = Some(Arc::from(tier));
        self
    }

    pub fn is_quota(&self) -> bool {
        self.tier.is_some()
    }

    /// Whether this rule applies to a request from this context.
    pub fn applies(&self, ctx: &RequestCtx) -> bool {
        match &self.tier {
            None => true,
            Some(t) => ctx
                .identity
                .as_ref()
                .and_then(|i| i.tier.as_deref())
                .is_some_and(|tier| tier == &**t),
        }
    }
}

/// The indices of the rules that apply to this request, in order.
pub fn select<'r>(rules: &'r [LimitRule], ctx: &'r RequestCtx) -> impl Iterator<Item = usize> + 'r {
    rules
        .iter()
        .enumerate()
        .filter(move |(_, r)| r.applies(ctx))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::{AuthMethod, Identity};
    use std::net::SocketAddr;
    use std::time::Duration;

    fn ctx(tier: Option<&str>) -> RequestCtx {
        let peer: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let mut c = RequestCtx::new("r".into(), peer.ip(), peer, Arc::from("l"));
        c.identity = Some(Identity {
            method: AuthMethod::ApiKey,
            consumer_id: Arc::from("c"),
            tier: tier.map(Arc::from),
            scopes: Arc::from(Vec::<String>::new()),
            key_id: None,
            claims: None,
        });
        c
    }

    #[test]
    fn method_costs_override_the_default() {
        let c = CostRule {
            default: 1,
            per_method: vec![(Method::POST, 5)],
        };
        assert_eq!(c.cost(&Method::GET), 1);
        assert_eq!(c.cost(&Method::POST), 5);
    }

    #[test]
    fn tier_quotas_apply_only_to_their_tier() {
        let l = Limit::per(1000, Duration::from_secs(86_400)).unwrap();
        let rules = vec![
            LimitRule::new("all", l, KeySpec::client_ip()),
            LimitRule::new("gold/day", l, KeySpec::client_ip()).for_tier("gold"),
            LimitRule::new("free/day", l, KeySpec::client_ip()).for_tier("free"),
        ];
        assert_eq!(
            select(&rules, &ctx(Some("gold"))).collect::<Vec<_>>(),
            [0, 1]
        );
        assert_eq!(
            select(&rules, &ctx(Some("free"))).collect::<Vec<_>>(),
            [0, 2]
        );
        assert_eq!(select(&rules, &ctx(None)).collect::<Vec<_>>(), [0]);
        assert!(rules[1].applies(&ctx(Some("gold"))));
        assert!(!rules[1].applies(&ctx(None)));
        assert!(rules[1].is_quota() && !rules[0].is_quota());
    }
}
