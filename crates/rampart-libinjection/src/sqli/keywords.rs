//! libinjection's keyword table, looked up without allocating.
//!
//! The table itself (SQL words, multi-word phrases and the fingerprint
//! blacklist, ~9,400 entries) is the one `libinjectionrs` publishes as
//! `sqli::sqli_data::SQL_KEYWORDS`, read at run time. Its own lookup
//! upper-cases the word into a fresh `String` on every call; this one compares
//! case-insensitively in place, which matters because the tokenizer looks up
//! every word of every argument.
//!
//! Like C libinjection's `bsearch_keyword_type`, a lookup distinguishes "in the
//! table with type `n` (bareword)" from "not in the table": the phrase table
//! relies on that (`LOCK IN` is a bareword entry on the way to
//! `LOCK IN SHARE MODE`).

use core::cmp::Ordering;
use libinjectionrs::sqli::sqli_data::{Keyword, SQL_KEYWORDS};
use libinjectionrs::sqli::TokenType;
use std::sync::OnceLock;

/// Type char of fingerprint entries in the keyword table.
const FINGERPRINT_TYPE: u8 = b'F';

/// Longest fingerprint libinjection checks (`LIBINJECTION_SQLI_MAX_TOKENS`).
const MAX_FINGERPRINT: usize = 5;

/// Compares a table word (stored upper-case) with `key` as if `key` were
/// upper-cased (ASCII letters only, as C's `cstrcasecmp` does).
fn compare_upper(table_word: &[u8], key: &[u8]) -> Ordering {
    for (t, k) in table_word.iter().zip(key) {
        let k = k.to_ascii_uppercase();
        if *t != k {
            return t.cmp(&k);
        }
    }
    table_word.len().cmp(&key.len())
}

/// Per first byte `b`, the table entries starting with it are
/// `starts[b]..starts[b + 1]` (the table is sorted, so they are adjacent).
/// Built once, in place (no heap: the lookup must not allocate).
fn first_byte_starts() -> &'static [u32; 257] {
    static STARTS: OnceLock<[u32; 257]> = OnceLock::new();
    STARTS.get_or_init(|| {
        let mut starts = [0u32; 257];
        for (b, start) in starts.iter_mut().enumerate() {
            // Entries whose first byte is below `b` (the empty word sorts
            // first); the table has ~9,400 entries, far below `u32::MAX`.
            let below = SQL_KEYWORDS.partition_point(|k: &Keyword| {
                k.word
                    .as_bytes()
                    .first()
                    .is_some_and(|f| usize::from(*f) < b)
                    || k.word.is_empty()
            });
            *start = below as u32;
        }
        starts
    })
}

/// The type char (`k`, `f`, `n`, `F`, ...) of `word` in the keyword table, or
/// `None` when the table has no such entry.
///
/// A binary search among the entries that start with the word's first
/// byte (upper-cased): the tokenizer looks up every word of every value,
/// and a search of the whole table took most of a short value's parse.
pub(crate) fn lookup(word: &[u8]) -> Option<u8> {
    let entries = match word.first() {
        Some(first) => {
            let b = usize::from(first.to_ascii_uppercase());
            let starts = first_byte_starts();
            &SQL_KEYWORDS[starts[b] as usize..starts[b + 1] as usize]
        }
        None => SQL_KEYWORDS,
    };
    entries
        .binary_search_by(|k: &Keyword| compare_upper(k.word.as_bytes(), word))
        .ok()
        .map(|idx| entries[idx].token_type)
}

/// Whether `fingerprint` (e.g. `s&sos`) is on libinjection's blacklist: the
/// table stores it as `0` followed by the upper-cased fingerprint.
pub(crate) fn is_blacklisted(fingerprint: &[u8]) -> bool {
    if fingerprint.is_empty() || fingerprint.len() > MAX_FINGERPRINT {
        return false;
    }
    let mut key = [0u8; MAX_FINGERPRINT + 1];
    key[0] = b'0';
    key[1..=fingerprint.len()].copy_from_slice(fingerprint);
    lookup(&key[..=fingerprint.len()]) == Some(FINGERPRINT_TYPE)
}

