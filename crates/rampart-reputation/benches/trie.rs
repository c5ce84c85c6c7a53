//! Longest-prefix lookup speed of `IpTrie` with ~100k prefixes (IPv4 and IPv6).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, Criterion};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rampart_reputation::IpTrie;

fn random_v4_prefixes(count: usize) -> Vec<IpNet> {
    (0..count)
        .map(|_| {
            let len = fastrand::u8(8..=32);
            IpNet::V4(
                Ipv4Net::new(Ipv4Addr::from(fastrand::u32(..)), len)
                    .unwrap()
                    .trunc(),
            )
        })
        .collect()
}

fn random_v6_prefixes(count: usize) -> Vec<IpNet> {
    (0..count)
        .map(|_| {
            let len = fastrand::u8(16..=64);
            IpNet::V6(
                Ipv6Net::new(Ipv6Addr::from(fastrand::u128(..)), len)
                    .unwrap()
                    .trunc(),
            )
        })
        .collect()
}

fn lookups(c: &mut Criterion) {
    fastrand::seed(7);
    let mut prefixes = random_v4_prefixes(90_000);
    prefixes.extend(random_v6_prefixes(10_000));
    let trie: IpTrie<u32> = prefixes
        .iter()
        .enumerate()
        .map(|(i, net)| (*net, i as u32))
        .collect();
    let v4: Vec<IpAddr> = (0..4096)
        .map(|_| IpAddr::V4(Ipv4Addr::from(fastrand::u32(..))))
        .collect();
    // Addresses inside stored prefixes, so the walk goes deep.
    let v4_hits: Vec<IpAddr> = prefixes
        .iter()
        .take(4096)
        .map(|net| net.network())
        .collect();
    let v6: Vec<IpAddr> = prefixes[90_000..]
        .iter()
        .take(4096)
        .map(|net| net.network())
        .collect();

    let mut group = c.benchmark_group("ip_trie_100k");
    for (name, addrs) in [("v4_random", &v4), ("v4_hits", &v4_hits), ("v6_hits", &v6)] {
        group.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(trie.lookup(black_box(addrs[i])))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
