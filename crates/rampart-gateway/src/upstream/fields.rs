//! Response fields as rampart's HTTP/1 client read them: the head's bytes
//! and, per field, its name and where its value lies. No header map is
//! built: a response the proxy forwards unchanged (no filter reads its
//! fields, none of them needs editing) goes from these straight to the
//! client's connection; anything else turns them into a map first
//! ([`RawFields::into_map`], [`RawHead::append_into`]).
//!
//! A map costs a hashed insert per field, its values a validation pass and
//! its tables a pool round trip; for the plain case that was a tenth of a
//! proxied request's instructions (callgrind, `bench/profile.sh`).

use std::cell::RefCell;

use bytes::Bytes;
use http::header::STRICT_TRANSPORT_SECURITY;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::map_pool::{keep_spare, take_spare};

/// Field lists kept per thread for reuse, and the largest kept.
const KEPT_PER_THREAD: usize = 32;
const MAX_KEPT_FIELDS: usize = 64;

thread_local! {
    static SPARE: RefCell<Vec<Vec<Field>>> = const { RefCell::new(Vec::new()) };
}

/// One field: its (lower-case) name and its value's place in the head.
struct Field {
    name: HeaderName,
    start: u16,
    end: u16,
}

/// The fields of one response head, in the order they came.
pub struct RawFields {
    head: Bytes,
    fields: Vec<Field>,
}

impl RawFields {
    /// Fields whose values lie in `head` (at most `u16::MAX` bytes long).
    pub(crate) fn new(head: Bytes, room: usize) -> Self {
        let mut fields = take_spare(&SPARE).unwrap_or_default();
        fields.reserve(room);
        RawFields { head, fields }
    }

    /// Adds a field whose value is `head[start..end]`. The bytes must have
    /// passed httparse's value check, which lets through the same bytes as
    /// `HeaderValue` (HTAB, visible ASCII and obs-text).
    pub(crate) fn push(&mut self, name: HeaderName, start: u16, end: u16) {
        self.fields.push(Field { name, start, end });
    }

    /// The fields as name and value bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &[u8])> {
        self.fields.iter().map(|f| {
            let value = &self.head[usize::from(f.start)..usize::from(f.end)];
            (&f.name, value)
        })
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Drops every field named `name`.
    pub fn remove(&mut self, name: &HeaderName) {
        self.fields.retain(|f| f.name != name);
    }

    /// Appends the fields to `map`.
    pub fn append_to(&mut self, map: &mut HeaderMap) {
        map.reserve(self.fields.len());
        for f in self.fields.drain(..) {
            let value = self.head.slice(usize::from(f.start)..usize::from(f.end));
            // Never fails: httparse checked these bytes (see `push`).
            if let Ok(value) = HeaderValue::from_maybe_shared(value) {
                map.append(f.name, value);
            }
        }
    }

    /// The fields in a header map.
    pub fn into_map(mut self) -> HeaderMap {
        let mut map = crate::map_pool::take(self.fields.len());
        self.append_to(&mut map);
        map
    }
}

impl Drop for RawFields {
    fn drop(&mut self) {
        let mut fields = std::mem::take(&mut self.fields);
        if fields.capacity() == 0 || fields.capacity() > MAX_KEPT_FIELDS {
            return;
        }
        fields.clear();
        keep_spare(&SPARE, fields, KEPT_PER_THREAD);
    }
}

/// A response head the client gets as the upstream sent it, plus the
/// fields the proxy adds: its request id and, over TLS, the route's HSTS
/// (the upstream's fields hold neither: see `UpstreamResponse::into_unedited`).
pub struct RawHead {
    pub fields: RawFields,
    pub request_id: Option<HeaderValue>,
    pub hsts: Option<HeaderValue>,
}

impl RawHead {
    /// Every field, the upstream's then the added ones.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &[u8])> {
        let added = [
            (&crate::headers::X_REQUEST_ID, &self.request_id),
            (&STRICT_TRANSPORT_SECURITY, &self.hsts),
        ];
        let added = added
            .into_iter()
            .filter_map(|(name, value)| Some((name, value.as_ref()?.as_bytes())));
        self.fields.iter().chain(added)
    }

    /// Puts every field into `map` (for a server that writes heads from
    /// maps: hyper's).
    pub fn append_into(mut self, map: &mut HeaderMap) {
        self.fields.append_to(map);
        if let Some(v) = self.request_id.take() {
            map.insert(&crate::headers::X_REQUEST_ID, v);
        }
        if let Some(v) = self.hsts.take() {
            map.insert(STRICT_TRANSPORT_SECURITY, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> RawFields {
        let head =
            Bytes::from_static(b"HTTP/1.1 200 OK\r\nServer: a\r\nX-Two: 2\r\nx-two: 3\r\n\r\n");
        let mut f = RawFields::new(head, 3);
        f.push(HeaderName::from_static("server"), 25, 26);
        f.push(HeaderName::from_static("x-two"), 35, 36);
        f.push(HeaderName::from_static("x-two"), 45, 46);
        f
    }

    #[test]
    fn fields_keep_their_order_and_values() {
        let f = fields();
        let seen: Vec<_> = f.iter().map(|(n, v)| (n.as_str(), v)).collect();
        assert_eq!(
            seen,
            [("server", &b"a"[..]), ("x-two", b"2"), ("x-two", b"3")]
        );
        let map = fields().into_map();
        assert_eq!(map.len(), 3);
        let two: Vec<_> = map.get_all("x-two").iter().collect();
        assert_eq!(two, ["2", "3"]);
    }

    #[test]
    fn removal_drops_every_field_of_the_name() {
        let mut f = fields();
        f.remove(&HeaderName::from_static("x-two"));
        assert_eq!(f.len(), 1);
        assert!(f.into_map().get("x-two").is_none());
    }

    #[test]
    fn added_fields_follow_the_upstream_ones() {
        let head = RawHead {
            fields: fields(),
            request_id: Some(HeaderValue::from_static("id-1")),
            hsts: None,
        };
        let written: Vec<_> = head
            .iter()
            .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
            .collect();
        assert_eq!(
            written,
            ["server: a", "x-two: 2", "x-two: 3", "x-request-id: id-1"]
        );
        let mut map = HeaderMap::new();
        let hsts = HeaderValue::from_static("max-age=60");
        RawHead {
            hsts: Some(hsts),
            ..head
        }
        .append_into(&mut map);
        assert_eq!(map.len(), 5);
        assert_eq!(map["x-request-id"], "id-1");
        assert_eq!(map["strict-transport-security"], "max-age=60");
    }

    #[test]
    fn field_lists_are_reused_with_their_room() {
        SPARE.with(|s| s.borrow_mut().clear());
        drop(RawFields::new(Bytes::new(), 16));
        let again = RawFields::new(Bytes::new(), 1);
        assert!(again.is_empty());
        assert!(again.fields.capacity() >= 16);
        // Lists grown past the bound are freed, not kept.
        SPARE.with(|s| s.borrow_mut().clear());
        drop(RawFields::new(Bytes::new(), MAX_KEPT_FIELDS + 1));
        assert_eq!(SPARE.with(|s| s.borrow().len()), 0);
    }
}
