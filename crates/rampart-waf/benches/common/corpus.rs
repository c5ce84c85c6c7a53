//! Every request of CRS's regression suite, as (label, request).

use std::fs;
use std::path::Path;

use rampart_waf::conformance::{build_request, Request, TestFile};
use rampart_waf::{Intervention, MatchedRule, RuleSet, Transaction};

pub fn corpus(crs: &Path) -> Vec<(String, Request)> {
    let mut out = Vec::new();
    let mut files = Vec::new();
    let tests = crs.join("tests/regression/tests");
    for group in fs::read_dir(&tests).expect("CRS tests").flatten() {
        for file in fs::read_dir(group.path()).into_iter().flatten().flatten() {
            if file.path().extension().is_some_and(|e| e == "yaml") {
                files.push(file.path());
            }
        }
    }
    files.sort();
    for path in files {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let Ok(tf) = serde_yaml::from_str::<TestFile>(&text) else {
            continue;
        };
        for case in &tf.tests {
            for (n, stage) in case.stages.iter().enumerate() {
                if let Ok(req) = build_request(&stage.input) {
                    out.push((format!("{}-{} stage {n}", tf.rule_id, case.test_id), req));
                }
            }
        }
    }
    out
}

/// One whole exchange of a corpus request; what the engine decided.
pub fn run(rules: &RuleSet, req: &Request) -> (Vec<MatchedRule>, Option<Intervention>) {
    let tx = exchange(rules, req, |_| {});
    (tx.matched_rules().to_vec(), tx.intervention().cloned())
}

/// One whole exchange of `req` through all phases; `before` runs on the
/// transaction just before phase 1 (to set what a host would).
pub fn exchange<'r>(
    rules: &'r RuleSet,
    req: &Request,
    before: impl FnOnce(&mut Transaction<'r>),
) -> Transaction<'r> {
    let mut tx = Transaction::new(rules);
    tx.set_connection("127.0.0.1", 40000, "127.0.0.1", 80);
    tx.set_request_line(&req.method, &req.uri, &req.version);
    for (k, v) in &req.headers {
        tx.add_request_header(k, v);
    }
    before(&mut tx);
    tx.process_request_headers();
    tx.append_request_body(&req.body);
    tx.process_request_body();
    tx.set_response_status(200, "HTTP/1.1");
    tx.add_response_header("Content-Type", b"text/plain");
    tx.process_response_headers();
    tx.process_response_body();
    tx.process_logging();
    tx
}

/// CRS as shipped in `shared/corpora` (tests and benchmarks read it there;
/// the gateway never does).
pub fn crs_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR")
            .expect("run by cargo, which sets CARGO_MANIFEST_DIR"),
    )
    .join("../../../shared/corpora/crs")
}
