//! The per-transaction transformation cache.
//!
//! CRS applies the same few transformation chains to the same values in
//! rule after rule. A value is identified by its shared allocation (pointer
//! and length, see [`Shared::identity`]); the cache keeps a clone of the
//! input, so the allocation cannot be freed and reused while the entry
//! lives, and a hit costs one hash of three integers.
//!
//! Three levels: whole chains per value, single transformation steps per
//! value (chains share prefixes and steps), and the prefilter bit set per
//! transformed value. Beside them, per phase: the union of those bit sets
//! over all values of a request-side variable after a chain, and per
//! variable the bytes its values hold (a chain none of whose trigger bytes
//! occur takes the union of the raw values), for skipping whole rules.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use crate::inthash::IntHasher;

use super::data::Bytes;
use super::memo::{MemoRef, ValueMemo};
use super::vars::Shared;
use crate::compile::prefilter::Prefilter;

/// Entries kept at most: a request with thousands of arguments must not
/// hoard memory.
const MAX_ENTRIES: usize = 8192;

type Key = (u32, usize, usize);

type Map<V> = HashMap<Key, (Shared, V), BuildHasherDefault<IntHasher>>;

/// (transformation address, input pointer, input length).
type StepKey = (usize, usize, usize);

pub(crate) struct TransformCache {
    map: Map<Shared>,
    /// One transformation applied to one value: chains share their
    /// prefixes and steps (`t:urlDecodeUni` starts dozens of CRS chains),
    /// and a step that changes nothing hands the same allocation on, so
    /// the next step finds it under the same key.
    steps: HashMap<StepKey, (Shared, Shared), BuildHasherDefault<IntHasher>>,
    /// Transformed value → the prefilter slots that may match it, as
    /// (offset, length) in `arena` (the prefilter is the same for every
    /// chain, so the chain part of the key is always 0), for a value
    /// without its own record in `presence` (most have one: see there).
    bits: Map<(u32, u32)>,
    /// The bit sets of `bits`, one after the other (one buffer, not one
    /// allocation per value).
    arena: Vec<u64>,
    /// A bit set computed once the cache is full.
    scratch: Vec<u64>,
    /// Value → the bytes it holds (see `presence`): whether a chain or a
    /// step can change a value is then four word operations, not a scan
    /// of the value per chain and step. Direct-mapped on the value's
    /// identity. A slot holds the identity, where the value's prefilter
    /// bits are in `arena` once it is scanned (`NO_BITS` before: finding
    /// them is then one identity comparison, not a hash lookup in `bits`)
    /// the index of its entry in `held` and the bytes it holds. 56 bytes a
    /// slot (the value itself is in `held`): twice the slots of full
    /// records in about the same memory, for fewer collisions on bodies
    /// with many values.
    presence: Vec<Slot>,
    /// The values of the filled slots, in the order they were filled:
    /// each keeps a clone of its value, so that the allocation (and the
    /// identity) cannot be reused while it is here, its byte set and its
    /// slot (emptied one by one at `clear`: the table stays allocated).
    held: Vec<Held>,
    /// This thread's memo of values across transactions (see
    /// `eval::memo`), while the transaction runs rules; `None` otherwise
    /// and with the shortcuts off. Records of values it knows are filled
    /// from it; their bits, once scanned, go into it.
    pub(super) memo: Option<Box<ValueMemo>>,
    /// Union id (see `RuleSet::union_id`: a bits chain and a variable) →
    /// the union of the bits of all the variable's values, as (at, len) in
    /// `union_arena` (request-side variables only; cleared when they
    /// change). A flat table: a benign GET looks up ~450 unions.
    /// Entries are (generation, at, len), valid when their generation is
    /// `union_generation`: clearing them all is one increment (requests
    /// clear them at every header added, and there are ~1,000 ids).
    unions: Vec<(u32, u32, u32)>,
    /// The generation of the valid entries of `unions` (never 0).
    union_generation: u32,
    /// The bit sets of `unions`, as `arena` is for `bits`.
    union_arena: Vec<u64>,
    /// Per variable (indexed by `Variable as usize`): the bytes present in
    /// its values and the union of their untransformed bits (at, len in
    /// `union_arena`), valid like `unions` when the generation is
    /// `union_generation`. A flat table, not a map: a benign GET asks for
    /// a summary ~200 times. The union of a chain that changes none of the
    /// variable's values is the summary's range itself (`alias_union`).
    summaries: Vec<Summary>,
    /// Per variable: the verdict bits set for every one of its values (the
    /// links the memo says find nothing in any of them, see
    /// `Transaction::verdicts_reject`), as (generation, at, len) in
    /// `union_arena`, valid like `summaries`.
    verdict_sets: Vec<(u32, u32, u32)>,
}

