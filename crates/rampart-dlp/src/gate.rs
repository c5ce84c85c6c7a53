//! Candidate regions for the detectors that have no literal anchor.
//!
//! Cards, SSNs and phone numbers are runs of digits and separators; IBANs
//! are runs of capitals, digits and spaces. Their patterns cannot use a
//! literal prefilter, and a lazy DFA over a whole body costs far more than
//! one table-driven pass. This pass finds the maximal runs of each
//! detector's alphabet that are long and dense enough to hold a match; the
//! scanner then runs the real pattern on those runs only.
//!
//! Exactness: every match of a detector consists only of bytes of its
//! alphabet, so it lies inside one maximal run; each gate below is a
//! necessary condition of the pattern (a superset, never a filter that could
//! drop a true match). Searching a run with the byte after it still in the
//! haystack gives the pattern the same word-boundary context as a search of
//! the whole body, so the matches found are exactly the same.

use std::ops::Range;

/// Digits and the separators phone patterns allow: `0-9 .-()+`.
const NUM: u8 = 1;
const DIGIT: u8 = 2;
/// Card and SSN alphabet: digits, space, `-`.
const CARD: u8 = 4;
/// IBAN alphabet: `A-Z 0-9` and space.
const IBAN: u8 = 8;
const UPPER: u8 = 16;
/// `[A-Za-z0-9_]`: what `\b` (ASCII) counts as a word byte.
const WORD: u8 = 32;

static CLASS: [u8; 256] = build_classes();

const fn build_classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut k = 0;
        if c.is_ascii_digit() {
            k |= NUM | DIGIT | CARD | IBAN | WORD;
        }
        if matches!(c, b' ' | b'.' | b'-' | b'(' | b')' | b'+') {
            k |= NUM;
        }
        if matches!(c, b' ' | b'-') {
            k |= CARD;
        }
        if c == b' ' {
            k |= IBAN;
        }
        if c.is_ascii_uppercase() {
            k |= IBAN | UPPER | WORD;
        }
        if c.is_ascii_lowercase() || c == b'_' {
            k |= WORD;
        }
        t[b] = k;
        b += 1;
    }
    t
}

fn class(b: u8) -> u8 {
    CLASS[usize::from(b)]
}

/// Regions worth searching, per anchorless detector, in order.
#[derive(Debug, Default)]
pub(crate) struct Regions {
    pub card: Vec<Range<usize>>,
    pub ssn: Vec<Range<usize>>,
    pub phone: Vec<Range<usize>>,
    pub iban: Vec<Range<usize>>,
}

/// Minimum digits: a card has 13, an SSN 9, a phone number 5.
const CARD_DIGITS: usize = 13;
const SSN_DIGITS: usize = 9;
const PHONE_DIGITS: usize = 5;
/// An IBAN is at least 15 bytes: 2 letters, 2 digits, 11 more.
const IBAN_LEN: usize = 15;

/// Finds the candidate regions in `hay[from..]` (bytes before `from` are
/// context only, as for the patterns).
///
/// Every detector here needs digits, so the hot loop only looks for the
/// next digit, eight bytes at a time; around each digit it takes the maximal
/// run of bytes of either alphabet, and the runs with two digits or more are
/// split into each detector's runs when they are long or dense enough.
pub(crate) fn regions(hay: &[u8], from: usize) -> Regions {
    let mut out = Regions::default();
    let n = hay.len();
    // Bytes before `next` are covered: searched already, or known to hold
    // no digit and to end before the next run starts.
    let mut next = from;
    while let Some(digit) = next_digit(hay, next) {
        let mut start = digit;
        while start > next && class(hay[start - 1]) & (NUM | IBAN) != 0 {
            start -= 1;
        }
        let mut end = digit;
        let mut digits = 0;
        while end < n {
            let c = class(hay[end]);
            if c & (NUM | IBAN) == 0 {
                break;
            }
            digits += usize::from(c & DIGIT != 0);
            end += 1;
        }
        // Fewer digits than a phone number and shorter than an IBAN: no
        // detector here can match inside.
        if digits >= PHONE_DIGITS || (digits >= 2 && end - start >= IBAN_LEN) {
            mixed_run(hay, start..end, &mut out);
        }
        // `hay[end]` is outside both alphabets: no run spans it.
        next = end + 1;
    }
    out
}

