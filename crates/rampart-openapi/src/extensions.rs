//! Vendor extensions read as policy: `x-rampart-ratelimit` and
//! `x-rampart-auth`, at the document root and per operation (the operation's
//! value replaces the root's as a whole; no field-by-field merge).
//!
//! This crate only parses and exposes them; the gateway wires them into its
//! rate limiter and authentication filters.

use std::time::Duration;

use serde_json::Value;

use crate::error::LoadError;

/// `x-rampart-ratelimit: { count: 10, period: "1m", burst: 5, key: "ip" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitExt {
    /// Requests allowed per `period`.
    pub count: u64,
    /// Window: `"30s"`, `"1m"`, `"1h"`, `"1d"` or a number of seconds.
    pub period: Duration,
    /// Extra requests allowed in a burst (default 0).
    pub burst: u64,
    /// What the limit is counted per: `ip` (default), `consumer`, `key`,
    /// `claim:<name>`, or anything else the rate limiter understands.
    pub key: String,
}

/// `x-rampart-auth: { methods: ["api_key", "jwt"], scopes: ["orders:read"] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthExt {
    /// Accepted authentication methods (`api_key`, `jwt`, `mtls`); empty
    /// means any verified identity. `anonymous: true` in the extension (or
    /// `methods: []` with `required: false`) allows unauthenticated calls.
    pub methods: Vec<String>,
    /// Scopes the identity must all hold.
    pub scopes: Vec<String>,
    /// Whether an identity is required at all (default true).
    pub required: bool,
}

/// Parses `x-rampart-ratelimit` from `node` (`at` names it in errors).
pub fn rate_limit(node: &Value, at: &str) -> Result<Option<RateLimitExt>, LoadError> {
    let Some(ext) = node.get("x-rampart-ratelimit") else {
        return Ok(None);
    };
    let at = format!("{at}/x-rampart-ratelimit");
    let count = ext
        .get("count")
        .and_then(Value::as_u64)
        .filter(|c| *c > 0)
        .ok_or_else(|| invalid(&at, "`count` must be a positive integer"))?;
    let period = match ext.get("period") {
        Some(p) => parse_period(p).ok_or_else(|| {
            invalid(
                &at,
                "`period` must be like \"30s\", \"1m\", \"1h\", \"1d\" or seconds",
            )
        })?,
        None => Duration::from_secs(1),
    };
    let burst = match ext.get("burst") {
        Some(b) => b
            .as_u64()
            .ok_or_else(|| invalid(&at, "`burst` must be a non-negative integer"))?,
        None => 0,
    };
    let key = match ext.get("key") {
        Some(k) => k
            .as_str()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| invalid(&at, "`key` must be a non-empty string"))?
            .to_string(),
        None => "ip".to_string(),
    };
    Ok(Some(RateLimitExt {
        count,
        period,
        burst,
        key,
    }))
}

/// Parses `x-rampart-auth` from `node`.
pub fn auth(node: &Value, at: &str) -> Result<Option<AuthExt>, LoadError> {
    let Some(ext) = node.get("x-rampart-auth") else {
        return Ok(None);
    };
    let at = format!("{at}/x-rampart-auth");
    let methods = string_list(ext.get("methods"), &at, "methods")?;
    for m in &methods {
        if !matches!(m.as_str(), "api_key" | "jwt" | "mtls") {
            return Err(invalid(
                &at,
                "`methods` entries must be api_key, jwt or mtls",
            ));
        }
    }
    let scopes = string_list(ext.get("scopes"), &at, "scopes")?;
    let anonymous = ext
        .get("anonymous")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let required = ext
        .get("required")
        .and_then(Value::as_bool)
        .unwrap_or(!anonymous);
    Ok(Some(AuthExt {
        methods,
        scopes,
        required,
    }))
}

fn string_list(v: Option<&Value>, at: &str, field: &str) -> Result<Vec<String>, LoadError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    v.as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .ok_or_else(|| invalid(at, &format!("`{field}` must be a list of strings")))
}

/// `"30s"`, `"1m"`, `"2h"`, `"1d"`, `"500ms"` or a bare number of seconds.
pub fn parse_period(v: &Value) -> Option<Duration> {
    if let Some(secs) = v.as_u64() {
        return (secs > 0).then(|| Duration::from_secs(secs));
    }
    let s = v.as_str()?.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().ok().filter(|n| *n > 0)?;
    let d = match &s[split..] {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        "d" => Duration::from_secs(n.checked_mul(86_400)?),
        _ => return None,
    };
    Some(d)
}

fn invalid(at: &str, problem: &str) -> LoadError {
    LoadError::Invalid {
        at: at.to_string(),
        problem: problem.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rate_limit_parses_with_defaults() {
        let op =
            json!({"x-rampart-ratelimit": {"count": 10, "period": "1m", "burst": 5, "key": "ip"}});
        let rl = rate_limit(&op, "#").unwrap().unwrap();
        assert_eq!(
            rl,
            RateLimitExt {
                count: 10,
                period: Duration::from_secs(60),
                burst: 5,
                key: "ip".into()
            }
        );
        let bare = rate_limit(&json!({"x-rampart-ratelimit": {"count": 3}}), "#")
            .unwrap()
            .unwrap();
        assert_eq!(
            (bare.period, bare.burst, bare.key.as_str()),
            (Duration::from_secs(1), 0, "ip")
        );
        assert!(rate_limit(&json!({}), "#").unwrap().is_none());
    }

    #[test]
    fn rate_limit_errors_name_the_problem() {
        let e = rate_limit(&json!({"x-rampart-ratelimit": {"count": 0}}), "#/paths").unwrap_err();
        assert!(e.to_string().contains("count"));
        let e = rate_limit(
            &json!({"x-rampart-ratelimit": {"count": 1, "period": "1w"}}),
            "#",
        )
        .unwrap_err();
        assert!(e.to_string().contains("period"));
    }

    #[test]
    fn auth_parses_and_checks_methods() {
        let a = auth(
            &json!({"x-rampart-auth": {"methods": ["api_key", "jwt"], "scopes": ["orders:read"]}}),
            "#",
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.methods, vec!["api_key", "jwt"]);
        assert_eq!(a.scopes, vec!["orders:read"]);
        assert!(a.required);
        let anon = auth(&json!({"x-rampart-auth": {"anonymous": true}}), "#")
            .unwrap()
            .unwrap();
        assert!(!anon.required);
        assert!(auth(&json!({"x-rampart-auth": {"methods": ["basic"]}}), "#").is_err());
    }

    #[test]
    fn periods() {
        assert_eq!(
            parse_period(&json!("500ms")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_period(&json!("2h")), Some(Duration::from_secs(7200)));
        assert_eq!(parse_period(&json!(30)), Some(Duration::from_secs(30)));
        assert_eq!(parse_period(&json!("0s")), None);
        assert_eq!(parse_period(&json!("m")), None);
    }
}
