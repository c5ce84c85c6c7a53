//! Header handling for a correct proxy: hop-by-hop removal, the forwarding
//! headers, the client address behind trusted proxies, and request ids.
//!
//! Everything here runs for every request, so values that do not change
//! within a connection (the peer's `X-Forwarded-For`, the `Forwarded`
//! element for a given Host) are built once and cloned (a reference count,
//! no copy), and request ids are written into a per-thread arena.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use rampart_core::IpSet;

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Hop-by-hop and forwarding header names present in a map, as bits (see
/// [`field_bit`]): one pass over the names tells which of them need work.
mod hop {
    pub const CONNECTION: u16 = 1;
    pub const UPGRADE: u16 = 1 << 1;
    pub const TE: u16 = 1 << 2;
    pub const TRAILER: u16 = 1 << 3;
    pub const TRANSFER_ENCODING: u16 = 1 << 4;
    pub const PROXY_AUTHORIZATION: u16 = 1 << 5;
    pub const KEEP_ALIVE: u16 = 1 << 6;
    pub const PROXY_CONNECTION: u16 = 1 << 7;
    /// Not hop-by-hop itself: a field named `close`, which `Connection:
    /// close` would name (RFC 9110 reserves the name; seen only in attacks).
    pub const CLOSE_FIELD: u16 = 1 << 8;
    /// The names the proxy sets on a forwarded request.
    pub const X_FORWARDED_FOR: u16 = 1 << 9;
    pub const FORWARDED: u16 = 1 << 10;
    pub const X_FORWARDED_PROTO: u16 = 1 << 11;
    pub const X_FORWARDED_HOST: u16 = 1 << 12;
    pub const X_REQUEST_ID: u16 = 1 << 13;
    /// Every bit above that is not hop-by-hop.
    pub const NOT_HOP: u16 = CLOSE_FIELD
        | X_FORWARDED_FOR
        | FORWARDED
        | X_FORWARDED_PROTO
        | X_FORWARDED_HOST
        | X_REQUEST_ID;
}

/// Which hop-by-hop (RFC 9110 §7.6.1) or forwarding name `name` is, as a
/// [`hop`] bit.
fn field_bit(name: &HeaderName) -> u16 {
    // Names are lower case. The length picks the one or two candidates, so
    // a name compares its bytes at most twice (most names: never).
    let name = name.as_str().as_bytes();
    let pick = |a: (&[u8], u16), b: (&[u8], u16)| {
        if name == a.0 {
            a.1
        } else if name == b.0 {
            b.1
        } else {
            0
        }
    };
    const NONE: (&[u8], u16) = (b"", 0);
    match name.len() {
        2 => pick((b"te", hop::TE), NONE),
        5 => pick((b"close", hop::CLOSE_FIELD), NONE),
        7 => pick((b"upgrade", hop::UPGRADE), (b"trailer", hop::TRAILER)),
        9 => pick((b"forwarded", hop::FORWARDED), NONE),
        10 => pick(
            (b"connection", hop::CONNECTION),
            (b"keep-alive", hop::KEEP_ALIVE),
        ),
        12 => pick((b"x-request-id", hop::X_REQUEST_ID), NONE),
        15 => pick((b"x-forwarded-for", hop::X_FORWARDED_FOR), NONE),
        16 => pick(
            (b"proxy-connection", hop::PROXY_CONNECTION),
            (b"x-forwarded-host", hop::X_FORWARDED_HOST),
        ),
        17 => pick(
            (b"transfer-encoding", hop::TRANSFER_ENCODING),
            (b"x-forwarded-proto", hop::X_FORWARDED_PROTO),
        ),
        19 => pick((b"proxy-authorization", hop::PROXY_AUTHORIZATION), NONE),
        _ => 0,
    }
}

/// Whether a response field (of [`hop`] bit `bit`) only manages the
/// connection it came on, so
/// the HTTP/1 client that read it consumes it rather than putting it in the
/// response: `Transfer-Encoding` (the body is framed anew towards the
/// client), `Keep-Alive`, `Proxy-Connection`, and a `Connection` that names
/// nothing but `keep-alive`. All of them are hop-by-hop, so the proxy would
/// remove them on the way out anyway. Any other `Connection` stays, for
/// [`remove_hop_by_hop`] to remove what it names (`close` included: a field
/// by that name goes with it).
fn connection_only(bit: u16, value: &[u8]) -> bool {
    match bit {
        hop::TRANSFER_ENCODING | hop::KEEP_ALIVE | hop::PROXY_CONNECTION => true,
        hop::CONNECTION => value.split(|&b| b == b',').all(|token| {
            let token = token.trim_ascii();
            token.is_empty() || token.eq_ignore_ascii_case(b"keep-alive")
        }),
        _ => false,
    }
}

/// Whether the proxy changes a response field of this name (and [`hop`]
/// bit) on the way to the client: a hop-by-hop field (or one `Connection`
/// could name, `close`) goes, and `X-Request-Id` and
/// `Strict-Transport-Security` are replaced.
fn edited_in_responses(bit: u16, name: &HeaderName) -> bool {
    let forwarding =
        hop::X_FORWARDED_FOR | hop::FORWARDED | hop::X_FORWARDED_PROTO | hop::X_FORWARDED_HOST;
    bit & !forwarding != 0 || name == header::STRICT_TRANSPORT_SECURITY
}

/// What becomes of an upstream response field on its way to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseField {
    /// It only manages the upstream connection ([`connection_only`]).
    Consumed,
    /// The proxy changes or drops it ([`edited_in_responses`]).
    Edited,
    /// It goes through as it is.
    Kept,
}

