//! What the rules found in short values, remembered from one transaction
//! to the next.
//!
//! Most values of real traffic repeat across requests: the same client
//! sends the same `User-Agent`, `Accept` and `Host` on every request, the
//! same argument names, the same path. What a value's bytes give under a
//! rule set does not depend on the transaction:
//!
//! * the bytes it holds (the presence set the transformation triggers are
//!   tested against);
//! * its prefilter bits (the slots whose literals it holds), and those of
//!   what a few transformation chains make of it (the unions of a
//!   variable's bits after a chain, and the prefilter checks of links, ask
//!   for them: a hit skips the transformations);
//! * what a few transformation chains make of it, for a value found
//!   again (a header name is lower-cased once per thread, not once per
//!   request);
//! * for a link whose operator is a pure function of the transformed value
//!   (see `compile::verdicts`), whether the link's test of the value (its
//!   transformations, prefilter and operator, every intermediate form with
//!   `multiMatch`) finds nothing, or, for a link without `capture` or
//!   `multiMatch`, whether it matches (then what it matched is the
//!   transformed value, which the transformation cache or the chain
//!   outputs above give back).
//!
//! [`ValueMemo`] keeps these per value, keyed on the value's exact bytes:
//! the bytes are stored and compared in full, so a hash collision is only
//! a miss (an attacker who finds one gains nothing). A verdict only ever
//! says "this link's test finds nothing in this value" or "this link
//! matches this value", which the engine computed itself for the same
//! bytes under the same rule set; a value without an entry, or a link
//! without a verdict, takes the normal path.
//!
//! Bounds: [`MEMO_ENTRIES`] entries of values shorter than
//! [`super::cache::RECORDED_LEN`] bytes, in sets of [`WAYS`] chosen by a
//! seeded hash. A stream of new values (many clients, or an attacker)
//! replaces first the entries not found again since they were filled, so
//! values seen on every request stay; nothing grows past the bounds.
//!
//! One memo per rule set and thread ([`MemoShards`]): a transaction takes
//! its thread's memo for each `process_*` call and hands it back at the
//! end of that call (no lock, and transactions interleaved on one thread
//! share it). A new rule set has new memos; entries never outlive the
//! rule set they were computed under.

use std::cell::Cell;
use std::hash::BuildHasher;

use super::vars::Shared;

/// Entries per set: a set holds this many values found on every request
/// before they push one another out.
pub(crate) const WAYS: usize = 8;

/// Sets of the memo.
const SETS: usize = 128;

/// Entries of one memo (per rule set and thread).
pub(crate) const MEMO_ENTRIES: usize = SETS * WAYS;

/// Where a value's entry is, as handed out by [`ValueMemo::record`]: the
/// entry's index and the stamp it had then. An entry replaced since (by
/// this transaction or another on the thread) has a new stamp, and the
/// reference then finds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MemoRef {
    index: u32,
    /// 0: no entry.
    stamp: u64,
}

impl MemoRef {
    /// A reference to no entry.
    pub const NONE: MemoRef = MemoRef { index: 0, stamp: 0 };
}

/// One remembered value.
#[derive(Default)]
struct Entry {
    /// Unique per filling of the entry (0: empty).
    stamp: u64,
    /// Found again since it was filled or the set last filled up (see
    /// `victim`).
    used: bool,
    bytes: Vec<u8>,
    present: [u64; 4],
    /// The value's prefilter bits, once scanned (`has_bits`).
    bits: Vec<u64>,
    has_bits: bool,
    /// Per verdict bit (see `compile::verdicts`): set when that link's
    /// test of the value found nothing.
    rejected: Vec<u64>,
    /// Per verdict bit: set when that link (one without `capture` or
    /// `multiMatch`) matched the value.
    matched: Vec<u64>,
    /// The prefilter bits of the value after a transformation chain, as
    /// (chain, at, len) in `chain_words` (at most `CHAIN_BITS` chains).
    chains: Vec<(u32, u32, u32)>,
    chain_words: Vec<u64>,
    /// What transformation chains make of the value (at most
    /// `CHAIN_OUTPUTS`, each shorter than `OUTPUT_LEN`): a repeated value
    /// is then transformed once per thread, not once per transaction.
    outputs: Vec<(u32, Shared)>,
}

/// Chains whose bits an entry keeps at most (the first ones asked for).
pub(crate) const CHAIN_BITS: usize = 8;

/// Chain outputs an entry keeps at most (the first ones made).
pub(crate) const CHAIN_OUTPUTS: usize = 4;

