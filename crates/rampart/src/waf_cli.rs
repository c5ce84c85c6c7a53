//! `rampart waf …`: load a rule set and report on it, and run CRS's own
//! regression tests against the engine.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use rampart_waf::conformance::{self, Outcome, Overrides};
use rampart_waf::RuleSet;

/// The files of a CRS folder in load order: its setup file (the operator's
/// `crs-setup.conf`, else the shipped `.example`), then `rules/*.conf` by name,
/// then any extra rule files.
pub fn crs_files(crs: &Path, extra: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let setup = ["crs-setup.conf", "crs-setup.conf.example"]
        .iter()
        .map(|n| crs.join(n))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "{}: no crs-setup.conf or crs-setup.conf.example",
                crs.display()
            )
        })?;
    let rules_dir = crs.join("rules");
    let mut rules: Vec<PathBuf> = std::fs::read_dir(&rules_dir)
        .with_context(|| format!("cannot read {}", rules_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    rules.sort();
    if rules.is_empty() {
        bail!("{}: no .conf rule files", rules_dir.display());
    }
    let mut files = vec![setup];
    files.extend(rules);
    files.extend(extra.iter().cloned());
    Ok(files)
}

/// `rampart waf check`: loads the rules and prints counts and every rule that
/// could not be compiled (with its reason). Fails on a load error.
pub fn check(crs: &Path, extra: &[PathBuf]) -> anyhow::Result<bool> {
    let files = crs_files(crs, extra)?;
    let started = std::time::Instant::now();
    let rules = RuleSet::load(&files, "").map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("loaded {} files in {:.0?}", files.len(), started.elapsed());
    println!("rules: {}", rules.rules().len());
    use rampart_waf::parser::Phase;
    for phase in [
        Phase::RequestHeaders,
        Phase::RequestBody,
        Phase::ResponseHeaders,
        Phase::ResponseBody,
        Phase::Logging,
    ] {
        println!(
            "  phase {}: {} entries",
            phase.number(),
            rules.phase(phase).len()
        );
    }
    for u in rules.unsupported() {
        println!("unsupported: rule {} at {}: {}", u.id, u.location, u.reason);
    }
    println!("unsupported rules: {}", rules.unsupported().len());
    Ok(rules.unsupported().is_empty())
}

/// `rampart waf conformance`: CRS's go-ftw regression tests, in process.
/// Prints failures by rule file; the last line is the summary.
pub fn conformance(
    crs: &Path,
    tests: Option<&Path>,
    overrides: Option<&Path>,
) -> anyhow::Result<bool> {
    let rules = conformance::crs_rule_set(crs).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tests = tests
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crs.join("tests/regression/tests"));
    let overrides = match overrides {
        Some(p) => Overrides::load(p).map_err(|e| anyhow::anyhow!(e))?,
        None => Overrides::default(),
    };
    let report = conformance::run_suite(&rules, &tests, &overrides);
    for (group, failures) in report.failures_by_group() {
        println!("{group}: {} failed", failures.len());
        for f in failures {
            if let Outcome::Failed(why) = &f.outcome {
                println!("  {}-{}: {why}", f.rule_id, f.test_id);
            }
        }
    }
    for r in &report.results {
        if let Outcome::Skipped(why) = &r.outcome {
            println!("skipped {}-{}: {why}", r.rule_id, r.test_id);
        }
    }
    let summary = report.summary();
    if summary.passed + summary.failed + summary.skipped == 0 {
        bail!(
            "no tests found under {} (expected <dir>/<RULE-FILE>/<id>.yaml)",
            tests.display()
        );
    }
    println!("{summary}");
    Ok(summary.failed == 0)
}
