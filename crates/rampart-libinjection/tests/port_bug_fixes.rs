//! The two places where `libinjectionrs` 0.1.1 disagrees with C libinjection,
//! asserted the C way.
//!
//! rampart's `detect_sqli` does its own folding and whitelisting so that both
//! inputs classes below are detected with C's fingerprints. Between them these
//! two port bugs cost 18 corpus lines (36 misses instead of 18). Each test also
//! checks that the port itself still gets it wrong, which is the reason
//! rampart does not simply call it; if one of those checks fails, the port has
//! been fixed and this crate could go back to delegating to it.

use rampart_libinjection::detect_sqli;

fn port_flags(input: &[u8]) -> bool {
    libinjectionrs::detect_sqli(input).is_injection()
}

/// The 3-token whitelist keeps `<x> INTO OUTFILE|DUMPFILE <y>` as SQLi; C
/// compares the `INTO` prefix case-insensitively (the port case-sensitively).
/// 13 corpus lines (fingerprints `1ks`, `sks`, `vks`).
#[test]
fn into_outfile_is_sqli_in_any_case() {
    // C libinjection: SQLi, fingerprint "1ks", for every spelling.
    assert_eq!(detect_sqli(b"1 INTO OUTFILE 'asd'").unwrap(), "1ks");
    assert_eq!(detect_sqli(b"1 into outfile 'asd'").unwrap(), "1ks");
    assert_eq!(detect_sqli(b"1 Into DumpFile 'asd'").unwrap(), "1ks");
    assert!(!port_flags(b"1 into outfile 'asd'"));
}

/// The same whitelist rule still clears other keywords in the middle, and a
/// bare `INTO` (too short to be `INTO OUTFILE`).
#[test]
fn other_middle_keywords_stay_whitelisted() {
    assert_eq!(detect_sqli(b"1 into 'asd'"), None);
    assert_eq!(detect_sqli(b"1 INTO 'asd'"), None);
}

/// Multi-word keywords are built a word at a time through the phrase table,
/// whose intermediate entries (`LOCK IN`, `LOCK IN SHARE`, `IN BOOLEAN`) have
/// type bareword. C merges on any table hit; the port treats a bareword hit as
/// no hit, so three-word phrases never form.
/// 5 corpus lines (fingerprints `1kUEn`, `sk)o(`, `sk)f(`).
#[test]
fn three_word_phrase_lock_in_share_mode_is_one_keyword() {
    let input = b"-1 LOCK IN SHARE MODE UNION SELECT table_name from information_schema.tables";
    // C libinjection: SQLi, fingerprint "1kUEn".
    assert_eq!(detect_sqli(input).unwrap(), "1kUEn");
    assert!(!port_flags(input));
}

#[test]
fn three_word_phrase_in_boolean_mode_is_one_keyword() {
    let input = b"1' IN BOOLEAN MODE) RLIKE (SELECT 1)#";
    // C libinjection: SQLi, fingerprint "sk)o(".
    assert_eq!(detect_sqli(input).unwrap(), "sk)o(");
    assert!(!port_flags(input));
}

/// Phrases form whatever the case and spacing of their words.
#[test]
fn phrases_form_in_lower_case_and_across_extra_whitespace() {
    assert_eq!(
        detect_sqli(b"-1 lock   in share\tmode union select table_name from t").unwrap(),
        "1kUEn"
    );
}
