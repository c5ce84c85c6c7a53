//! libinjection's second opinion on a blacklisted fingerprint
//! (`libinjection_sqli_not_whitelist`): short fingerprints are common in
//! ordinary text, so two- and three-token ones need more evidence.
//!
//! Differs from `libinjectionrs` 0.1.1 where that port differs from C: the
//! `<x> INTO OUTFILE <y>` exception compares `INTO` case-insensitively, as C
//! does. One deliberate difference from C, kept from the port: the
//! `sp_password` search ignores case (C's `memmem` does not), since SQL Server
//! does not care how the procedure name is spelt; it only ever adds
//! detections, and changes no verdict on the sample corpus.

use super::fold::Folded;
use libinjectionrs::sqli::TokenType;

/// A comment mentioning this is SQL Server's audit-log evasion.
const SP_PASSWORD: &[u8] = b"sp_password";

/// Whether the blacklisted parse `folded` of `input`, with fingerprint `fp`,
/// is still SQL injection after the whitelist.
pub(crate) fn confirms_sqli(input: &[u8], folded: &Folded, fp: &[u8]) -> bool {
    if fp.len() > 1
        && fp.last() == Some(&b'c')
        && input
            .windows(SP_PASSWORD.len())
            .any(|w| w.eq_ignore_ascii_case(SP_PASSWORD))
    {
        return true;
    }
    match fp.len() {
        2 => two_tokens(input, folded, fp),
        3 => three_tokens(folded, fp),
        _ => true,
    }
}

/// Fingerprints such as `1U`, `nc`, `1c`, `sc`.
fn two_tokens(input: &[u8], folded: &Folded, fp: &[u8]) -> bool {
    let [first, second, ..] = &folded.tokens;
    if fp[1] == b'U' {
        // "1 union" is plausible text; only folding or comments make it SQLi.
        return folded.stats_tokens != 2;
    }
    if second.val[0] == b'#' {
        return false; // `#` comments: too many false positives
    }
    let first_is = |t| first.token_type == t;
    let comment = second.token_type == TokenType::Comment;
    if first_is(TokenType::Bareword) && comment && second.val[0] != b'/' {
        return false; // `word--`, `word#`: only `/*` counts
    }
    if first_is(TokenType::Number) && comment {
        return number_then_comment(input, folded);
    }
    // `1-- foo` is prose; an attack scan ends with a bare `--`.
    !(second.len > 2 && second.val[0] == b'-')
}

/// `1c`: SQLi if the comment is `/*`, the parse folded anything, or the
/// number is directly followed by whitespace, `/*` or `--`.
fn number_then_comment(input: &[u8], folded: &Folded) -> bool {
    let [first, second, ..] = &folded.tokens;
    if second.val[0] == b'/' || folded.stats_tokens > 2 {
        return true;
    }
    // C indexes the input with the number's length, not its end offset;
    // kept so verdicts match. Past the end reads C's NUL terminator.
    let at = |i: usize| input.get(i).copied().unwrap_or(0);
    let next = at(first.len);
    // C's `char` is signed: bytes >= 0x80 compare as negative, so "<= 32".
    if next <= 32 || next >= 0x80 {
        return true;
    }
    matches!((next, at(first.len + 1)), (b'/', b'*') | (b'-', b'-'))
}

/// Three-token fingerprints: string concatenation, `x AND 1`, and keywords
/// in the middle other than MySQL's `INTO OUTFILE` / `INTO DUMPFILE`.
fn three_tokens(folded: &Folded, fp: &[u8]) -> bool {
    let [first, second, third, ..] = &folded.tokens;
    if fp == b"sos" || fp == b"s&s" {
        // `...foo' + 'bar...`: SQLi only if it closes and re-opens the quote.
        return first.str_open == 0 && third.str_close == 0 && first.str_close == third.str_open;
    }
    if matches!(fp, b"s&n" | b"n&1" | b"1&1" | b"1&v" | b"1&s") {
        // "sexy and 17" is text, "sexy and 17<18" is not.
        return folded.stats_tokens != 3;
    }
    if second.token_type == TokenType::Keyword {
        let v = &second.val[..second.len.min(second.val.len())];
        return v.len() >= 5 && v[..4].eq_ignore_ascii_case(b"INTO");
    }
    true
}

#[cfg(test)]
mod tests {
    use crate::detect_sqli;

    #[test]
    fn number_then_union_alone_is_not_sqli_but_folded_is() {
        assert_eq!(detect_sqli(b"1 union"), None);
        // A comment between them was folded away: "1U" from three tokens.
        assert_eq!(detect_sqli(b"1 /**/ union").unwrap(), "1U");
    }

    #[test]
    fn number_then_comment_depends_on_what_follows_the_number() {
        assert_eq!(detect_sqli(b"1234 --").unwrap(), "1c");
        assert_eq!(detect_sqli(b"1234/*").unwrap(), "1c");
        // Base64-ish junk that happens to end in `--`.
        assert_eq!(detect_sqli(b"1611-IioXXIG1ti8rspL2vbXFy"), None);
    }

    #[test]
    fn word_then_dash_comment_is_text_but_slash_star_is_sqli() {
        assert_eq!(detect_sqli(b"admin --"), None);
        assert_eq!(detect_sqli(b"admin /*").unwrap(), "nc");
    }

    #[test]
    fn sp_password_in_a_trailing_comment_is_sqli_in_any_case() {
        assert_eq!(detect_sqli(b"admin -- sp_password").unwrap(), "nc");
        assert_eq!(detect_sqli(b"admin -- SP_Password").unwrap(), "nc");
    }

    #[test]
    fn word_and_number_is_text_unless_folded() {
        assert_eq!(detect_sqli(b"sexy and 17"), None);
        assert!(detect_sqli(b"sexy and 17<18").is_some());
    }
}