/// What becomes of the response field `name: value`.
pub(crate) fn response_field(name: &HeaderName, value: &[u8]) -> ResponseField {
    let bit = field_bit(name);
    if connection_only(bit, value) {
        ResponseField::Consumed
    } else if edited_in_responses(bit, name) {
        ResponseField::Edited
    } else {
        ResponseField::Kept
    }
}

/// The [`hop`] bits of the names in `h`.
fn present_fields(h: &HeaderMap) -> u16 {
    h.keys().fold(0, |bits, name| bits | field_bit(name))
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), including any named in
/// `Connection`. When `keep_upgrade` is set (a WebSocket handshake), the
/// `Connection: upgrade` and `Upgrade` pair survives.
pub fn remove_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names finds what is there; only that is removed
    // (most messages carry none, or just `Connection: keep-alive`).
    strip_hop_by_hop(h, keep_upgrade, present_fields(h));
}

/// [`remove_hop_by_hop`] with the names' bits known (`present`); returns
/// the bits of what is left.
fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool, mut present: u16) -> u16 {
    if present & !hop::NOT_HOP == 0 {
        return present;
    }
    if present & hop::CONNECTION != 0 {
        remove_connection_listed(h, keep_upgrade, present);
        // `Connection` may have named any field, forwarding ones included.
        present = present_fields(h);
    }
    // Hashed removals only for the names that are there.
    let remove = |h: &mut HeaderMap, bit: u16, name: &HeaderName| {
        if present & bit != 0 {
            h.remove(name);
        }
    };
    if !keep_upgrade {
        remove(&mut *h, hop::CONNECTION, &header::CONNECTION);
        remove(&mut *h, hop::UPGRADE, &header::UPGRADE);
    }
    remove(&mut *h, hop::KEEP_ALIVE, &KEEP_ALIVE);
    remove(&mut *h, hop::PROXY_CONNECTION, &PROXY_CONNECTION);
    remove(
        &mut *h,
        hop::PROXY_AUTHORIZATION,
        &header::PROXY_AUTHORIZATION,
    );
    if present & hop::TE != 0 {
        // `TE: trailers` is the one TE value HTTP/2 allows end to end, and
        // gRPC needs it; every other transfer coding is hop-by-hop.
        let wants_trailers = h
            .get_all(header::TE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
            });
        h.remove(header::TE);
        if wants_trailers {
            h.insert(header::TE, HeaderValue::from_static("trailers"));
        }
    }
    remove(&mut *h, hop::TRAILER, &header::TRAILER);
    remove(&mut *h, hop::TRANSFER_ENCODING, &header::TRANSFER_ENCODING);
    let gone = hop::CONNECTION
        | hop::UPGRADE
        | hop::KEEP_ALIVE
        | hop::PROXY_CONNECTION
        | hop::PROXY_AUTHORIZATION
        | hop::TRAILER
        | hop::TRANSFER_ENCODING;
    let kept = if keep_upgrade {
        hop::CONNECTION | hop::UPGRADE
    } else {
        0
    };
    present & !(gone & !kept)
}

