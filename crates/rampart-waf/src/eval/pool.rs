//! Scratch that finished transactions hand on to new ones.
//!
//! A transaction's transformation cache, TX map, list of matched rules,
//! shared value lists and scratch buffers are emptied when it ends and
//! kept by its rule set (a small, bounded pool), so that the next
//! transaction does not allocate them and grow them from nothing. Nothing of one transaction is visible to the next:
//! every map and list is cleared before it is pooled.

use std::sync::Mutex;

use super::cache::TransformCache;
use super::data::Store;
use super::vars::Value;
use super::MatchedRule;

/// Scratch kept for reuse by later transactions (per rule set); with
/// `POOLED_CAPACITY`, this bounds the pool to a few megabytes.
const POOLED: usize = 16;

/// Scratch whose maps or lists grew past this many entries is dropped
/// rather than pooled (a 1 KB JSON body fills about a thousand).
const POOLED_CAPACITY: usize = 4096;

/// What a transaction allocates and can hand on, emptied, to the next
/// one: its transformation cache, its TX store and its list of matched
/// rules (CRS matches ~150 `nolog` rules on every request).
#[derive(Default)]
pub(crate) struct Scratch {
    pub cache: TransformCache,
    pub tx: Store,
    pub matched: Vec<MatchedRule>,
    pub lists: super::lists::ValueLists,
    pub buffers: Buffers,
}

/// The transaction's reusable buffers (see the fields of `Transaction`
/// with the same names): pooled so that a transaction does not grow them
/// from nothing (a benign GET reallocated them about a dozen times).
#[derive(Default)]
pub(crate) struct Buffers {
    pub(super) values_buf: Vec<Value>,
    pub(super) union_buf: Vec<Value>,
    pub(super) union_words: Vec<u64>,
    pub(super) setvar_key_buf: Vec<u8>,
    pub(super) setvar_value_buf: Vec<u8>,
}

impl Buffers {
    fn capacity(&self) -> usize {
        let values = self.values_buf.capacity().max(self.union_buf.capacity());
        let setvar = self
            .setvar_key_buf
            .capacity()
            .max(self.setvar_value_buf.capacity());
        values.max(self.union_words.capacity()).max(setvar)
    }

    /// Drops the values held (request data of the finished transaction).
    fn clear(&mut self) {
        self.values_buf.clear();
        self.union_buf.clear();
        self.union_words.clear();
        self.setvar_key_buf.clear();
        self.setvar_value_buf.clear();
    }
}

impl Scratch {
    /// Too large to keep: one big request must not pin its memory.
    fn oversized(&self) -> bool {
        self.cache.capacity() > POOLED_CAPACITY
            || self.tx.capacity() > POOLED_CAPACITY
            || self.matched.capacity() > POOLED_CAPACITY
            || self.lists.capacity() > POOLED_CAPACITY
            || self.buffers.capacity() > POOLED_CAPACITY
    }

    fn clear(&mut self) {
        self.cache.clear();
        self.tx.clear();
        self.matched.clear();
        self.lists.clear();
        self.buffers.clear();
    }
}

/// Scratch of finished transactions for new ones, so that a transaction
/// does not allocate (and later free) its maps and lists from nothing.
#[derive(Default)]
pub(crate) struct ScratchPool(Mutex<Vec<Scratch>>);

impl std::fmt::Debug for ScratchPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScratchPool")
    }
}

impl ScratchPool {
    /// Pooled scratch (empty), or new.
    pub fn take(&self) -> Scratch {
        let pooled = self.0.lock().map(|mut p| p.pop()).unwrap_or(None);
        pooled.unwrap_or_else(|| Scratch {
            cache: TransformCache::new(),
            ..Scratch::default()
        })
    }

    /// Empties `scratch` and keeps it, unless the pool is full or it grew
    /// large.
    pub fn give(&self, mut scratch: Scratch) {
        if scratch.oversized() {
            return;
        }
        scratch.clear();
        if let Ok(mut pool) = self.0.lock() {
            if pool.len() < POOLED {
                pool.push(scratch);
            }
        }
    }
}
