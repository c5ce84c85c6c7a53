//! Operator execution over one (transformed) value, with negation and
//! `capture` into `TX:0`–`TX:9`.

use std::net::IpAddr;

use crate::compile::fast::compare;
use crate::compile::{Arg, Cidr, CompiledOp, CompiledRule};

use super::macros::Expanded;
use super::setvar::to_int;
use super::store::capture_keys;
use super::vars::Shared;
use super::within;
use super::Transaction;

/// An operator argument's bytes: the rule's literal, or its macros expanded.
enum ArgBytes<'a> {
    Rule(&'a [u8]),
    Expanded(Expanded),
}

impl std::ops::Deref for ArgBytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ArgBytes::Rule(bytes) => bytes,
            ArgBytes::Expanded(expanded) => expanded,
        }
    }
}

impl<'r> Transaction<'r> {
    /// Runs the link's operator; the result already accounts for `!`.
    pub(super) fn operator_matches(&mut self, link: &CompiledRule, value: &[u8]) -> bool {
        self.run_operator(link, value) != link.negated
    }

    /// `operator_matches` on a value held as shared bytes: `@rx ^.*$` with
    /// `capture` (CRS 920450 and 920451, once per header name) keeps the
    /// value itself as `TX:0` instead of a copy. Same effects: that
    /// operator matches every value and captures only group 0, the whole
    /// value, which `set_captures` would copy into `TX:0`. Inlined: it
    /// stands in front of every operator of a transformed value.
    #[inline(always)]
    pub(super) fn operator_matches_shared(&mut self, link: &CompiledRule, value: &Shared) -> bool {
        if let (CompiledOp::RxWhole, true, Shared::Bytes(bytes)) =
            (&link.operator, link.capture, value)
        {
            self.tx.set_key(&capture_keys()[0], bytes.clone());
            return !link.negated;
        }
        self.operator_matches(link, value)
    }