/// Removes the headers that `Connection` names. `keep-alive` is left to the
/// caller (it is hop-by-hop anyway) and `close` names a field only when one
/// by that name is `present`.
fn remove_connection_listed(h: &mut HeaderMap, keep_upgrade: bool, present: u16) {
    // The values are cloned (reference counts) so the map can be changed
    // while their tokens are read; a second value is rare.
    let mut values = h.get_all(header::CONNECTION).iter();
    let first = values.next().cloned();
    let more: Vec<HeaderValue> = values.cloned().collect();
    for v in first.iter().chain(more.iter()) {
        let Ok(v) = v.to_str() else { continue };
        for name in v.split(',').map(str::trim) {
            let skip = name.is_empty()
                || name.eq_ignore_ascii_case("keep-alive")
                || (name.eq_ignore_ascii_case("close") && present & hop::CLOSE_FIELD == 0)
                || (keep_upgrade && name.eq_ignore_ascii_case("upgrade"));
            if !skip {
                // An invalid name matches no header: nothing is removed.
                h.remove(name);
            }
        }
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, in
/// which case the right-most untrusted address of `X-Forwarded-For`.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &IpSet) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if trusted.is_empty() || !trusted.contains(peer_ip) {
        return peer_ip;
    }
    // Walk the chain from the nearest hop outwards; stop at the first address
    // that is not one of our proxies: that is who connected to them.
    let mut candidate = peer_ip;
    for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
        let Ok(value) = value.to_str() else {
            return candidate;
        };
        for part in value.rsplit(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    candidate = ip.to_canonical();
                    if !trusted.contains(candidate) {
                        return candidate;
                    }
                }
                Err(_) => return candidate,
            }
        }
    }
    candidate
}

/// A peer address with its forwarding values, made once per connection
/// rather than once per request.
#[derive(Debug)]
pub struct PeerAddr {
    pub ip: IpAddr,
    /// The address as text; also the whole `X-Forwarded-For` from an
    /// untrusted peer.
    xff: HeaderValue,
    /// This peer's last `Forwarded` element (requests on one connection
    /// nearly always carry the same Host).
    forwarded: Mutex<Option<ForwardedElement>>,
}

/// One `Forwarded` element and what it was made from.
#[derive(Debug)]
struct ForwardedElement {
    tls: bool,
    host: Option<Bytes>,
    value: HeaderValue,
}

impl PeerAddr {
    pub fn new(ip: IpAddr) -> Self {
        let ip = ip.to_canonical();
        // An address formats as ASCII digits, dots and colons: always valid.
        let xff = HeaderValue::try_from(ip.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        PeerAddr {
            ip,
            xff,
            forwarded: Mutex::new(None),
        }
    }

    fn text(&self) -> &str {
        self.xff.to_str().unwrap_or("unknown")
    }

    /// This peer's `Forwarded` element for one request, from the cache when
    /// the connection's previous request had the same Host.
    fn forwarded(&self, tls: bool, host: Option<&HeaderValue>) -> Option<HeaderValue> {
        let host = host.map(HeaderValue::as_bytes);
        let Ok(mut cached) = self.forwarded.lock() else {
            return self.forwarded_element(tls, host);
        };
        if let Some(c) = cached.as_ref() {
            if c.tls == tls && c.host.as_deref() == host {
                return Some(c.value.clone());
            }
        }
        let value = self.forwarded_element(tls, host)?;
        *cached = Some(ForwardedElement {
            tls,
            host: host.map(Bytes::copy_from_slice),
            value: value.clone(),
        });
        Some(value)
    }

    /// `for=…;proto=…[;host="…"]` (RFC 7239).
    fn forwarded_element(&self, tls: bool, host: Option<&[u8]>) -> Option<HeaderValue> {
        let mut fwd = String::with_capacity(64);
        match self.ip {
            IpAddr::V4(_) => {
                fwd.push_str("for=");
                fwd.push_str(self.text());
            }
            IpAddr::V6(_) => {
                fwd.push_str("for=\"[");
                fwd.push_str(self.text());
                fwd.push_str("]\"");
            }
        }
        fwd.push_str(";proto=");
        fwd.push_str(if tls { "https" } else { "http" });
        // Only a plain token-safe host goes into the quoted-string.
        let safe = |h: &&[u8]| {
            h.iter()
                .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b';' && b != b',')
        };
        if let Some(host) = host.filter(safe).and_then(|h| std::str::from_utf8(h).ok()) {
            fwd.push_str(";host=\"");
            fwd.push_str(host);
            fwd.push('"');
        }
        HeaderValue::try_from(fwd).ok()
    }
}

