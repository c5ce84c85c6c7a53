//! Cost of `Keyring::verify` on a cache hit (one checksum, one HMAC-SHA256,
//! two hash lookups), with 1000 keys cached; and of a malformed key.

use criterion::{criterion_group, criterion_main, Criterion};
use rampart_store::*;
use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;

fn setup(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> (Keyring, String) {
    rt.block_on(async {
        let store = SqliteStore::open(dir).unwrap();
        let secret = ServerSecret::new(&[42u8; 32]).unwrap();
        let ring = Keyring::open(Arc::new(store), secret, KeyringOptions::default())
            .await
            .unwrap();
        let actor = Actor::system();
        let consumer = NewConsumer {
            id: Some("bench".into()),
            name: "bench".into(),
            scopes: vec!["read".into()],
            ..NewConsumer::default()
        };
        ring.create_consumer(consumer, &actor).await.unwrap();
        let mut last = String::new();
        for _ in 0..1000 {
            let key = NewKey {
                consumer_id: "bench".into(),
                env: KeyEnv::Live,
                name: "bench".into(),
                scopes: vec![],
                rate_limit: None,
                ttl_secs: None,
            };
            last = ring
                .create_key(key, &actor)
                .await
                .unwrap()
                .key
                .expose()
                .to_string();
        }
        (ring, last)
    })
}

fn bench_verify(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ring, key) = setup(&rt, dir.path());
    let ip: IpAddr = "203.0.113.9".parse().unwrap();
    let _guard = rt.enter();
    c.bench_function("verify_cache_hit", |b| {
        b.iter(|| black_box(ring.verify(black_box(&key), ip)).is_ok())
    });
    let mut typo = key.clone().into_bytes();
    typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    c.bench_function("verify_malformed", |b| {
        b.iter(|| black_box(ring.verify(black_box(&typo), ip)).is_err())
    });
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
