//! The per-transaction transformation cache.
//!
//! CRS applies the same few transformation chains to the same values in
//! rule after rule. A value is identified by its shared allocation (pointer
//! and length, see [`Shared::identity`]); the cache keeps a clone of the
//! input, so the allocation cannot be freed and reused while the entry
//! lives, and a hit costs one hash of three integers.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::vars::Shared;
use crate::compile::prefilter::ChainFilter;

/// Entries kept at most: a request with thousands of arguments must not
/// hoard memory.
const MAX_ENTRIES: usize = 8192;

/// A multiplicative hasher for small integer keys (not DoS-sensitive: the
/// keys are addresses and chain numbers, not attacker-chosen bytes).
#[derive(Default)]
pub(super) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type Key = (u32, usize, usize);

type Map<V> = HashMap<Key, (Shared, V), BuildHasherDefault<IntHasher>>;

#[derive(Default)]
pub(super) struct TransformCache {
    map: Map<Shared>,
    /// (chain, transformed value) → the chain's prefilter slots that may
    /// match it, as (offset, length) in `arena`.
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

impl TransformCache {
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

    pub fn bits(&self, chain: u32, value: &Shared) -> Option<&[u64]> {
        let (ptr, len) = value.identity();
        self.bits
            .get(&(chain, ptr, len))
            .map(|(_, (at, n))| &self.arena[*at as usize..(*at + *n) as usize])
    }

    /// Scans `value` with `filter` and remembers the bit set.
    pub fn scan_bits(&mut self, chain: u32, value: &Shared, filter: &ChainFilter) -> &[u64] {
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
            .insert((chain, ptr, len), (value.clone(), (at as u32, n as u32)));
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
