//! The byte scanner: each enabled detector's pattern runs where it can
//! match, and every candidate goes through its validator.
//!
//! Detectors with a literal anchor (`-----BEGIN`, `AKIA`, `@`, `Traceback`,
//! ...) run their own pattern over the body: the `regex` crate skips to the
//! anchor with a literal prefilter. The anchorless ones (cards, SSNs, phone
//! numbers, IBANs) run only on the regions [`crate::gate`] finds in one
//! table-driven pass. Both give exactly the matches a search of the whole
//! body would (see `gate` for why).
//!
//! All patterns come from the `regex` crate (finite automata, linear time);
//! there is no backtracking engine anywhere near attacker-shaped bodies.

use std::ops::Range;

use memchr::memmem;
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::detector::{DetectorId, DETECTOR_COUNT};
use crate::gate::{self, Regions};
use crate::validate;

/// A hook that decides whether a `rk_live_`/`rk_test_` token carries a valid
/// rampart checksum (supplied by the identity crate).
pub type KeyCheck = fn(&str) -> bool;

/// One validated match: which detector, and the byte range of the sensitive
/// value in the scanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub detector: DetectorId,
    pub start: usize,
    pub end: usize,
}

/// The result of a scan: validated, non-overlapping matches in order, and,
/// when the text ended inside a candidate that needs more bytes to decide
/// (a PEM block without its END line yet), where that candidate starts.
#[derive(Debug, Default)]
pub struct ScanResult {
    pub matches: Vec<Match>,
    pub incomplete_from: Option<usize>,
}

/// Compiled detectors. Build once, share (`Arc`) across requests.
pub struct Scanner {
    set: RegexSet,
    set_detectors: Vec<DetectorId>,
    regexes: Vec<Option<Regex>>,
    enabled: [bool; DETECTOR_COUNT],
    bare_aws_secret: Regex,
    key_check: Option<KeyCheck>,
    pem_limit: usize,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("detectors", &self.set_detectors)
            .field("pem_limit", &self.pem_limit)
            .finish_non_exhaustive()
    }
}

/// Lazy-DFA cache per pattern: the union of all detectors has many states,
/// and a cache that thrashes falls back to a much slower engine.
const DFA_CACHE: usize = 16 << 20;

/// How far around an AWS key id the scanner looks for its secret key.
const AWS_SECRET_RADIUS: usize = 512;

impl Scanner {
    /// Compiles the given detectors. `pem_limit` bounds the size of a PEM
    /// block (BEGIN to END) the scanner will look through.
    pub fn new(
        detectors: &[DetectorId],
        key_check: Option<KeyCheck>,
        pem_limit: usize,
    ) -> Result<Scanner, regex::Error> {
        let mut enabled = [false; DETECTOR_COUNT];
        let mut set_detectors = Vec::new();
        let mut patterns = Vec::new();
        let mut regexes: Vec<Option<Regex>> = (0..DETECTOR_COUNT).map(|_| None).collect();
        for &d in detectors {
            if enabled[d.index()] {
                continue;
            }
            enabled[d.index()] = true;
            if let Some(p) = d.pattern() {
                set_detectors.push(d);
                patterns.push(p);
                regexes[d.index()] = Some(RegexBuilder::new(p).dfa_size_limit(DFA_CACHE).build()?);
            }
        }
        Ok(Scanner {
            set: RegexSetBuilder::new(&patterns)
                .dfa_size_limit(DFA_CACHE)
                .build()?,
            set_detectors,
            regexes,
            enabled,
            bare_aws_secret: Regex::new(r"(?-u)[A-Za-z0-9/+]{40}")?,
            key_check,
            pem_limit,
        })
    }

    /// Whether a detector is enabled.
    pub fn is_enabled(&self, d: DetectorId) -> bool {
        self.enabled[d.index()]
    }

    /// Quick check: could anything match in `hay[from..]`?
    pub fn may_match(&self, hay: &[u8], from: usize) -> bool {
        self.set.is_match_at(hay, from)
    }

