//! A trigram filter for the large `@pm` / `@pmFromFile` phrase lists
//! (those too large for the prefilter DFA, see `MAX_PM_PHRASES`).
//!
//! Each phrase (lower case, at least three bytes) contributes one of its
//! trigrams, hashed into a 65,536-bit table. A value can only hold a phrase
//! (ignoring ASCII case, as `@pm` compares) if, lower-cased, it holds that
//! phrase's chosen trigram, so a value none of whose trigrams hits the
//! table holds no phrase: the automaton need not run. Hash collisions only
//! let more values through. Which trigram a phrase contributes changes how
//! many benign values pass, never a result: the rarest one in ordinary
//! HTTP text is taken (a rough byte-frequency order below), so that the
//! words of benign values seldom hit the table.

/// Bytes from the most to the least common in benign header and argument
/// values; bytes not listed count as rare.
const COMMON: &[u8] = b" etaoinsrhldcumfpgwybvk0123456789-_./=;,:";

/// How common `b` is in benign values (0: rare).
fn commonness(b: u8) -> u32 {
    COMMON
        .iter()
        .position(|c| *c == b)
        .map_or(0, |p| (COMMON.len() - p) as u32)
}

/// The table index of a trigram (three lower-case bytes in the low 24 bits).
#[inline(always)]
fn slot(trigram: u32) -> usize {
    (trigram.wrapping_mul(0x9E37_79B1) >> 16) as usize
}

/// See the module documentation.
#[derive(Debug)]
pub struct TrigramFilter {
    bits: Box<[u64; 1024]>,
}

impl TrigramFilter {
    /// The filter of `phrases` (lower case); `None` when some phrase is
    /// shorter than three bytes (it has no trigram to require).
    pub fn build(phrases: &[Vec<u8>]) -> Option<TrigramFilter> {
        let mut bits = Box::new([0u64; 1024]);
        for phrase in phrases {
            let rarest = phrase
                .windows(3)
                .min_by_key(|w| w.iter().map(|b| commonness(*b)).sum::<u32>())?;
            let at = slot(pack(rarest));
            bits[at / 64] |= 1 << (at % 64);
        }
        Some(TrigramFilter { bits })
    }

    /// False when `value` holds none of the phrases (ignoring ASCII case).
    pub fn may_match(&self, value: &[u8]) -> bool {
        let mut window = 0u32;
        for (i, b) in value.iter().enumerate() {
            window = ((window << 8) | u32::from(b.to_ascii_lowercase())) & 0x00FF_FFFF;
            if i >= 2 {
                let at = slot(window);
                if self.bits[at / 64] & (1 << (at % 64)) != 0 {
                    return true;
                }
            }
        }
        false
    }
}

/// Three bytes as the low 24 bits, first byte highest (as `may_match`
/// shifts them in).
fn pack(w: &[u8]) -> u32 {
    (u32::from(w[0]) << 16) | (u32::from(w[1]) << 8) | u32::from(w[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(phrases: &[&str]) -> Option<TrigramFilter> {
        let lower: Vec<Vec<u8>> = phrases
            .iter()
            .map(|p| p.as_bytes().to_ascii_lowercase())
            .collect();
        TrigramFilter::build(&lower)
    }

    #[test]
    fn every_phrase_passes_in_any_case_and_context() {
        let phrases = ["/etc/passwd", "bin/bash", "wget", "$(ls", "<?php", "café"];
        let f = filter(&phrases).unwrap();
        for p in phrases {
            for v in [
                p.to_string(),
                p.to_ascii_uppercase(),
                format!("xx {p} yy"),
                format!("{}{p}", "a".repeat(100)),
            ] {
                assert!(f.may_match(v.as_bytes()), "{v}");
            }
        }
    }

    #[test]
    fn values_without_the_chosen_trigrams_are_ruled_out() {
        let f = filter(&["/etc/passwd", "<?php"]).unwrap();
        for v in ["books", "price_asc", "2", "", "ab", "en-GB,en;q=0.9"] {
            assert!(!f.may_match(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn a_phrase_shorter_than_three_bytes_means_no_filter() {
        assert!(filter(&["abc", "ab"]).is_none());
        assert!(filter(&["abc", "abcd"]).is_some());
    }
}
