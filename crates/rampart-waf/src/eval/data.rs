//! What a transaction knows about its request and response: plain data,
//! filled by the `Transaction` setters and the body processors, read by
//! variable resolution.

use std::borrow::Cow;
use std::sync::Arc;

use hashbrown::hash_table;
use hashbrown::HashTable;

/// A shared, immutable value: variable resolution hands out clones of
/// these (a reference count, never a copy of the bytes).
pub type Bytes = Arc<[u8]>;

/// An ordered multi-map with case-insensitive lookups, as ModSecurity's
/// collections behave (`ARGS:Foo` finds `foo`).
#[derive(Clone, Debug, Default)]
pub struct Coll {
    pub entries: Vec<(Arc<str>, Bytes)>,
}

impl Coll {
    /// Appends a copy of `key` and `value` (one allocation each: shared
    /// values are built straight from the borrowed bytes).
    pub fn push(&mut self, key: impl AsRef<str>, value: impl AsRef<[u8]>) {
        let key: Arc<str> = Arc::from(key.as_ref());
        let value: Bytes = Bytes::from(value.as_ref());
        self.entries.push((key, value));
    }

    /// Appends an already shared key and value.
    pub fn push_shared(&mut self, key: Arc<str>, value: Bytes) {
        self.entries.push((key, value));
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| &**v)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A key of a [`Store`] known before the request: in lower case, with its
/// hash computed once (at load for the literal keys of rules: `setvar`
/// keys, `%{tx.x}` macros, `[&]TX:key "@cmp N"` plans), so that reading
/// or writing it hashes nothing per request (~150 instructions a lookup
/// for a typical CRS key).
///
/// Equality and hashing are by the text only: the hash is a function of
/// it (see [`key_hash`]).
#[derive(Clone, Debug)]
pub struct StoreKey {
    name: Arc<str>,
    hash: u64,
}

impl StoreKey {
    /// `key` in lower case, hashed.
    pub fn new(key: &str) -> StoreKey {
        let name: Arc<str> = Arc::from(&*lower(key));
        let hash = key_hash(&name);
        StoreKey { name, hash }
    }

    /// The key's text, in lower case; one allocation per `StoreKey`,
    /// shared by its clones (its address identifies it, see `tx_planned`).
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

/// The hash of a lower-case key in every store of the process: one seed,
/// random per process (keys such as `tx.header_name_920450_%{tx.0}` are
/// built from request data, so the seed must not be guessable from the
/// binary), shared so that a hash computed at load is valid in every
/// transaction's store.
pub fn key_hash(lower_key: &str) -> u64 {
    use std::hash::BuildHasher;
    static STATE: std::sync::OnceLock<foldhash::fast::FixedState> = std::sync::OnceLock::new();
    let state = STATE.get_or_init(|| {
        let seed = foldhash::fast::RandomState::default().hash_one(0x5eed_u64);
        foldhash::fast::FixedState::with_seed(seed)
    });
    state.hash_one(lower_key)
}

/// One entry of a [`Store`]; the hash is kept so that growing the table
/// and copying entries never hash a key again.
#[derive(Clone, Debug)]
struct Entry {
    hash: u64,
    key: Arc<str>,
    value: Bytes,
}

impl Entry {
    /// Whether this entry holds `key` (lower case) whose hash is `hash`.
    /// The same allocation (a key inserted from a [`StoreKey`] and read
    /// through it again) answers without comparing bytes.
    #[inline]
    fn holds(&self, hash: u64, key: &str) -> bool {
        self.hash == hash
            && (std::ptr::eq(self.key.as_ptr(), key.as_ptr()) && self.key.len() == key.len()
                || *self.key == *key)
    }
}

/// A keyed store for TX and the persistent collections: keys are stored
/// lower-case (SecLang variable names are case-insensitive).
///
/// A hash table with a per-process random seed (some keys are built from
/// request data, e.g. `tx.header_name_920450_%{tx.0}`); whoever iterates
/// it sorts what it selected, so results come in key order, as they did
/// from an ordered map. Keys known at load are read and written through
/// [`StoreKey`]s, hashed once.
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// Private: every insertion and removal goes through the methods
    /// below, which keep `newline_keys` exact.
    values: HashTable<Entry>,
    /// Changes at every write (set, remove, clear): a value read at one
    /// generation is still current while the generation is the same.
    generation: u64,
    /// How many keys hold a line break (kept at every insertion and
    /// removal of a key). While there are none, a `^prefix` key selector
    /// is a plain prefix comparison on every key (see
    /// `KeyMatcher::matches_lower_single_line`).
    newline_keys: usize,
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

impl Store {
    /// See the `generation` field.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Removes every value, keeping the allocation.
    pub fn clear(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.values.clear();
        self.newline_keys = 0;
    }

