//! Building a bucket key from a request.
//!
//! A [`KeySpec`] lists the parts that identify a client for one limit —
//! client IP, an IP prefix, consumer id, API key id, route, a header, a
//! cookie, a JWT claim — in any combination. The key is compact bytes: the
//! limit's name, then each part as a tag byte, a length byte and the value.
//! IPs are raw octets; values longer than 32 bytes are replaced by the first
//! 16 bytes of their SHA-256, so a client sending an 8 KB header cannot make
//! the store hold 8 KB per key, and two values cannot collide in practice.
//!
//! When a part is absent (no such header, no identity), [`OnMissing`] says
//! what happens: skip this limit for the request, or fall back to a key made
//! of the client IP alone (the default: an attacker cannot dodge a limit by
//! leaving a header out).

use std::net::IpAddr;

use http::header::{HeaderName, COOKIE};
use rampart_core::{RequestCtx, RequestHead};
use sha2::{Digest, Sha256};

/// One component of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The client's address (after trusted-proxy resolution).
    ClientIp,
    /// The client's network: the address masked to `v4` / `v6` bits
    /// (e.g. 24 and 64), so one client cannot rotate through a whole prefix.
    IpPrefix { v4: u8, v6: u8 },
    /// `ctx.identity.consumer_id`.
    Consumer,
    /// `ctx.identity.key_id` (the API key's public id).
    ApiKeyId,
    /// The matched route's name.
    Route,
    /// The first value of a request header.
    Header(HeaderName),
    /// A cookie's value.
    Cookie(String),
    /// A verified JWT claim (`ctx.identity.claims`).
    Claim(String),
}

/// What to do when a part of the key is absent from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMissing {
    /// Key the limit by client IP alone (a separate bucket from any
    /// IP-keyed limit of the same name). Default.
    #[default]
    FallbackClientIp,
    /// Do not apply this limit to the request.
    Skip,
}

/// An ordered list of key parts plus the missing-part policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    parts: Vec<KeyPart>,
    on_missing: OnMissing,
}

/// Values up to this many bytes are kept as they are; longer ones hashed.
const MAX_RAW: usize = 32;
const HASHED: u8 = 0x80;
const FALLBACK_TAG: u8 = b'F';

impl KeySpec {
    pub fn new(parts: Vec<KeyPart>) -> Self {
        KeySpec {
            parts,
            on_missing: OnMissing::default(),
        }
    }

    /// A spec keyed by client IP only.
    pub fn client_ip() -> Self {
        KeySpec::new(vec![KeyPart::ClientIp])
    }

    pub fn on_missing(mut self, on_missing: OnMissing) -> Self {
        self.on_missing = on_missing;
        self
    }

    pub fn parts(&self) -> &[KeyPart] {
        &self.parts
    }

    /// The key for limit `scope` (the limit's name), or `None` when a part
    /// is absent and the policy is [`OnMissing::Skip`].
    pub fn build(&self, scope: &str, ctx: &RequestCtx, head: &RequestHead) -> Option<Box<[u8]>> {
        let mut key = Vec::with_capacity(scope.len() + 1 + 24 * self.parts.len());
        push_value(&mut key, b'S', scope.as_bytes());
        for part in &self.parts {
            if !push_part(&mut key, part, ctx, head) {
                return match self.on_missing {
                    OnMissing::Skip => None,
                    OnMissing::FallbackClientIp => Some(fallback_key(scope, ctx.client_ip)),
                };
            }
        }
        Some(key.into_boxed_slice())
    }
}

fn fallback_key(scope: &str, ip: IpAddr) -> Box<[u8]> {
    let mut key = Vec::with_capacity(scope.len() + 20);
    push_value(&mut key, b'S', scope.as_bytes());
    push_ip(&mut key, FALLBACK_TAG, ip);
    key.into_boxed_slice()
}

