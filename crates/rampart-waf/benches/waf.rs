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

use common::{crs_rules, exchange, requests, rotation, ROTATIONS};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The gateway's allocator (`crates/rampart/src/main.rs`): the engine's
/// figures are those it has in the gateway.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    varied(c, &sets[0].1);
}

/// Distinct requests sent in turn (see `common::rotation`): argument,
/// cookie and body values change on every request while the headers
/// repeat as from one client, and, in `cold_get_3_args`, every header
/// value changes too. The honest figures for anything that remembers
/// values from one transaction to the next.
fn varied(c: &mut Criterion, rules: &rampart_waf::RuleSet) {
    let mut group = c.benchmark_group("crs_pl1_varied");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for name in ROTATIONS {
        let reqs = rotation(name, ROTATION_LEN).expect("a known rotation");
        for req in &reqs {
            assert!(exchange(rules, req).is_none(), "{name} is benign");
        }
        let mut turn = reqs.iter().cycle();
        group.bench_function(name, |b| {
            b.iter(|| {
                let req = turn.next().expect("an endless cycle");
                exchange(black_box(rules), black_box(req))
            })
        });
    }
    group.finish();
}

/// Distinct requests per rotation: more values than a memo of a thousand
/// entries holds, as from many clients.
const ROTATION_LEN: usize = 1000;

criterion_group!(benches, bench);
criterion_main!(benches);
