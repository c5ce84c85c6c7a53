//! TX and the persistent collections: a keyed store with case-insensitive
//! keys, whose keys known at load have a slot.
//!
//! Keys known at load are the literal `setvar` keys, the `%{tx.x}` macros
//! and the `[&]TX:key "@cmp N"` plans of the rules, and the capture keys
//! `0`–`9`. Each is a [`StoreKey`]: lower-cased, hashed and given a process
//! wide id once, when the rules are parsed. A rule set freezes the names
//! registered so far into a [`KeyIndex`]; a store built on that index
//! keeps the value of every indexed name in a slot (a vector indexed by
//! the id), and every other key (built from request data, such as
//! `tx.header_name_920450_%{tx.0}`) in a hash table. A read or write
//! through a `StoreKey` is then an index into a vector, with no hashing
//! and no string comparison (CRS reads and writes TX through such keys
//! about a hundred times per request).
//!
//! One collection, two places. Which place a key lives in depends only on
//! its text: an indexed name is always in its slot, whether it is written
//! through a `StoreKey` or through text (text is looked up in the index
//! first), and a name the index does not hold is always in the table. So
//! no key is ever in both, and every view of the store (`len`, `iter` for
//! whole-collection and regex-selected targets, removal, the generation)
//! covers both places exactly as one map would.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use hashbrown::hash_table;
use hashbrown::HashTable;

use super::data::Bytes;

/// The hash of a lower-case key in every store of the process: one seed,
/// random per process (keys such as `tx.header_name_920450_%{tx.0}` are
/// built from request data, so the seed must not be guessable from the
/// binary), shared so that a hash computed at load is valid in every
/// transaction's store. Fixed with the `fixed-seeds` feature, for
/// measurements only (see `eval::memo`).
pub fn key_hash(lower_key: &str) -> u64 {
    use std::hash::BuildHasher;
    static STATE: OnceLock<foldhash::fast::FixedState> = OnceLock::new();
    let state = STATE.get_or_init(|| {
        let seed = match cfg!(feature = "fixed-seeds") {
            true => 0x5eed,
            false => foldhash::fast::RandomState::default().hash_one(0x5eed_u64),
        };
        foldhash::fast::FixedState::with_seed(seed)
    });
    state.hash_one(lower_key)
}

/// Every key name a [`StoreKey`] was made for, in the process, with its id
/// (its position). Only written while rules are loaded.
#[derive(Default)]
struct Registry {
    ids: std::collections::HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
    /// The index of all names so far, when one was built since the last
    /// new name (rule sets loaded one after the other share it).
    frozen: Option<Arc<KeyIndex>>,
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        // The registry is consistent between statements: a panic while
        // it was held left it usable.
        .unwrap_or_else(PoisonError::into_inner)
}

/// A key of a [`Store`] known before the request: in lower case, hashed,
/// with its id in the process's registry of names, all computed once (at
/// load for the literal keys of rules).
///
/// Every `StoreKey` of one text shares one allocation of it (its address
/// identifies the key, see `tx_planned`). Equality and hashing are by the
/// text.
#[derive(Clone, Debug)]
pub struct StoreKey {
    name: Arc<str>,
    hash: u64,
    id: u32,
}

impl StoreKey {
    /// `key` in lower case, hashed, registered.
    pub fn new(key: &str) -> StoreKey {
        let lower_key = lower(key);
        let hash = key_hash(&lower_key);
        let mut reg = registry();
        if let Some((name, id)) = reg.ids.get_key_value(&*lower_key) {
            return StoreKey {
                name: name.clone(),
                hash,
                id: *id,
            };
        }
        // Past `u32::MAX` names (never in practice) keys go without a slot.
        let id = u32::try_from(reg.names.len()).unwrap_or(u32::MAX);
        let name: Arc<str> = Arc::from(&*lower_key);
        reg.ids.insert(name.clone(), id);
        reg.names.push(name.clone());
        reg.frozen = None;
        StoreKey { name, hash, id }
    }

    /// The key's text, in lower case.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }
}

impl PartialEq for StoreKey {
    fn eq(&self, other: &StoreKey) -> bool {
        self.name == other.name
    }
}

impl Eq for StoreKey {}

impl std::hash::Hash for StoreKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

