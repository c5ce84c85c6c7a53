//! Prefilters: literals a regex cannot match without.
//!
//! For each `@rx` pattern this computes a set of byte strings such that
//! every match, lower-cased (ASCII), contains at least one of them. A value
//! that contains none of them (compared ignoring ASCII case) cannot match,
//! so its regex need not run. The analysis walks the pattern's HIR and
//! only ever gives up (no prefilter), never guesses: a set is derived from
//! literal sequences that every path through the pattern must produce.
//!
//! The literals of all `@rx` links, and the phrases of small `@pm` lists
//! (exact: `@pm` matches when one occurs), form one Aho-Corasick DFA
//! ([`Prefilter`]): one scan of a (transformed) value tells which links may
//! match it. One automaton for every transformation chain, rather than one
//! per chain, means a value that several chains leave unchanged (most of
//! them, for most values) is scanned once, not once per chain; and since
//! the scan ignores case, a chain's trailing case changes need not run
//! before it ([`bits_chain`]).

use std::collections::HashMap;

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};
use regex_syntax::hir::{Class, Hir, HirKind};
use regex_syntax::ParserBuilder;

use crate::transform::Transformation;

/// Largest literal set carried through the analysis.
const MAX_SET: usize = 64;
/// Largest byte class expanded into single-byte literals.
const MAX_CLASS: usize = 8;

type Set = Vec<Vec<u8>>;

/// What is known about the matches of one HIR node (all lower-cased).
struct Info {
    /// Every match is exactly one of these strings.
    exact: Option<Set>,
    /// Every match contains one of these (non-empty) strings.
    required: Option<Set>,
}

/// The literals every match of `pattern` (a pattern accepted by
/// `pcre::compile`, after translation) must contain one of, or `None`.
pub fn required_literals(translated: &str) -> Option<Set> {
    let hir = ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(true)
        .multi_line(true)
        .octal(true)
        .build()
        .parse(translated)
        .ok()?;
    let info = analyse(&hir);
    let set = best(info.required, non_empty(info.exact))?;
    set.iter().all(|l| !l.is_empty()).then_some(set)
}

fn non_empty(set: Option<Set>) -> Option<Set> {
    set.filter(|s| !s.is_empty() && s.iter().all(|l| !l.is_empty()))
}

/// The more selective of two requirements: longer shortest literal, then
/// fewer literals.
fn best(a: Option<Set>, b: Option<Set>) -> Option<Set> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let key = |s: &Set| {
                let shortest = s.iter().map(Vec::len).min().unwrap_or(0);
                (shortest.min(4), usize::MAX - s.len())
            };
            Some(if key(&b) > key(&a) { b } else { a })
        }
        (a, b) => a.or(b),
    }
}

fn dedup(mut set: Set) -> Set {
    set.sort();
    set.dedup();
    set
}

fn lower(bytes: &[u8]) -> Vec<u8> {
    bytes.to_ascii_lowercase()
}

fn analyse(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Info {
            exact: Some(vec![Vec::new()]),
            required: None,
        },
        HirKind::Literal(lit) => {
            let set = vec![lower(&lit.0)];
            Info {
                exact: Some(set.clone()),
                required: non_empty(Some(set)),
            }
        }
        HirKind::Class(class) => {
            let exact =
                class_bytes(class).map(|bytes| dedup(bytes.into_iter().map(|b| vec![b]).collect()));
            Info {
                required: non_empty(exact.clone()),
                exact,
            }
        }
        HirKind::Capture(cap) => analyse(&cap.sub),
        HirKind::Repetition(rep) => {
            if rep.min == 0 {
                return Info {
                    exact: None,
                    required: None,
                };
            }
            let sub = analyse(&rep.sub);
            let once = rep.min == 1 && rep.max == Some(1);
            if once {
                return Info {
                    required: best(sub.required, non_empty(sub.exact.clone())),
                    exact: sub.exact,
                };
            }
            // Every match starts with `min` matches of the sub-pattern in a
            // row: with an exact sub-pattern, their concatenation (`..` for
            // `\.{2,3}`) is in every match, and is every match when the
            // count is fixed.
            let repeated = sub.exact.as_ref().and_then(|e| power(e, rep.min));
            let exact = repeated
                .as_ref()
                .filter(|(_, all)| *all && rep.max == Some(rep.min))
                .map(|(set, _)| set.clone());
            Info {
                required: best(
                    best(sub.required, non_empty(sub.exact)),
                    non_empty(repeated.map(|(set, _)| set)),
                ),
                exact,
            }
        }
        HirKind::Alternation(alts) => {
            let infos: Vec<Info> = alts.iter().map(analyse).collect();
            let exact = infos
                .iter()
                .map(|i| i.exact.clone())
                .collect::<Option<Vec<Set>>>()
                .map(|sets| dedup(sets.concat()))
                .filter(|s| s.len() <= MAX_SET);
            let required = infos
                .into_iter()
                .map(|i| best(i.required, non_empty(i.exact)))
                .collect::<Option<Vec<Set>>>()
                .map(|sets| dedup(sets.concat()));
            Info { exact, required }
        }
        HirKind::Concat(parts) => concat(parts),
    }
}