    /// The stored keys (lower case) and values, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Bytes)> {
        self.values.iter().map(|e| (&e.key, &e.value))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The capacity of the underlying table (for pooling decisions).
    pub fn capacity(&self) -> usize {
        self.values.capacity()
    }

    /// True when no key holds a line break: every key is then a single
    /// line in ASCII lower case.
    pub fn keys_single_line(&self) -> bool {
        self.newline_keys == 0
    }

    /// Counts a key that was just inserted.
    fn note_new_key(&mut self, key: &str) {
        if memchr::memchr(b'\n', key.as_bytes()).is_some() {
            self.newline_keys += 1;
        }
    }

    /// The entry of a lower-case key whose hash is `hash`.
    #[inline]
    fn find(&self, hash: u64, key: &str) -> Option<&Entry> {
        self.values.find(hash, |e| e.holds(hash, key))
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
        self.find(key_hash(key), key).map(|e| &e.value)
    }

    /// The value under a key known at load (no conversion, no hashing).
    #[inline]
    pub fn get_key(&self, key: &StoreKey) -> Option<&Bytes> {
        self.find(key.hash, &key.name).map(|e| &e.value)
    }

    /// The stored key and value.
    pub fn entry(&self, key: &str) -> Option<(&Arc<str>, &Bytes)> {
        with_lower(key, |k| {
            self.find(key_hash(k), k).map(|e| (&e.key, &e.value))
        })
    }

    pub fn set(&mut self, key: &str, value: Vec<u8>) {
        self.set_shared(key, value.into());
    }

    /// Stores an already shared value.
    ///
    /// One hash and probe whether the key is new or not; a new key is
    /// allocated once, from the lower-case text (920450 stores one new key
    /// per request header).
    pub fn set_shared(&mut self, key: &str, value: Bytes) {
        // Lower-cased on the stack (`with_lower`); the key is allocated
        // only when it is inserted.
        with_lower(key, |k| self.insert(key_hash(k), k, None, value));
    }

    /// Stores a value under a key known at load, sharing the key (no
    /// allocation, no hashing).
    pub fn set_key(&mut self, key: &StoreKey, value: Bytes) {
        self.insert(key.hash, &key.name, Some(&key.name), value);
    }

    /// Sets `key` (lower case, hashed to `hash`) to `value`; a new key is
    /// `shared` when given, else allocated from `key`.
    fn insert(&mut self, hash: u64, key: &str, shared: Option<&Arc<str>>, value: Bytes) {
        self.generation = self.generation.wrapping_add(1);
        let slot = self.values.entry(hash, |e| e.holds(hash, key), |e| e.hash);
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
                self.note_new_key(key);
            }
        }
    }

    /// Replaces every value by those of `other`; a write like any other.
    pub fn copy_from(&mut self, other: &Store) {
        self.generation = self.generation.wrapping_add(1);
        self.values.clone_from(&other.values);
        self.newline_keys = other.newline_keys;
    }

    pub fn remove(&mut self, key: &str) {
        with_lower(key, |k| self.remove_hashed(key_hash(k), k));
    }

    /// Removes a key known at load.
    pub fn remove_key(&mut self, key: &StoreKey) {
        self.remove_hashed(key.hash, &key.name);
    }

    fn remove_hashed(&mut self, hash: u64, key: &str) {
        self.generation = self.generation.wrapping_add(1);
        if let Ok(found) = self.values.find_entry(hash, |e| e.holds(hash, key)) {
            let (removed, _) = found.remove();
            if memchr::memchr(b'\n', removed.key.as_bytes()).is_some() {
                self.newline_keys -= 1;
            }
        }
    }
}

