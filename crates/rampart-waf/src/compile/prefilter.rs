//! Prefilters: literals a regex cannot match without.
//!
//! For each `@rx` pattern this computes a set of byte strings such that
//! every match, lower-cased (ASCII), contains at least one of them. A value
//! that contains none of them (compared ignoring ASCII case) cannot match,
//! so its regex need not run. The analysis walks the pattern's HIR and
//! only ever gives up (no prefilter), never guesses: a set is derived from
//! literal sequences that every path through the pattern must produce.
//!
//! The literals of all `@rx` links form one Aho-Corasick automaton
//! ([`Prefilter`]): one scan of a (transformed) value tells which links may
//! match it. One automaton for every transformation chain, rather than one
//! per chain, means a value that several chains leave unchanged (most of
//! them, for most values) is scanned once, not once per chain.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex_syntax::hir::{Class, Hir, HirKind};
use regex_syntax::ParserBuilder;

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
            Info {
                required: best(sub.required, non_empty(sub.exact.clone())),
                exact: if once { sub.exact } else { None },
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

/// Literals whose repeated matches are skipped in one scan (in 64s); any
/// beyond are simply handled at every match.
const SEEN_WORDS: usize = 128;

/// The prefilter of every `@rx` link: their literals in one automaton.
#[derive(Debug)]
pub struct Prefilter {
    automaton: AhoCorasick,
    /// Literal (pattern index) → the prefilter slots that contain it.
    owners: Vec<Vec<u32>>,
    /// Number of slots (links) in the filter.
    slots: u32,
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
    pub fn scan_into(&self, value: &[u8], out: &mut Vec<u64>) {
        let start = out.len();
        out.resize(start + (self.slots as usize).div_ceil(64), 0);
        let bits = &mut out[start..];
        // Short literals match again and again in a long value: their
        // slots are set the first time only.
        let mut seen = [0u64; SEEN_WORDS];
        for m in self.automaton.find_overlapping_iter(value) {
            let pattern = m.pattern().as_usize();
            if let Some(word) = seen.get_mut(pattern / 64) {
                let bit = 1 << (pattern % 64);
                if *word & bit != 0 {
                    continue;
                }
                *word |= bit;
            }
            for slot in &self.owners[pattern] {
                bits[*slot as usize / 64] |= 1 << (slot % 64);
            }
        }
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
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            // A full DFA: the scan runs once per distinct value on every
            // request, and the literal set is small enough.
            .kind(Some(AhoCorasickKind::DFA))
            .build(literals.iter().map(|(_, l)| l))
            .map_err(|e| e.to_string())?;
        let filter = Prefilter {
            automaton,
            owners: self.owners,
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
    }
}
