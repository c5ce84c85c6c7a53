//! Local store: one check over 100k distinct keys, and memory per key.
//!
//! Goal: ≤ 200 ns per check. Memory per tracked key is printed from the
//! store's own size accounting after filling it with 100k keys.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rampart_ratelimit::{CheckItem, Limit, LocalConfig, LocalStore, SystemClock};

const KEYS: usize = 100_000;

fn keys() -> Vec<Box<[u8]>> {
    // Shaped like real keys: scope tag + name, IP tag + 4 octets.
    (0..KEYS as u32)
        .map(|i| {
            let mut k = vec![b'S', 3, b'a', b'p', b'i', b'I', 4];
            k.extend_from_slice(&i.to_be_bytes());
            k.into_boxed_slice()
        })
        .collect()
}

fn bench_local(c: &mut Criterion) {
    let store = LocalStore::new(LocalConfig::default(), Arc::new(SystemClock::new()));
    let limit = Limit::per(1_000_000, Duration::from_secs(1)).unwrap();
    let items: Vec<[CheckItem; 1]> = keys()
        .into_iter()
        .map(|key| {
            [CheckItem {
                key,
                limit,
                cost: 1,
            }]
        })
        .collect();
    for i in &items {
        store.check_now(i);
    }
    let size = store.size();
    println!(
        "local store: {} keys, {} bytes, {:.1} bytes/key",
        size.keys,
        size.bytes,
        size.bytes as f64 / size.keys.max(1) as f64
    );
    let mut n = 0usize;
    c.bench_function("local_check_100k_keys", |b| {
        b.iter(|| {
            n = (n + 7919) % KEYS;
            black_box(store.check_now(black_box(&items[n])))
        })
    });
}

criterion_group!(benches, bench_local);
criterion_main!(benches);
