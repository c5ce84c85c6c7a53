//! What a token is bound to: the client's network prefix and User-Agent.
//!
//! Binding to a prefix rather than the exact address keeps tokens valid for
//! clients behind NAT pools and IPv6 privacy addresses, while a token copied
//! to another network or another client program stops working.

use std::net::IpAddr;

use crate::crypto::sha256;

/// IPv4 prefix length used for binding and per-subnet counters.
pub const V4_PREFIX: u8 = 24;
/// IPv6 prefix length used for binding.
pub const V6_PREFIX: u8 = 64;

/// A 16-byte digest of (client prefix, User-Agent). Equal bindings mean the
/// same network and the same client program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Binding(pub [u8; 16]);

impl Binding {
    /// Binds to the /24 (IPv4) or /64 (IPv6) of `ip` and to `user_agent`.
    pub fn new(ip: IpAddr, user_agent: &[u8]) -> Self {
        let prefix = ip_prefix(ip);
        let ua = sha256(user_agent);
        let mut buf = [0u8; 17 + 32];
        buf[..17].copy_from_slice(&prefix);
        buf[17..].copy_from_slice(&ua);
        let digest = sha256(&buf);
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        Binding(out)
    }
}

/// The client's network prefix as 17 bytes: a family tag and the masked
/// address. IPv4-mapped IPv6 addresses count as IPv4.
pub fn ip_prefix(ip: IpAddr) -> [u8; 17] {
    let mut out = [0u8; 17];
    match canonical(ip) {
        IpAddr::V4(v4) => {
            out[0] = 4;
            let masked = u32::from(v4) & (u32::MAX << (32 - V4_PREFIX));
            out[1..5].copy_from_slice(&masked.to_be_bytes());
        }
        IpAddr::V6(v6) => {
            out[0] = 6;
            let masked = u128::from(v6) & (u128::MAX << (128 - V6_PREFIX));
            out[1..].copy_from_slice(&masked.to_be_bytes());
        }
    }
    out
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as the IPv4 address it carries.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn same_prefix_same_binding() {
        let ua = b"Mozilla/5.0";
        assert_eq!(
            Binding::new(ip("203.0.113.7"), ua),
            Binding::new(ip("203.0.113.200"), ua)
        );
        assert_eq!(
            Binding::new(ip("2001:db8:1:2::1"), ua),
            Binding::new(ip("2001:db8:1:2:ffff::9"), ua)
        );
        assert_eq!(
            Binding::new(ip("::ffff:203.0.113.7"), ua),
            Binding::new(ip("203.0.113.9"), ua)
        );
    }

    #[test]
    fn other_prefix_or_agent_changes_binding() {
        let b = Binding::new(ip("203.0.113.7"), b"a");
        assert_ne!(b, Binding::new(ip("203.0.114.7"), b"a"));
        assert_ne!(b, Binding::new(ip("203.0.113.7"), b"b"));
        assert_ne!(
            Binding::new(ip("2001:db8:1:2::1"), b"a"),
            Binding::new(ip("2001:db8:1:3::1"), b"a")
        );
    }
}