/// One uploaded file of a multipart body.
#[derive(Clone, Debug, Default)]
pub struct FilePart {
    pub field: String,
    pub filename: String,
    pub size: usize,
}

/// The multipart parser's findings, exposed as `MULTIPART_*` variables.
#[derive(Clone, Debug, Default)]
pub struct MultipartFlags {
    pub boundary_quoted: bool,
    pub boundary_whitespace: bool,
    pub data_before: bool,
    pub data_after: bool,
    pub header_folding: bool,
    pub lf_line: bool,
    pub crlf_lf_lines: bool,
    pub missing_semicolon: bool,
    pub invalid_quoting: bool,
    pub invalid_part: bool,
    pub invalid_header_folding: bool,
    pub file_limit_exceeded: bool,
    pub unmatched_boundary: bool,
}

impl MultipartFlags {
    /// `MULTIPART_STRICT_ERROR`: any of the flags ModSecurity folds into it.
    pub fn strict_error(&self, reqbody_error: bool) -> bool {
        reqbody_error
            || self.boundary_quoted
            || self.boundary_whitespace
            || self.data_before
            || self.data_after
            || self.header_folding
            || self.lf_line
            || self.missing_semicolon
            || self.invalid_quoting
            || self.invalid_part
            || self.invalid_header_folding
            || self.file_limit_exceeded
    }
}

/// Request-side data.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    /// As received (may be absolute: `http://host/path?q`).
    pub uri_raw: String,
    /// Path and query, without scheme and authority.
    pub uri: String,
    pub protocol: String,
    pub headers: Coll,
    pub cookies: Coll,
    pub args_get: Coll,
    pub args_post: Coll,
    pub body: Vec<u8>,
    /// Set when the body exceeded the limit and was cut.
    pub body_truncated: bool,
    pub processor: Option<&'static str>,
    pub body_error: Option<String>,
    pub urlencoded_error: bool,
    pub files: Vec<FilePart>,
    pub multipart_part_headers: Coll,
    pub multipart: MultipartFlags,
    pub multipart_name: Option<String>,
    pub multipart_filename: Option<String>,
    /// Text nodes and attribute values of an XML body (`XML:/*`, `XML://@*`).
    pub xml_text: Vec<Vec<u8>>,
    pub xml_attrs: Vec<Vec<u8>>,
}

/// Response-side data.
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: Option<u16>,
    pub protocol: String,
    pub headers: Coll,
    pub body: Vec<u8>,
}

