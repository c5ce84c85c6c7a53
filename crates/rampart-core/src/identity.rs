//! Who a request comes from, once an authentication filter has decided.
//!
//! The auth filters (API keys, JWT, mTLS) set [`RequestCtx::identity`]; later
//! filters read it: rate limits keyed by consumer, key or JWT claim, tier
//! quotas, bot defence letting trusted API clients skip challenges.
//!
//! [`RequestCtx::identity`]: crate::RequestCtx::identity

use std::sync::Arc;

use http::HeaderValue;

/// How the client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ApiKey,
    Jwt,
    Mtls,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Mtls => "mtls",
        }
    }
}

/// An authenticated client. Cheap to clone (shared parts are `Arc`).
#[derive(Debug, Clone)]
pub struct Identity {
    pub method: AuthMethod,
    /// The consumer's stable id.
    pub consumer_id: Arc<str>,
    /// The consumer's tier (for quotas), if it has one.
    pub tier: Option<Arc<str>>,
    pub scopes: Arc<[String]>,
    /// The API key's public id (never the secret), when a key was used.
    pub key_id: Option<Arc<str>>,
    /// The verified JWT claims, when a JWT was used.
    pub claims: Option<Arc<serde_json::Value>>,
}

impl Identity {
    /// A claim rendered as a string key (strings as is, other JSON as text);
    /// `None` without JWT claims or without that claim.
    pub fn claim(&self, name: &str) -> Option<String> {
        let v = self.claims.as_ref()?.get(name)?;
        Some(match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The values of the headers that tell the upstream who the client is: the
/// consumer id and the scopes, space-separated. A value that cannot be a
/// header is `None` and not sent. Stores render them once per cached
/// consumer or key, so a request with a known key only clones them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub consumer: Option<HeaderValue>,
    pub scopes: Option<HeaderValue>,
}

impl IdentityHeaders {
    pub fn of(consumer_id: &str, scopes: &[String]) -> IdentityHeaders {
        IdentityHeaders {
            consumer: HeaderValue::try_from(consumer_id).ok(),
            scopes: Self::scopes_value(scopes),
        }
    }

    pub fn scopes_value(scopes: &[String]) -> Option<HeaderValue> {
        HeaderValue::try_from(scopes.join(" ")).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_render_as_keys() {
        let id = Identity {
            method: AuthMethod::Jwt,
            consumer_id: Arc::from("c1"),
            tier: None,
            scopes: Arc::from(vec!["read".to_string()]),
            key_id: None,
            claims: Some(Arc::new(serde_json::json!({"sub": "alice", "org": 42}))),
        };
        assert_eq!(id.claim("sub").as_deref(), Some("alice"));
        assert_eq!(id.claim("org").as_deref(), Some("42"));
        assert_eq!(id.claim("missing"), None);
        assert!(id.has_scope("read"));
        assert!(!id.has_scope("write"));
    }

    #[test]
    fn identity_headers_render_id_and_scopes() {
        let scopes = vec!["orders:read".to_string(), "users:write".to_string()];
        let h = IdentityHeaders::of("acme", &scopes);
        assert_eq!(h.consumer.unwrap(), "acme");
        assert_eq!(h.scopes.unwrap(), "orders:read users:write");
        // A value no header may carry is left out rather than mangled.
        let h = IdentityHeaders::of("bad\nid", &["x\ny".to_string()]);
        assert_eq!(h, IdentityHeaders::default());
    }
}
