//! A set of IP networks (IPv4 and IPv6 CIDRs) with fast membership tests.
//!
//! Networks are flattened into sorted, merged address ranges at build time, so
//! a lookup is one binary search with no allocation, whatever the list size.

use std::net::IpAddr;

use ipnet::IpNet;

/// An immutable set of networks.
#[derive(Debug, Clone, Default)]
pub struct IpSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl IpSet {
    pub fn new<'a>(nets: impl IntoIterator<Item = &'a IpNet>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        IpSet {
            v4: merge(v4),
            v6: merge(v6),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Whether `ip` is in any network. IPv4-mapped IPv6 addresses
    /// (`::ffff:a.b.c.d`) are checked as the IPv4 address they carry.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4)),
                None => find(&self.v6, u128::from(a)),
            },
        }
    }
}

fn merge<T: Ord + Copy + num_like::Succ>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if start <= last.1.succ_saturating() => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

fn find<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    // Index of the first range starting after x; the candidate is the one before.
    let i = ranges.partition_point(|&(start, _)| start <= x);
    i > 0 && x <= ranges[i - 1].1
}

mod num_like {
    pub trait Succ {
        fn succ_saturating(self) -> Self;
    }
    impl Succ for u32 {
        fn succ_saturating(self) -> Self {
            self.saturating_add(1)
        }
    }
    impl Succ for u128 {
        fn succ_saturating(self) -> Self {
            self.saturating_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(nets: &[&str]) -> IpSet {
        let nets: Vec<IpNet> = nets.iter().map(|n| n.parse().unwrap()).collect();
        IpSet::new(&nets)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_membership_at_edges() {
        let s = set(&["10.0.0.0/8", "192.168.1.0/24", "203.0.113.7/32"]);
        assert!(s.contains(ip("10.0.0.0")));
        assert!(s.contains(ip("10.255.255.255")));
        assert!(!s.contains(ip("11.0.0.0")));
        assert!(!s.contains(ip("9.255.255.255")));
        assert!(s.contains(ip("192.168.1.77")));
        assert!(!s.contains(ip("192.168.2.1")));
        assert!(s.contains(ip("203.0.113.7")));
        assert!(!s.contains(ip("203.0.113.8")));
    }

    #[test]
    fn v6_and_mapped_v4() {
        let s = set(&["2001:db8::/32", "198.51.100.0/24"]);
        assert!(s.contains(ip("2001:db8:1::5")));
        assert!(!s.contains(ip("2001:db9::1")));
        assert!(s.contains(ip("::ffff:198.51.100.9")));
        assert!(!s.contains(ip("::1")));
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        let s = set(&["10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/24", "0.0.0.0/0"]);
        assert_eq!(s.v4.len(), 1);
        assert!(s.contains(ip("255.255.255.255")));
        assert!(!set(&[]).contains(ip("1.2.3.4")));
    }
}
