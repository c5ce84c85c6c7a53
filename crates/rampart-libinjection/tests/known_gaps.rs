//! Where libinjectionrs 0.1.1 disagrees with C libinjection, pinned.
//!
//! Each test asserts today's (wrong) answer next to the input C libinjection
//! flags, with C's fingerprint in the comment. Between them, these two port
//! bugs account for all 18 corpus lines by which SQLi detection misses the bar.
//! When the dependency is fixed these tests fail: delete them and un-ignore
//! `sqli_corpus_meets_libinjection_bar` in `tests/corpus.rs`.

use rampart_libinjection::detect_sqli;

/// The 3-token whitelist keeps `<x> INTO OUTFILE|DUMPFILE <y>` as SQLi; C
/// compares the `INTO` prefix case-insensitively, the port case-sensitively.
/// 13 corpus lines (fingerprints `1ks`, `sks`, `vks`).
#[test]
fn lowercase_into_outfile_is_missed_while_uppercase_is_detected() {
    // C libinjection: SQLi, fingerprint "1ks", for both spellings.
    assert_eq!(detect_sqli(b"1 INTO OUTFILE 'asd'").unwrap(), "1ks");
    assert_eq!(detect_sqli(b"1 into outfile 'asd'"), None);
}

/// Multi-word keywords are built a word at a time through the phrase table,
/// whose intermediate entries (`LOCK IN`, `LOCK IN SHARE`, `IN BOOLEAN`, ...)
/// have type "bareword". C merges on any table hit; the port treats a
/// bareword hit as no hit, so three-word phrases never form.
/// 5 corpus lines (fingerprints `1kUEn`, `sk)o(`, `sk)f(`).
#[test]
fn three_word_phrase_lock_in_share_mode_is_missed() {
    // C libinjection: SQLi, fingerprint "1kUEn".
    assert_eq!(
        detect_sqli(
            b"-1 LOCK IN SHARE MODE UNION SELECT table_name from information_schema.tables"
        ),
        None
    );
}

#[test]
fn three_word_phrase_in_boolean_mode_is_missed() {
    // C libinjection: SQLi, fingerprint "sk)o(".
    assert_eq!(detect_sqli(b"1' IN BOOLEAN MODE) RLIKE (SELECT 1)#"), None);
}
