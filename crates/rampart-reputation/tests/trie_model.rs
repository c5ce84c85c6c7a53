//! `IpTrie` against a naive linear model: for random prefixes and addresses, the trie's
//! longest match must equal the longest containing prefix found by scanning the list.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use rampart_reputation::IpTrie;

/// Prefixes drawn from a small address pool so that nesting and collisions are common.
fn v4_net() -> impl Strategy<Value = IpNet> {
    (0u32..16, 0u8..=32).prop_map(|(seed, len)| {
        let addr = Ipv4Addr::from(seed.wrapping_mul(0x0101_0101) ^ 0x0A00_0000);
        IpNet::V4(Ipv4Net::new(addr, len).unwrap())
    })
}

fn v6_net() -> impl Strategy<Value = IpNet> {
    (0u128..16, 0u8..=128).prop_map(|(seed, len)| {
        let addr =
            Ipv6Addr::from((0x2001_0db8u128 << 96) | seed.wrapping_mul(0x0001_0001_0001_0001));
        IpNet::V6(Ipv6Net::new(addr, len).unwrap())
    })
}

fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u32..16)
            .prop_map(|s| IpAddr::V4(Ipv4Addr::from(s.wrapping_mul(0x0101_0101) ^ 0x0A00_0000))),
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        (0u128..16).prop_map(|s| IpAddr::V6(Ipv6Addr::from(
            (0x2001_0db8u128 << 96) | s.wrapping_mul(0x0001_0001_0001_0001)
        ))),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

/// The model: the last-inserted value for the longest containing prefix.
fn model_lookup(entries: &[(IpNet, usize)], ip: IpAddr) -> Option<(IpNet, usize)> {
    let mut best: Option<(IpNet, usize)> = None;
    for (net, value) in entries {
        let net = net.trunc();
        if !net.contains(&ip) {
            continue;
        }
        match best {
            Some((b, _)) if b.prefix_len() > net.prefix_len() => {}
            _ => best = Some((net, *value)),
        }
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn trie_matches_linear_model(
        nets in prop::collection::vec(prop_oneof![v4_net(), v6_net()], 0..60),
        probes in prop::collection::vec(addr(), 1..40),
    ) {
        let entries: Vec<(IpNet, usize)> = nets.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
        let trie: IpTrie<usize> = entries.iter().copied().collect();
        for ip in probes {
            let got = trie.lookup(ip).map(|(net, value)| (net, *value));
            prop_assert_eq!(got, model_lookup(&entries, ip), "ip {}", ip);
            let all: Vec<u8> = trie.matches(ip).map(|(net, _)| net.prefix_len()).collect();
            prop_assert!(all.windows(2).all(|w| w[0] < w[1]), "matches not shortest-first");
        }
    }
}
