//! The `rate_limit` section of a route → [`RateLimitFilter`].

use rampart_config::traffic::{parse_key_part, KeyPartConfig, OnMissingKey, OnStoreError};
use rampart_config::{Cluster, LimitConfig, RateLimitPolicy};
use rampart_ratelimit::{
    CostRule, KeyPart, KeySpec, Limit, LimitRule, OnMissing, RateLimitFilter, RateLimitOptions,
};

use super::BuildError;
use crate::services::Services;

pub fn filter(
    p: &RateLimitPolicy,
    cluster: &Cluster,
    services: &Services,
) -> Result<RateLimitFilter, BuildError> {
    let limits = p
        .limits
        .iter()
        .enumerate()
        .map(|(i, l)| rule(l).map_err(|(k, m)| (format!(".rate_limit.limits[{i}]{k}"), m)))
        .collect::<Result<Vec<_>, _>>()?;
    let store = services
        .rate_store(cluster)
        .map_err(|e| (".rate_limit".to_string(), e))?;
    let on_store_error = match p.on_store_error {
        OnStoreError::Allow => rampart_ratelimit::OnStoreError::Allow,
        OnStoreError::Deny => rampart_ratelimit::OnStoreError::Deny,
        OnStoreError::Local => rampart_ratelimit::OnStoreError::Local(services.rate_local.clone()),
    };
    Ok(RateLimitFilter::new(RateLimitOptions {
        limits,
        mode: rampart_guard::mode(p.mode),
        store,
        on_store_error,
    }))
}

fn rule(l: &LimitConfig) -> Result<LimitRule, BuildError> {
    let burst = l.burst.unwrap_or(l.rate.count);
    let limit = Limit::new(l.rate.count, l.rate.period, burst)
        .map_err(|e| (".rate".to_string(), e.to_string()))?;
    let parts = l
        .key
        .iter()
        .enumerate()
        .map(|(j, k)| key_part(k, l).map_err(|m| (format!(".key[{j}]"), m)))
        .collect::<Result<Vec<_>, _>>()?;
    let on_missing = match l.on_missing {
        OnMissingKey::Ip => OnMissing::FallbackClientIp,
        OnMissingKey::Skip => OnMissing::Skip,
    };
    let per_method = l
        .method_costs
        .iter()
        .map(|(m, c)| {
            http::Method::from_bytes(m.as_bytes())
                .map(|m| (m, *c))
                .map_err(|_| {
                    (
                        format!(".method_costs.{m}"),
                        "expected an HTTP method".into(),
                    )
                })
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    let mut rule = LimitRule::new(&l.name, limit, KeySpec::new(parts).on_missing(on_missing))
        .with_cost(CostRule {
            default: l.cost,
            per_method,
        });
    if let Some(tier) = &l.tier {
        rule = rule.for_tier(tier);
    }
    Ok(rule)
}

fn key_part(s: &str, l: &LimitConfig) -> Result<KeyPart, String> {
    Ok(match parse_key_part(s)? {
        KeyPartConfig::Ip => KeyPart::ClientIp,
        KeyPartConfig::IpPrefix => KeyPart::IpPrefix {
            v4: l.ipv4_prefix,
            v6: l.ipv6_prefix,
        },
        KeyPartConfig::Consumer => KeyPart::Consumer,
        KeyPartConfig::ApiKey => KeyPart::ApiKeyId,
        KeyPartConfig::Route => KeyPart::Route,
        KeyPartConfig::Header(h) => KeyPart::Header(
            http::HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| format!("expected a valid header name, found {h:?}"))?,
        ),
        KeyPartConfig::Cookie(c) => KeyPart::Cookie(c),
        KeyPartConfig::Claim(c) => KeyPart::Claim(c),
    })
}
