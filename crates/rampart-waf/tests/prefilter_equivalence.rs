//! The `@rx` prefilters never change a result.
//!
//! 1. Rule level: for every CRS link that has a prefilter and every value of
//!    the CRS regression corpus (URI, each header value, body), after the
//!    link's transformations: when the prefilter rules the value out, the
//!    regex indeed does not match it.
//! 2. Transaction level: every corpus request gives the same matched rules
//!    (ids, messages, logdata) and the same intervention with prefilters on
//!    and off.

#[path = "../benches/common/corpus.rs"]
mod corpus;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use rampart_waf::compile::{CompiledOp, CompiledRule};
use rampart_waf::conformance::crs_rule_set;
use rampart_waf::transform::apply_chain;

fn crs_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR")
            .expect("run by cargo, which sets CARGO_MANIFEST_DIR"),
    )
    .join("../../../shared/corpora/crs")
}

#[test]
fn prefilters_are_exact_on_the_crs_corpus() {
    let mut rules = crs_rule_set(&crs_dir()).expect("CRS loads");
    let inputs = corpus::corpus(&crs_dir());
    assert!(inputs.len() > 4000, "{} corpus requests", inputs.len());

    // 1. Rule level.
    let mut values: BTreeSet<Vec<u8>> = BTreeSet::new();
    for (_, req) in &inputs {
        values.insert(req.uri.clone().into_bytes());
        values.extend(req.headers.iter().map(|(_, v)| v.clone()));
        values.insert(req.body.clone());
    }
    let links: Vec<&CompiledRule> = rules
        .rules()
        .iter()
        .flat_map(|r| r.links())
        .filter(|l| l.prefilter.is_some())
        .collect();
    let rx = rules
        .rules()
        .iter()
        .flat_map(|r| r.links())
        .filter(|l| matches!(l.operator, CompiledOp::Rx(_)))
        .count();
    eprintln!("{} of {rx} @rx links have a prefilter", links.len());
    assert!(links.len() * 2 > rx, "too few prefilters: {}", links.len());
    let mut by_chain: HashMap<u32, Vec<&CompiledRule>> = HashMap::new();
    for link in links {
        by_chain.entry(link.chain_key).or_default().push(link);
    }
    let mut rejected = 0usize;
    for (chain, links) in &by_chain {
        let transforms = rules.transform_chain(*chain);
        for value in &values {
            let value = apply_chain(transforms, value);
            for link in links {
                if !rules.prefilter_rejects(link, &value) {
                    continue;
                }
                rejected += 1;
                let CompiledOp::Rx(re) = &link.operator else {
                    unreachable!("prefilters are only given to @rx links");
                };
                assert!(
                    !re.is_match(&value),
                    "rule {}: prefilter rejected a matching value {:?}",
                    link.id,
                    String::from_utf8_lossy(&value)
                );
            }
        }
    }
    eprintln!("{rejected} (value, rule) pairs ruled out, all correctly");

    // 2. Transaction level.
    let with: Vec<_> = inputs.iter().map(|(_, r)| corpus::run(&rules, r)).collect();
    rules.set_prefilter(false);
    for ((label, req), expected) in inputs.iter().zip(&with) {
        assert_eq!(&corpus::run(&rules, req), expected, "{label}");
    }
}