/// The keys `TX:0`..`TX:9` that regex captures write.
pub(super) fn capture_keys() -> &'static [StoreKey; 10] {
    static KEYS: OnceLock<[StoreKey; 10]> = OnceLock::new();
    KEYS.get_or_init(|| std::array::from_fn(|i| StoreKey::new(&i.to_string())))
}

/// The names registered when a rule set was built, frozen: the keys that
/// have a slot in the stores of its transactions.
pub struct KeyIndex {
    names: Vec<Arc<str>>,
    /// Per name: whether it holds a line break (see `Store::newline_keys`).
    newline: Vec<bool>,
    /// (hash, id) of every name, for keys given as text.
    table: HashTable<(u64, u32)>,
}

impl std::fmt::Debug for KeyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyIndex({} names)", self.names.len())
    }
}

impl KeyIndex {
    /// Every name registered so far (the capture keys included).
    pub fn current() -> Arc<KeyIndex> {
        capture_keys();
        let mut reg = registry();
        if let Some(frozen) = &reg.frozen {
            return frozen.clone();
        }
        let names = reg.names.clone();
        let mut table = HashTable::with_capacity(names.len());
        for (id, name) in names.iter().enumerate() {
            let Ok(id) = u32::try_from(id) else { break };
            let hash = key_hash(name);
            table.insert_unique(hash, (hash, id), |e: &(u64, u32)| e.0);
        }
        let newline = names
            .iter()
            .map(|n| memchr::memchr(b'\n', n.as_bytes()).is_some())
            .collect();
        let index = Arc::new(KeyIndex {
            names,
            newline,
            table,
        });
        reg.frozen = Some(index.clone());
        index
    }

    /// The index of stores without slots (ENV, the persistent
    /// collections, stores made before a rule set).
    fn empty() -> Arc<KeyIndex> {
        static EMPTY: OnceLock<Arc<KeyIndex>> = OnceLock::new();
        EMPTY
            .get_or_init(|| {
                Arc::new(KeyIndex {
                    names: Vec::new(),
                    newline: Vec::new(),
                    table: HashTable::new(),
                })
            })
            .clone()
    }

    fn len(&self) -> usize {
        self.names.len()
    }

    /// One bit per name (in id order) that `picks` selects.
    pub fn mask(&self, picks: impl Fn(&str) -> bool) -> Vec<u64> {
        let mut mask = vec![0u64; self.names.len().div_ceil(64)];
        for (id, name) in self.names.iter().enumerate() {
            if picks(name) {
                mask[id / 64] |= 1 << (id % 64);
            }
        }
        mask
    }

    /// The slot of a lower-case key, when the index holds it.
    #[inline]
    fn find(&self, hash: u64, key: &str) -> Option<usize> {
        let (_, id) = self.table.find(hash, |&(h, id)| {
            h == hash && *self.names[id as usize] == *key
        })?;
        Some(*id as usize)
    }

    /// The slot of a key known at load, when the index holds it.
    #[inline]
    /// Whether `key` has a slot in stores using this index.
    pub(crate) fn has_slot(&self, key: &StoreKey) -> bool {
        self.slot_of(key).is_some()
    }

    fn slot_of(&self, key: &StoreKey) -> Option<usize> {
        let id = key.id as usize;
        // Ids are positions in the registry, which only grows: a name
        // registered before this index was frozen has its position here.
        (id < self.names.len()).then_some(id)
    }
}

/// One entry of the table of a [`Store`] (keys without a slot); the hash
/// is kept so that growing the table never hashes a key again.
#[derive(Clone, Debug)]
struct Entry {
    hash: u64,
    key: Arc<str>,
    value: Bytes,
}

impl Entry {
    /// Whether this entry holds `key` (lower case) whose hash is `hash`.
    /// The same allocation answers without comparing bytes.
    #[inline]
    fn holds(&self, hash: u64, key: &str) -> bool {
        self.hash == hash
            && (std::ptr::eq(self.key.as_ptr(), key.as_ptr()) && self.key.len() == key.len()
                || *self.key == *key)
    }
}

