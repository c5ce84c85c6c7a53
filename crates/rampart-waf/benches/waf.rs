//! Engine-alone throughput through OWASP CRS v4 at paranoia levels 1 and 2,
//! and through rampart's built-in rule set (the embedded default) at 1.
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
    let builtin = rampart_waf::builtin::builtin_rule_set(1).expect("built-in rules load");
    let sets = [
        ("crs_pl1", crs_rules(1)),
        ("crs_pl2", crs_rules(2)),
        ("builtin_pl1", builtin),
    ];
    for (name, rules) in &sets {
        // The benign requests pass and the attack is blocked, by each set;
        // the built-in set also refuses the 64 KB JSON body, whose
        // arguments exceed its `SecArgumentsLimit 1000` (rule 210006: a
        // body that could not be parsed within limits).
        for req in &reqs {
            let blocked = exchange(rules, req);
            let expected = req.name.starts_with("attack")
                || (*name == "builtin_pl1" && req.name == "post_json_64k");
            assert_eq!(
                blocked.is_some(),
                expected,
                "{name} {}: {blocked:?}",
                req.name
            );
        }
        let mut group = c.benchmark_group(*name);
        group.throughput(Throughput::Elements(1));
        group.sample_size(20);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        for req in &reqs {
            group.bench_function(req.name, |b| {
                b.iter(|| exchange(black_box(rules), black_box(req)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
