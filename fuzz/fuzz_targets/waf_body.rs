//! Fuzzes the WAF's request body processors (URL-encoded, JSON, XML,
//! multipart) through a whole transaction with the built-in rules.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rampart_waf::{RuleSet, Transaction};

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| rampart_waf::builtin::builtin_rule_set(2).expect("built-in rules"))
}

const TYPES: [&str; 4] = [
    "application/x-www-form-urlencoded",
    "application/json",
    "application/xml",
    "multipart/form-data; boundary=b",
];

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let mut tx = Transaction::new(rules());
    tx.set_request_line("POST", "/fuzz", "HTTP/1.1");
    tx.add_request_header("Host", b"fuzz.test");
    tx.add_request_header("Content-Type", TYPES[usize::from(kind) % TYPES.len()].as_bytes());
    tx.add_request_header("Content-Length", body.len().to_string().as_bytes());
    tx.process_request_headers();
    tx.append_request_body(body);
    tx.process_request_body();
    let _ = tx.intervention();
});