    /// Scans the whole text as a complete document.
    pub fn scan(&self, hay: &[u8]) -> ScanResult {
        self.scan_at(hay, 0, true)
    }

    /// Scans `hay[from..]`; bytes before `from` are context only (word
    /// boundaries). With `at_eof` false, a PEM block whose END is not in
    /// `hay` yet is reported as incomplete instead of matched.
    pub fn scan_at(&self, hay: &[u8], from: usize, at_eof: bool) -> ScanResult {
        let mut result = ScanResult::default();
        let regions = self.needs_regions().then(|| gate::regions(hay, from));
        for &detector in &self.set_detectors {
            let Some(re) = &self.regexes[detector.index()] else {
                continue;
            };
            match regions.as_ref().and_then(|r| regions_of(r, detector)) {
                Some(regions) => {
                    for region in regions {
                        // The byte after the region stays visible for `\b`.
                        let end = (region.end + 1).min(hay.len());
                        let c = Search {
                            hay: &hay[..end],
                            from: region.start,
                        };
                        self.collect(detector, re, hay, c, at_eof, &mut result);
                    }
                }
                None => {
                    let c = Search { hay, from };
                    self.collect(detector, re, hay, c, at_eof, &mut result);
                }
            }
        }
        if self.is_enabled(DetectorId::AwsSecret) {
            self.find_secrets_near_key_ids(hay, from, &mut result.matches);
        }
        resolve_overlaps(&mut result.matches);
        result
    }

    /// Whether an anchorless detector is enabled (the region pass is only
    /// worth it then).
    fn needs_regions(&self) -> bool {
        ANCHORLESS.iter().any(|&d| self.is_enabled(d))
    }

    /// Validated matches of one detector within `search`; `hay` is the whole
    /// text, for validators that look around a match.
    fn collect(
        &self,
        detector: DetectorId,
        re: &Regex,
        hay: &[u8],
        search: Search<'_>,
        at_eof: bool,
        result: &mut ScanResult,
    ) {
        let mut pos = search.from;
        while pos <= search.hay.len() {
            let Some(m) = re.find_at(search.hay, pos) else {
                break;
            };
            pos = if m.end() > m.start() {
                m.end()
            } else {
                m.end() + 1
            };
            match self.validate(detector, hay, m.range(), at_eof) {
                Candidate::Valid(range) => result.matches.push(Match {
                    detector,
                    start: range.start,
                    end: range.end,
                }),
                Candidate::Incomplete => {
                    let start = result
                        .incomplete_from
                        .map_or(m.start(), |s| s.min(m.start()));
                    result.incomplete_from = Some(start);
                }
                Candidate::Invalid => {}
            }
        }
    }

    fn validate(&self, d: DetectorId, hay: &[u8], r: Range<usize>, at_eof: bool) -> Candidate {
        let text = &hay[r.clone()];
        let before = r.start.checked_sub(1).map(|i| hay[i]);
        let after = hay.get(r.end).copied();
        let after2 = hay.get(r.end + 1).copied();
        let ok = match d {
            DetectorId::Card => {
                validate::card_ok(text)
                    && card_groups_ok(text)
                    && !dashed_run(before, after, after2)
            }
            DetectorId::Iban => validate::iban_ok(text),
            DetectorId::Ssn => validate::ssn_ok(text) && !dashed_run(before, after, after2),
            DetectorId::Email => email_ok(text, before),
            DetectorId::Phone => {
                phone_context_ok(before, after, after2) && validate::phone_ok(text)
            }
            DetectorId::Jwt => validate::jwt_ok(text),
            DetectorId::PrivateKey => return self.pem_extent(hay, r, at_eof),
            DetectorId::AwsSecret => {
                return if after.is_some_and(validate::is_base64_byte) {
                    Candidate::Invalid
                } else {
                    Candidate::Valid(r.end - 40..r.end)
                };
            }
            DetectorId::GoogleApiKey => {
                !after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            }
            DetectorId::RampartKey => self.rampart_key_ok(text),
            DetectorId::StripeKey => {
                !(text.starts_with(b"rk_")
                    && self.is_enabled(DetectorId::RampartKey)
                    && self.rampart_key_ok(text))
            }
            _ => true,
        };
        if ok {
            Candidate::Valid(r)
        } else {
            Candidate::Invalid
        }
    }