/// A concatenation: adjacent exact parts multiply into longer literals; the
/// requirement is the best of those runs and of the other parts' own.
fn concat(parts: &[Hir]) -> Info {
    let mut run: Set = vec![Vec::new()];
    let mut all_exact = true;
    let mut required: Option<Set> = None;
    for part in parts {
        let info = analyse(part);
        let product = info
            .exact
            .as_ref()
            .filter(|e| e.len() * run.len() <= MAX_SET)
            .map(|e| cross(&run, e));
        match product {
            Some(p) => run = p,
            None => {
                all_exact = false;
                required = best(required, non_empty(Some(run)));
                required = best(required, best(info.required, non_empty(info.exact.clone())));
                run = info.exact.unwrap_or_else(|| vec![Vec::new()]);
            }
        }
    }
    let exact = all_exact.then(|| run.clone());
    Info {
        required: best(required, non_empty(Some(run))),
        exact,
    }
}

/// Most copies multiplied by [`power`].
const MAX_POWER: u32 = 8;

/// The strings of `n` copies of `set` concatenated, as far as the set
/// stays small (at most [`MAX_POWER`] copies and [`MAX_SET`] strings), and
/// whether all `n` copies are in (fewer copies still give strings that
/// every concatenation of `n` contains: its prefix). `None` for `n == 0`.
fn power(set: &Set, n: u32) -> Option<(Set, bool)> {
    if n == 0 || set.is_empty() {
        return None;
    }
    let mut out = set.clone();
    let mut copies = 1;
    while copies < n.min(MAX_POWER) && out.len() * set.len() <= MAX_SET {
        out = cross(&out, set);
        copies += 1;
    }
    Some((out, copies == n))
}

fn cross(a: &Set, b: &Set) -> Set {
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.push(s);
        }
    }
    dedup(out)
}

/// The lower-cased bytes of a small class, or `None`.
fn class_bytes(class: &Class) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    match class {
        Class::Bytes(c) => {
            for r in c.ranges() {
                if usize::from(r.end() - r.start()) >= 2 * MAX_CLASS {
                    return None;
                }
                bytes.extend((r.start()..=r.end()).map(|b| b.to_ascii_lowercase()));
            }
        }
        Class::Unicode(c) => {
            for r in c.ranges() {
                let (start, end) = (u32::from(r.start()), u32::from(r.end()));
                if end > 0x7F || end - start >= 2 * MAX_CLASS as u32 {
                    return None;
                }
                bytes.extend((start..=end).map(|b| (b as u8).to_ascii_lowercase()));
            }
        }
    }
    bytes.sort_unstable();
    bytes.dedup();
    (!bytes.is_empty() && bytes.len() <= MAX_CLASS).then_some(bytes)
}

