//! `rampart waf …`: load a rule set and report on it, and run CRS's own
//! regression tests against the engine.

use std::path::{Path, PathBuf};

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _};
use rampart_waf::conformance::{self, Outcome, Overrides, TestFile};
use rampart_waf::RuleSet;

/// The files of a CRS folder in load order (as the gateway loads them),
/// then any extra rule files.
pub fn crs_files(crs: &Path, extra: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = rampart_guard::waf::crs_files(crs).map_err(|e| anyhow::anyhow!(e))?;
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
    for phase in Phase::ALL {
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
    let mut report = conformance::run_suite(&rules, &tests, &overrides);
    front_door(&mut report, &tests)?;
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

const STATUS_ONLY: &str = "only checks the web server's response";

/// Tests that only check the web server's own status (a 400 for a malformed
/// request, say) never reach a WAF engine. rampart is the web server here, so
/// they are replayed on the wire against a real in-process gateway and pass
/// or fail on the status it answers.
fn front_door(report: &mut conformance::Report, tests: &Path) -> anyhow::Result<()> {
    let pending: Vec<usize> = (0..report.results.len())
        .filter(|&i| matches!(&report.results[i].outcome, Outcome::Skipped(w) if w == STATUS_ONLY))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (running, addr) = rt.block_on(start_front_door())?;
    for i in pending {
        let r = &report.results[i];
        let file = tests.join(&r.group).join(format!("{}.yaml", r.rule_id));
        let outcome = match stage_statuses(&file, r.test_id) {
            Ok(stages) => replay(addr, &stages),
            Err(e) => Outcome::Failed(e),
        };
        report.results[i].outcome = outcome;
    }
    rt.block_on(running.gateway.shutdown(Duration::from_secs(1)));
    Ok(())
}

/// A gateway with protocol checks only, in front of the sample API.
async fn start_front_door() -> anyhow::Result<(crate::Running, SocketAddr)> {
    let upstream = crate::sample_api::spawn("127.0.0.1:0".parse()?).await?;
    let text = format!(
        "[server]\nworkers = 1\nwatch = false\n[admin]\nenabled = false\n[log]\nlevel = \"error\"\naccess_log = false\n\
         [listeners.front]\naddress = \"127.0.0.1:0\"\n[upstreams.up]\nservers = [\"{upstream}\"]\n\
         [[routes]]\nname = \"all\"\nupstream = \"up\"\n"
    );
    let loaded =
        rampart_config::parse(&text, None, |_| None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let running = crate::start(loaded, None).await?;
    let addr = running
        .gateway
        .local_addr("front")
        .context("front door listener")?;
    Ok((running, addr))
}

/// One stage on the wire: the raw request and the statuses it accepts.
type WireStage = (Vec<u8>, Vec<u16>);

/// The wire stages of one test.
fn stage_statuses(file: &Path, test_id: u32) -> Result<Vec<WireStage>, String> {
    let parsed: TestFile = conformance::load_test_file(file)?;
    let case = parsed
        .tests
        .iter()
        .find(|t| t.test_id == test_id)
        .ok_or("test not found")?;
    case.stages
        .iter()
        .map(|s| {
            Ok((
                conformance::raw_bytes(&s.input)?,
                conformance::expected_statuses(&s.output),
            ))
        })
        .collect()
}

fn replay(addr: SocketAddr, stages: &[WireStage]) -> Outcome {
    for (n, (raw, want)) in stages.iter().enumerate() {
        if want.is_empty() {
            continue;
        }
        let got = send_raw(addr, raw);
        if !got.is_some_and(|s| want.contains(&s)) {
            return Outcome::Failed(format!(
                "stage {n}: front door answered {got:?}, expected one of {want:?}"
            ));
        }
    }
    Outcome::Passed
}

/// Sends raw bytes on a fresh connection; the status of the answer, if any.
fn send_raw(addr: SocketAddr, raw: &[u8]) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(raw).ok()?;
    // Read until the status line and headers are in (the connection may stay
    // open for keep-alive), or the server closes.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    head.split(' ').nth(1)?.parse().ok()
}