/// Connection details.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    pub client_ip: String,
    pub client_port: u16,
    pub server_ip: String,
    pub server_port: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capitals_are_found_anywhere_and_only_capitals() {
        for key in [
            "A",
            "xZ",
            "tx.Score",
            "é_K",
            "abcdefghijklmnopqrstuvwxyz0123456789Q",
        ] {
            assert!(has_capital(key), "{key}");
        }
        for key in [
            "",
            "@[`{",
            "tx.score",
            "é",
            "abcdefghijklmnopqrstuvwxyz0123456789_",
        ] {
            assert!(!has_capital(key), "{key}");
        }
        assert_eq!(lower("Tx.Score"), "tx.score");
        assert!(matches!(lower("tx.score"), Cow::Borrowed(_)));
    }

    #[test]
    fn writes_by_any_case_and_by_interned_key_reach_one_entry() {
        let mut store = Store::default();
        store.set_shared("Header_Name_920450_Host", Bytes::from(&b"1"[..]));
        // The same key in another case overwrites, and is stored lower-case.
        store.set_shared("HEADER_NAME_920450_HOST", Bytes::from(&b"2"[..]));
        assert_eq!(store.len(), 1);
        let (key, value) = store.entry("header_name_920450_host").unwrap();
        assert_eq!((&**key, &**value), ("header_name_920450_host", &b"2"[..]));
        // An interned key reaches the entry a borrowed write made, and
        // the other way round; neither adds a second entry.
        // A key known at load is lower-cased when made.
        let interned = StoreKey::new("Header_Name_920450_HOST");
        assert_eq!(&**interned.name(), "header_name_920450_host");
        store.set_key(&interned, Bytes::from(&b"3"[..]));
        assert_eq!(store.len(), 1);
        assert_eq!(store.get("Header_Name_920450_Host"), Some(&b"3"[..]));
        assert_eq!(store.get_key(&interned).map(|v| &**v), Some(&b"3"[..]));
        let score = StoreKey::new("anomaly_score");
        assert_eq!(store.get_key(&score), None);
        store.set_key(&score, Bytes::from(&b"5"[..]));
        // The interned key itself is stored (no copy), once.
        let (stored, _) = store.entry("anomaly_score").unwrap();
        assert!(Arc::ptr_eq(stored, score.name()));
        // Another `StoreKey` of the same text (another allocation) finds
        // the entry by its bytes.
        let again = StoreKey::new("ANOMALY_SCORE");
        assert!(!Arc::ptr_eq(again.name(), score.name()));
        assert_eq!(store.get_key(&again).map(|v| &**v), Some(&b"5"[..]));
        store.set_shared("Anomaly_Score", Bytes::from(&b"6"[..]));
        assert_eq!(store.len(), 2);
        assert_eq!(
            store.get_lowercase("anomaly_score").map(|v| &**v),
            Some(&b"6"[..])
        );
        // Every write is a new generation, overwrites included.
        let before = store.generation();
        store.set_key(&score, Bytes::from(&b"6"[..]));
        store.set_shared("anomaly_score", Bytes::from(&b"6"[..]));
        assert_eq!(store.generation(), before.wrapping_add(2));
        // Removal by a key known at load, by any case of the text.
        store.remove_key(&again);
        assert_eq!(store.get("anomaly_score"), None);
        store.remove("HEADER_NAME_920450_host");
        assert!(store.is_empty());
        assert_eq!(store.generation(), before.wrapping_add(4));
    }

    #[test]
    fn keys_are_found_after_the_table_grows_and_when_copied() {
        // Growing the table moves entries by their kept hash: every key,
        // whether written by text or by `StoreKey`, must still be found.
        let mut store = Store::default();
        let known: Vec<StoreKey> = (0..40).map(|i| StoreKey::new(&format!("K{i}"))).collect();
        for (i, key) in known.iter().enumerate() {
            store.set_key(key, Bytes::from(i.to_string().as_bytes()));
            store.set(&format!("Dyn_{i}"), i.to_string().into_bytes());
        }
        let mut copy = Store::default();
        copy.set("stale", b"x".to_vec());
        copy.copy_from(&store);
        for s in [&store, &copy] {
            assert_eq!(s.len(), 80);
            assert_eq!(s.get("stale"), None);
            for (i, key) in known.iter().enumerate() {
                let text = i.to_string();
                assert_eq!(s.get_key(key).map(|v| &**v), Some(text.as_bytes()));
                assert_eq!(s.get(&format!("k{i}")), Some(text.as_bytes()));
                assert_eq!(s.get(&format!("DYN_{i}")), Some(text.as_bytes()));
            }
        }
    }

    #[test]
    fn keys_with_line_breaks_are_counted_through_every_write() {
        let mut store = Store::default();
        assert!(store.keys_single_line());
        store.set("a", b"1".to_vec());
        assert!(store.keys_single_line());
        store.set("x\nHeader_a", b"1".to_vec());
        assert!(!store.keys_single_line());
        // Overwriting the key does not count it twice.
        store.set("X\nheader_A", b"2".to_vec());
        let interned = StoreKey::new("y\nB");
        store.set_key(&interned, Bytes::from(&b"3"[..]));
        store.set_key(&interned, Bytes::from(&b"4"[..]));
        assert_eq!(store.newline_keys, 2);
        let mut copy = Store::default();
        copy.copy_from(&store);
        assert_eq!(copy.newline_keys, 2);
        store.remove("X\nHEADER_A");
        store.remove("absent\n");
        assert_eq!(store.newline_keys, 1);
        store.remove("y\nb");
        assert!(store.keys_single_line());
        copy.clear();
        assert!(copy.keys_single_line());
    }
}
