//! The snapshot of CRS's initialisation (the first run of pure rules of
//! phase 1, computed at load: `eval::snapshot`) never changes a result:
//! every request of the CRS regression corpus gives the same matched rules
//! (ids, messages, logdata), the same intervention and the same final TX
//! state with the snapshot (shortcuts on) and without it (shortcuts off).
//! Several setups are tried: the conformance setup (`DetectionOnly`), the
//! benchmark's (`On`, paranoia levels 1 to 4), and setups with rules
//! before the run that write TX or remove rules with `ctl` for some
//! requests, where the snapshot must step aside; some transactions also
//! get a TX variable from the host before phase 1.

#[path = "../benches/common/corpus.rs"]
mod corpus;

use std::path::PathBuf;

use rampart_waf::conformance::{Request, CRS_TEST_SETUP};
use rampart_waf::{Intervention, MatchedRule, RuleSet};

fn load(setup: &str) -> RuleSet {
    let crs = corpus::crs_dir();
    let mut paths = vec![crs.join("crs-setup.conf.example")];
    let mut files: Vec<PathBuf> = std::fs::read_dir(crs.join("rules"))
        .expect("CRS rules")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    paths.extend(files);
    RuleSet::load(&paths, setup).expect("CRS loads")
}

/// The benchmark's setup (engine `On`) at a paranoia level, with `extra`
/// rules before the paranoia `SecAction`.
fn blocking_setup(paranoia: u8, extra: &str) -> String {
    format!(
        r#"
SecRuleEngine On
SecRequestBodyAccess On
SecResponseBodyAccess Off
SecRule REQUEST_HEADERS:Content-Type "^application/json" \
    "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
{extra}
SecAction "id:900000,phase:1,pass,nolog,\
    setvar:tx.blocking_paranoia_level={paranoia},\
    setvar:tx.detection_paranoia_level={paranoia}"
"#
    )
}

/// Rules before the run that, for some requests, write TX (the snapshot
/// no longer applies) or remove rules of the run with `ctl`.
const INTERFERING: &str = r#"
SecRule REQUEST_HEADERS:User-Agent "@rx (?i)(?:curl|python)" \
    "id:200010,phase:1,pass,nolog,setvar:tx.inbound_anomaly_score_threshold=1"
SecRule ARGS_NAMES "@rx ^[a-c]" \
    "id:200011,phase:1,pass,nolog,ctl:ruleRemoveById=901100-901125"
"#;

type Outcome = (
    Vec<MatchedRule>,
    Option<Intervention>,
    Vec<(String, Vec<u8>)>,
);

/// One whole exchange; `host_tx` sets a TX variable before phase 1, as
/// rampart does for partly read bodies.
fn run(rules: &RuleSet, req: &Request, host_tx: bool) -> Outcome {
    let tx = corpus::exchange(rules, req, |tx| {
        if host_tx {
            tx.set_tx_var("rampart_body_truncated", b"1");
        }
    });
    (
        tx.matched_rules().to_vec(),
        tx.intervention().cloned(),
        tx.tx_vars(),
    )
}

/// Runs every `step`-th corpus request with the snapshot and without it;
/// returns how many requests were compared.
fn compare(setup: &str, inputs: &[(String, Request)], step: usize) -> usize {
    let mut rules = load(setup);
    let (start, resume) = rules
        .init_snapshot()
        .expect("a snapshot of the initialisation");
    assert!(resume > start + 10, "a short run: {start}..{resume}");
    let sample: Vec<(usize, &(String, Request))> =
        inputs.iter().enumerate().step_by(step).collect();
    let with: Vec<Outcome> = sample
        .iter()
        .map(|(n, (_, req))| run(&rules, req, n % 7 == 3))
        .collect();
    rules.set_prefilter(false);
    for ((n, (label, req)), expected) in sample.iter().zip(&with) {
        let without = run(&rules, req, n % 7 == 3);
        assert_eq!(without.0, expected.0, "{label}: matched rules");
        assert_eq!(without.1, expected.1, "{label}: intervention");
        assert_eq!(without.2, expected.2, "{label}: TX");
    }
    sample.len()
}

#[test]
fn snapshot_agrees_under_the_conformance_setup() {
    let inputs = corpus::corpus(&corpus::crs_dir());
    assert!(inputs.len() > 4000, "{} corpus requests", inputs.len());
    let compared = compare(CRS_TEST_SETUP, &inputs, 1);
    eprintln!("{compared} requests agree (conformance setup)");
}

#[test]
fn snapshot_agrees_at_every_paranoia_level() {
    let inputs = corpus::corpus(&corpus::crs_dir());
    for paranoia in 1..=4 {
        let compared = compare(&blocking_setup(paranoia, ""), &inputs, 5);
        eprintln!("{compared} requests agree (PL{paranoia}, engine On)");
    }
}

#[test]
fn snapshot_steps_aside_when_earlier_rules_interfere() {
    let inputs = corpus::corpus(&corpus::crs_dir());
    let setup = blocking_setup(1, INTERFERING);
    let compared = compare(&setup, &inputs, 3);
    eprintln!("{compared} requests agree (TX written and rules removed before the run)");
    // The interfering rules do fire in the sample, so both paths are taken.
    let rules = load(&setup);
    let fired: std::collections::BTreeSet<u64> = inputs
        .iter()
        .step_by(3)
        .flat_map(|(_, req)| corpus::run(&rules, req).0)
        .map(|m| m.id)
        .collect();
    let fired = |id: u64| fired.contains(&id);
    assert!(
        fired(200010) && fired(200011),
        "interfering rules never fired"
    );
}
