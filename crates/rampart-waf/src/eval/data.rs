//! What a transaction knows about its request and response: plain data,
//! filled by the `Transaction` setters and the body processors, read by
//! variable resolution.

use std::borrow::Cow;
use std::sync::Arc;

use hashbrown::hash_map::EntryRef;
use hashbrown::HashMap;

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

/// A keyed store for TX and the persistent collections: keys are stored
/// lower-case (SecLang variable names are case-insensitive).
///
/// A hash map with a per-process random seed (some keys are built from
/// request data, e.g. `tx.header_name_920450_%{tx.0}`); whoever iterates
/// it sorts what it selected, so results come in key order, as they did
/// from an ordered map.
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// Private: every insertion and removal goes through the methods
    /// below, which keep `newline_keys` exact.
    values: HashMap<Arc<str>, Bytes, foldhash::fast::RandomState>,
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
        self.values.iter()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The capacity of the underlying map (for pooling decisions).
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

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.get_shared(key).map(|v| &**v)
    }

    /// The stored value itself (shared, not copied).
    pub fn get_shared(&self, key: &str) -> Option<&Bytes> {
        with_lower(key, |k| self.values.get(k))
    }

    /// The value under a key that is already lower case (no conversion).
    pub fn get_lowercase(&self, key: &str) -> Option<&Bytes> {
        self.values.get(key)
    }

    /// The stored key and value.
    pub fn entry(&self, key: &str) -> Option<(&Arc<str>, &Bytes)> {
        with_lower(key, |k| self.values.get_key_value(k))
    }

    pub fn set(&mut self, key: &str, value: Vec<u8>) {
        self.set_shared(key, value.into());
    }

    /// Stores an already shared value.
    ///
    /// One hash and probe whether the key is new or not (`entry_ref`
    /// takes the borrowed key); a new key is allocated once, from the
    /// lower-case text (920450 stores one new key per request header).
    pub fn set_shared(&mut self, key: &str, value: Bytes) {
        self.generation = self.generation.wrapping_add(1);
        // Lower-cased on the stack (`with_lower`); whether a new key was
        // inserted is reported out of the closure, which holds the map.
        let inserted = with_lower(key, |k| match self.values.entry_ref(k) {
            EntryRef::Occupied(mut slot) => {
                *slot.get_mut() = value;
                false
            }
            EntryRef::Vacant(slot) => {
                // `Arc<str>: From<&str>`: one allocation, no String first.
                slot.insert(value);
                true
            }
        });
        if inserted {
            self.note_new_key(key);
        }
    }

    /// Stores a value under a key that is already lower case, sharing
    /// the key (no allocation).
    pub fn set_lower(&mut self, key: &Arc<str>, value: Bytes) {
        self.generation = self.generation.wrapping_add(1);
        // One hash and probe whether the key is new (CRS's initialisation
        // sets dozens of new keys per request) or not; the key's reference
        // count is touched only when it is inserted.
        match self.values.entry_ref(&**key) {
            EntryRef::Occupied(mut slot) => {
                *slot.get_mut() = value;
            }
            EntryRef::Vacant(slot) => {
                slot.insert_with_key(key.clone(), value);
                self.note_new_key(key);
            }
        }
    }

    /// Replaces every value by those of `other` (keeping this store's
    /// allocation when it is large enough); a write like any other.
    pub fn copy_from(&mut self, other: &Store) {
        self.generation = self.generation.wrapping_add(1);
        self.values.clone_from(&other.values);
        self.newline_keys = other.newline_keys;
    }

    pub fn remove(&mut self, key: &str) {
        self.generation = self.generation.wrapping_add(1);
        if let Some((key, _)) = self.values.remove_entry(&*lower(key)) {
            if memchr::memchr(b'\n', key.as_bytes()).is_some() {
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
    // The request line's parts are shared strings: the scalars read from
    // them (`REQUEST_METHOD`, `REQUEST_URI` …) are then reference-count
    // clones, not a new allocation per transaction (see `scalars`).
    pub method: Arc<str>,
    /// As received (may be absolute: `http://host/path?q`).
    pub uri_raw: Arc<str>,
    /// Path and query, without scheme and authority (the same allocation
    /// as `uri_raw` when the URI is origin-form).
    pub uri: Arc<str>,
    pub protocol: Arc<str>,
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
    /// Shared, as `REMOTE_ADDR` is a clone of it.
    pub client_ip: Arc<str>,
    pub client_port: u16,
    /// Shared, as `SERVER_ADDR` is a clone of it.
    pub server_ip: Arc<str>,
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
        let interned: Arc<str> = Arc::from("header_name_920450_host");
        store.set_lower(&interned, Bytes::from(&b"3"[..]));
        assert_eq!(store.len(), 1);
        assert_eq!(store.get("Header_Name_920450_Host"), Some(&b"3"[..]));
        let score: Arc<str> = Arc::from("anomaly_score");
        store.set_lower(&score, Bytes::from(&b"5"[..]));
        // The interned key itself is stored (no copy), once.
        let (stored, _) = store.entry("anomaly_score").unwrap();
        assert!(Arc::ptr_eq(stored, &score));
        store.set_shared("Anomaly_Score", Bytes::from(&b"6"[..]));
        assert_eq!(store.len(), 2);
        assert_eq!(
            store.get_lowercase("anomaly_score").map(|v| &**v),
            Some(&b"6"[..])
        );
        // Every write is a new generation, overwrites included.
        let before = store.generation();
        store.set_lower(&score, Bytes::from(&b"6"[..]));
        store.set_shared("anomaly_score", Bytes::from(&b"6"[..]));
        assert_eq!(store.generation(), before.wrapping_add(2));
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
        let interned: Arc<str> = Arc::from("y\nb");
        store.set_lower(&interned, Bytes::from(&b"3"[..]));
        store.set_lower(&interned, Bytes::from(&b"4"[..]));
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
