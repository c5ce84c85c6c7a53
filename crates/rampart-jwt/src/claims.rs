//! Registered-claim validation (`exp`, `nbf`, `iat`, `aud`, required claims)
//! and mapping verified claims onto a [`rampart_core::Identity`].

use std::sync::Arc;

use rampart_core::{AuthMethod, Identity};
use serde_json::{Map, Value};

use crate::config::{ClaimsMapping, IssuerConfig};
use crate::error::JwtError;

/// At most this many scopes are taken from a token (bounds work and memory).
pub const MAX_SCOPES: usize = 256;

/// Checks time claims, audience and required claims. `now` is Unix seconds.
pub(crate) fn validate(
    claims: &Map<String, Value>,
    cfg: &IssuerConfig,
    now: i64,
) -> Result<(), JwtError> {
    if let Some(name) = cfg
        .required_claims
        .iter()
        .find(|c| !claims.contains_key(c.as_str()))
    {
        tracing::debug!(claim = %name, "token lacks a required claim");
        return Err(JwtError::MissingClaim);
    }
    let leeway = i64::try_from(cfg.leeway.as_secs()).unwrap_or(i64::MAX);
    if let Some(exp) = numeric_claim(claims, "exp")? {
        if now >= exp.saturating_add(leeway) {
            return Err(JwtError::Expired);
        }
    }
    if let Some(nbf) = numeric_claim(claims, "nbf")? {
        if now.saturating_add(leeway) < nbf {
            return Err(JwtError::NotYetValid);
        }
    }
    if let Some(iat) = numeric_claim(claims, "iat")? {
        if now.saturating_add(leeway) < iat {
            return Err(JwtError::NotYetValid);
        }
    }
    check_audience(claims.get("aud"), &cfg.audiences)
}

/// A NumericDate claim as whole seconds; a non-number is malformed.
fn numeric_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or(JwtError::Malformed),
        Some(_) => Err(JwtError::Malformed),
    }
}

fn check_audience(aud: Option<&Value>, accepted: &[String]) -> Result<(), JwtError> {
    if accepted.is_empty() {
        return Ok(());
    }
    let matches = |v: &Value| v.as_str().is_some_and(|s| accepted.iter().any(|a| a == s));
    match aud {
        None => Err(JwtError::MissingClaim),
        Some(v @ Value::String(_)) if matches(v) => Ok(()),
        Some(Value::Array(values)) if values.iter().any(matches) => Ok(()),
        Some(Value::String(_)) | Some(Value::Array(_)) => Err(JwtError::WrongAudience),
        Some(_) => Err(JwtError::Malformed),
    }
}

/// Builds the identity from verified claims.
pub(crate) fn identity(claims: Value, mapping: &ClaimsMapping) -> Result<Identity, JwtError> {
    let object = claims.as_object().ok_or(JwtError::Malformed)?;
    let consumer_id = match object.get(&mapping.consumer_claim) {
        Some(Value::String(s)) if !s.is_empty() => Arc::from(s.as_str()),
        Some(Value::Number(n)) => Arc::from(n.to_string()),
        _ => return Err(JwtError::MissingClaim),
    };
    let tier = mapping
        .tier_claim
        .as_ref()
        .and_then(|name| object.get(name))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(Arc::from);
    let scopes = scopes(object, &mapping.scope_claims);
    Ok(Identity {
        method: AuthMethod::Jwt,
        consumer_id,
        tier,
        scopes: Arc::from(scopes),
        key_id: None,
        claims: Some(Arc::new(claims)),
    })
}

