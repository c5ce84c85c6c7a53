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
    /// (chain, variable) → the union of the bits of all the variable's
    /// values (request-side variables only; cleared when they change).
    unions: HashMap<(u32, usize), (u32, u32), BuildHasherDefault<IntHasher>>,
    /// The bit sets of `unions`, as `arena` is for `bits`.
    union_arena: Vec<u64>,
    /// Variable → the bytes present in its values and the union of their
    /// untransformed bits (at, len in `union_arena`); cleared with the
    /// unions.
    summaries: HashMap<usize, ([u64; 4], u32, u32), BuildHasherDefault<IntHasher>>,
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
            unions: HashMap::default(),
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
        self.unions.clear();
        self.summaries.clear();
        self.union_arena.clear();
    }

    pub fn new() -> Self {
        TransformCache {
            map: HashMap::with_capacity_and_hasher(INITIAL_ENTRIES, Default::default()),
            steps: HashMap::with_capacity_and_hasher(INITIAL_ENTRIES, Default::default()),
            bits: HashMap::with_capacity_and_hasher(INITIAL_ENTRIES, Default::default()),
            arena: Vec::with_capacity(INITIAL_ENTRIES),
            scratch: Vec::new(),
            unions: HashMap::with_capacity_and_hasher(32, Default::default()),
            union_arena: Vec::new(),
            summaries: HashMap::default(),
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

    pub fn union(&self, chain: u32, var: usize) -> Option<&[u64]> {
        self.unions
            .get(&(chain, var))
            .map(|(at, n)| &self.union_arena[*at as usize..(*at + *n) as usize])
    }

    pub fn insert_union(&mut self, chain: u32, var: usize, bits: &[u64]) {
        if self.union_arena.len() > u32::MAX as usize / 2 {
            return;
        }
        let at = self.union_arena.len() as u32;
        self.union_arena.extend_from_slice(bits);
        self.unions.insert((chain, var), (at, bits.len() as u32));
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

    pub fn clear_unions(&mut self) {
        self.unions.clear();
        self.summaries.clear();
        self.union_arena.clear();
    }
}
