//! Conformance runner for CRS's own regression tests (go-ftw YAML).
//!
//! CRS runs its tests against a web server with the engine in
//! `DetectionOnly`, blocking paranoia level 4 and a few test settings, and
//! reads the error log for `[id "…"]`. Here each stage becomes a
//! [`Transaction`](crate::Transaction) through all five phases, and the ids
//! of the *logged* matched rules stand in for the log. A stage passes when
//! every `expect_ids` id (or `log_contains: id "N"`) fired and no
//! `no_expect_ids` id (or `no_log_contains`) did. Tests that only check
//! the web server's status code have nothing to check here and are skipped,
//! as are tests named in an overrides file.

mod exchange;
mod model;
mod server;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

pub use exchange::{build_request, parse_raw, raw_bytes, Request};
pub use model::{Input, LogExpect, Output, OverridesFile, Stage, TestCase, TestFile};

use crate::{LoadError, RuleSet};

/// The engine and CRS settings of CRS's test environment.
pub const CRS_TEST_SETUP: &str = r#"
SecRuleEngine DetectionOnly
SecRequestBodyAccess On
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecRequestBodyJsonDepthLimit 512
SecArgumentsLimit 1000
SecResponseBodyAccess On
SecResponseBodyMimeType text/plain text/html text/xml application/json
SecResponseBodyLimit 524288
SecResponseBodyLimitAction ProcessPartial
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" \
    "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" \
    "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecAction "id:900005,phase:1,nolog,pass,\
    setvar:tx.blocking_paranoia_level=4,\
    setvar:tx.crs_validate_utf8_encoding=1,\
    setvar:tx.arg_name_length=100,\
    setvar:tx.arg_length=400,\
    setvar:tx.total_arg_length=6400,\
    setvar:tx.max_num_args=255,\
    setvar:tx.max_file_size=64100,\
    setvar:tx.combined_file_sizes=65535"
"#;

/// Loads CRS from `crs_dir` (its `crs-setup.conf.example` and every
/// `rules/*.conf`, in name order) under [`CRS_TEST_SETUP`].
pub fn crs_rule_set(crs_dir: &Path) -> Result<RuleSet, LoadError> {
    let mut paths = vec![crs_dir.join("crs-setup.conf.example")];
    paths.extend(sorted_files(&crs_dir.join("rules"), ".conf"));
    RuleSet::load(&paths, CRS_TEST_SETUP)
}

fn sorted_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

/// Tests to skip: (rule id, test id) → reason.
#[derive(Debug, Default)]
pub struct Overrides {
    skip: HashMap<(u64, u32), String>,
}

impl Overrides {
    /// Reads a go-ftw overrides file (`test_overrides` entries).
    pub fn load(path: &Path) -> Result<Overrides, String> {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: OverridesFile =
            serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut skip = HashMap::new();
        for o in file.test_overrides {
            for t in o.test_ids {
                skip.insert((o.rule_id, t), o.reason.clone());
            }
        }
        Ok(Overrides { skip })
    }
}

/// The result of one test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

#[derive(Clone, Debug)]
pub struct TestResult {
    /// The rule file the test belongs to, e.g. `REQUEST-942-APPLICATION-ATTACK-SQLI`.
    pub group: String,
    pub rule_id: u64,
    pub test_id: u32,
    pub outcome: Outcome,
}

/// Counts of a run; displays as `conformance: N passed, M failed, K skipped`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conformance: {} passed, {} failed",
            self.passed, self.failed
        )?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

/// All results of a run.
#[derive(Debug, Default)]
pub struct Report {
    pub results: Vec<TestResult>,
}

impl Report {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for r in &self.results {
            match r.outcome {
                Outcome::Passed => s.passed += 1,
                Outcome::Failed(_) => s.failed += 1,
                Outcome::Skipped(_) => s.skipped += 1,
            }
        }
        s
    }

    /// Failures grouped by rule file.
    pub fn failures_by_group(&self) -> BTreeMap<&str, Vec<&TestResult>> {
        let mut groups: BTreeMap<&str, Vec<&TestResult>> = BTreeMap::new();
        for r in &self.results {
            if matches!(r.outcome, Outcome::Failed(_)) {
                groups.entry(&r.group).or_default().push(r);
            }
        }
        groups
    }
}

