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
//! transformed value.

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

pub(super) struct TransformCache {
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
    unions: HashMap<(u32, usize), Vec<u64>, BuildHasherDefault<IntHasher>>,
}

/// Entries reserved up front: a small request fills about this many, and
/// growing a map from empty rehashes it several times.
const INITIAL_ENTRIES: usize = 128;

impl TransformCache {
    pub fn new() -> Self {
        TransformCache {
            map: HashMap::with_capacity_and_hasher(INITIAL_ENTRIES, Default::default()),
            steps: HashMap::with_capacity_and_hasher(INITIAL_ENTRIES, Default::default()),
            bits: HashMap::with_capacity_and_hasher(INITIAL_ENTRIES, Default::default()),
            arena: Vec::with_capacity(INITIAL_ENTRIES),
            scratch: Vec::new(),
            unions: HashMap::with_capacity_and_hasher(32, Default::default()),
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
        self.unions.get(&(chain, var)).map(|b| &b[..])
    }

    pub fn insert_union(&mut self, chain: u32, var: usize, bits: Vec<u64>) {
        self.unions.insert((chain, var), bits);
    }

    pub fn clear_unions(&mut self) {
        self.unions.clear();
    }
}
