//! Helpers of the engine's tests.

use crate::compile::RuleSet;
use crate::eval::Transaction;

/// A GET run through phases 1 and 2.
pub(super) fn get<'r>(rules: &'r RuleSet, uri: &str, headers: &[(&str, &str)]) -> Transaction<'r> {
    let mut tx = Transaction::new(rules);
    tx.set_request_line("GET", uri, "HTTP/1.1");
    for (name, value) in headers {
        tx.add_request_header(name, value.as_bytes());
    }
    tx.process_request_headers();
    tx.process_request_body();
    tx
}