    fn rampart_key_ok(&self, text: &[u8]) -> bool {
        let secret_len = text.len().saturating_sub("rk_live_".len());
        if secret_len < 40 {
            return false;
        }
        match (self.key_check, std::str::from_utf8(text)) {
            (Some(check), Ok(token)) => check(token),
            (Some(_), Err(_)) => false,
            (None, _) => true,
        }
    }

    /// Finds the END line of a PEM block whose BEGIN line is `header`.
    fn pem_extent(&self, hay: &[u8], header: Range<usize>, at_eof: bool) -> Candidate {
        let limit_end = hay.len().min(header.start.saturating_add(self.pem_limit));
        let window = &hay[header.end..limit_end.max(header.end)];
        if let Some(end_at) = memmem::find(window, b"-----END ") {
            let tail_start = header.end + end_at + "-----END ".len();
            let tail = &hay[tail_start..limit_end.max(tail_start)];
            if let Some(close) = memmem::find(tail, b"-----") {
                return Candidate::Valid(header.start..tail_start + close + 5);
            }
        }
        let window_complete = header.start.saturating_add(self.pem_limit) <= hay.len();
        if !at_eof && !window_complete {
            return Candidate::Incomplete;
        }
        // No END within the limit: treat everything up to the limit as key
        // material rather than let the body of the key through.
        Candidate::Valid(header.start..limit_end)
    }

    fn find_secrets_near_key_ids(&self, hay: &[u8], from: usize, out: &mut Vec<Match>) {
        let key_ids: Vec<Range<usize>> = out
            .iter()
            .filter(|m| m.detector == DetectorId::AwsKey)
            .map(|m| m.start..m.end)
            .collect();
        for key in key_ids {
            let lo = key.start.saturating_sub(AWS_SECRET_RADIUS).max(from);
            let hi = hay.len().min(key.end + AWS_SECRET_RADIUS);
            let mut pos = lo;
            while let Some(m) = self.bare_aws_secret.find_at(&hay[..hi], pos) {
                pos = m.end();
                let before = m.start().checked_sub(1).map(|i| hay[i]);
                let after = hay.get(m.end()).copied();
                let standalone = !before.is_some_and(validate::is_base64_byte)
                    && !after.is_some_and(validate::is_base64_byte);
                if standalone && validate::aws_secret_shape_ok(m.as_bytes()) {
                    out.push(Match {
                        detector: DetectorId::AwsSecret,
                        start: m.start(),
                        end: m.end(),
                    });
                }
            }
        }
    }
}

/// Where a pattern runs: `hay[from..]`, with `hay[..from]` as context.
#[derive(Clone, Copy)]
struct Search<'a> {
    hay: &'a [u8],
    from: usize,
}

/// Detectors without a literal anchor, searched in [`gate`] regions only.
const ANCHORLESS: [DetectorId; 4] = [
    DetectorId::Card,
    DetectorId::Ssn,
    DetectorId::Phone,
    DetectorId::Iban,
];

fn regions_of(r: &Regions, d: DetectorId) -> Option<&[Range<usize>]> {
    match d {
        DetectorId::Card => Some(&r.card),
        DetectorId::Ssn => Some(&r.ssn),
        DetectorId::Phone => Some(&r.phone),
        DetectorId::Iban => Some(&r.iban),
        _ => None,
    }
}

enum Candidate {
    Valid(Range<usize>),
    Invalid,
    Incomplete,
}