/// The position of the first ASCII digit in `hay[from..]`.
fn next_digit(hay: &[u8], from: usize) -> Option<usize> {
    let tail = hay.get(from..)?;
    let mut chunks = tail.chunks_exact(8);
    let mut at = from;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let mask = digit_mask(word);
        if mask != 0 {
            return Some(at + (mask.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = chunks.remainder();
    rest.iter().position(u8::is_ascii_digit).map(|p| at + p)
}

const LOW_BYTES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The top bit of each byte of `word` that is an ASCII digit (SWAR: no
/// carry crosses a byte, as every addend stays below 0x100).
fn digit_mask(word: u64) -> u64 {
    let t = word ^ (0x30 * LOW_BYTES);
    let ten_or_more = ((t & !HIGH_BITS) + 0x76 * LOW_BYTES) & HIGH_BITS;
    !(ten_or_more | t) & HIGH_BITS
}

/// A maximal run of bytes of either alphabet: the maximal runs of each
/// alphabet inside it are maximal in the whole text too.
fn mixed_run(hay: &[u8], run: Range<usize>, out: &mut Regions) {
    for r in runs(hay, run.clone(), NUM) {
        numeric_run(hay, r, out);
    }
    for r in runs(hay, run, IBAN) {
        if r.len() >= IBAN_LEN && iban_run_ok(&hay[r.clone()]) {
            out.iban.push(r);
        }
    }
}

/// Maximal runs of bytes of class `k` within `within`.
fn runs(hay: &[u8], within: Range<usize>, k: u8) -> impl Iterator<Item = Range<usize>> + '_ {
    let end = within.end;
    let mut i = within.start;
    std::iter::from_fn(move || {
        while i < end && class(hay[i]) & k == 0 {
            i += 1;
        }
        if i >= end {
            return None;
        }
        let start = i;
        while i < end && class(hay[i]) & k != 0 {
            i += 1;
        }
        Some(start..i)
    })
}

fn numeric_run(hay: &[u8], run: Range<usize>, out: &mut Regions) {
    let bytes = &hay[run.clone()];
    let digits = bytes.iter().filter(|&&b| class(b) & DIGIT != 0).count();
    if digits < PHONE_DIGITS {
        return;
    }
    // A phone number has a `+`, a `(`, or two separated digit groups.
    let seps = bytes
        .iter()
        .filter(|&&b| matches!(b, b' ' | b'.' | b'-'))
        .count();
    if seps >= 2 || bytes.iter().any(|&b| b == b'+' || b == b'(') {
        out.phone.push(run.clone());
    }
    if digits < SSN_DIGITS {
        return;
    }
    // Cards and SSNs live in the sub-runs of digits, spaces and dashes.
    let mut i = run.start;
    while i < run.end {
        if class(hay[i]) & CARD == 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < run.end && class(hay[i]) & CARD != 0 {
            i += 1;
        }
        card_segment(hay, start..i, out);
    }
}

/// Both patterns start with `\b\d`: a digit not preceded by a word byte.
/// Digits counted from the first such start bound what any match can hold.
fn card_segment(hay: &[u8], seg: Range<usize>, out: &mut Regions) {
    let Some(first) = (seg.start..seg.end)
        .find(|&p| hay[p].is_ascii_digit() && (p == 0 || class(hay[p - 1]) & WORD == 0))
    else {
        return;
    };
    let tail = &hay[first..seg.end];
    let digits = tail.iter().filter(|b| b.is_ascii_digit()).count();
    if digits >= CARD_DIGITS {
        out.card.push(seg.clone());
    }
    if digits >= SSN_DIGITS && tail.iter().filter(|&&b| b == b'-').count() >= 2 {
        out.ssn.push(seg);
    }
}

/// An IBAN starts with two capitals and two digits.
fn iban_run_ok(run: &[u8]) -> bool {
    run.windows(4).any(|w| {
        w[0].is_ascii_uppercase()
            && w[1].is_ascii_uppercase()
            && w[2].is_ascii_digit()
            && w[3].is_ascii_digit()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_card_ssn_phone_and_iban_regions() {
        let hay =
            b"x 4111 1111 1111 1111, 536-22-1234 call +1 415 555 2671 DE89370400440532013000.";
        let r = regions(hay, 0);
        let text = |v: &Vec<Range<usize>>| -> Vec<String> {
            v.iter()
                .map(|r| String::from_utf8_lossy(&hay[r.clone()]).trim().to_string())
                .collect()
        };
        assert_eq!(text(&r.card), ["4111 1111 1111 1111"]);
        assert_eq!(text(&r.ssn), ["536-22-1234"]);
        assert!(text(&r.phone).contains(&"+1 415 555 2671".to_string()));
        // Spaces belong to the IBAN alphabet: the run starts at the phone.
        assert_eq!(text(&r.iban), ["1 415 555 2671 DE89370400440532013000"]);
    }

    #[test]
    fn clean_identifiers_and_dates_are_not_card_or_ssn_regions() {
        let hay =
            br#"{"id":"550e8400-e29b-41d4-a716-000000000123","created":"2024-01-15T10:30:00Z"}"#;
        let r = regions(hay, 0);
        assert!(r.card.is_empty() && r.ssn.is_empty() && r.iban.is_empty());
    }

    #[test]
    fn digit_mask_marks_exactly_the_digits() {
        for b in 0..=255u8 {
            let word = u64::from_le_bytes([b'x', b, b'x', b'x', b'x', b'x', b'x', b]);
            let want = if b.is_ascii_digit() {
                0x8000_0000_0000_8000
            } else {
                0
            };
            assert_eq!(digit_mask(word), want, "{b}");
        }
        let hay = b"abcdefghijklmnopqrstuvwxyz7";
        assert_eq!(next_digit(hay, 0), Some(26));
        assert_eq!(next_digit(b"abc", 0), None);
        assert_eq!(next_digit(b"abc", 9), None);
    }

    #[test]
    fn glued_digits_cannot_start_a_card() {
        // 20 digits, but the run starts inside a word: no `\b` before it.
        assert!(regions(b"a12345678901234567890 ", 0).card.is_empty());
        assert_eq!(regions(b"a 12345678901234567890 ", 0).card.len(), 1);
    }
}