    fn arg<'a>(&self, arg: &'a Arg) -> ArgBytes<'a> {
        match arg {
            Arg::Literal(bytes) => ArgBytes::Rule(bytes),
            Arg::Macro(t) => ArgBytes::Expanded(self.expand_shared(t)),
        }
    }

    fn run_operator(&mut self, link: &CompiledRule, value: &[u8]) -> bool {
        let capture = link.capture;
        match &link.operator {
            CompiledOp::Rx(re) => self.regex(re, value, capture),
            CompiledOp::RxWhole => {
                if capture {
                    self.set_captures(&[Some(value)]);
                }
                true
            }
            CompiledOp::RxMacro(t) => {
                let pattern = self.expand_str(t);
                match self.rules.dynamic_regex(&pattern, false) {
                    Some(re) => self.regex(&re, value, capture),
                    None => false,
                }
            }
            // Shorter than every phrase, or without any of their chosen
            // trigrams: no phrase can occur (exact, see `Phrases`).
            CompiledOp::Pm(pm) if self.rules.shortcuts_on() && !pm.may_match(value) => false,
            CompiledOp::Pm(pm) => match pm.automaton.find(value) {
                Some(m) => {
                    if capture {
                        self.set_captures(&[Some(&value[m.start()..m.end()])]);
                    }
                    true
                }
                None => false,
            },
            CompiledOp::StrEq(a) => value == &*self.arg(a),
            CompiledOp::Contains(a) => find(value, &self.arg(a)).is_some(),
            CompiledOp::ContainsWord(a) => contains_word(value, &self.arg(a)),
            CompiledOp::BeginsWith(a) => value.starts_with(&self.arg(a)),
            CompiledOp::EndsWith(a) => value.ends_with(&self.arg(a)),
            // A list held in a variable (`%{tx.restricted_headers_basic}`):
            // the answer remembered for its bytes (see `within`).
            CompiledOp::Within(Arg::Macro(t)) => match self.expand_shared(t) {
                Expanded::Single(Some(Shared::Bytes(list))) if list.len() >= within::MIN_LIST => {
                    within::within(&list, value)
                }
                list => find(&list, value).is_some(),
            },
            CompiledOp::Within(a) => find(&self.arg(a), value).is_some(),
            CompiledOp::Compare(cmp, a) => compare(*cmp, to_int(value), to_int(&self.arg(a))),
            CompiledOp::IpMatch(cidrs) => ip_match(cidrs, value),
            CompiledOp::ValidateByteRange(allowed) => value.iter().any(|b| !allowed[*b as usize]),
            CompiledOp::ValidateUrlEncoding => !valid_url_encoding(value),
            CompiledOp::ValidateUtf8Encoding => std::str::from_utf8(value).is_err(),
            CompiledOp::DetectSqli => match rampart_libinjection::detect_sqli(value) {
                Some(fp) => {
                    if capture {
                        self.set_captures(&[Some(fp.as_str().as_bytes())]);
                    }
                    true
                }
                None => false,
            },
            CompiledOp::DetectXss => rampart_libinjection::detect_xss(value),
            CompiledOp::Unconditional => true,
            CompiledOp::NoMatch => false,
        }
    }

    fn regex(&mut self, re: &regex::bytes::Regex, value: &[u8], capture: bool) -> bool {
        // `is_match` first even with `capture`: most values do not match, and
        // on those `is_match` is cheaper than `find` / `captures` (measured
        // over CRS: skipping it costs ~10 k instructions per JSON POST).
        if !re.is_match(value) {
            return false;
        }
        if !capture {
            return true;
        }
        if re.captures_len() == 1 {
            // No groups: `TX:0` is the match itself, no capture slots.
            let Some(m) = re.find(value) else {
                return false;
            };
            self.set_captures(&[Some(m.as_bytes())]);
            return true;
        }
        let Some(caps) = re.captures(value) else {
            return false;
        };
        // `set_captures` stores at most `TX:0`..`TX:9`: later groups are
        // never read, so the first ten are gathered on the stack.
        let mut groups: [Option<&[u8]>; 10] = [None; 10];
        let mut n = 0;
        for (slot, m) in groups.iter_mut().zip(caps.iter()) {
            *slot = m.map(|m| m.as_bytes());
            n += 1;
        }
        self.set_captures(&groups[..n]);
        true
    }
}

/// The leftmost occurrence of `needle` in `haystack`.
///
/// `memmem::find` builds a searcher on every call (~1,000 instructions for
/// a 6-byte needle), which is most of the cost of `@within` on short
/// lists: CRS 920450 looks for each header name (`/host/`) in a ~170-byte
/// list, 7 times per request. Short haystacks are searched directly
/// instead (`find_short`); long ones, where the searcher pays off, still
/// go to `memmem`.
pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if haystack.len() <= SHORT_HAYSTACK {
        return find_short(haystack, needle);
    }
    memchr::memmem::find(haystack, needle)
}

/// Haystacks up to this length are searched with `find_short`.
const SHORT_HAYSTACK: usize = 512;

/// `find` by candidates: the positions of one byte of the needle (the
/// first that is not a common separator, so that `/host/` is found by its
/// `h` rather than by every `/` of the list), each verified in full.
///
/// Why it is the leftmost occurrence: an occurrence at `start` has the
/// chosen byte `needle[k]` at `start + k`, so it is among the candidates
/// `p - k` for the positions `p` of that byte, which `memchr_iter` yields
/// in increasing order; the first candidate that verifies is therefore
/// the leftmost occurrence. Candidates before `k` cannot start a match.
fn find_short(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    if needle.len() > haystack.len() {
        return None;
    }
    let common = |b: &u8| b" /,|;:-_.=&".contains(b);
    let k = needle.iter().take(8).position(|b| !common(b)).unwrap_or(0);
    let last_start = haystack.len() - needle.len();
    memchr::memchr_iter(needle[k], &haystack[k..=last_start + k])
        .find(|&p| haystack[p..p + needle.len()] == *needle)
}