/// A value with a record (see `TransformCache::held`): the clone that
/// keeps its allocation, its slot, and its entry in the memo.
struct Held {
    /// Kept, not read: the allocation (the identity) stays the value's.
    _value: Shared,
    slot: u16,
    memo: MemoRef,
}

/// A value the cache is asked about, borrowed: a [`Shared`] or a value
/// read in place from the transaction's collections (building the
/// prefilter unions visits every value of a variable, and a `Shared` per
/// value would cost a reference count up and down for nothing). Same
/// identity as the `Shared` it would become; the cache clones it only
/// when it keeps the value (see `TransformCache::held`).
#[derive(Clone, Copy)]
pub(crate) enum ValueRef<'a> {
    Bytes(&'a Bytes),
    /// A collection key used as a value (`ARGS_NAMES`).
    Text(&'a Arc<str>),
}

impl ValueRef<'_> {
    #[inline(always)]
    pub fn bytes(&self) -> &[u8] {
        match self {
            ValueRef::Bytes(b) => b,
            ValueRef::Text(t) => t.as_bytes(),
        }
    }

    /// As [`Shared::identity`]: the allocation's address and the length.
    #[inline(always)]
    pub fn identity(&self) -> (usize, usize) {
        let bytes = self.bytes();
        (bytes.as_ptr() as usize, bytes.len())
    }

    /// The owned value (a reference count, never a copy of the bytes).
    pub fn to_shared(self) -> Shared {
        match self {
            ValueRef::Bytes(b) => Shared::Bytes(b.clone()),
            ValueRef::Text(t) => Shared::Text(t.clone()),
        }
    }
}

impl<'a> From<&'a Shared> for ValueRef<'a> {
    #[inline(always)]
    fn from(value: &'a Shared) -> Self {
        match value {
            Shared::Bytes(b) => ValueRef::Bytes(b),
            Shared::Text(t) => ValueRef::Text(t),
        }
    }
}

/// (generation, bytes present, at, len): see `TransformCache::summaries`.
type Summary = (u32, [u64; 4], u32, u32);

/// Entries of the presence memo (see `TransformCache::presence`): 112 KB
/// of slots, under the allocator's usual mmap threshold (128 KB), so that
/// a scratch made beyond the pool's bound is not mapped and unmapped per
/// request. (4,096 slots would save ~30 k more instructions on a 1 KB
/// JSON body, at 224 KB.)
const PRESENCE_SLOTS: usize = 2048;

/// A slot of the presence memo (see `TransformCache::presence`): the
/// identity of the value it holds (pointer and length), its entry in
/// `held` plus one (0: a free slot), and its bits in `arena` as (at, len),
/// or `NO_BITS`.
#[derive(Clone, Copy)]
struct Slot {
    ptr: usize,
    len: u32,
    entry: u32,
    bits: (u32, u32),
    present: [u64; 4],
}

/// A free slot.
const FREE: Slot = Slot {
    ptr: 0,
    len: 0,
    entry: 0,
    bits: NO_BITS,
    present: [0; 4],
};

impl Slot {
    /// Whether the slot holds the value with this identity.
    #[inline(always)]
    fn holds(&self, (ptr, len): (usize, usize)) -> bool {
        self.entry != 0 && self.ptr == ptr && self.len as usize == len
    }
}

/// What the presence memo holds for one value (see
/// [`TransformCache::known`]), copied out: one lookup answers every
/// question a link asks about a value its chains leave unchanged.
#[derive(Clone, Copy)]
pub(crate) struct Known {
    /// The bytes the value holds.
    pub present: [u64; 4],
    /// Its bits in `arena` as (at, len), or `NO_BITS`.
    bits: (u32, u32),
    /// The record's entry in `held`, plus one.
    entry: u32,
}