/// The fields the proxy adds to a forwarded request: `X-Forwarded-For`,
/// `Forwarded`, `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Request-Id`.
///
/// They are kept beside the request's map, not inserted into it: the
/// HTTP/1 client writes them after the request's own fields (an insert
/// would hash each name, ~1,000 instructions per request by callgrind),
/// and the HTTP/2 client inserts them into its own copy of the map
/// ([`Added::insert_into`]). [`forwarding`] has removed from the map every
/// field these replace, so no name goes out twice.
#[derive(Debug, Default)]
pub struct Added {
    x_forwarded_for: Option<HeaderValue>,
    forwarded: Option<HeaderValue>,
    x_forwarded_proto: Option<HeaderValue>,
    x_forwarded_host: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
}

impl Added {
    /// The fields, in the order they are written.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        [
            (&X_FORWARDED_FOR, &self.x_forwarded_for),
            (&FORWARDED, &self.forwarded),
            (&X_FORWARDED_PROTO, &self.x_forwarded_proto),
            (&X_FORWARDED_HOST, &self.x_forwarded_host),
            (&X_REQUEST_ID, &self.request_id),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_ref()?)))
    }

    /// Puts the fields into `h` (replacing any of the same name).
    pub fn insert_into(&self, h: &mut HeaderMap) {
        for (name, value) in self.iter() {
            h.insert(name, value.clone());
        }
    }
}

/// What a request's forwarding fields are made from.
pub struct Forwarding<'a> {
    pub peer: &'a PeerAddr,
    /// The peer is one of the configured trusted proxies.
    pub trusted_peer: bool,
    pub tls: bool,
    /// The request's Host (or HTTP/2 authority).
    pub host: Option<&'a HeaderValue>,
    pub request_id: Option<HeaderValue>,
}

/// The forwarding fields and request id for the upstream (see [`Added`]);
/// `present` holds the [`hop`] bits of `h`'s names. Fields of `h` that the
/// result replaces or drops are removed from `h`.
///
/// From a trusted proxy the existing chain is extended; from anyone else
/// client-supplied forwarding headers are replaced, so they cannot be spoofed.
fn forwarding_fields(h: &mut HeaderMap, present: u16, from: Forwarding<'_>) -> Added {
    let Forwarding {
        peer,
        trusted_peer,
        tls,
        host,
        request_id,
    } = from;
    let chain = |bit: u16| trusted_peer && present & bit != 0;
    let x_forwarded_for = if chain(hop::X_FORWARDED_FOR) {
        extend_chain(h, &X_FORWARDED_FOR, peer.text())
    } else {
        Some(peer.xff.clone())
    };
    let own = peer.forwarded(tls, host);
    let forwarded = match own {
        Some(own) if chain(hop::FORWARDED) => {
            extend_chain(h, &FORWARDED, own.to_str().unwrap_or_default())
        }
        own => own,
    };
    let proto = HeaderValue::from_static(if tls { "https" } else { "http" });
    let added = Added {
        x_forwarded_for,
        forwarded,
        x_forwarded_proto: (!chain(hop::X_FORWARDED_PROTO)).then_some(proto),
        x_forwarded_host: host.filter(|_| !chain(hop::X_FORWARDED_HOST)).cloned(),
        request_id,
    };
    // The client's fields under these names go when a new one replaces
    // them; `Forwarded` always goes (a new one or none), and so does
    // `X-Forwarded-Host` unless a trusted proxy set it. A trusted chain
    // that cannot be extended stays as it came.
    let mut gone = hop::FORWARDED;
    let mut drop_if = |bit: u16, cond: bool| {
        if cond {
            gone |= bit;
        }
    };
    drop_if(hop::X_FORWARDED_FOR, added.x_forwarded_for.is_some());
    drop_if(hop::X_FORWARDED_PROTO, added.x_forwarded_proto.is_some());
    drop_if(hop::X_FORWARDED_HOST, !chain(hop::X_FORWARDED_HOST));
    drop_if(hop::X_REQUEST_ID, added.request_id.is_some());
    for (name, bit) in [
        (&X_FORWARDED_FOR, hop::X_FORWARDED_FOR),
        (&FORWARDED, hop::FORWARDED),
        (&X_FORWARDED_PROTO, hop::X_FORWARDED_PROTO),
        (&X_FORWARDED_HOST, hop::X_FORWARDED_HOST),
        (&X_REQUEST_ID, hop::X_REQUEST_ID),
    ] {
        if present & gone & bit != 0 {
            h.remove(name);
        }
    }
    added
}