/// Outputs this long or longer are not kept: with `CHAIN_OUTPUTS`, an
/// entry holds at most 1 KB of them (1 MB per memo with every entry
/// full, which a stream of new values does not make: outputs are kept
/// only for values found again since they were filled).
pub(crate) const OUTPUT_LEN: usize = 256;

/// A stretch backs off at most `1 << MAX_STRETCH_WAIT_LOG` arrivals.
const MAX_STRETCH_WAIT_LOG: u8 = 8;

/// What the memo knows of a value on finding (or making) its entry.
pub(crate) struct Recorded<'m> {
    pub at: MemoRef,
    pub present: [u64; 4],
    /// Its prefilter bits, when a transaction scanned it before.
    pub bits: Option<&'m [u64]>,
}

/// The memo of one thread for one rule set (see the module). `S` hashes
/// the bytes (seeded per memo; tests use one that collides on purpose).
pub(crate) struct ValueMemo<S = foldhash::fast::SeedableRandomState> {
    hasher: S,
    /// The hash of each entry's value with its lowest bit set (0: an
    /// empty entry): a set's tags fill one cache line, so a probe reads
    /// the entries themselves only where a tag matches.
    tags: Vec<u64>,
    /// `SETS * WAYS` entries, allocated on first use.
    entries: Vec<Entry>,
    /// The stamp of the next filled entry (never 0).
    next_stamp: u64,
    /// Words of an entry's `rejected` set.
    verdict_words: usize,
    /// Per stretch (see `engine::stretches`): arrivals to let pass
    /// without a look at its bits, and the looks in a row that did not
    /// rule it out.
    stretch_backoff: Vec<(u16, u8)>,
}

impl ValueMemo {
    /// An empty memo for a rule set with `verdicts` verdict bits.
    pub fn new(verdicts: u32) -> ValueMemo {
        ValueMemo::with_hasher(verdicts, memo_hasher())
    }
}

impl<S: BuildHasher> ValueMemo<S> {
    /// An empty memo hashing with `hasher`.
    pub fn with_hasher(verdicts: u32, hasher: S) -> ValueMemo<S> {
        ValueMemo {
            hasher,
            tags: Vec::new(),
            entries: Vec::new(),
            next_stamp: 1,
            verdict_words: (verdicts as usize).div_ceil(64),
            stretch_backoff: Vec::new(),
        }
    }

    /// Whether to look at the bits of stretch `id` on this arrival: not
    /// while it backs off after looks that did not rule it out (values
    /// that change on every request never get its bits, and both the
    /// look and the noting after it cost).
    pub fn stretch_looks(&mut self, id: usize) -> bool {
        if self.stretch_backoff.len() <= id {
            self.stretch_backoff.resize(id + 1, (0, 0));
        }
        let (wait, _) = &mut self.stretch_backoff[id];
        if *wait > 0 {
            *wait -= 1;
            return false;
        }
        true
    }

    /// Records whether a look at stretch `id` ruled it out: after the
    /// third miss in a row the stretch waits 1, 2, 4 … up to
    /// `1 << MAX_STRETCH_WAIT_LOG` arrivals before the next look.
    pub fn stretch_looked(&mut self, id: usize, ruled_out: bool) {
        let Some((wait, misses)) = self.stretch_backoff.get_mut(id) else {
            return;
        };
        if ruled_out {
            *misses = 0;
            return;
        }
        *misses = misses.saturating_add(1);
        if *misses >= 3 {
            *wait = 1u16 << (*misses - 3).min(MAX_STRETCH_WAIT_LOG);
        }
    }

    /// The entry of `value`, if the memo has one (none is made: see
    /// `TransformCache::memo_rejected_by_bytes`).
    pub fn find(&self, value: &[u8]) -> Option<MemoRef> {
        if self.entries.is_empty() {
            return None;
        }
        let at = self.probe(value).2?;
        Some(MemoRef {
            index: at as u32,
            stamp: self.entries[at].stamp,
        })
    }

