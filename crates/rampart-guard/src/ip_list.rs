//! Static IP allow and deny lists (CIDR, IPv4 and IPv6), per route and per
//! listener, looked up in prefix tries.
//!
//! Deny is checked first; a non-empty allow list then admits only its
//! networks. On a route the client address is the one the gateway resolved
//! (the peer, or the forwarded address from a trusted proxy); on a listener,
//! checked at accept, it is the TCP peer.

use std::net::IpAddr;

use http::StatusCode;
use ipnet::IpNet;
use rampart_config::IpListPolicy;
use rampart_core::reason::{codes, Reason};
use rampart_core::{Decision, Filter, Mode, RequestCtx, RequestHead, Verdict};
use rampart_reputation::IpTrie;

/// An allow list and a deny list.
pub struct NetLists {
    allow: IpTrie<()>,
    deny: IpTrie<()>,
}

impl NetLists {
    pub fn new(allow: &[IpNet], deny: &[IpNet]) -> Self {
        let trie = |nets: &[IpNet]| nets.iter().map(|n| (n.trunc(), ())).collect();
        NetLists {
            allow: trie(allow),
            deny: trie(deny),
        }
    }

    /// Why `ip` is refused, if it is.
    pub fn refuses(&self, ip: IpAddr) -> Option<Reason> {
        let ip = ip.to_canonical();
        if self.deny.contains(ip) {
            return Some(codes::IP_DENIED);
        }
        if !self.allow.is_empty() && !self.allow.contains(ip) {
            return Some(codes::IP_NOT_ALLOWED);
        }
        None
    }
}

pub struct IpListFilter {
    mode: Mode,
    lists: NetLists,
}

impl IpListFilter {
    pub fn new(policy: &IpListPolicy) -> Self {
        IpListFilter {
            mode: crate::mode(policy.mode),
            lists: NetLists::new(&policy.allow, &policy.deny),
        }
    }

    fn decide(&self, ctx: &RequestCtx) -> Decision {
        match self.lists.refuses(ctx.client_ip) {
            Some(codes::IP_DENIED) => Decision::deny(
                StatusCode::FORBIDDEN,
                codes::IP_DENIED,
                "requests from your address are refused",
            ),
            Some(reason) => Decision::deny(
                StatusCode::FORBIDDEN,
                reason,
                "your address is not on this route's allow list",
            ),
            None => Decision::Continue,
        }
    }
}

impl Filter for IpListFilter {
    fn name(&self) -> &'static str {
        "ip_list"
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn request_headers<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        _head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        Verdict::Ready(self.decide(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx, head, now};
    use rampart_config::FilterMode;

    fn filter(allow: &[&str], deny: &[&str]) -> IpListFilter {
        IpListFilter::new(&IpListPolicy {
            mode: FilterMode::Enforce,
            allow: allow.iter().map(|s| s.parse().unwrap()).collect(),
            deny: deny.iter().map(|s| s.parse().unwrap()).collect(),
        })
    }

    fn reason(f: &IpListFilter, ip: &str) -> Option<&'static str> {
        let mut c = ctx(ip);
        let mut h = head("/", &[]);
        now(f.request_headers(&mut c, &mut h)).reason()
    }

    #[test]
    fn deny_list_refuses_members_only() {
        let f = filter(&[], &["203.0.113.0/24", "2001:db8::/32"]);
        assert_eq!(reason(&f, "203.0.113.9"), Some(codes::IP_DENIED));
        assert_eq!(reason(&f, "2001:db8::1"), Some(codes::IP_DENIED));
        assert_eq!(reason(&f, "198.51.100.1"), None);
    }

    #[test]
    fn allow_list_admits_members_only() {
        let f = filter(&["10.0.0.0/8"], &[]);
        assert_eq!(reason(&f, "10.1.2.3"), None);
        assert_eq!(reason(&f, "11.1.2.3"), Some(codes::IP_NOT_ALLOWED));
    }

    #[test]
    fn deny_wins_over_allow() {
        let f = filter(&["10.0.0.0/8"], &["10.0.0.5/32"]);
        assert_eq!(reason(&f, "10.0.0.5"), Some(codes::IP_DENIED));
        assert_eq!(reason(&f, "10.0.0.6"), None);
    }
}
