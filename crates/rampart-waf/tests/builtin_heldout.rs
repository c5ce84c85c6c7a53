//! The built-in rule set on data it was not written against (paranoia 1):
//!
//! * CRS's regression tests for the attack rule files (REQUEST-930 to
//!   944): a test that expects a CRS attack rule to fire counts as an
//!   attack, one that only lists rules that must not fire counts as benign;
//! * libinjection's `false_positives.txt` (benign text that looks like
//!   SQL), sent as a query parameter and as a JSON string.
//!
//! Run with `--nocapture` for the figures. The floors are what the set
//! achieves; they keep changes honest rather than set a goal.

use std::fs;
use std::path::{Path, PathBuf};

use rampart_waf::builtin::builtin_rule_set;
use rampart_waf::conformance::{build_request, Request, TestFile};
use rampart_waf::{RuleSet, Transaction};

/// Percent of CRS attack tests blocked, at least.
const MIN_CRS_ATTACKS_BLOCKED: f64 = 24.0;
/// Percent of CRS benign (must-not-fire) tests blocked, at most.
const MAX_CRS_BENIGN_BLOCKED: f64 = 9.0;
/// Percent of libinjection's benign lines blocked, at most.
const MAX_LIBINJECTION_BENIGN_BLOCKED: f64 = 5.5;

fn shared() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR")
            .expect("run by cargo, which sets CARGO_MANIFEST_DIR"),
    )
    .join("../../../shared/corpora")
}

fn blocked(rules: &RuleSet, req: &Request) -> bool {
    let mut tx = Transaction::new(rules);
    tx.set_connection("192.0.2.10", 40000, "192.0.2.1", 80);
    tx.set_request_line(&req.method, &req.uri, &req.version);
    for (k, v) in &req.headers {
        tx.add_request_header(k, v);
    }
    tx.process_request_headers();
    tx.append_request_body(&req.body);
    tx.process_request_body();
    tx.intervention().is_some_and(|i| i.status == 403)
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn crs_regression_payloads() {
    let tests = shared().join("crs/tests/regression/tests");
    if !tests.is_dir() {
        eprintln!("skipped: no CRS tests");
        return;
    }
    let rules = builtin_rule_set(1).unwrap();
    let (mut attacks, mut attacks_blocked, mut benign, mut benign_blocked) = (0, 0, 0, 0);
    let mut by_file: std::collections::BTreeMap<u32, (usize, usize)> = Default::default();
    for dir in fs::read_dir(&tests).unwrap().flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        let Some(num) = name
            .strip_prefix("REQUEST-")
            .and_then(|r| r.get(..3))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if !(930..=944).contains(&num) {
            continue;
        }
        for file in files(&dir.path()) {
            let Ok(tf) = serde_yaml::from_str::<TestFile>(&fs::read_to_string(&file).unwrap())
            else {
                continue;
            };
            for case in &tf.tests {
                let Some(stage) = case.stages.first() else {
                    continue;
                };
                let Some(log) = &stage.output.log else {
                    continue;
                };
                let Ok(req) = build_request(&stage.input) else {
                    continue;
                };
                let attack = log
                    .expect_ids
                    .iter()
                    .any(|id| (930_000..945_000).contains(id));
                let only_negative = log.expect_ids.is_empty() && !log.no_expect_ids.is_empty();
                if attack {
                    let hit = usize::from(blocked(&rules, &req));
                    attacks += 1;
                    attacks_blocked += hit;
                    let entry = by_file.entry(num).or_default();
                    entry.0 += 1;
                    entry.1 += hit;
                } else if only_negative {
                    benign += 1;
                    benign_blocked += usize::from(blocked(&rules, &req));
                }
            }
        }
    }
    for (num, (total, hit)) in &by_file {
        println!("  REQUEST-{num}: {hit}/{total} = {:.1}%", pct(*hit, *total));
    }
    let (a, b) = (pct(attacks_blocked, attacks), pct(benign_blocked, benign));
    println!("CRS attack tests blocked: {attacks_blocked}/{attacks} = {a:.1}%");
    println!("CRS benign tests blocked: {benign_blocked}/{benign} = {b:.1}%");
    assert!(
        a >= MIN_CRS_ATTACKS_BLOCKED,
        "{a:.1}% < {MIN_CRS_ATTACKS_BLOCKED}%"
    );
    assert!(
        b <= MAX_CRS_BENIGN_BLOCKED,
        "{b:.1}% > {MAX_CRS_BENIGN_BLOCKED}%"
    );
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn libinjection_benign_lines() {
    let path = shared().join("libinjection/data/false_positives.txt");
    let Ok(text) = fs::read_to_string(&path) else {
        eprintln!("skipped: no libinjection data");
        return;
    };
    let rules = builtin_rule_set(1).unwrap();
    let (mut total, mut hits) = (0, 0);
    let mut shown = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Each line is URL-encoded, as libinjection's own test runner reads it.
        let decoded = percent_decode(line);
        let line = decoded.as_str();
        let query = Request {
            method: "GET".into(),
            uri: format!("/search?q={}", percent_encode(line)),
            version: "HTTP/1.1".into(),
            headers: vec![("Host".into(), b"api.example.com".to_vec())],
            body: Vec::new(),
        };
        let body = serde_json::json!({ "q": line }).to_string().into_bytes();
        let json = Request {
            method: "POST".into(),
            uri: "/search".into(),
            version: "HTTP/1.1".into(),
            headers: vec![
                ("Host".into(), b"api.example.com".to_vec()),
                ("Content-Type".into(), b"application/json".to_vec()),
            ],
            body,
        };
        for req in [query, json] {
            total += 1;
            if blocked(&rules, &req) {
                hits += 1;
                shown.push(line.to_string());
            }
        }
    }
    shown.dedup();
    for line in &shown {
        println!("  blocked: {line}");
    }
    let p = pct(hits, total);
    println!("libinjection benign requests blocked: {hits}/{total} = {p:.1}%");
    assert!(
        p <= MAX_LIBINJECTION_BENIGN_BLOCKED,
        "{p:.1}% > {MAX_LIBINJECTION_BENIGN_BLOCKED}%"
    );
}
