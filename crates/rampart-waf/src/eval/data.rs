//! What a transaction knows about its request and response: plain data,
//! filled by the `Transaction` setters and the body processors, read by
//! variable resolution.

use std::sync::Arc;

pub use super::store::{Store, StoreKey};

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
    /// The body processor that ran (`REQBODY_PROCESSOR`).
    pub processor: Option<crate::parser::BodyProcessor>,
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