/// Appends one part; false when the request lacks it.
fn push_part(key: &mut Vec<u8>, part: &KeyPart, ctx: &RequestCtx, head: &RequestHead) -> bool {
    let id = ctx.identity.as_ref();
    match part {
        KeyPart::ClientIp => push_ip(key, b'I', ctx.client_ip),
        KeyPart::IpPrefix { v4, v6 } => push_ip(key, b'P', mask(ctx.client_ip, *v4, *v6)),
        KeyPart::Consumer => return push_opt(key, b'C', id.map(|i| i.consumer_id.as_bytes())),
        KeyPart::ApiKeyId => {
            return push_opt(
                key,
                b'K',
                id.and_then(|i| i.key_id.as_deref()).map(str::as_bytes),
            )
        }
        KeyPart::Route => return push_opt(key, b'R', ctx.route.as_deref().map(str::as_bytes)),
        KeyPart::Header(name) => {
            return push_opt(key, b'H', head.headers.get(name).map(|v| v.as_bytes()))
        }
        KeyPart::Cookie(name) => return push_opt(key, b'c', cookie(head, name)),
        KeyPart::Claim(name) => {
            let claim = id.and_then(|i| i.claim(name));
            return push_opt(key, b'J', claim.as_deref().map(str::as_bytes));
        }
    }
    true
}

fn push_opt(key: &mut Vec<u8>, tag: u8, value: Option<&[u8]>) -> bool {
    match value {
        Some(v) => {
            push_value(key, tag, v);
            true
        }
        None => false,
    }
}

/// Tag, length, value; long values become a 16-byte digest.
fn push_value(key: &mut Vec<u8>, tag: u8, value: &[u8]) {
    if value.len() <= MAX_RAW {
        key.push(tag);
        key.push(value.len() as u8);
        key.extend_from_slice(value);
    } else {
        let digest = Sha256::digest(value);
        key.push(tag | HASHED);
        key.push(16);
        key.extend_from_slice(&digest[..16]);
    }
}

fn push_ip(key: &mut Vec<u8>, tag: u8, ip: IpAddr) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => push_value(key, tag, &v4.octets()),
        IpAddr::V6(v6) => push_value(key, tag, &v6.octets()),
    }
}