/// A keyed store for TX and the persistent collections: keys are stored
/// lower-case (SecLang variable names are case-insensitive). See the
/// module documentation for the two places a key may live in.
///
/// The table has a per-process random seed (some keys are built from
/// request data); whoever iterates the store sorts what it selected, so
/// results come in key order, as they did from an ordered map.
#[derive(Clone, Debug)]
pub struct Store {
    index: Arc<KeyIndex>,
    /// Per indexed name: its value. Sized to the index on the first write
    /// to a slot.
    slots: Vec<Option<Bytes>>,
    /// One bit per slot that holds a value (iteration and clearing visit
    /// only those).
    occupied: Vec<u64>,
    /// How many slots hold a value.
    in_slots: usize,
    /// Keys without a slot. Private, as the other fields: every insertion
    /// and removal goes through the methods below, which keep `occupied`,
    /// `in_slots` and `newline_keys` exact.
    table: HashTable<Entry>,
    /// Changes at every write (set, remove, clear): a value read at one
    /// generation is still current while the generation is the same.
    generation: u64,
    /// How many keys hold a line break (kept at every insertion and
    /// removal of a key). While there are none, a `^prefix` key selector
    /// is a plain prefix comparison on every key (see
    /// `KeyMatcher::matches_lower_single_line`).
    newline_keys: usize,
}

impl Default for Store {
    fn default() -> Store {
        Store::with_index(KeyIndex::empty())
    }
}

/// Whether `key` has an ASCII capital. Every byte is looked at, without an
/// early exit: the loop folds into a few vector instructions, where a
/// search that stops at the first capital costs ~15 instructions a byte
/// (TX keys and macro names are read this way several times per rule).
fn has_capital(key: &str) -> bool {
    let capitals = key
        .as_bytes()
        .iter()
        .fold(0u8, |n, b| n | u8::from(b.wrapping_sub(b'A') < 26));
    capitals != 0
}

/// `key` in lower case, borrowed when it already is.
pub(super) fn lower(key: &str) -> Cow<'_, str> {
    if has_capital(key) {
        Cow::Owned(key.to_ascii_lowercase())
    } else {
        Cow::Borrowed(key)
    }
}

/// Runs `f` on `key` in lower case, without allocating for short keys
/// (rule selectors such as `TX:DETECTION_PARANOIA_LEVEL` are looked up
/// once per rule).
fn with_lower<T>(key: &str, f: impl FnOnce(&str) -> T) -> T {
    if !has_capital(key) {
        return f(key);
    }
    let mut buf = [0u8; 64];
    if let Some(b) = buf.get_mut(..key.len()) {
        b.copy_from_slice(key.as_bytes());
        b.make_ascii_lowercase();
        // ASCII lower-casing keeps UTF-8 valid.
        if let Ok(s) = std::str::from_utf8(b) {
            return f(s);
        }
    }
    f(&key.to_ascii_lowercase())
}

/// The set bits of `words` (ANDed with `mask` when given; a mask shorter
/// than `words` clears the rest), in increasing order.
struct Bits<'a> {
    words: &'a [u64],
    mask: Option<&'a [u64]>,
    /// The word after `rest`'s.
    next: usize,
    rest: u64,
}

impl Iterator for Bits<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.rest == 0 {
            let word = *self.words.get(self.next)?;
            let mask = match self.mask {
                Some(mask) => mask.get(self.next).copied().unwrap_or(0),
                None => u64::MAX,
            };
            self.rest = word & mask;
            self.next += 1;
        }
        let bit = self.rest.trailing_zeros() as usize;
        self.rest &= self.rest - 1;
        Some((self.next - 1) * 64 + bit)
    }
}

fn set_bits<'a>(words: &'a [u64]) -> Bits<'a> {
    Bits {
        words,
        mask: None,
        next: 0,
        rest: 0,
    }
}

impl Store {
    /// An empty store whose slots are the names of `index`.
    pub fn with_index(index: Arc<KeyIndex>) -> Store {
        Store {
            index,
            slots: Vec::new(),
            occupied: Vec::new(),
            in_slots: 0,
            table: HashTable::new(),
            generation: 0,
            newline_keys: 0,
        }
    }

    /// Makes the slots those of `index`, emptying the store when it had
    /// another index (a store made without one); a store of the same
    /// index is left as it is.
    pub fn use_index(&mut self, index: &Arc<KeyIndex>) {
        if !Arc::ptr_eq(&self.index, index) {
            self.clear();
            self.index = index.clone();
            self.slots = Vec::new();
            self.occupied = Vec::new();
        }
    }

    /// See the `generation` field.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Removes every value, keeping the allocations.
    pub fn clear(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        for id in set_bits(&self.occupied) {
            self.slots[id] = None;
        }
        self.occupied.iter_mut().for_each(|w| *w = 0);
        self.in_slots = 0;
        self.table.clear();
        self.newline_keys = 0;
    }

