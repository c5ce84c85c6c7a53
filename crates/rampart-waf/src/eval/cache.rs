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

use crate::inthash::IntHasher;

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
    /// chain, so the chain part of the key is always 0).
    bits: Map<(u32, u32)>,
    /// The bit sets of `bits`, one after the other (one buffer, not one
    /// allocation per value).
    arena: Vec<u64>,
    /// A bit set computed once the cache is full.
    scratch: Vec<u64>,
    /// Value → the bytes it holds (see `presence`): whether a chain or a
    /// step can change a value is then four word operations, not a scan
    /// of the value per chain and step. Direct-mapped on the value's
    /// identity; each entry keeps a clone of its value, so that the
    /// allocation (and the identity) cannot be reused while it is here.
    presence: Vec<Option<(Shared, [u64; 4])>>,
    /// The slots of `presence` filled since the last `clear` (emptied
    /// one by one: the table itself stays allocated).
    presence_used: Vec<u16>,
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
    /// Variable → the bytes present in its values and the union of their
    /// untransformed bits (at, len in `union_arena`); cleared with the
    /// unions.
    summaries: HashMap<usize, ([u64; 4], u32, u32), BuildHasherDefault<IntHasher>>,
}

/// Entries of the presence memo (see `TransformCache::presence`).
const PRESENCE_SLOTS: usize = 1024;

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
            presence_used: Vec::new(),
            unions: Vec::new(),
            union_generation: 1,
            union_arena: Vec::new(),
            summaries: HashMap::default(),
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
        for slot in self.presence_used.drain(..) {
            self.presence[usize::from(slot)] = None;
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
    /// reference counts at every turn, so the caller scans the value).
    #[inline(always)]
    pub fn presence(&mut self, value: &Shared) -> Option<[u64; 4]> {
        let (ptr, len) = value.identity();
        let slot = ((ptr >> 3) ^ len.wrapping_mul(0x9E37_79B9)) % PRESENCE_SLOTS;
        match self.presence.get(slot) {
            Some(Some((held, present))) if held.identity() == (ptr, len) => Some(*present),
            Some(Some(_)) => None,
            _ => Some(self.note_presence(slot, value)),
        }
    }

    /// Computes and remembers the presence set of `value` in the free
    /// `slot`.
    #[inline(never)]
    fn note_presence(&mut self, slot: usize, value: &Shared) -> [u64; 4] {
        if self.presence.is_empty() {
            self.presence.resize(PRESENCE_SLOTS, None);
        }
        let mut present = [0u64; 4];
        crate::transform::presence(value, &mut present);
        self.presence_used.push(slot as u16);
        self.presence[slot] = Some((value.clone(), present));
        present
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

    pub fn bits(&self, value: &Shared) -> Option<&[u64]> {
        let (ptr, len) = value.identity();
        self.bits
            .get(&(0, ptr, len))
            .map(|(_, (at, n))| &self.arena[*at as usize..(*at + *n) as usize])
    }

    /// Scans `value` with `filter` and remembers the bit set.
    pub fn scan_bits(&mut self, value: &Shared, filter: &Prefilter) -> &[u64] {
        if self.bits.len() >= MAX_ENTRIES || self.arena.len() > u32::MAX as usize / 2 {
            self.scratch.clear();
            filter.scan_into(value, &mut self.scratch);
            return &self.scratch;
        }
        let at = self.arena.len();
        filter.scan_into(value, &mut self.arena);
        let n = self.arena.len() - at;
        let (ptr, len) = value.identity();
        self.bits
            .insert((0, ptr, len), (value.clone(), (at as u32, n as u32)));
        &self.arena[at..]
    }

    pub fn union(&self, id: u32) -> Option<&[u64]> {
        let (generation, at, n) = *self.unions.get(id as usize)?;
        (generation == self.union_generation)
            .then(|| &self.union_arena[at as usize..(at + n) as usize])
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

    /// The bytes present in the values of `var` and their raw bits.
    pub fn summary(&self, var: usize) -> Option<([u64; 4], &[u64])> {
        self.summaries
            .get(&var)
            .map(|(p, at, n)| (*p, &self.union_arena[*at as usize..(*at + *n) as usize]))
    }

    pub fn insert_summary(&mut self, var: usize, present: [u64; 4], bits: &[u64]) {
        if self.union_arena.len() > u32::MAX as usize / 2 {
            return;
        }
        let at = self.union_arena.len() as u32;
        self.union_arena.extend_from_slice(bits);
        self.summaries.insert(var, (present, at, bits.len() as u32));
    }

    /// Forgets the unions and summary of the variables `vars` only (whose
    /// values depend on the phase); the others stay valid.
    /// Forgets the unions `ids` and the summaries of `vars` only (whose
    /// values depend on the phase); the others stay valid.
    pub fn forget_unions_of(&mut self, vars: &[usize], ids: &[u32]) {
        for id in ids {
            if let Some(union) = self.unions.get_mut(*id as usize) {
                union.0 = 0;
            }
        }
        self.summaries.retain(|var, _| !vars.contains(var));
    }

    pub fn clear_unions(&mut self) {
        self.union_generation = self.union_generation.wrapping_add(1);
        if self.union_generation == 0 {
            // Wrapped: entries of an old generation 1 must not revive.
            self.unions.fill((0, 0, 0));
            self.union_generation = 1;
        }
        self.summaries.clear();
        self.union_arena.clear();
    }
}
