//! libinjection's keyword table, looked up without allocating.
//!
//! The table itself (SQL words, multi-word phrases and the fingerprint
//! blacklist, ~9,400 entries) is the one `libinjectionrs` publishes as
//! `sqli::sqli_data::SQL_KEYWORDS`, read at run time. Its own lookup
//! upper-cases the word into a fresh `String` on every call; this one hashes
//! the word upper-cased on the fly into a static index, filled once in place,
//! and compares case-insensitively: the tokenizer looks up every word of
//! every argument.
//!
//! Like C libinjection's `bsearch_keyword_type`, a lookup distinguishes "in the
//! table with type `n` (bareword)" from "not in the table": the phrase table
//! relies on that (`LOCK IN` is a bareword entry on the way to
//! `LOCK IN SHARE MODE`).

use libinjectionrs::sqli::sqli_data::SQL_KEYWORDS;
use libinjectionrs::sqli::TokenType;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU16, AtomicUsize};
use std::sync::Once;

/// Type char of fingerprint entries in the keyword table.
const FINGERPRINT_TYPE: u8 = b'F';

/// Longest fingerprint libinjection checks (`LIBINJECTION_SQLI_MAX_TOKENS`).
const MAX_FINGERPRINT: usize = 5;

/// Slots of the hash index: a power of two at least three times the
/// table's length, so at most a third are used and every probe sequence
/// reaches a free slot soon.
const SLOTS: usize = (SQL_KEYWORDS.len() * 3).next_power_of_two();

/// A free slot. Table positions fit below it (checked at compile time).
const EMPTY: u16 = u16::MAX;
const _: () = assert!(SQL_KEYWORDS.len() < EMPTY as usize);

/// The hash index, slot -> table position, keyed by the upper-cased word.
/// Static and filled once in place: the lookup must not touch the heap,
/// not even on its first call. Relaxed loads are plain loads; `BUILT`'s
/// `call_once` orders the filling before every lookup.
static INDEX: [AtomicU16; SLOTS] = [const { AtomicU16::new(EMPTY) }; SLOTS];
static BUILT: Once = Once::new();

/// Longest table word (set with `INDEX`): a longer key equals no entry.
static LONGEST: AtomicUsize = AtomicUsize::new(0);

/// FNV-1a over the ASCII-upper-cased bytes, then a multiplicative mix so
/// that the low bits the index uses depend on every byte.
fn hash_upper(word: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in word {
        h = (h ^ u64::from(b.to_ascii_uppercase())).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize
}

/// True when `table_word` (stored upper-case) equals `key` upper-cased
/// (ASCII letters only, as C's `cstrcasecmp` does).
fn equals_upper(table_word: &[u8], key: &[u8]) -> bool {
    table_word.len() == key.len()
        && table_word
            .iter()
            .zip(key)
            .all(|(t, k)| *t == k.to_ascii_uppercase())
}

/// Fills the index. The table is sorted without duplicates (tested), so
/// each word has one entry; an entry holding a lower-case ASCII letter can
/// never equal an upper-cased key, and is left out exactly as the binary
/// search could never return it.
fn build_index() {
    let mut longest = 0;
    for (position, k) in SQL_KEYWORDS.iter().enumerate() {
        let word = k.word.as_bytes();
        if word.iter().any(u8::is_ascii_lowercase) {
            continue;
        }
        longest = longest.max(word.len());
        let mut slot = hash_upper(word) & (SLOTS - 1);
        while INDEX[slot].load(Relaxed) != EMPTY {
            slot = (slot + 1) & (SLOTS - 1);
        }
        // Below `EMPTY`, by the compile-time check.
        INDEX[slot].store(position as u16, Relaxed);
    }
    LONGEST.store(longest, Relaxed);
}

/// The type char (`k`, `f`, `n`, `F`, ...) of `word` in the keyword table, or
/// `None` when the table has no such entry.
///
/// A hash lookup on the upper-cased word: the tokenizer looks up every word
/// of every value, and the binary search it replaces (the same answers, see
/// the tests) took a tenth of a JSON body's parse.
pub(crate) fn lookup(word: &[u8]) -> Option<u8> {
    BUILT.call_once(build_index);
    if word.len() > LONGEST.load(Relaxed) {
        return None;
    }
    let mut slot = hash_upper(word) & (SLOTS - 1);
    loop {
        let position = INDEX[slot].load(Relaxed);
        if position == EMPTY {
            return None;
        }
        // Positions come from enumerating the table: always in range.
        let entry = SQL_KEYWORDS.get(usize::from(position))?;
        if equals_upper(entry.word.as_bytes(), word) {
            return Some(entry.token_type);
        }
        slot = (slot + 1) & (SLOTS - 1);
    }
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
    use core::cmp::Ordering;
    use libinjectionrs::sqli::sqli_data::Keyword;

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

    /// The hash lookup finds what a binary search of the whole table finds,
    /// for every table word in either case and mixed case, and for near
    /// misses (one byte longer or shorter, other bytes, long words).
    #[test]
    fn hash_lookup_agrees_with_whole_table_search() {
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
            let mixed: Vec<u8> = word
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    if i % 2 == 0 {
                        b.to_ascii_lowercase()
                    } else {
                        *b
                    }
                })
                .collect();
            assert_eq!(lookup(&mixed), whole(&mixed), "{}", k.word);
            let mut changed = word.to_vec();
            if let Some(last) = changed.last_mut() {
                *last ^= 0x80;
            }
            assert_eq!(lookup(&changed), whole(&changed), "{}", k.word);
        }
        let long = b"SELECT".repeat(20);
        assert_eq!(lookup(&long), None);
        assert_eq!(lookup(&long), whole(&long));
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
