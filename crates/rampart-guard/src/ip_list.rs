//! Static IP allow and deny lists (CIDR, IPv4 and IPv6) for a route.
//!
//! Deny is checked first; a non-empty allow list then admits only its
//! networks. The client address is the one the gateway resolved (the peer,
//! or the forwarded address from a trusted proxy).

use http::StatusCode;
use rampart_config::IpListPolicy;
use rampart_core::reason::codes;
use rampart_core::{Decision, Filter, IpSet, Mode, RequestCtx, RequestHead, Verdict};

pub struct IpListFilter {
    mode: Mode,
    allow: IpSet,
    deny: IpSet,
}

impl IpListFilter {
    pub fn new(policy: &IpListPolicy) -> Self {
        IpListFilter {
            mode: crate::mode(policy.mode),
            allow: IpSet::new(&policy.allow),
            deny: IpSet::new(&policy.deny),
        }
    }

    fn decide(&self, ctx: &RequestCtx) -> Decision {
        if self.deny.contains(ctx.client_ip) {
            return Decision::deny(
                StatusCode::FORBIDDEN,
                codes::IP_DENIED,
                "requests from your address are refused",
            );
        }
        if !self.allow.is_empty() && !self.allow.contains(ctx.client_ip) {
            return Decision::deny(
                StatusCode::FORBIDDEN,
                codes::IP_NOT_ALLOWED,
                "your address is not on this route's allow list",
            );
        }
        Decision::Continue
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