    /// The entry of `value` (shorter than `RECORDED_LEN`), made now if
    /// there is none, with `presence` computing its byte set.
    pub fn record(&mut self, value: &[u8], presence: impl FnOnce() -> [u64; 4]) -> Recorded<'_> {
        if self.entries.is_empty() {
            self.entries.resize_with(MEMO_ENTRIES, Entry::default);
            self.tags.resize(MEMO_ENTRIES, 0);
        }
        let (tag, set, at) = self.probe(value);
        let found = at
            .inspect(|&i| self.entries[i].used = true)
            .unwrap_or_else(|| self.fill(set, tag, value, presence()));
        let entry = &self.entries[found];
        Recorded {
            at: MemoRef {
                index: found as u32,
                stamp: entry.stamp,
            },
            present: entry.present,
            bits: entry.has_bits.then_some(&entry.bits[..]),
        }
    }

    /// Where `value` belongs (entries allocated): its tag, the first entry
    /// of its set, and its entry when it has one.
    #[inline(always)]
    fn probe(&self, value: &[u8]) -> (u64, usize, Option<usize>) {
        let hash = self.hasher.hash_one(value);
        let tag = hash | 1;
        let set = ((hash >> 1) as usize % SETS) * WAYS;
        let at = (set..set + WAYS).find(|&i| self.tags[i] == tag && self.entries[i].bytes == value);
        (tag, set, at)
    }

    /// Puts `value` in the set starting at `set` (see `victim`); its index.
    #[inline(never)]
    fn fill(&mut self, set: usize, tag: u64, value: &[u8], present: [u64; 4]) -> usize {
        let at = set + self.victim(set);
        self.tags[at] = tag;
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let words = self.verdict_words;
        let entry = &mut self.entries[at];
        entry.stamp = stamp;
        entry.used = false;
        entry.bytes.clear();
        entry.bytes.extend_from_slice(value);
        entry.present = present;
        entry.bits.clear();
        entry.has_bits = false;
        entry.rejected.clear();
        entry.rejected.resize(words, 0);
        entry.matched.clear();
        entry.matched.resize(words, 0);
        entry.chains.clear();
        entry.chain_words.clear();
        entry.outputs.clear();
        at
    }

    /// The way of the set starting at `set` to fill: an empty one, else
    /// the oldest of those not found again since they were filled or
    /// since the set last filled up. When every way was found, all are
    /// marked unused again and the oldest fill goes. So a value found on every request keeps
    /// its entry while a stream of new values cycles through the others.
    fn victim(&mut self, set: usize) -> usize {
        let ways = &mut self.entries[set..set + WAYS];
        if let Some(empty) = ways.iter().position(|e| e.stamp == 0) {
            return empty;
        }
        let oldest = |ways: &[Entry], unused_only: bool| {
            ways.iter()
                .enumerate()
                .filter(|(_, e)| !(unused_only && e.used))
                .min_by_key(|(_, e)| e.stamp)
                .map(|(i, _)| i)
        };
        if let Some(unused) = oldest(ways, true) {
            return unused;
        }
        for e in ways.iter_mut() {
            e.used = false;
        }
        oldest(ways, false).unwrap_or(0)
    }

    /// The entry `at` refers to, while it holds the same value.
    fn entry(&self, at: MemoRef) -> Option<&Entry> {
        self.entries
            .get(at.index as usize)
            .filter(|e| at.stamp != 0 && e.stamp == at.stamp)
    }

    fn entry_mut(&mut self, at: MemoRef) -> Option<&mut Entry> {
        self.entries
            .get_mut(at.index as usize)
            .filter(|e| at.stamp != 0 && e.stamp == at.stamp)
    }

    /// Remembers the prefilter bits of the value of `at`.
    pub fn note_bits(&mut self, at: MemoRef, bits: &[u64]) {
        if let Some(entry) = self.entry_mut(at) {
            entry.bits.clear();
            entry.bits.extend_from_slice(bits);
            entry.has_bits = true;
        }
    }

    /// The prefilter bits of the value of `at` after the transformation
    /// chain `chain`, when remembered.
    pub fn chain_bits(&self, at: MemoRef, chain: u32) -> Option<&[u64]> {
        let entry = self.entry(at)?;
        let &(_, from, len) = entry.chains.iter().find(|c| c.0 == chain)?;
        entry.chain_words.get(from as usize..(from + len) as usize)
    }

    /// Remembers the prefilter bits of the value of `at` after the
    /// transformation chain `chain` (unless the entry holds `CHAIN_BITS`
    /// chains already).
    pub fn note_chain_bits(&mut self, at: MemoRef, chain: u32, bits: &[u64]) {
        let Some(entry) = self.entry_mut(at) else {
            return;
        };
        if entry.chains.len() >= CHAIN_BITS || entry.chains.iter().any(|c| c.0 == chain) {
            return;
        }
        let from = entry.chain_words.len() as u32;
        entry.chain_words.extend_from_slice(bits);
        entry.chains.push((chain, from, bits.len() as u32));
    }

    /// What the transformation chain `chain` made of the value of `at`,
    /// when remembered.
    pub fn chain_output(&self, at: MemoRef, chain: u32) -> Option<&Shared> {
        let entry = self.entry(at)?;
        entry.outputs.iter().find(|o| o.0 == chain).map(|o| &o.1)
    }

    /// Remembers `output` as what the transformation chain `chain` makes
    /// of the value of `at`, when the value was found again since it was
    /// filled (a value seen once is not worth the clone) and unless the
    /// entry holds `CHAIN_OUTPUTS` already or the output is `OUTPUT_LEN`
    /// long or longer.
    pub fn note_chain_output(&mut self, at: MemoRef, chain: u32, output: &Shared) {
        let Some(entry) = self.entry_mut(at).filter(|e| e.used) else {
            return;
        };
        let full = entry.outputs.len() >= CHAIN_OUTPUTS;
        if full || output.len() >= OUTPUT_LEN || entry.outputs.iter().any(|o| o.0 == chain) {
            return;
        }
        entry.outputs.push((chain, output.clone()));
    }

    /// Whether the link with verdict bit `bit` found nothing in the value
    /// of `at` before.
    #[inline]
    pub fn rejects(&self, at: MemoRef, bit: u32) -> bool {
        self.entry(at).is_some_and(|e| bit_in(&e.rejected, bit))
    }

    /// Whether the link with verdict bit `bit` matched the value of `at`
    /// before (noted only for links without `capture` or `multiMatch`).
    pub fn matches(&self, at: MemoRef, bit: u32) -> bool {
        self.entry(at).is_some_and(|e| bit_in(&e.matched, bit))
    }

    /// Remembers that the link with verdict bit `bit` matched the value
    /// of `at`.
    pub fn note_matched(&mut self, at: MemoRef, bit: u32) {
        if let Some(entry) = self.entry_mut(at) {
            set_bit(&mut entry.matched, bit);
        }
    }

    /// The verdict bits of the value of `at`: the links known to find
    /// nothing in it.
    pub fn rejected(&self, at: MemoRef) -> Option<&[u64]> {
        self.entry(at).map(|e| &e.rejected[..])
    }

    /// Words of an entry's verdict set.
    pub fn verdict_words(&self) -> usize {
        self.verdict_words
    }

    /// Remembers that the link with verdict bit `bit` found nothing in
    /// the value of `at`.
    pub fn note_rejected(&mut self, at: MemoRef, bit: u32) {
        if let Some(entry) = self.entry_mut(at) {
            set_bit(&mut entry.rejected, bit);
        }
    }

    /// Entries holding a value (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.stamp != 0).count()
    }
}