/// Separated card numbers come in issuer groupings (4-4-4-4, 4-6-5, ...):
/// the first group has four digits and no group is shorter than three,
/// except a short final group.
fn card_groups_ok(text: &[u8]) -> bool {
    if !text.iter().any(|&b| b == b' ' || b == b'-') {
        return true;
    }
    let groups: Vec<usize> = text
        .split(|&b| b == b' ' || b == b'-')
        .map(<[u8]>::len)
        .collect();
    let last = groups.len() - 1;
    groups[0] == 4
        && groups
            .iter()
            .enumerate()
            .all(|(i, &g)| (3..=6).contains(&g) || (i == last && (1..=6).contains(&g)))
}

/// A dash glued to digits on either side means the candidate is a slice of
/// a longer dashed identifier (UUID-like, order numbers).
fn dashed_run(before: Option<u8>, after: Option<u8>, after2: Option<u8>) -> bool {
    before == Some(b'-')
        || (after == Some(b'-') && after2.is_some_and(|b| b.is_ascii_alphanumeric()))
}

fn phone_context_ok(before: Option<u8>, after: Option<u8>, after2: Option<u8>) -> bool {
    let glued_before = before.is_some_and(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_' | b'/' | b':')
    });
    let glued_after = matches!(after, Some(b'.' | b'-' | b':' | b'/'))
        && after2.is_some_and(|b| b.is_ascii_digit());
    !glued_before && !glued_after
}

fn email_ok(text: &[u8], before: Option<u8>) -> bool {
    // Image names such as `logo@2x.png` look like addresses.
    const FILE_SUFFIXES: &[&[u8]] = &[
        b".png", b".jpg", b".jpeg", b".gif", b".svg", b".webp", b".css", b".js",
    ];
    let lower_suffix =
        |s: &[u8]| text.len() >= s.len() && text[text.len() - s.len()..].eq_ignore_ascii_case(s);
    !before.is_some_and(|b| b.is_ascii_alphanumeric())
        && text.first() != Some(&b'.')
        && !FILE_SUFFIXES.iter().any(|s| lower_suffix(s))
}