/// The address with host bits cleared (IPv4-mapped IPv6 counts as IPv4).
pub fn mask(ip: IpAddr, v4_bits: u8, v6_bits: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let bits = u32::from(v4_bits.min(32));
            let m = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u32::from(v6_bits.min(128));
            let m = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// A cookie's value from the `Cookie` header(s); the first match wins.
fn cookie<'h>(head: &'h RequestHead, name: &str) -> Option<&'h [u8]> {
    head.headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            (pair[..eq].trim_ascii() == name.as_bytes()).then(|| pair[eq + 1..].trim_ascii())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::{AuthMethod, Identity};
    use std::net::SocketAddr;
    use std::sync::Arc;

    fn ctx(ip: &str) -> RequestCtx {
        let peer: SocketAddr = format!("{ip}:1000")
            .parse()
            .unwrap_or_else(|_| SocketAddr::new(ip.parse().unwrap(), 1000));
        RequestCtx::new("r".into(), peer.ip(), peer, Arc::from("l"))
    }

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        let mut b = http::Request::builder().uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn identity() -> Identity {
        Identity {
            method: AuthMethod::Jwt,
            consumer_id: Arc::from("c1"),
            tier: Some(Arc::from("gold")),
            scopes: Arc::from(Vec::<String>::new()),
            key_id: Some(Arc::from("k1")),
            claims: Some(Arc::new(serde_json::json!({"org": "acme"}))),
        }
    }

    #[test]
    fn client_ip_keys_differ_per_ip_and_per_scope() {
        let spec = KeySpec::client_ip();
        let h = head(&[]);
        let a = spec.build("s", &ctx("192.0.2.1"), &h).unwrap();
        let b = spec.build("s", &ctx("192.0.2.2"), &h).unwrap();
        let c = spec.build("t", &ctx("192.0.2.1"), &h).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, spec.build("s", &ctx("192.0.2.1"), &h).unwrap());
    }

    #[test]
    fn ip_prefix_groups_a_network() {
        let spec = KeySpec::new(vec![KeyPart::IpPrefix { v4: 24, v6: 64 }]);
        let h = head(&[]);
        let k = |ip| spec.build("s", &ctx(ip), &h).unwrap();
        assert_eq!(k("192.0.2.1"), k("192.0.2.200"));
        assert_ne!(k("192.0.2.1"), k("192.0.3.1"));
        assert_eq!(k("2001:db8::1"), k("2001:db8::ffff:1"));
        assert_ne!(k("2001:db8::1"), k("2001:db8:0:1::1"));
        assert_eq!(k("::ffff:192.0.2.9"), k("192.0.2.1"));
    }

    #[test]
    fn mask_handles_edges() {
        let ip: IpAddr = "192.0.2.77".parse().unwrap();
        assert_eq!(mask(ip, 0, 0), "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(mask(ip, 32, 0), ip);
        assert_eq!(mask(ip, 200, 0), ip);
    }

    #[test]
    fn identity_parts_and_combinations() {
        let mut c = ctx("192.0.2.1");
        c.identity = Some(identity());
        c.route = Some(Arc::from("api"));
        let h = head(&[]);
        let spec =
            KeySpec::new(vec![KeyPart::Consumer, KeyPart::Route]).on_missing(OnMissing::Skip);
        let key = spec.build("s", &c, &h).unwrap();
        assert!(key.windows(2).any(|w| w == b"c1"));
        assert!(key.windows(3).any(|w| w == b"api"));
        for part in [KeyPart::ApiKeyId, KeyPart::Claim("org".into())] {
            let spec = KeySpec::new(vec![part]).on_missing(OnMissing::Skip);
            assert!(spec.build("s", &c, &h).is_some());
        }
        let spec = KeySpec::new(vec![KeyPart::Claim("nope".into())]).on_missing(OnMissing::Skip);
        assert!(spec.build("s", &c, &h).is_none());
    }

    #[test]
    fn missing_part_skips_or_falls_back_to_ip() {
        let c = ctx("192.0.2.1");
        let h = head(&[]);
        let parts = vec![KeyPart::Header(HeaderName::from_static("x-tenant"))];
        assert!(KeySpec::new(parts.clone())
            .on_missing(OnMissing::Skip)
            .build("s", &c, &h)
            .is_none());
        let fb = KeySpec::new(parts).build("s", &c, &h).unwrap();
        assert_eq!(fb, fallback_key("s", c.client_ip));
        // The fallback bucket is not the plain client-IP bucket.
        assert_ne!(fb, KeySpec::client_ip().build("s", &c, &h).unwrap());
    }

    #[test]
    fn header_and_cookie_values() {
        let c = ctx("192.0.2.1");
        let h = head(&[("x-tenant", "t1"), ("cookie", "a=1; sid = xyz ;b=2")]);
        let spec = KeySpec::new(vec![KeyPart::Header(HeaderName::from_static("x-tenant"))]);
        assert!(spec.build("s", &c, &h).unwrap().ends_with(b"t1"));
        let spec = KeySpec::new(vec![KeyPart::Cookie("sid".into())]).on_missing(OnMissing::Skip);
        assert!(spec.build("s", &c, &h).unwrap().ends_with(b"xyz"));
        let spec = KeySpec::new(vec![KeyPart::Cookie("zz".into())]).on_missing(OnMissing::Skip);
        assert!(spec.build("s", &c, &h).is_none());
    }

    #[test]
    fn long_values_are_hashed_to_a_bounded_size() {
        let c = ctx("192.0.2.1");
        let long = "v".repeat(4000);
        let other = format!("{}w", "v".repeat(3999));
        let spec = KeySpec::new(vec![KeyPart::Header(HeaderName::from_static("x-t"))]);
        let a = spec.build("s", &c, &head(&[("x-t", &long)])).unwrap();
        let b = spec.build("s", &c, &head(&[("x-t", &other)])).unwrap();
        assert!(a.len() <= 2 + 1 + 2 + 16);
        assert_ne!(a, b);
    }

    #[test]
    fn part_boundaries_cannot_be_shifted() {
        let c = ctx("192.0.2.1");
        let spec = KeySpec::new(vec![
            KeyPart::Header(HeaderName::from_static("x-a")),
            KeyPart::Header(HeaderName::from_static("x-b")),
        ]);
        let a = spec
            .build("s", &c, &head(&[("x-a", "ab"), ("x-b", "c")]))
            .unwrap();
        let b = spec
            .build("s", &c, &head(&[("x-a", "a"), ("x-b", "bc")]))
            .unwrap();
        assert_ne!(a, b);
    }
}