/// A memo's hasher: a random seed per memo, so which values share a set
/// cannot be aimed at from outside, and differs from one process to the
/// next; with the `fixed-seeds` feature (measurements only), the same
/// seed in every process, so that instruction counts repeat from run to
/// run rather than moving with the sets the values happen to share.
fn memo_hasher() -> foldhash::fast::SeedableRandomState {
    if cfg!(feature = "fixed-seeds") {
        foldhash::fast::SeedableRandomState::fixed()
    } else {
        foldhash::fast::SeedableRandomState::random()
    }
}

/// Whether `bit` is set in `words` (a bit beyond them is not).
fn bit_in(words: &[u64], bit: u32) -> bool {
    words
        .get(bit as usize / 64)
        .is_some_and(|w| w & (1 << (bit % 64)) != 0)
}

/// Sets `bit` in `words` (a bit beyond them is dropped).
fn set_bit(words: &mut [u64], bit: u32) {
    if let Some(word) = words.get_mut(bit as usize / 64) {
        *word |= 1 << (bit % 64);
    }
}

/// The memos of one rule set, one per thread (see the module).
pub(crate) struct MemoShards {
    locals: thread_local::ThreadLocal<Cell<Option<Box<ValueMemo>>>>,
    /// Verdict bits of the rule set (see `compile::verdicts`).
    verdicts: u32,
}

impl std::fmt::Debug for MemoShards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoShards")
    }
}

impl MemoShards {
    pub fn new(verdicts: u32) -> MemoShards {
        MemoShards {
            locals: thread_local::ThreadLocal::new(),
            verdicts,
        }
    }

    /// This thread's memo (a new one if it has none, or if it is out: a
    /// transaction that panicked took it with it).
    pub fn take(&self) -> Box<ValueMemo> {
        let cell = self.locals.get_or(|| Cell::new(None));
        cell.take()
            .unwrap_or_else(|| Box::new(ValueMemo::new(self.verdicts)))
    }

    /// Hands this thread's memo back.
    pub fn give(&self, memo: Box<ValueMemo>) {
        self.locals.get_or(|| Cell::new(None)).set(Some(memo));
    }
}

#[cfg(test)]
mod tests;