/// Values shorter than this get a record when they are scanned (and may
/// be remembered across transactions, see `eval::memo`).
pub(super) const RECORDED_LEN: usize = 256;

/// The bits of a record not scanned yet.
const NO_BITS: (u32, u32) = (u32::MAX, 0);

/// The presence memo's slot for a value with this identity.
fn slot_of((ptr, len): (usize, usize)) -> usize {
    ((ptr >> 3) ^ len.wrapping_mul(0x9E37_79B9)) % PRESENCE_SLOTS
}

/// Entries reserved up front: a small request fills about this many, and
/// growing a map from empty rehashes it several times.
const INITIAL_ENTRIES: usize = 128;

impl Default for TransformCache {
    /// An empty cache that has allocated nothing.
    fn default() -> Self {
        TransformCache::unallocated()
    }
}

impl TransformCache {
    /// An empty cache that has allocated nothing.
    pub fn unallocated() -> Self {
        TransformCache {
            map: HashMap::default(),
            steps: HashMap::default(),
            bits: HashMap::default(),
            arena: Vec::new(),
            scratch: Vec::new(),
            presence: Vec::new(),
            held: Vec::new(),
            memo: None,
            unions: Vec::new(),
            union_generation: 1,
            union_arena: Vec::new(),
            summaries: Vec::new(),
            verdict_sets: Vec::new(),
        }
    }

    /// The largest capacity among the maps and the bit-set arenas.
    pub(super) fn capacity(&self) -> usize {
        let maps = [
            self.map.capacity(),
            self.steps.capacity(),
            self.bits.capacity(),
        ];
        let words = self
            .arena
            .capacity()
            .max(self.scratch.capacity())
            .max(self.union_arena.capacity())
            / 8;
        maps.into_iter().max().unwrap_or(0).max(words)
    }

    /// Forgets every entry, keeping the allocations.
    pub(super) fn clear(&mut self) {
        self.map.clear();
        self.steps.clear();
        self.bits.clear();
        self.arena.clear();
        self.scratch.clear();
        for held in self.held.drain(..) {
            self.presence[usize::from(held.slot)] = FREE;
        }
        self.clear_unions();
    }

    pub fn new() -> Self {
        TransformCache {
            map: HashMap::with_capacity_and_hasher(INITIAL_ENTRIES, Default::default()),
            steps: HashMap::with_capacity_and_hasher(INITIAL_ENTRIES, Default::default()),
            bits: HashMap::with_capacity_and_hasher(INITIAL_ENTRIES, Default::default()),
            arena: Vec::with_capacity(INITIAL_ENTRIES),
            ..Self::unallocated()
        }
    }

