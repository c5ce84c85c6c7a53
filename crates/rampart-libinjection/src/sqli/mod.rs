//! `@detectSQLi`: libinjection's SQL-injection test, returning the fingerprint.
//!
//! rampart's own implementation of libinjection's published algorithm
//! (`libinjection_is_sqli`): tokenize, fold to at most five tokens, look the
//! fingerprint up in the blacklist, then apply the whitelist. The tokenizer and
//! the keyword / fingerprint table come from `libinjectionrs`'s public API; the
//! folding ([`fold`]) and whitelist ([`whitelist`]) are ours, because that
//! crate's versions have two bugs the C library does not (see those modules).
//! Nothing on this path allocates.

mod fold;
mod keywords;
mod whitelist;

use crate::Fingerprint;
use libinjectionrs::sqli::SqliFlags;

/// The parses libinjection tries, in order: as-is, then as if preceded by `'`
/// (only if the input contains one), then by `"`. Each ANSI parse is retried
/// as MySQL when it met a MySQL-only comment (`#`, or `--` without a space).
#[derive(Clone, Copy)]
enum Context {
    /// Input as-is.
    Bare,
    /// Input continues a single-quoted string.
    SingleQuote,
    /// Input continues a double-quoted string (MySQL only, as in C).
    DoubleQuote,
}

fn flags(context: Context, mysql: bool) -> SqliFlags {
    let quote = match context {
        Context::Bare => SqliFlags::FLAG_QUOTE_NONE,
        Context::SingleQuote => SqliFlags::FLAG_QUOTE_SINGLE,
        Context::DoubleQuote => SqliFlags::FLAG_QUOTE_DOUBLE,
    };
    let dialect = if mysql {
        SqliFlags::FLAG_SQL_MYSQL
    } else {
        SqliFlags::FLAG_SQL_ANSI
    };
    quote | dialect
}

/// One parse: the fingerprint and whether it is SQLi, plus whether C would
/// re-parse as MySQL.
struct ParseOutcome {
    sqli: Option<Fingerprint>,
    reparse_as_mysql: bool,
}

/// C's `libinjection_sqli_fingerprint` followed by its fingerprint check
/// (blacklist, then whitelist).
fn check(input: &[u8], flags: SqliFlags) -> ParseOutcome {
    let folded = fold::fold(input, flags);
    let mut raw = [0u8; 8];
    for (slot, token) in raw.iter_mut().zip(&folded.tokens[..folded.len]) {
        *slot = token.token_type.to_char() as u8;
    }
    // An evil token means the parse could not be trusted: the whole
    // fingerprint becomes `X` (which the blacklist holds).
    if raw[..folded.len].contains(&b'X') {
        raw = *b"X\0\0\0\0\0\0\0";
    }
    let fp = Fingerprint::from_nul_padded(raw);
    let sqli = keywords::is_blacklisted(fp.as_bytes())
        && whitelist::confirms_sqli(input, &folded, fp.as_bytes());
    ParseOutcome {
        sqli: sqli.then_some(fp),
        reparse_as_mysql: folded.reparse_as_mysql,
    }
}

/// Tries `context` as ANSI SQL, then (if the parse asks for it) as MySQL.
fn check_context(input: &[u8], context: Context) -> Option<Fingerprint> {
    if let Context::DoubleQuote = context {
        return check(input, flags(context, true)).sqli;
    }
    let ansi = check(input, flags(context, false));
    if ansi.sqli.is_some() || !ansi.reparse_as_mysql {
        return ansi.sqli;
    }
    check(input, flags(context, true)).sqli
}

/// Runs libinjection's SQLi test on `input` and returns the fingerprint of the
/// parse that matched, or `None` when the input is not SQL injection.
///
/// Like libinjection's `libinjection_is_sqli()`, this parses the input as-is
/// (ANSI, then MySQL if comments suggest it), then as if it were preceded by a
/// `'` when it contains one, then by a `"` when it contains one, and stops at
/// the first parse whose fingerprint is blacklisted and not whitelisted.
/// Empty input is never SQLi.
pub fn detect_sqli(input: &[u8]) -> Option<Fingerprint> {
    if is_single_word(input) {
        return None;
    }
    parse_all(input)
}

/// True when `input` is one word (`[A-Za-z_][A-Za-z0-9_]*`) or one run of
/// digits, which libinjection never flags, so the parses need not run:
/// without a quote only the as-is parse runs, and without a comment it is
/// not retried as MySQL. That parse makes one token of the whole input: a
/// letter or `_` starts a word (the letters that may start a quoted
/// literal, `b'`, `n'`, `q'`, `u&'`, `x'`, `e'`, need the quote or `&`
/// after them), and a word runs to the next delimiter, none of which is a
/// letter, digit or `_`; a digit starts a number that runs over the
/// digits. One token gives a one-character fingerprint (or none, when the
/// folder drops a lone unary operator such as `NOT`), and the only such
/// fingerprint on the blacklist is `X`, the evil token, which neither a
/// word (its type comes from the keyword table, which has no evil entry)
/// nor a number is. Plain words and numbers are most values a WAF sees.
fn is_single_word(input: &[u8]) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    match input.first() {
        None => true,
        Some(first) if first.is_ascii_digit() => input.iter().all(u8::is_ascii_digit),
        Some(first) if first.is_ascii_alphabetic() || *first == b'_' => input.iter().all(word),
        Some(_) => false,
    }
}

/// The parses of [`detect_sqli`], without the single-word shortcut.
fn parse_all(input: &[u8]) -> Option<Fingerprint> {
    if input.is_empty() {
        return None;
    }
    check_context(input, Context::Bare)
        .or_else(|| {
            input
                .contains(&b'\'')
                .then(|| check_context(input, Context::SingleQuote))
                .flatten()
        })
        .or_else(|| {
            input
                .contains(&b'"')
                .then(|| check_context(input, Context::DoubleQuote))
                .flatten()
        })
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

    /// The single-word shortcut agrees with the full parses: every word of
    /// up to three characters over letters (the ones that start quoted
    /// literals among them), digits and `_`, every keyword-table entry that
    /// is a word in upper and lower case (`UNION`, `NOT`, `SELECT` ...),
    /// long words and long numbers.
    #[test]
    fn single_words_and_numbers_are_never_sqli_for_the_full_parses() {
        let alphabet: &[u8] = b"abenquxANQUXZz019_";
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for a in alphabet {
            inputs.push(vec![*a]);
            for b in alphabet {
                inputs.push(vec![*a, *b]);
                for c in alphabet {
                    inputs.push(vec![*a, *b, *c]);
                }
            }
        }
        for k in libinjectionrs::sqli::sqli_data::SQL_KEYWORDS {
            inputs.push(k.word.as_bytes().to_vec());
            inputs.push(k.word.to_ascii_lowercase().into_bytes());
        }
        inputs.push(b"a".repeat(40));
        inputs.push(b"select_union_from_where_order_by_1".to_vec());
        inputs.push(b"9".repeat(40));
        let mut words = 0;
        for input in &inputs {
            if !is_single_word(input) {
                continue;
            }
            words += 1;
            assert_eq!(
                parse_all(input),
                None,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert!(words > 5_000, "{words} words checked");
        // What the shortcut must leave to the parses.
        for input in [
            &b"1 OR 1"[..],
            b"1'",
            b"a-b",
            b"1abc",
            b"a.b",
            b"$x",
            b"a b",
        ] {
            assert!(
                !is_single_word(input),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
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
