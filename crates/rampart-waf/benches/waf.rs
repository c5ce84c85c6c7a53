//! Engine-alone throughput through OWASP CRS v4 at paranoia levels 1 and 2.
//!
//! `cargo bench -p rampart-waf --bench waf`
//!
//! Each iteration is one whole exchange: a new [`Transaction`], the request
//! line and headers (phase 1), the body (phase 2), a small `200` response
//! (phases 3 and 4) and logging (phase 5). Throughput is reported in
//! requests per second ("elem/s").

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{crs_rules, exchange, requests};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let reqs = requests();
    for paranoia in [1u8, 2] {
        let rules = crs_rules(paranoia);
        for req in &reqs {
            let blocked = exchange(&rules, req);
            let attack = req.name.starts_with("attack");
            assert_eq!(
                blocked.is_some(),
                attack,
                "PL{paranoia} {}: {blocked:?}",
                req.name
            );
        }
        let mut group = c.benchmark_group(format!("crs_pl{paranoia}"));
        group.throughput(Throughput::Elements(1));
        group.sample_size(20);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        for req in &reqs {
            group.bench_function(req.name, |b| {
                b.iter(|| exchange(black_box(&rules), black_box(req)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