/// `@containsWord`: the argument bounded by non-word characters or edges.
fn contains_word(value: &[u8], word: &[u8]) -> bool {
    if word.is_empty() {
        return true;
    }
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut start = 0;
    while let Some(pos) = find(&value[start..], word) {
        let at = start + pos;
        let end = at + word.len();
        let left = at == 0 || !is_word(value[at - 1]);
        let right = end == value.len() || !is_word(value[end]);
        if left && right {
            return true;
        }
        start = at + 1;
    }
    false
}

fn ip_match(cidrs: &[Cidr], value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let Ok(ip) = text.trim().parse::<IpAddr>() else {
        return false;
    };
    cidrs.iter().any(|c| in_cidr(c, ip))
}

fn in_cidr(c: &Cidr, ip: IpAddr) -> bool {
    match (c.addr, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - c.prefix as u32).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - c.prefix as u32).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// False when a `%` is not followed by two hex digits.
fn valid_url_encoding(value: &[u8]) -> bool {
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' {
            let ok = value.len() > i + 2
                && value[i + 1].is_ascii_hexdigit()
                && value[i + 2].is_ascii_hexdigit();
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::parse_cidr;

    #[test]
    fn helpers() {
        assert!(contains_word(b"a select b", b"select"));
        assert!(!contains_word(b"selected", b"select"));
        assert!(valid_url_encoding(b"a%20b"));
        assert!(!valid_url_encoding(b"a%2"));
        assert!(!valid_url_encoding(b"%zz"));
        let net = [
            parse_cidr("10.0.0.0/8").unwrap(),
            parse_cidr("::1").unwrap(),
        ];
        assert!(ip_match(&net, b"10.1.2.3"));
        assert!(ip_match(&net, b"::1"));
        assert!(!ip_match(&net, b"11.0.0.1"));
    }
}

#[cfg(test)]
mod find_tests {
    use super::{find, find_short, SHORT_HAYSTACK};

    #[test]
    fn short_search_agrees_with_memmem() {
        let haystacks: [&[u8]; 8] = [
            b"",
            b"HTTP/2 HTTP/2.0 HTTP/3 HTTP/3.0",
            b"/content-encoding/ /proxy/ /lock-token/ /if/ /x",
            b"/content-encoding/ /proxy/ /lock-token/ /content-range/ /if/ /x-http-method/",
            b"aaaa/host//host/",
            b"//h/ho/hos/host",
            b"abcabcabd",
            b"\x00\xff/\n/x/",
        ];
        let needles: [&[u8]; 14] = [
            b"",
            b"/",
            b"/host/",
            b"/if/",
            b"/x-http-method/",
            b"/proxy/ /lock",
            b"HTTP/3.0",
            b"HTTP/1.1",
            b"abd",
            b"cab",
            b"aaaaa",
            b"//",
            b"\n/x",
            b"/content-encoding/ /proxy/ /lock-token/ /content-range/ /if/ /x-http-method/!",
        ];
        for h in haystacks {
            for n in needles {
                let expected = memchr::memmem::find(h, n);
                assert_eq!(find_short(h, n), expected, "{n:?} in {h:?}");
                assert_eq!(find(h, n), expected, "{n:?} in {h:?}");
            }
        }
        // Every substring of a haystack with repeats is found leftmost.
        let h = b"/a/ab/aba/abab/a/ab/";
        for i in 0..h.len() {
            for j in i..=h.len() {
                assert_eq!(find_short(h, &h[i..j]), memchr::memmem::find(h, &h[i..j]));
            }
        }
        // Long haystacks still go through `memmem`, with the same answer.
        let long = [b"x/".repeat(SHORT_HAYSTACK), b"/host/".to_vec()].concat();
        let expected = memchr::memmem::find(&long, b"/host/");
        assert!(expected.is_some());
        assert_eq!(find(&long, b"/host/"), expected);
    }
}