/// Readies a client's header map for the upstream: hop-by-hop fields out
/// (`keep_upgrade` as in [`remove_hop_by_hop`]), and the forwarding fields
/// and request id made (see [`Added`]). The Host in `from` is taken before
/// the hop-by-hop removal.
pub fn for_upstream(h: &mut HeaderMap, keep_upgrade: bool, from: Forwarding<'_>) -> Added {
    // One pass over the names serves both steps.
    let present = strip_hop_by_hop(h, keep_upgrade, present_fields(h));
    forwarding_fields(h, present, from)
}

/// The values of `name` joined with `, `, then `last`.
fn extend_chain(h: &HeaderMap, name: &HeaderName, last: &str) -> Option<HeaderValue> {
    let mut joined = String::new();
    for v in h.get_all(name) {
        if let Ok(v) = v.to_str() {
            joined.push_str(v);
            joined.push_str(", ");
        }
    }
    joined.push_str(last);
    HeaderValue::try_from(joined).ok()
}

/// A request id: the client's `X-Request-Id` when it comes from a trusted
/// proxy and looks sane, otherwise a fresh random one.
pub fn request_id(headers: &HeaderMap, trusted_peer: bool) -> String {
    if trusted_peer {
        if let Some(v) = headers.get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()) {
            if (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            {
                return v.to_string();
            }
        }
    }
    new_request_id()
}

/// 128 random bits as 32 hex digits.
pub fn new_request_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 32];
    let random = [fastrand::u64(..), fastrand::u64(..)];
    let bytes = random.iter().flat_map(|w| w.to_be_bytes());
    for (pair, byte) in digits.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
    String::from_utf8(digits.to_vec()).unwrap_or_default()
}

/// Bytes per arena chunk: room for 128 request ids.
const ARENA_CHUNK: usize = 4096;
/// Longer values are copied on their own rather than into the arena.
const ARENA_MAX_VALUE: usize = 256;

thread_local! {
    /// Where [`shared_value`] writes small header values. Values cut from
    /// one chunk share it, so making one is a copy and a reference count.
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// `text` as a header value whose clones share one buffer, mostly without
/// an allocation of its own (request ids go out to the upstream and back
/// to the client); `None` if it is not a valid header value.
pub fn shared_value(text: &str) -> Option<HeaderValue> {
    if text.len() > ARENA_MAX_VALUE {
        return HeaderValue::from_str(text).ok();
    }
    let bytes = ARENA.with(|arena| {
        let mut arena = arena.borrow_mut();
        if arena.capacity() - arena.len() < text.len() {
            // A fresh chunk; the old one lives on while values use it.
            *arena = BytesMut::with_capacity(ARENA_CHUNK);
        }
        arena.extend_from_slice(text.as_bytes());
        arena.split().freeze()
    });
    HeaderValue::from_maybe_shared(bytes).ok()
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