    /// The stored keys (lower case) and values, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Bytes)> {
        let in_slots = set_bits(&self.occupied)
            .filter_map(|id| Some((&self.index.names[id], self.slots[id].as_ref()?)));
        in_slots.chain(self.table.iter().map(|e| (&e.key, &e.value)))
    }

    /// The keys and values held in slots (see `iter`), only those of the
    /// slots set in `mask` when given (bits over the names of `index`).
    pub fn iter_slots<'a>(
        &'a self,
        mask: Option<&'a [u64]>,
    ) -> impl Iterator<Item = (&'a Arc<str>, &'a Bytes)> + 'a {
        let bits = Bits {
            words: &self.occupied,
            mask,
            next: 0,
            rest: 0,
        };
        bits.filter_map(|id| Some((&self.index.names[id], self.slots[id].as_ref()?)))
    }

    /// The keys and values held in the table (see `iter`).
    pub fn iter_table(&self) -> impl Iterator<Item = (&Arc<str>, &Bytes)> {
        self.table.iter().map(|e| (&e.key, &e.value))
    }

    /// The index whose names have slots here.
    pub fn index(&self) -> &Arc<KeyIndex> {
        &self.index
    }

    pub fn len(&self) -> usize {
        self.in_slots + self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity of the table of keys without a slot (for pooling
    /// decisions: the slots are bounded by the rule set, not the request).
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// True when no key holds a line break: every key is then a single
    /// line in ASCII lower case.
    pub fn keys_single_line(&self) -> bool {
        self.newline_keys == 0
    }

    #[inline]
    fn slot(&self, id: usize) -> Option<&Bytes> {
        self.slots.get(id)?.as_ref()
    }

    /// The table entry of a lower-case key whose hash is `hash`.
    #[inline]
    fn find(&self, hash: u64, key: &str) -> Option<&Entry> {
        self.table.find(hash, |e| e.holds(hash, key))
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.get_shared(key).map(|v| &**v)
    }

    /// The stored value itself (shared, not copied).
    pub fn get_shared(&self, key: &str) -> Option<&Bytes> {
        with_lower(key, |k| self.get_lowercase(k))
    }

    /// The value under a key that is already lower case (no conversion).
    pub fn get_lowercase(&self, key: &str) -> Option<&Bytes> {
        self.entry_lowercase(key).map(|(_, v)| v)
    }

    /// The value under a key known at load: its slot, without hashing.
    #[inline]
    pub fn get_key(&self, key: &StoreKey) -> Option<&Bytes> {
        match self.index.slot_of(key) {
            Some(id) => self.slot(id),
            None => self.find(key.hash, &key.name).map(|e| &e.value),
        }
    }

    /// The stored key and value of a key known at load.
    pub fn entry_key(&self, key: &StoreKey) -> Option<(&Arc<str>, &Bytes)> {
        match self.index.slot_of(key) {
            Some(id) => Some((&self.index.names[id], self.slot(id)?)),
            None => self.find(key.hash, &key.name).map(|e| (&e.key, &e.value)),
        }
    }

    /// The stored key and value.
    pub fn entry(&self, key: &str) -> Option<(&Arc<str>, &Bytes)> {
        with_lower(key, |k| self.entry_lowercase(k))
    }

    fn entry_lowercase(&self, key: &str) -> Option<(&Arc<str>, &Bytes)> {
        let hash = key_hash(key);
        match self.index.find(hash, key) {
            Some(id) => Some((&self.index.names[id], self.slot(id)?)),
            None => self.find(hash, key).map(|e| (&e.key, &e.value)),
        }
    }

    pub fn set(&mut self, key: &str, value: Vec<u8>) {
        self.set_shared(key, value.into());
    }

    /// Stores an already shared value; a new key without a slot is
    /// allocated once, from the lower-case text (920450 stores one new key
    /// per request header).
    pub fn set_shared(&mut self, key: &str, value: Bytes) {
        with_lower(key, |k| {
            let hash = key_hash(k);
            match self.index.find(hash, k) {
                Some(id) => self.set_slot(id, value),
                None => self.insert(hash, k, None, value),
            }
        });
    }

    /// Stores a value under a key known at load: into its slot, or else
    /// sharing the key (no allocation, no hashing).
    pub fn set_key(&mut self, key: &StoreKey, value: Bytes) {
        match self.index.slot_of(key) {
            Some(id) => self.set_slot(id, value),
            None => self.insert(key.hash, &key.name, Some(&key.name), value),
        }
    }

    fn set_slot(&mut self, id: usize, value: Bytes) {
        self.generation = self.generation.wrapping_add(1);
        if self.slots.len() <= id {
            // First write since the store took its index.
            self.slots.resize(self.index.len(), None);
            self.occupied.resize(self.index.len().div_ceil(64), 0);
        }
        if self.slots[id].replace(value).is_none() {
            self.occupied[id / 64] |= 1 << (id % 64);
            self.in_slots += 1;
            if self.index.newline[id] {
                self.newline_keys += 1;
            }
        }
    }

    /// Sets `key` (lower case, hashed to `hash`, without a slot) in the
    /// table; a new key is `shared` when given, else allocated from `key`.
    fn insert(&mut self, hash: u64, key: &str, shared: Option<&Arc<str>>, value: Bytes) {
        self.generation = self.generation.wrapping_add(1);
        let slot = self.table.entry(hash, |e| e.holds(hash, key), |e| e.hash);
        match slot {
            hash_table::Entry::Occupied(mut slot) => slot.get_mut().value = value,
            hash_table::Entry::Vacant(slot) => {
                let key_arc = match shared {
                    Some(shared) => shared.clone(),
                    // `Arc<str>: From<&str>`: one allocation, no String first.
                    None => Arc::from(key),
                };
                slot.insert(Entry {
                    hash,
                    key: key_arc,
                    value,
                });
                if memchr::memchr(b'\n', key.as_bytes()).is_some() {
                    self.newline_keys += 1;
                }
            }
        }
    }

    /// Replaces every value by those of `other`; a write like any other.
    /// Only the occupied slots are visited (the initialisation snapshot is
    /// copied into every transaction).
    pub fn copy_from(&mut self, other: &Store) {
        self.clear();
        if !Arc::ptr_eq(&self.index, &other.index) {
            self.index = other.index.clone();
            self.slots = Vec::new();
            self.occupied = Vec::new();
        }
        if other.in_slots > 0 {
            if self.slots.len() < other.slots.len() {
                self.slots.resize(other.slots.len(), None);
                self.occupied.resize(other.occupied.len(), 0);
            }
            for id in set_bits(&other.occupied) {
                self.slots[id].clone_from(&other.slots[id]);
            }
            self.occupied[..other.occupied.len()].copy_from_slice(&other.occupied);
        }
        self.in_slots = other.in_slots;
        // Entry by entry into the table emptied above, which keeps its
        // allocation (a clone would replace it by one the size of
        // `other`'s, often none, and the keys built from the request would
        // grow it again from nothing in every transaction).
        self.table.reserve(other.table.len(), |e| e.hash);
        for e in other.table.iter() {
            self.table.insert_unique(e.hash, e.clone(), |e| e.hash);
        }
        self.newline_keys = other.newline_keys;
    }

    pub fn remove(&mut self, key: &str) {
        with_lower(key, |k| {
            let hash = key_hash(k);
            match self.index.find(hash, k) {
                Some(id) => self.remove_slot(id),
                None => self.remove_hashed(hash, k),
            }
        });
    }

    /// Removes a key known at load.
    pub fn remove_key(&mut self, key: &StoreKey) {
        match self.index.slot_of(key) {
            Some(id) => self.remove_slot(id),
            None => self.remove_hashed(key.hash, &key.name),
        }
    }

    fn remove_slot(&mut self, id: usize) {
        self.generation = self.generation.wrapping_add(1);
        if let Some(slot) = self.slots.get_mut(id) {
            if slot.take().is_some() {
                self.occupied[id / 64] &= !(1 << (id % 64));
                self.in_slots -= 1;
                if self.index.newline[id] {
                    self.newline_keys -= 1;
                }
            }
        }
    }

    fn remove_hashed(&mut self, hash: u64, key: &str) {
        self.generation = self.generation.wrapping_add(1);
        if let Ok(found) = self.table.find_entry(hash, |e| e.holds(hash, key)) {
            let (removed, _) = found.remove();
            if memchr::memchr(b'\n', removed.key.as_bytes()).is_some() {
                self.newline_keys -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