/// Maps a table type char to the tokenizer's token type.
pub(crate) fn token_type_of(ch: u8) -> TokenType {
    match ch {
        b'k' => TokenType::Keyword,
        b'U' => TokenType::Union,
        b'B' => TokenType::Group,
        b'E' => TokenType::Expression,
        b't' => TokenType::SqlType,
        b'f' => TokenType::Function,
        b'n' => TokenType::Bareword,
        b'1' => TokenType::Number,
        b'v' => TokenType::Variable,
        b'o' => TokenType::Operator,
        b'&' => TokenType::LogicOperator,
        b'A' => TokenType::Collate,
        b'T' => TokenType::Tsql,
        b'F' => TokenType::Fingerprint,
        _ => TokenType::Bareword,
    }
}

/// The lookup the tokenizer calls for each word: the word's type, bareword
/// when the table does not know it (what C's `parse_word` does with a miss).
pub(crate) fn word_token_type(word: &str) -> TokenType {
    lookup(word.as_bytes()).map_or(TokenType::Bareword, token_type_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_so_binary_search_is_valid() {
        for pair in SQL_KEYWORDS.windows(2) {
            assert!(
                pair[0].word < pair[1].word,
                "{} !< {}",
                pair[0].word,
                pair[1].word
            );
        }
    }

    /// The search over one first byte's entries finds what a search of the
    /// whole table finds, for every table word in either case and for
    /// near misses.
    #[test]
    fn first_byte_search_agrees_with_whole_table_search() {
        let whole = |word: &[u8]| {
            SQL_KEYWORDS
                .binary_search_by(|k: &Keyword| compare_upper(k.word.as_bytes(), word))
                .ok()
                .map(|idx| SQL_KEYWORDS[idx].token_type)
        };
        for k in SQL_KEYWORDS {
            let word = k.word.as_bytes();
            assert_eq!(lookup(word), Some(k.token_type), "{}", k.word);
            let lower = word.to_ascii_lowercase();
            assert_eq!(lookup(&lower), whole(&lower), "{}", k.word);
            let mut longer = word.to_vec();
            longer.push(b'X');
            assert_eq!(lookup(&longer), whole(&longer), "{}", k.word);
            let shorter = &word[..word.len().saturating_sub(1)];
            assert_eq!(lookup(shorter), whole(shorter), "{}", k.word);
        }
        for b in 0..=255u8 {
            assert_eq!(lookup(&[b]), whole(&[b]), "byte {b}");
            assert_eq!(lookup(&[b, b'a']), whole(&[b, b'a']), "byte {b}");
        }
    }

    #[test]
    fn lookup_ignores_ascii_case() {
        assert_eq!(lookup(b"select"), Some(b'E'));
        assert_eq!(lookup(b"SeLeCt"), Some(b'E'));
        assert_eq!(lookup(b"union"), Some(b'U'));
    }

    #[test]
    fn bareword_entries_are_hits_and_unknown_words_are_misses() {
        assert_eq!(lookup(b"lock in"), Some(b'n'));
        assert_eq!(lookup(b"LOCK IN SHARE MODE"), Some(b'k'));
        assert_eq!(lookup(b"jacket"), None);
        assert_eq!(lookup(b""), None);
        assert_eq!(lookup(b"SELECT\0"), None);
    }

    #[test]
    fn blacklist_holds_classic_fingerprints_only() {
        assert!(is_blacklisted(b"s&sos"));
        assert!(is_blacklisted(b"1UE"));
        assert!(!is_blacklisted(b"n"));
        assert!(!is_blacklisted(b""));
        assert!(!is_blacklisted(b"s&sos&"));
    }

    #[test]
    fn word_type_agrees_with_the_crates_own_lookup_on_every_entry() {
        use libinjectionrs::sqli::sqli_data::lookup_word;
        for k in SQL_KEYWORDS {
            let lower = k.word.to_ascii_lowercase();
            assert_eq!(word_token_type(k.word), lookup_word(k.word), "{}", k.word);
            assert_eq!(word_token_type(&lower), lookup_word(&lower), "{lower}");
        }
        assert_eq!(word_token_type("jacket"), lookup_word("jacket"));
    }
}
