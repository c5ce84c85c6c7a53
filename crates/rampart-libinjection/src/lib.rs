//! libinjection-compatible SQL-injection and XSS detection for rampart's
//! SecLang operators `@detectSQLi` and `@detectXSS`.
//!
//! The public surface is two functions that take the (already transformed)
//! bytes a rule targets:
//!
//! * [`detect_sqli`] returns the libinjection [`Fingerprint`] when the input is
//!   SQL injection (ModSecurity puts it in `TX:0` and the audit log);
//! * [`detect_xss`] returns whether the input is an XSS vector.
//!
//! SQLi is rampart's own implementation of libinjection's algorithm
//! (folding, blacklist, whitelist, the parse contexts) on top of the public
//! tokenizer and keyword table of the pure-Rust port [`libinjectionrs`] 0.1.1
//! (BSD-3-Clause); XSS is that port's detector, called as-is. Both meet
//! libinjection's own CI bar over its sample corpus in `shared/`
//! (`tests/corpus.rs`): SQLi misses 18 of 17,149 attack lines (bar 18) and
//! flags 21 of 421 benign lines (bar 21), XSS misses 5 of 1,645 (bar 18).
//! The port's own SQLi entry point misses 36 because of two bugs rampart's
//! folding and whitelist do not have (`tests/port_bug_fixes.rs`).

mod fingerprint;
mod sqli;
mod xss;

pub use fingerprint::Fingerprint;
pub use sqli::detect_sqli;
pub use xss::detect_xss;
