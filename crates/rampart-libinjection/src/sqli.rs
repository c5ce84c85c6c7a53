//! `@detectSQLi`: libinjection's SQL-injection test, returning the fingerprint.

use crate::Fingerprint;
use libinjectionrs::{SqliFlags, SqliState};

/// Runs libinjection's SQLi test on `input` and returns the fingerprint of the
/// parse that matched, or `None` when the input is not SQL injection.
///
/// Like libinjection's `libinjection_sqli()`, this parses the input as-is
/// (ANSI, then MySQL if comments suggest it), then as if it were preceded by a
/// `'` when it contains one, then by a `"` when it contains one, and stops at
/// the first parse whose fingerprint is blacklisted and not whitelisted.
/// Empty input is never SQLi.
pub fn detect_sqli(input: &[u8]) -> Option<Fingerprint> {
    // `SqliState::detect` is libinjection_is_sqli(); on success its
    // `fingerprint` field holds the matching parse's fingerprint, so there is
    // no need for the extra re-parse that `libinjectionrs::detect_sqli` does.
    let mut state = SqliState::new(input, SqliFlags::FLAG_NONE);
    if state.detect() {
        Some(Fingerprint::from_nul_padded(state.fingerprint))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected fingerprints are what C libinjection returns for the same input.

    #[test]
    fn tautology_after_quote_is_sqli_with_fingerprint_s_and_sos() {
        assert_eq!(detect_sqli(b"1' OR '1'='1").unwrap(), "s&sos");
    }

    #[test]
    fn number_union_select_is_sqli_with_fingerprint_1ue() {
        assert_eq!(detect_sqli(b"1 UNION SELECT").unwrap(), "1UE");
    }

    #[test]
    fn union_select_from_is_sqli_with_fingerprint_1uenk() {
        assert_eq!(
            detect_sqli(b"-1 UNION SELECT password FROM users").unwrap(),
            "1UEnk"
        );
    }

    #[test]
    fn quote_then_comment_is_sqli_with_fingerprint_sc() {
        assert_eq!(detect_sqli(b"admin'--").unwrap(), "sc");
    }

    #[test]
    fn numeric_and_tautology_is_sqli_with_fingerprint_1_and_1() {
        assert_eq!(detect_sqli(b"1 AND 1=1").unwrap(), "1&1");
    }

    #[test]
    fn plain_words_are_not_sqli() {
        assert_eq!(detect_sqli(b"hello world"), None);
    }

    #[test]
    fn name_with_apostrophe_is_not_sqli() {
        assert_eq!(detect_sqli(b"O'Reilly"), None);
    }

    #[test]
    fn email_address_is_not_sqli() {
        assert_eq!(detect_sqli(b"jane.doe@example.com"), None);
    }

    #[test]
    fn json_snippets_are_not_sqli() {
        assert_eq!(detect_sqli(br#"{"name":"Jane","age":42}"#), None);
        assert_eq!(detect_sqli(br#"{"user":{"id":7,"tags":["a","b"]}}"#), None);
    }

    #[test]
    fn empty_input_is_not_sqli() {
        assert_eq!(detect_sqli(b""), None);
    }

    #[test]
    fn non_utf8_input_is_handled() {
        assert_eq!(detect_sqli(b"\xff\xfe\x00\x80 caf\xe9"), None);
        assert_eq!(detect_sqli(b"1' OR '1'='1 \xff").unwrap(), "s&sos");
    }
}