    /// The bytes `value` holds, as 256 bits (see `transform::presence`),
    /// when its slot holds them or is free (then they are computed and
    /// kept); `None` when another value has the slot (a request with more
    /// values than slots: replacing entries would cost a scan and two
    /// reference counts at every turn, so the caller scans the value), and
    /// for values of `RECORDED_LEN` bytes or more (never kept).
    #[inline(always)]
    pub fn presence<'v>(&mut self, value: impl Into<ValueRef<'v>>) -> Option<[u64; 4]> {
        self.known(value).map(|known| known.present)
    }

    /// The record of `value`, made now when its slot is free (as for
    /// [`presence`](Self::presence)): its bytes and, once it is scanned,
    /// where its bits are. `None` when another value holds the slot.
    #[inline(always)]
    pub fn known<'v>(&mut self, value: impl Into<ValueRef<'v>>) -> Option<Known> {
        let value = value.into();
        let identity = value.identity();
        let slot = slot_of(identity);
        match self.presence.get(slot) {
            Some(found) if found.holds(identity) => Some(Known {
                present: found.present,
                bits: found.bits,
                entry: found.entry,
            }),
            Some(found) if found.entry != 0 => None,
            _ if value.bytes().len() < RECORDED_LEN => Some(self.note_presence(slot, value)),
            _ => None,
        }
    }

    /// The prefilter bits of the value `known` was read from, when it had
    /// been scanned then (what [`bits`](Self::bits) finds in its record:
    /// the arena only grows until `clear`).
    #[inline(always)]
    pub fn known_bits(&self, known: &Known) -> Option<&[u64]> {
        let (at, n) = known.bits;
        (at != NO_BITS.0).then(|| &self.arena[at as usize..(at + n) as usize])
    }

    /// Makes the record of `value` (shorter than `RECORDED_LEN`) in the
    /// free `slot`: its presence set and, when the memo knows the bytes,
    /// its bits, taken from there rather than computed.
    #[inline(never)]
    fn note_presence(&mut self, slot: usize, value: ValueRef<'_>) -> Known {
        if self.presence.is_empty() {
            self.presence.resize(PRESENCE_SLOTS, FREE);
        }
        let compute = || {
            let mut present = [0u64; 4];
            crate::transform::presence(value.bytes(), &mut present);
            present
        };
        let (present, bits, memo) = match self.memo.as_deref_mut() {
            Some(memo) => {
                let found = memo.record(value.bytes(), compute);
                let bits = match found.bits {
                    Some(bits) if self.arena.len() <= u32::MAX as usize / 2 => {
                        let at = self.arena.len();
                        self.arena.extend_from_slice(bits);
                        (at as u32, bits.len() as u32)
                    }
                    _ => NO_BITS,
                };
                (found.present, bits, found.at)
            }
            None => (compute(), NO_BITS, MemoRef::NONE),
        };
        let (ptr, len) = value.identity();
        self.held.push(Held {
            _value: value.to_shared(),
            slot: slot as u16,
            memo,
        });
        let entry = self.held.len() as u32;
        self.presence[slot] = Slot {
            ptr,
            len: len as u32,
            entry,
            bits,
            present,
        };
        Known {
            present,
            bits,
            entry,
        }
    }

    /// The verdict bits of `value` (shorter than `RECORDED_LEN`) from the
    /// memo itself, found by its bytes: for a value whose presence slot
    /// another value holds (`known` is `None`), so that a collision of
    /// two values' slots does not hide what the memo knows of either.
    /// `None` when the memo has no entry for it.
    pub fn memo_rejected_by_bytes(&self, value: ValueRef<'_>) -> Option<&[u64]> {
        let at = self.memo_entry_by_bytes(value)?;
        self.memo.as_ref()?.rejected(at)
    }

    /// Tells the memo that the link (or stretch group) with verdict bit
    /// `bit` found nothing in `value`, found by its bytes (see
    /// [`memo_rejected_by_bytes`](Self::memo_rejected_by_bytes)).
    pub fn memo_note_rejected_by_bytes(&mut self, value: ValueRef<'_>, bit: u32) {
        if let Some(at) = self.memo_entry_by_bytes(value) {
            if let Some(memo) = self.memo.as_deref_mut() {
                memo.note_rejected(at, bit);
            }
        }
    }

    /// The memo entry of `value`, found by its bytes. None is made: a
    /// request with more values than presence slots (a large body) would
    /// push the values seen on every request out of the memo.
    fn memo_entry_by_bytes(&self, value: ValueRef<'_>) -> Option<MemoRef> {
        let bytes = value.bytes();
        if bytes.len() >= RECORDED_LEN {
            return None;
        }
        self.memo.as_deref()?.find(bytes)
    }

    /// The memo entry of the record `known` was read from.
    fn memo_of(&self, known: &Known) -> MemoRef {
        match self.held.get((known.entry as usize).wrapping_sub(1)) {
            Some(held) => held.memo,
            None => MemoRef::NONE,
        }
    }

    /// Whether the memo says that the link with verdict bit `bit` finds
    /// nothing in the value `known` was read from (see `eval::memo`).
    #[inline]
    pub fn memo_rejects(&self, known: &Known, bit: u32) -> bool {
        match &self.memo {
            Some(memo) => memo.rejects(self.memo_of(known), bit),
            None => false,
        }
    }

    /// The prefilter bits, after the transformation chain `chain`, of the
    /// value `known` was read from, when the memo has them.
    #[inline]
    pub fn memo_chain_bits(&self, known: &Known, chain: u32) -> Option<&[u64]> {
        self.memo.as_ref()?.chain_bits(self.memo_of(known), chain)
    }

    /// Gives the memo the prefilter bits of `output` (scanned: see
    /// `bits`) as those of the value `known` was read from after the
    /// transformation chain `chain` (whose output it is).
    pub fn memo_note_chain_bits(&mut self, known: &Known, chain: u32, output: &Shared) {
        let at = self.memo_of(known);
        let Some(range) = self.bits_range(output.into()) else {
            return;
        };
        if let Some(memo) = self.memo.as_deref_mut() {
            memo.note_chain_bits(at, chain, &self.arena[range]);
        }
    }

    /// The verdict bits of the value `known` was read from (see
    /// [`ValueMemo::rejected`]), when the memo has an entry for it.
    #[inline]
    pub fn memo_rejected(&self, known: &Known) -> Option<&[u64]> {
        self.memo.as_ref()?.rejected(self.memo_of(known))
    }

    /// What the transformation chain `chain` makes of the value `known`
    /// was read from, when the memo has it.
    #[inline]
    pub fn memo_chain_output(&self, known: &Known, chain: u32) -> Option<&Shared> {
        self.memo.as_ref()?.chain_output(self.memo_of(known), chain)
    }

    /// Gives the memo `output` as what the transformation chain `chain`
    /// makes of the value `known` was read from.
    pub fn memo_note_chain_output(&mut self, known: &Known, chain: u32, output: &Shared) {
        let at = self.memo_of(known);
        if let Some(memo) = self.memo.as_deref_mut() {
            memo.note_chain_output(at, chain, output);
        }
    }

    /// Whether the memo says that the link with verdict bit `bit` matches
    /// the value `known` was read from.
    #[inline]
    pub fn memo_matches(&self, known: &Known, bit: u32) -> bool {
        match &self.memo {
            Some(memo) => memo.matches(self.memo_of(known), bit),
            None => false,
        }
    }

    /// Tells the memo that the link with verdict bit `bit` matched the
    /// value `known` was read from.
    pub fn memo_note_matched(&mut self, known: &Known, bit: u32) {
        let at = self.memo_of(known);
        if let Some(memo) = self.memo.as_deref_mut() {
            memo.note_matched(at, bit);
        }
    }

    /// Tells the memo that the link with verdict bit `bit` found nothing
    /// in the value `known` was read from.
    pub fn memo_note_rejected(&mut self, known: &Known, bit: u32) {
        let at = self.memo_of(known);
        if let Some(memo) = self.memo.as_deref_mut() {
            memo.note_rejected(at, bit);
        }
    }

    pub fn get(&self, chain: u32, input: &Shared) -> Option<&Shared> {
        let (ptr, len) = input.identity();
        self.map.get(&(chain, ptr, len)).map(|(_, out)| out)
    }

    pub fn insert(&mut self, chain: u32, input: &Shared, output: Shared) {
        if self.map.len() >= MAX_ENTRIES {
            return;
        }
        let (ptr, len) = input.identity();
        self.map.insert((chain, ptr, len), (input.clone(), output));
    }

    pub fn step(&self, transform: usize, input: &Shared) -> Option<&Shared> {
        let (ptr, len) = input.identity();
        self.steps.get(&(transform, ptr, len)).map(|(_, out)| out)
    }

    pub fn insert_step(&mut self, transform: usize, input: &Shared, output: Shared) {
        if self.steps.len() >= MAX_ENTRIES {
            return;
        }
        let (ptr, len) = input.identity();
        self.steps
            .insert((transform, ptr, len), (input.clone(), output));
    }

    /// The remembered prefilter bits of `value`: in its record when it
    /// has one with bits, else in `bits` (a value is scanned only when
    /// neither has them, so it is never in both).
    pub fn bits<'v>(&self, value: impl Into<ValueRef<'v>>) -> Option<&[u64]> {
        self.bits_range(value.into())
            .map(|range| &self.arena[range])
    }

    /// Where [`bits`](Self::bits) finds the bits of `value` in `arena`.
    fn bits_range(&self, value: ValueRef<'_>) -> Option<std::ops::Range<usize>> {
        let identity = value.identity();
        if let Some(found) = self.presence.get(slot_of(identity)) {
            let (at, n) = found.bits;
            if found.holds(identity) && at != NO_BITS.0 {
                return Some(at as usize..(at + n) as usize);
            }
        }
        if self.bits.is_empty() {
            return None;
        }
        let (ptr, len) = identity;
        self.bits
            .get(&(0, ptr, len))
            .map(|(_, (at, n))| *at as usize..(*at + *n) as usize)
    }

    /// Scans `value` with `filter` and remembers the bit set: in the
    /// value's record, made now for a short value if its slot is free (the
    /// bytes of a short value are asked for soon after its bits), or else
    /// in `bits`.
    pub fn scan_bits<'v>(&mut self, value: impl Into<ValueRef<'v>>, filter: &Prefilter) -> &[u64] {
        self.scan_bits_of(value.into(), filter)
    }

    fn scan_bits_of(&mut self, value: ValueRef<'_>, filter: &Prefilter) -> &[u64] {
        if self.arena.len() > u32::MAX as usize / 2 {
            return self.scan_unkept(value, filter);
        }
        let identity = value.identity();
        let slot = slot_of(identity);
        let own = match self.presence.get(slot) {
            Some(found) if found.entry != 0 => found.holds(identity),
            // Only a short value gets a record for its bits: the bytes of
            // a long one may never be asked for (see `presence`).
            _ if value.bytes().len() < RECORDED_LEN => {
                self.note_presence(slot, value);
                true
            }
            _ => false,
        };
        if !own && self.bits.len() >= MAX_ENTRIES {
            return self.scan_unkept(value, filter);
        }
        let at = self.arena.len();
        filter.scan_into(value.bytes(), &mut self.arena);
        let range = (at as u32, (self.arena.len() - at) as u32);
        match self.presence.get_mut(slot) {
            Some(found) if own => {
                found.bits = range;
                let entry = found.entry as usize;
                self.remember_bits(entry, at);
            }
            _ => {
                let (ptr, len) = identity;
                self.bits.insert((0, ptr, len), (value.to_shared(), range));
            }
        }
        &self.arena[at..]
    }

    /// The prefilter bits of `value` (what [`bits`](Self::bits) finds,
    /// else scanned now as [`scan_bits`](Self::scan_bits) does), with
    /// `known` the record [`known`](Self::known) has just returned for it,
    /// if any: its bits are then read from there, without looking the
    /// value up again.
    pub fn raw_bits(
        &mut self,
        value: ValueRef<'_>,
        known: Option<&Known>,
        filter: &Prefilter,
    ) -> &[u64] {
        if let Some(known) = known {
            let (at, n) = known.bits;
            if at != NO_BITS.0 {
                return &self.arena[at as usize..(at + n) as usize];
            }
        }
        if let Some(range) = self.bits_range(value) {
            return &self.arena[range];
        }
        self.scan_bits_of(value, filter)
    }

    /// Hands the bits at `at` in `arena` (to its end) to the memo entry of
    /// the record `entry` (in `held`, plus one).
    fn remember_bits(&mut self, entry: usize, at: usize) {
        let Some(memo) = self.memo.as_deref_mut() else {
            return;
        };
        if let Some(held) = self.held.get(entry.wrapping_sub(1)) {
            memo.note_bits(held.memo, &self.arena[at..]);
        }
    }

    /// A bit set computed into the scratch buffer, not remembered (the
    /// cache is full).
    fn scan_unkept(&mut self, value: ValueRef<'_>, filter: &Prefilter) -> &[u64] {
        self.scratch.clear();
        filter.scan_into(value.bytes(), &mut self.scratch);
        &self.scratch
    }

    /// Union `id`, when valid (the engine asks [`union_has`](Self::union_has)).
    #[cfg(test)]
    pub fn union(&self, id: u32) -> Option<&[u64]> {
        let (generation, at, n) = *self.unions.get(id as usize)?;
        (generation == self.union_generation)
            .then(|| &self.union_arena[at as usize..(at + n) as usize])
    }

    /// Whether union `id` has the bit `mask` in its word `word` (a
    /// prefilter slot, see `slot_set`), when the union is valid: what
    /// `slot_set` says on [`union`](Self::union), in one word read (a
    /// benign GET asks ~600 times, for every target of every link a union
    /// may rule out).
    #[inline(always)]
    pub fn union_has(&self, id: u32, word: usize, mask: u64) -> Option<bool> {
        self.arena_has(*self.unions.get(id as usize)?, word, mask)
    }

    /// Whether the bit set at (at, len) in `union_arena` has the bit
    /// `mask` in its word `word`, when its generation is valid.
    #[inline(always)]
    fn arena_has(
        &self,
        (generation, at, n): (u32, u32, u32),
        word: usize,
        mask: u64,
    ) -> Option<bool> {
        if generation != self.union_generation {
            return None;
        }
        // A set shorter than the word holds no bit of it.
        Some(word < n as usize && self.union_arena[at as usize + word] & mask != 0)
    }

    pub fn insert_union(&mut self, id: u32, bits: &[u64]) {
        if self.union_arena.len() > u32::MAX as usize / 2 {
            return;
        }
        let id = id as usize;
        if self.unions.len() <= id {
            self.unions.resize(id + 1, (0, 0, 0));
        }
        let at = self.union_arena.len() as u32;
        self.union_arena.extend_from_slice(bits);
        self.unions[id] = (self.union_generation, at, bits.len() as u32);
    }

    /// The summary of `var`, when it is valid.
    fn summary_entry(&self, var: usize) -> Option<&Summary> {
        self.summaries
            .get(var)
            .filter(|s| s.0 == self.union_generation)
    }

    /// The bytes present in the values of `var` and their raw bits.
    pub fn summary(&self, var: usize) -> Option<([u64; 4], &[u64])> {
        let (_, present, at, n) = *self.summary_entry(var)?;
        Some((present, &self.union_arena[at as usize..(at + n) as usize]))
    }

    pub fn insert_summary(&mut self, var: usize, present: [u64; 4], bits: &[u64]) {
        if self.union_arena.len() > u32::MAX as usize / 2 {
            return;
        }
        if self.summaries.len() <= var {
            self.summaries.resize(var + 1, (0, [0; 4], 0, 0));
        }
        let at = self.union_arena.len() as u32;
        self.union_arena.extend_from_slice(bits);
        self.summaries[var] = (self.union_generation, present, at, bits.len() as u32);
    }

    /// Makes union `id` the raw bits of `var`'s summary, without copying
    /// them (the caller knows the union's chain changes none of the
    /// values); those bits, or `None` without a valid summary.
    pub fn alias_union(&mut self, id: u32, var: usize) -> Option<&[u64]> {
        let (_, _, at, n) = *self.summary_entry(var)?;
        let id = id as usize;
        if self.unions.len() <= id {
            self.unions.resize(id + 1, (0, 0, 0));
        }
        self.unions[id] = (self.union_generation, at, n);
        Some(&self.union_arena[at as usize..(at + n) as usize])
    }

    /// Whether every value of `var` has the verdict bit `mask` in word
    /// `word` of its verdict set, when that set is valid.
    #[inline(always)]
    pub fn verdicts_have(&self, var: usize, word: usize, mask: u64) -> Option<bool> {
        self.arena_has(*self.verdict_sets.get(var)?, word, mask)
    }

    pub fn insert_verdicts(&mut self, var: usize, bits: &[u64]) {
        if self.union_arena.len() > u32::MAX as usize / 2 {
            return;
        }
        if self.verdict_sets.len() <= var {
            self.verdict_sets.resize(var + 1, (0, 0, 0));
        }
        let at = self.union_arena.len() as u32;
        self.union_arena.extend_from_slice(bits);
        self.verdict_sets[var] = (self.union_generation, at, bits.len() as u32);
    }

    /// Forgets the unions `ids`, the summaries and verdict sets of `vars`
    /// only (whose values depend on the phase); the others stay valid.
    pub fn forget_unions_of(&mut self, vars: &[usize], ids: &[u32]) {
        for id in ids {
            if let Some(union) = self.unions.get_mut(*id as usize) {
                union.0 = 0;
            }
        }
        for var in vars {
            if let Some(summary) = self.summaries.get_mut(*var) {
                summary.0 = 0;
            }
            if let Some(set) = self.verdict_sets.get_mut(*var) {
                set.0 = 0;
            }
        }
    }

    pub fn clear_unions(&mut self) {
        self.union_generation = self.union_generation.wrapping_add(1);
        if self.union_generation == 0 {
            // Wrapped: entries of an old generation 1 must not revive.
            self.unions.fill((0, 0, 0));
            self.summaries.fill((0, [0; 4], 0, 0));
            self.verdict_sets.fill((0, 0, 0));
            self.union_generation = 1;
        }
        self.union_arena.clear();
    }
}

#[cfg(test)]
mod tests;