/// The steps of `chain` that decide its output's prefilter bits: the
/// chain without the case changes that nothing case-sensitive follows.
///
/// The prefilter ignores ASCII case, so `bits(lowercase(x)) == bits(x)`.
/// A `lowercase` (or `uppercase`) step followed only by steps that never
/// look at letters (they drop or fold NUL and whitespace bytes, so they
/// commute with a case change) can be left out: the shorter chain's output
/// differs from the full one's in case alone. Values that the shorter
/// chain leaves unchanged (a header with capitals under `t:lowercase`) are
/// then filtered on bits already computed, without being transformed.
pub fn bits_chain(chain: &[&'static Transformation]) -> Vec<&'static Transformation> {
    const CASE: [&str; 2] = ["lowercase", "uppercase"];
    const CASELESS: [&str; 7] = [
        "removeNulls",
        "replaceNulls",
        "removeWhitespace",
        "compressWhitespace",
        "trim",
        "trimLeft",
        "trimRight",
    ];
    let mut kept: Vec<&'static Transformation> = Vec::with_capacity(chain.len());
    // Walking backwards: a case step is dropped while everything after it
    // (already walked) is caseless or dropped.
    let mut tail_caseless = true;
    for t in chain.iter().rev() {
        if tail_caseless && CASE.contains(&t.name()) {
            continue;
        }
        tail_caseless &= CASELESS.contains(&t.name());
        kept.push(t);
    }
    kept.reverse();
    kept
}

/// The prefilter of every `@rx` link: their literals in one automaton.
#[derive(Debug)]
pub struct Prefilter {
    /// A full DFA walked byte by byte (see [`Prefilter::scan_into`]).
    dfa: DFA,
    /// Its unanchored start state.
    start: StateID,
    /// Literal (pattern index) → the prefilter slots that contain it, as
    /// (word, bits) pairs of the bit set: a short literal such as `(` is
    /// in hundreds of slots, set with a few word operations.
    owners: Vec<Vec<(u32, u64)>>,
    /// Number of slots (links) in the filter.
    slots: u32,
}

/// Slots as (word, bits) pairs, one per word of the bit set that has any.
fn slot_words(slots: &[u32]) -> Vec<(u32, u64)> {
    let mut words: Vec<(u32, u64)> = Vec::new();
    for slot in slots {
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        match words.iter_mut().find(|(w, _)| *w == word) {
            Some((_, bits)) => *bits |= bit,
            None => words.push((word, bit)),
        }
    }
    words.sort_unstable();
    words
}

impl Prefilter {
    /// The slots that may match `value`, as a bit set.
    pub fn scan(&self, value: &[u8]) -> Vec<u64> {
        let mut bits = Vec::new();
        self.scan_into(value, &mut bits);
        bits
    }

    /// [`scan`](Self::scan), appending the bit set to `out` (so that a
    /// caller can keep many bit sets in one buffer).
    ///
    /// The DFA is walked directly rather than through an overlapping
    /// search iterator: a match state lists every literal that ends at
    /// that byte (the overlapping matches), and a non-match state costs
    /// one table lookup, which is most bytes of a benign value.
    pub fn scan_into(&self, value: &[u8], out: &mut Vec<u64>) {
        let start = out.len();
        let words = self.words();
        // Short literals match again and again in a long value: their
        // slots are set the first time only. The set of literals seen sits
        // just past the bit set, in `out`, zeroed with it at its exact
        // size (a fixed array large enough for any rule set cost a
        // kilobyte of zeroing per scan), and is cut off at the end.
        out.resize(start + words + self.owners.len().div_ceil(64), 0);
        let (bits, seen) = out[start..].split_at_mut(words);
        // Match states handled already in this scan (a small direct-mapped
        // set: a collision only means handling a state again). Values are
        // full of `/`, `,`, `;`, `(`: one-byte literals whose state would
        // otherwise be walked at every occurrence.
        let mut handled = [u32::MAX; 32];
        let dfa = &self.dfa;
        let mut sid = self.start;
        for &byte in value {
            sid = dfa.next_state(Anchored::No, sid, byte);
            if !dfa.is_special(sid) || !dfa.is_match(sid) {
                continue;
            }
            let id = sid.as_u32();
            let entry = &mut handled[(id.wrapping_mul(0x9E37_79B1) >> 27) as usize];
            if *entry == id {
                continue;
            }
            *entry = id;
            for i in 0..dfa.match_len(sid) {
                let pattern = dfa.match_pattern(sid, i).as_usize();
                if let Some(word) = seen.get_mut(pattern / 64) {
                    let bit = 1 << (pattern % 64);
                    if *word & bit != 0 {
                        continue;
                    }
                    *word |= bit;
                }
                for (word, set) in &self.owners[pattern] {
                    bits[*word as usize] |= set;
                }
            }
        }
        out.truncate(start + words);
    }

    /// Words in a bit set of [`scan`](Self::scan).
    pub fn words(&self) -> usize {
        (self.slots as usize).div_ceil(64)
    }
}

/// Whether `slot` is set in a bit set from [`Prefilter::scan`].
pub fn slot_set(bits: &[u64], slot: u32) -> bool {
    bits.get(slot as usize / 64)
        .is_some_and(|w| w & (1 << (slot % 64)) != 0)
}

/// The prefilter under construction.
#[derive(Default)]
pub struct FilterBuilder {
    /// Literal → pattern index.
    index: HashMap<Vec<u8>, usize>,
    /// Pattern index → slots.
    owners: Vec<Vec<u32>>,
    slots: u32,
    /// Chains with at least one slot.
    chains: Vec<u32>,
}

impl FilterBuilder {
    /// Adds a link's literals (its transformation chain is `chain`);
    /// returns its slot.
    pub fn add(&mut self, chain: u32, literals: Set) -> u32 {
        let slot = self.slots;
        self.slots += 1;
        self.chains.push(chain);
        for lit in literals {
            let next = self.owners.len();
            let at = *self.index.entry(lit).or_insert(next);
            if at == self.owners.len() {
                self.owners.push(Vec::new());
            }
            self.owners[at].push(slot);
        }
        slot
    }

    /// The filter (`None` without any slot) and, per chain key, whether the
    /// chain has links in it.
    pub fn finish(self, chains: usize) -> Result<(Option<Prefilter>, Vec<bool>), String> {
        let mut filtered = vec![false; chains];
        for chain in &self.chains {
            if let Some(f) = filtered.get_mut(*chain as usize) {
                *f = true;
            }
        }
        if self.slots == 0 {
            return Ok((None, filtered));
        }
        let mut literals: Vec<(usize, Vec<u8>)> =
            self.index.into_iter().map(|(l, i)| (i, l)).collect();
        literals.sort();
        // A full DFA: the scan runs once per distinct value on every
        // request, and the literal set is small enough. Standard semantics
        // keep every literal's match (nothing is shadowed by a longer one).
        let dfa = DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            .prefilter(false)
            .build(literals.iter().map(|(_, l)| l))
            .map_err(|e| e.to_string())?;
        let start = dfa.start_state(Anchored::No).map_err(|e| e.to_string())?;
        let filter = Prefilter {
            dfa,
            start,
            owners: self.owners.iter().map(|slots| slot_words(slots)).collect(),
            slots: self.slots,
        };
        Ok((Some(filter), filtered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(p: &str) -> Option<Vec<String>> {
        let t = super::super::pcre::translate(p).unwrap();
        required_literals(&t).map(|s| {
            s.into_iter()
                .map(|l| String::from_utf8(l).unwrap())
                .collect()
        })
    }

    #[test]
    fn extraction() {
        assert_eq!(lits("(?i)union\\s+select"), Some(vec!["union".into()]));
        assert_eq!(lits("abc|de"), Some(vec!["abc".into(), "de".into()]));
        assert_eq!(lits("a?b*"), None);
        assert_eq!(lits("(?:x|y*)z"), Some(vec!["z".into()]));
        assert_eq!(lits("[Ss]elect"), Some(vec!["select".into()]));
        assert_eq!(lits("\\w+"), None);
        // Repeated literals: the first `min` copies are in every match.
        assert_eq!(lits("a\\.{2,3}/"), Some(vec!["..".into()]));
        assert_eq!(lits("x{3}"), Some(vec!["xxx".into()]));
        assert_eq!(lits("(?:ab){2,}"), Some(vec!["abab".into()]));
        assert_eq!(
            lits("[ab]{2}c"),
            Some(vec!["aac".into(), "abc".into(), "bac".into(), "bbc".into()])
        );
        assert_eq!(lits("z{0,3}"), None);
    }

    fn names(chain: &[&str]) -> Vec<&'static str> {
        let chain: Vec<_> = chain
            .iter()
            .map(|n| crate::transform::lookup(n).unwrap())
            .collect();
        bits_chain(&chain).iter().map(|t| t.name()).collect()
    }

    #[test]
    fn case_steps_are_left_out_only_where_case_cannot_matter() {
        assert!(names(&["lowercase"]).is_empty());
        assert_eq!(
            names(&["htmlEntityDecode", "lowercase"]),
            ["htmlEntityDecode"]
        );
        assert_eq!(
            names(&[
                "urlDecodeUni",
                "lowercase",
                "removeNulls",
                "removeWhitespace"
            ]),
            ["urlDecodeUni", "removeNulls", "removeWhitespace"]
        );
        // jsDecode only knows `\u`: a case change before it matters.
        assert_eq!(
            names(&["lowercase", "urlDecodeUni", "jsDecode"]),
            ["lowercase", "urlDecodeUni", "jsDecode"]
        );
        assert_eq!(names(&["cmdLine"]), ["cmdLine"]);
    }

    /// Leaving the steps out keeps the bits of every value the same.
    #[test]
    fn bits_chain_keeps_the_bits() {
        let mut builder = FilterBuilder::default();
        for lits in [&["select"][..], &["\\u0041"], &["a b"], &["ab"], &["%"]] {
            builder.add(0, lits.iter().map(|l| l.as_bytes().to_vec()).collect());
        }
        let filter = builder.finish(1).unwrap().0.unwrap();
        let chains: [&[&str]; 3] = [
            &["urlDecodeUni", "lowercase", "compressWhitespace"],
            &[
                "htmlEntityDecode",
                "uppercase",
                "removeWhitespace",
                "removeNulls",
            ],
            &["lowercase", "trim"],
        ];
        let values: [&[u8]; 5] = [
            b"SeLeCt  A\t B",
            b"%53ELECT a%00b",
            b"\\U0041 A\x00B",
            b"&lt;AB&gt;  ",
            b"plain",
        ];
        for chain in chains {
            let full: Vec<_> = chain
                .iter()
                .map(|n| crate::transform::lookup(n).unwrap())
                .collect();
            let short = bits_chain(&full);
            assert!(short.len() < full.len());
            for value in values {
                let a = crate::transform::apply_chain(&full, value);
                let b = crate::transform::apply_chain(&short, value);
                assert_eq!(filter.scan(&a), filter.scan(&b), "{chain:?} on {value:?}");
            }
        }
    }

    /// The scan sets exactly the slots one of whose literals occurs in the
    /// value (ignoring ASCII case), however the literals overlap.
    #[test]
    fn scan_finds_every_overlapping_literal() {
        let slots: Vec<Vec<&[u8]>> = vec![
            vec![b"select", b"union"],
            vec![b"sel"],
            vec![b"ect", b"x"],
            vec![b"lect"],
            vec![b"/*"],
            vec![b"a", b"aa"],
            vec![b"\n"],
            vec![b"selection"],
        ];
        let mut builder = FilterBuilder::default();
        for (n, lits) in slots.iter().enumerate() {
            let slot = builder.add(0, lits.iter().map(|l| l.to_vec()).collect());
            assert_eq!(slot as usize, n);
        }
        let (filter, chains) = builder.finish(1).unwrap();
        let filter = filter.unwrap();
        assert_eq!(chains, vec![true]);
        let values: [&[u8]; 8] = [
            b"",
            b"SELECT * FROM t /* c */",
            b"unionx",
            b"selectio",
            b"aaaa\nSeLeCtIoN",
            b"benign value",
            &[0xff, b'E', b'c', b'T', 0],
            b"lec",
        ];
        for value in values {
            let bits = filter.scan(value);
            let lower = value.to_ascii_lowercase();
            for (slot, lits) in slots.iter().enumerate() {
                let expected = lits.iter().any(|l| lower.windows(l.len()).any(|w| w == *l));
                assert_eq!(
                    slot_set(&bits, slot as u32),
                    expected,
                    "slot {slot} on {:?}",
                    String::from_utf8_lossy(value)
                );
            }
        }
    }
}