/// Scopes from each configured claim: a space-separated string or an array
/// of strings; other shapes are ignored. Duplicates are dropped.
fn scopes(claims: &Map<String, Value>, names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if out.len() < MAX_SCOPES && !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    for name in names {
        match claims.get(name) {
            Some(Value::String(s)) => s.split_ascii_whitespace().for_each(&mut push),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(&mut push),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeySource;
    use serde_json::json;
    use std::time::Duration;

    fn cfg() -> IssuerConfig {
        let mut cfg = IssuerConfig::new(
            "iss",
            vec![crate::Algorithm::HS256],
            KeySource::HmacSecret(vec![0; 32]),
        );
        cfg.leeway = Duration::from_secs(10);
        cfg
    }

    fn check(claims: Value, cfg: &IssuerConfig, now: i64) -> Result<(), JwtError> {
        validate(claims.as_object().unwrap(), cfg, now)
    }

    #[test]
    fn expiry_honours_leeway() {
        let c = cfg();
        assert_eq!(check(json!({"exp": 1000}), &c, 1009), Ok(()));
        assert_eq!(
            check(json!({"exp": 1000}), &c, 1010),
            Err(JwtError::Expired)
        );
        assert_eq!(check(json!({"exp": 1000.9}), &c, 1009), Ok(()));
    }

    #[test]
    fn not_before_and_issued_at_in_future() {
        let c = cfg();
        assert_eq!(check(json!({"exp": 5000, "nbf": 1010}), &c, 1000), Ok(()));
        assert_eq!(
            check(json!({"exp": 5000, "nbf": 1011}), &c, 1000),
            Err(JwtError::NotYetValid)
        );
        assert_eq!(
            check(json!({"exp": 5000, "iat": 1011}), &c, 1000),
            Err(JwtError::NotYetValid)
        );
    }

    #[test]
    fn non_numeric_time_is_malformed() {
        assert_eq!(
            check(json!({"exp": "9999999999"}), &cfg(), 0),
            Err(JwtError::Malformed)
        );
        assert_eq!(check(json!({"exp": 1e300}), &cfg(), 0), Ok(()));
    }

    #[test]
    fn required_claims_default_to_exp() {
        assert_eq!(check(json!({}), &cfg(), 0), Err(JwtError::MissingClaim));
        let mut c = cfg();
        c.required_claims = vec![];
        assert_eq!(check(json!({}), &c, 0), Ok(()));
    }

    #[test]
    fn audience_string_or_array() {
        let mut c = cfg();
        c.audiences = vec!["api".into(), "admin".into()];
        assert_eq!(check(json!({"exp": 99, "aud": "api"}), &c, 0), Ok(()));
        assert_eq!(
            check(json!({"exp": 99, "aud": ["x", "admin"]}), &c, 0),
            Ok(())
        );
        assert_eq!(
            check(json!({"exp": 99, "aud": "other"}), &c, 0),
            Err(JwtError::WrongAudience)
        );
        assert_eq!(
            check(json!({"exp": 99, "aud": ["x"]}), &c, 0),
            Err(JwtError::WrongAudience)
        );
        assert_eq!(
            check(json!({"exp": 99}), &c, 0),
            Err(JwtError::MissingClaim)
        );
        assert_eq!(
            check(json!({"exp": 99, "aud": 5}), &c, 0),
            Err(JwtError::Malformed)
        );
    }

    #[test]
    fn identity_mapping() {
        let mapping = ClaimsMapping {
            consumer_claim: "client_id".into(),
            scope_claims: vec!["scope".into(), "roles".into()],
            tier_claim: Some("https://example.com/tier".into()),
        };
        let claims = json!({"client_id": "c-7", "scope": "read  write read", "roles": ["admin", 3, "write"],
            "https://example.com/tier": "gold"});
        let id = identity(claims, &mapping).unwrap();
        assert_eq!(id.method, AuthMethod::Jwt);
        assert_eq!(&*id.consumer_id, "c-7");
        assert_eq!(id.tier.as_deref(), Some("gold"));
        assert_eq!(&*id.scopes, &["read", "write", "admin"]);
        assert_eq!(id.claim("client_id").as_deref(), Some("c-7"));
    }

    #[test]
    fn numeric_consumer_and_missing_consumer() {
        let id = identity(json!({"sub": 42}), &ClaimsMapping::default()).unwrap();
        assert_eq!(&*id.consumer_id, "42");
        assert!(id.scopes.is_empty());
        assert_eq!(
            identity(json!({"sub": ""}), &ClaimsMapping::default()).unwrap_err(),
            JwtError::MissingClaim
        );
        assert_eq!(
            identity(json!({"sub": [1]}), &ClaimsMapping::default()).unwrap_err(),
            JwtError::MissingClaim
        );
    }

    #[test]
    fn scope_count_is_bounded() {
        let many: Vec<String> = (0..1000).map(|i| format!("s{i}")).collect();
        let id = identity(json!({"sub": "a", "scp": many}), &ClaimsMapping::default()).unwrap();
        assert_eq!(id.scopes.len(), MAX_SCOPES);
    }
}
