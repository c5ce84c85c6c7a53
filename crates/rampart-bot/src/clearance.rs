//! Clearance tokens: proof that a client passed a challenge.
//!
//! A clearance is an HMAC-signed token bound to the client's network prefix
//! and User-Agent, with an expiry. It travels in the `__rampart_clearance`
//! cookie (browsers) or the `X-Rampart-Clearance` header (SDKs). While it is
//! valid the client is not challenged again, so a passed challenge never
//! loops; a token that is forged, expired, or presented from another network
//! or program is ignored and the client is challenged afresh.

use http::header::{HeaderValue, COOKIE};
use http::HeaderMap;

use crate::binding::Binding;
use crate::crypto::{unix_now, TokenError};
use crate::keys::KeyHandle;

/// Cookie name.
pub const COOKIE_NAME: &str = "__rampart_clearance";
/// Header an API client may use instead of the cookie.
pub const HEADER_NAME: &str = "x-rampart-clearance";
const PURPOSE: &str = "clr";
const PAYLOAD_LEN: usize = 16 + 8;

/// Issues and checks clearances.
#[derive(Clone)]
pub struct Clearances {
    keys: KeyHandle,
    ttl_secs: u64,
}

impl std::fmt::Debug for Clearances {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clearances")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl Clearances {
    /// `ttl_secs`: how long a passed challenge counts (e.g. 3600). With
    /// rotating keys keep it at most the rotation period, so a clearance
    /// never outlives the previous epoch's key.
    pub fn new(keys: impl Into<KeyHandle>, ttl_secs: u64) -> Self {
        Clearances {
            keys: keys.into(),
            ttl_secs,
        }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// A clearance token for `binding`.
    pub fn issue(&self, binding: Binding) -> String {
        self.issue_at(binding, unix_now())
    }

    pub fn issue_at(&self, binding: Binding, now: u64) -> String {
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..16].copy_from_slice(&binding.0);
        payload[16..].copy_from_slice(&(now + self.ttl_secs).to_be_bytes());
        self.keys.load().seal(PURPOSE, &payload)
    }

    /// Checks a token; returns its expiry (Unix seconds).
    pub fn verify(&self, token: &str, binding: Binding) -> Result<u64, TokenError> {
        self.verify_at(token, binding, unix_now())
    }

    pub fn verify_at(&self, token: &str, binding: Binding, now: u64) -> Result<u64, TokenError> {
        let payload = self.keys.load().open(PURPOSE, token)?;
        let payload: [u8; PAYLOAD_LEN] = payload.try_into().map_err(|_| TokenError::Malformed)?;
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&payload[16..]);
        let expires_at = u64::from_be_bytes(exp);
        if now >= expires_at {
            return Err(TokenError::Expired);
        }
        if payload[..16] != binding.0 {
            return Err(TokenError::WrongClient);
        }
        Ok(expires_at)
    }

    /// Whether the request carries a valid clearance (cookie or header).
    pub fn request_is_cleared(&self, headers: &HeaderMap, binding: Binding) -> bool {
        let header = headers.get(HEADER_NAME).and_then(|v| v.to_str().ok());
        header
            .into_iter()
            .chain(cookie_values(headers, COOKIE_NAME))
            .any(|t| self.verify(t, binding).is_ok())
    }

    /// The `Set-Cookie` value for a token (`Secure` when served over TLS).
    pub fn set_cookie(&self, token: &str, tls: bool) -> HeaderValue {
        let secure = if tls { "; Secure" } else { "" };
        let v = format!(
            "{COOKIE_NAME}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            self.ttl_secs
        );
        // Tokens are base64url and dots, always valid header text.
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Values of cookie `name` across all `Cookie` headers (at most 8, so a
/// request stuffed with cookies cannot make us verify hundreds of tokens).
pub fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v.trim())
        })
        .take(8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Key, KeyRing};
    use std::sync::Arc;

    fn clearances() -> Clearances {
        let keys = Arc::new(KeyRing::new(Key::new("k1", &[5u8; 32]).unwrap()));
        Clearances::new(keys, 3600)
    }

    fn b(ip: &str) -> Binding {
        Binding::new(ip.parse().unwrap(), b"Mozilla/5.0")
    }

    #[test]
    fn valid_until_expiry_and_bound() {
        let c = clearances();
        let t = c.issue_at(b("192.0.2.10"), 1000);
        assert_eq!(c.verify_at(&t, b("192.0.2.99"), 1500), Ok(4600));
        assert_eq!(
            c.verify_at(&t, b("192.0.2.10"), 4600),
            Err(TokenError::Expired)
        );
        assert_eq!(
            c.verify_at(&t, b("192.0.3.10"), 1500),
            Err(TokenError::WrongClient)
        );
    }

    #[test]
    fn cookie_is_found_and_attributes_set() {
        let c = clearances();
        let t = c.issue(b("192.0.2.10"));
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("a=1; {COOKIE_NAME}={t}; z=2")).unwrap(),
        );
        assert!(c.request_is_cleared(&h, b("192.0.2.10")));
        assert!(!c.request_is_cleared(&h, b("10.0.0.1")));
        let sc = c.set_cookie(&t, true);
        let sc = sc.to_str().unwrap();
        for attr in [
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Secure",
            "Max-Age=3600",
        ] {
            assert!(sc.contains(attr), "{attr}");
        }
        assert!(!c.set_cookie(&t, false).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn header_form_for_sdks() {
        let c = clearances();
        let t = c.issue(b("192.0.2.10"));
        let mut h = HeaderMap::new();
        h.insert(HEADER_NAME, HeaderValue::from_str(&t).unwrap());
        assert!(c.request_is_cleared(&h, b("192.0.2.10")));
    }
}