/// Every test file under `tests_dir` (`<GROUP>/<id>.yaml`) with its group,
/// groups and files in name order.
pub fn test_files(tests_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut groups: Vec<PathBuf> = fs::read_dir(tests_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    groups.sort();
    let mut files = Vec::new();
    for dir in groups {
        let group = dir.file_name().unwrap_or_default().to_string_lossy();
        for file in sorted_files(&dir, ".yaml") {
            files.push((group.to_string(), file));
        }
    }
    files
}

/// Runs every test under `tests_dir` (see [`test_files`]).
pub fn run_suite(rules: &RuleSet, tests_dir: &Path, overrides: &Overrides) -> Report {
    let mut report = Report::default();
    for (group, file) in test_files(tests_dir) {
        run_file(rules, &group, &file, overrides, &mut report);
    }
    report
}

fn run_file(rules: &RuleSet, group: &str, file: &Path, overrides: &Overrides, report: &mut Report) {
    let tests = match load_test_file(file) {
        Ok(tf) => tf,
        Err(e) => {
            report.results.push(TestResult {
                group: group.to_string(),
                rule_id: 0,
                test_id: 0,
                outcome: Outcome::Failed(e),
            });
            return;
        }
    };
    for case in &tests.tests {
        let outcome = match overrides.skip.get(&(tests.rule_id, case.test_id)) {
            Some(reason) => Outcome::Skipped(format!("override: {reason}")),
            None => run_case(rules, case),
        };
        report.results.push(TestResult {
            group: group.to_string(),
            rule_id: tests.rule_id,
            test_id: case.test_id,
            outcome,
        });
    }
}

/// Runs one test case: every stage must pass.
pub fn run_case(rules: &RuleSet, case: &TestCase) -> Outcome {
    let mut checked = false;
    for (n, stage) in case.stages.iter().enumerate() {
        let Some(expect) = expectations(&stage.output) else {
            continue;
        };
        checked = true;
        let req = match build_request(&stage.input) {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(format!("stage {n}: {e}")),
        };
        // A request the server turns away never reaches the engine.
        let fired = server::server_view(req)
            .map(|req| exchange::run(rules, &stage.input, &req))
            .unwrap_or_default();
        if let Some(why) = unmet(&expect, &fired) {
            return Outcome::Failed(format!("stage {n}: {why}, fired {:?}", fired.ids));
        }
    }
    if checked {
        Outcome::Passed
    } else {
        Outcome::Skipped("only checks the web server's response".into())
    }
}

/// Why `fired` does not meet `expect`, if it does not.
fn unmet(expect: &Expect, fired: &exchange::Fired) -> Option<String> {
    let missing: Vec<u64> = expect
        .ids
        .iter()
        .filter(|id| !fired.ids.contains(id))
        .copied()
        .collect();
    let unwanted: Vec<u64> = expect
        .forbidden
        .iter()
        .filter(|id| fired.ids.contains(id))
        .copied()
        .collect();
    if !missing.is_empty() || !unwanted.is_empty() {
        return Some(format!("missing {missing:?}, unwanted {unwanted:?}"));
    }
    if let Some(re) = expect.log_match.iter().find(|re| !re.is_match(&fired.log)) {
        return Some(format!("log does not match {re}"));
    }
    if let Some(re) = expect
        .log_no_match
        .iter()
        .find(|re| re.is_match(&fired.log))
    {
        return Some(format!("log matches {re}"));
    }
    None
}

/// Reads one go-ftw test file.
pub fn load_test_file(path: &Path) -> Result<TestFile, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The statuses a stage accepts from the web server (`status: 400` or a list).
pub fn expected_statuses(output: &Output) -> Vec<u16> {
    let as_u16 = |v: &serde_yaml::Value| v.as_u64().and_then(|n| u16::try_from(n).ok());
    match &output.status {
        Some(serde_yaml::Value::Sequence(list)) => list.iter().filter_map(as_u16).collect(),
        Some(v) => as_u16(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// What a stage expects of the engine.
#[derive(Default)]
struct Expect {
    ids: Vec<u64>,
    forbidden: Vec<u64>,
    /// `log.match_regex` / `no_match_regex`, against the log lines.
    log_match: Vec<regex::Regex>,
    log_no_match: Vec<regex::Regex>,
}

/// The stage's expectations, or `None` when it checks nothing the engine
/// decides (only the web server's status).
fn expectations(output: &Output) -> Option<Expect> {
    let mut e = Expect::default();
    let compile = |p: &Option<String>| p.as_deref().and_then(|p| regex::Regex::new(p).ok());
    if let Some(log) = &output.log {
        e.ids.extend(&log.expect_ids);
        e.forbidden.extend(&log.no_expect_ids);
        e.log_match.extend(compile(&log.match_regex));
        e.log_no_match.extend(compile(&log.no_match_regex));
    }
    e.ids
        .extend(output.log_contains.as_deref().and_then(logged_id));
    e.forbidden
        .extend(output.no_log_contains.as_deref().and_then(logged_id));
    let any = !(e.ids.is_empty()
        && e.forbidden.is_empty()
        && e.log_match.is_empty()
        && e.log_no_match.is_empty());
    any.then_some(e)
}

/// `id "942100"` (the older `log_contains` form) → 942100.
fn logged_id(pattern: &str) -> Option<u64> {
    let at = pattern.find("id")?;
    let digits: String = pattern[at..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_log_forms() {
        assert_eq!(logged_id(r#"id "942100""#), Some(942100));
        assert_eq!(logged_id(r#"\[id \"920100\"\]"#), Some(920100));
        assert_eq!(logged_id("nothing"), None);
    }

    #[test]
    fn summary_line() {
        let s = Summary {
            passed: 3,
            failed: 1,
            skipped: 0,
        };
        assert_eq!(s.to_string(), "conformance: 3 passed, 1 failed");
    }
}
