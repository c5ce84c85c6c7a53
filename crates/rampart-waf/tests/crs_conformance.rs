//! CRS v4 end to end: the whole rule set loads with no unsupported rule,
//! and CRS's own regression suite passes at (at least) the recorded rate.
//! Run in release for speed:
//! `cargo test -p rampart-waf --release --test crs_conformance -- --nocapture`.

use std::path::PathBuf;
use std::time::Instant;

use rampart_waf::conformance::{
    crs_rule_set, load_test_file, run_case, run_suite, test_files, Outcome, Overrides,
};

/// Passed tests required (of 5,045; the 21 skipped only check the web
/// server's own status code, which `rampart waf conformance` checks against the
/// real front door). Raise it as the engine improves.
const FLOOR: usize = 5024;

fn crs_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR")
            .expect("run by cargo, which sets CARGO_MANIFEST_DIR"),
    )
    .join("../../../shared/corpora/crs")
}

#[test]
fn crs_loads_without_unsupported_rules() {
    let rules = crs_rule_set(&crs_dir()).expect("CRS loads");
    for u in rules.unsupported() {
        eprintln!("unsupported: {} at {}: {}", u.id, u.location, u.reason);
    }
    assert!(rules.rules().len() > 500, "{} rules", rules.rules().len());
    assert!(rules.unsupported().is_empty());
}

#[test]
fn crs_regression_suite() {
    let started = Instant::now();
    let rules = crs_rule_set(&crs_dir()).expect("CRS loads");
    let loaded = started.elapsed();
    let tests = crs_dir().join("tests/regression/tests");
    let report = run_suite(&rules, &tests, &Overrides::default());
    for (group, failures) in report.failures_by_group() {
        eprintln!("{group}: {} failed", failures.len());
        for f in failures {
            if let Outcome::Failed(why) = &f.outcome {
                eprintln!("  {}-{}: {why}", f.rule_id, f.test_id);
            }
        }
    }
    let summary = report.summary();
    eprintln!(
        "loaded in {loaded:?}, ran in {:?}",
        started.elapsed() - loaded
    );
    println!("{summary}");
    assert!(
        summary.passed >= FLOOR,
        "{summary} is below the floor of {FLOOR}"
    );
}

/// The value memo (see `RuleSet::set_value_memo`) changes no outcome of
/// the regression suite: each case runs with the memo off, then twice with
/// it on (the first run fills the memo with the case's values, the second
/// finds them: every repeated value is a hit, and every stretch of rules
/// whose values all have its bits is ruled out), and all three agree.
/// Stretches do not back off here: each arrival looks at its bits.
#[test]
fn value_memo_changes_no_outcome() {
    let mut with_memo = crs_rule_set(&crs_dir()).expect("CRS loads");
    with_memo.set_stretch_backoff(false);
    let mut without = crs_rule_set(&crs_dir()).expect("CRS loads");
    without.set_value_memo(false);
    let (mut cases, mut differ) = (0, Vec::new());
    for (_, file) in test_files(&crs_dir().join("tests/regression/tests")) {
        let Ok(tests) = load_test_file(&file) else {
            continue;
        };
        for case in &tests.tests {
            let expected = run_case(&without, case);
            let first = run_case(&with_memo, case);
            let again = run_case(&with_memo, case);
            if first != expected || again != expected {
                differ.push(format!(
                    "{}-{}: {expected:?} / {first:?} / {again:?}",
                    tests.rule_id, case.test_id
                ));
            }
            cases += 1;
        }
    }
    eprintln!("{cases} cases compared with the memo off, filling it and finding it");
    assert!(cases > 5000, "{cases} cases");
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