/// Keeps the earliest match, and among equal starts the longest; drops
/// matches overlapping a kept one.
fn resolve_overlaps(matches: &mut Vec<Match>) {
    matches.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut kept_end = 0;
    let mut first = true;
    matches.retain(|m| {
        let keep = first || m.start >= kept_end;
        if keep {
            kept_end = m.end;
            first = false;
        }
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Scanner {
        Scanner::new(DetectorId::ALL, None, 4096).expect("patterns compile")
    }

    fn found(s: &Scanner, text: &str) -> Vec<(DetectorId, String)> {
        s.scan(text.as_bytes())
            .matches
            .iter()
            .map(|m| (m.detector, text[m.start..m.end].to_string()))
            .collect()
    }

    /// The scan as it was before candidate regions: one `RegexSet` pass,
    /// then each hit detector's pattern over the whole text.
    fn reference_scan(s: &Scanner, hay: &[u8], from: usize) -> ScanResult {
        let mut result = ScanResult::default();
        for idx in s.set.matches_at(hay, from).iter() {
            let detector = s.set_detectors[idx];
            if let Some(re) = &s.regexes[detector.index()] {
                s.collect(detector, re, hay, Search { hay, from }, true, &mut result);
            }
        }
        if s.is_enabled(DetectorId::AwsSecret) {
            s.find_secrets_near_key_ids(hay, from, &mut result.matches);
        }
        resolve_overlaps(&mut result.matches);
        result
    }

    /// Text dense in near misses: digit groups with every separator, capitals
    /// glued to digits, words, and real values of every anchorless kind.
    fn generated_text(rng: &mut fastrand::Rng) -> Vec<u8> {
        const PIECES: &[&str] = &[
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "378282246310005",
            "536-22-1234",
            "078-05-1120",
            "+1 415 555 2671",
            "(415) 555-2671",
            "+442071838750",
            "415.555.2671",
            "DE89370400440532013000",
            "GB82 WEST 1234 5698 7654 32",
            "2024-01-15T10:30:00Z",
            "550e8400-e29b-41d4",
            "jane@example.com",
            "AKIAIOSFODNN7EXAMPLE",
            "v1.2.3",
            "a1",
            "_9",
            "x",
        ];
        let mut out = Vec::new();
        for _ in 0..rng.usize(20..200) {
            match rng.u8(0..6) {
                0 => out.extend_from_slice(PIECES[rng.usize(..PIECES.len())].as_bytes()),
                1 => out.extend((0..rng.usize(1..20)).map(|_| rng.u8(b'0'..=b'9'))),
                2 => out.push(b" .-()+/:_\"\n"[rng.usize(..11)]),
                3 => out.extend((0..rng.usize(1..4)).map(|_| rng.u8(b'A'..=b'Z'))),
                4 => out.extend((0..rng.usize(1..6)).map(|_| rng.u8(b'a'..=b'z'))),
                _ => out.push(b' '),
            }
        }
        out
    }

    #[test]
    fn region_scan_finds_exactly_what_a_whole_text_scan_finds() {
        let s = all();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut compared = 0;
        for _ in 0..3000 {
            let text = generated_text(&mut rng);
            let from = rng.usize(..=text.len().min(8));
            let want = reference_scan(&s, &text, from).matches;
            let got = s.scan_at(&text, from, true).matches;
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&text));
            compared += want.len();
        }
        assert!(
            compared > 3000,
            "the corpus must produce matches: {compared}"
        );
    }

    #[test]
    fn overlaps_keep_earliest_longest() {
        let mut v = vec![
            Match {
                detector: DetectorId::Phone,
                start: 5,
                end: 9,
            },
            Match {
                detector: DetectorId::Card,
                start: 0,
                end: 6,
            },
            Match {
                detector: DetectorId::Email,
                start: 0,
                end: 3,
            },
            Match {
                detector: DetectorId::Ssn,
                start: 6,
                end: 8,
            },
        ];
        resolve_overlaps(&mut v);
        let kept: Vec<_> = v.iter().map(|m| m.detector).collect();
        assert_eq!(kept, vec![DetectorId::Card, DetectorId::Ssn]);
    }

    #[test]
    fn pem_incomplete_until_end_or_limit() {
        let s = all();
        let head = "x -----BEGIN RSA PRIVATE KEY-----\nMIIEow";
        let r = s.scan_at(head.as_bytes(), 0, false);
        assert!(r.matches.is_empty());
        assert_eq!(r.incomplete_from, Some(2));
        let whole = format!("{head}\n-----END RSA PRIVATE KEY----- y");
        assert_eq!(found(&s, &whole)[0].1, whole[2..whole.len() - 2]);
        // At end of input without END: everything after BEGIN is covered.
        let r = s.scan_at(head.as_bytes(), 0, true);
        assert_eq!((r.matches[0].start, r.matches[0].end), (2, head.len()));
    }

    #[test]
    fn rampart_key_hook_decides_between_rampart_and_stripe() {
        let token = format!("rk_live_{}", "a1B2".repeat(11));
        let text = format!("key={token};");
        assert_eq!(
            found(&all(), &text),
            vec![(DetectorId::RampartKey, token.clone())]
        );
        let strict = Scanner::new(DetectorId::ALL, Some(|_| false), 4096).expect("compile");
        assert_eq!(found(&strict, &text), vec![(DetectorId::StripeKey, token)]);
    }

    #[test]
    fn aws_secret_found_near_key_id_only() {
        let s = all();
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let near = format!("id AKIAIOSFODNN7EXAMPLE secret {secret} end");
        assert!(found(&s, &near).contains(&(DetectorId::AwsSecret, secret.to_string())));
        let alone = format!("hash {secret} end");
        assert!(found(&s, &alone).is_empty());
        let labelled = format!("aws_secret_access_key = {secret}\n");
        assert_eq!(
            found(&s, &labelled),
            vec![(DetectorId::AwsSecret, secret.to_string())]
        );
    }
}
