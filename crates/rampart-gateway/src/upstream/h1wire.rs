//! The HTTP/1.1 wire format of rampart's upstream client: request heads
//! written into one buffer, response heads parsed with `httparse`, and the
//! body framing rules of RFC 9112 §6.
//!
//! The upstream is a server the operator chose, but it is still parsed
//! strictly: a response whose framing is ambiguous (bad or conflicting
//! `Content-Length`) is an error, never a guess, so a confused upstream
//! cannot desynchronise a pooled connection.

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, Method, StatusCode, Version};

use super::fields::RawFields;
use crate::headers::{Added, ResponseField};
use crate::name_memo::NameMemo;

/// Largest response head read from an upstream (hyper's default buffer
/// limit is larger, but no API answers with 64 KiB of headers). It fits
/// `u16`, so header offsets are kept in 8 bytes each.
pub const MAX_HEAD: usize = u16::MAX as usize;

/// Most header fields in a response head.
const MAX_HEADERS: usize = 128;

/// Where a header's name and value are in the head: start and end offsets.
type Span = [u16; 4];

/// Why an upstream's bytes could not be understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("malformed response head")]
    Head,
    #[error("response head too large")]
    HeadTooLarge,
    #[error("invalid or conflicting content-length")]
    ContentLength,
    #[error("malformed chunked body")]
    Chunked,
    #[error("chunk trailers too large")]
    TrailersTooLarge,
}

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (responses only).
    Close,
}

/// A parsed response head; its fields are not in a map (see
/// [`RawFields`]).
pub struct ResponseHead {
    pub status: StatusCode,
    pub version: Version,
    pub fields: RawFields,
    /// The framing fields, noted while parsing.
    noted: Noted,
}

impl ResponseHead {
    /// Whether the proxy would change some field on the way to the client
    /// (see `headers::edited_in_responses`).
    pub fn has_edited_fields(&self) -> bool {
        self.noted.edited
    }
}

/// What the framing rules read from a response head, noted field by field
/// while it is parsed, so that deciding the framing and the connection's
/// reuse costs no lookups in the map (three per response otherwise).
#[derive(Clone, Copy)]
struct Noted {
    transfer_encoding: bool,
    /// The last coding of the last `Transfer-Encoding` field is `chunked`.
    chunked: bool,
    /// The one `Content-Length` (see [`content_length`]).
    content_length: Result<Option<u64>, WireError>,
    /// `Connection` tokens.
    close: bool,
    keep_alive: bool,
    /// A kept field that the proxy changes on the way out.
    edited: bool,
}

impl Noted {
    const NOTHING: Noted = Noted {
        transfer_encoding: false,
        chunked: false,
        content_length: Ok(None),
        close: false,
        keep_alive: false,
        edited: false,
    };

    fn field(&mut self, name: &HeaderName, value: &[u8]) {
        if name == CONTENT_LENGTH {
            if let Ok(found) = &mut self.content_length {
                if let Err(e) = fold_content_length(found, value) {
                    self.content_length = Err(e);
                }
            }
        } else if name == TRANSFER_ENCODING {
            self.transfer_encoding = true;
            self.chunked = last_coding_is_chunked(value);
        } else if name == CONNECTION {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
}

/// Appends `METHOD target HTTP/1.1`, the headers and the blank line to `out`.
/// After the request's own headers come the fields the proxy `added`, then
/// `extra`, the ones the client adds (`host` when missing, the framing
/// header).
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    added: &Added,
    extra: &[(&HeaderName, &[u8])],
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let own = headers.iter().chain(added.iter());
    let own = own.map(|(n, v)| (n, v.as_bytes()));
    for (name, value) in own.chain(extra.iter().copied()) {
        write_field(out, name.as_str().as_bytes(), value);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one `name: value` field line (request and response heads,
/// trailers; both sides of the proxy write them so).
pub fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Parses a response head at the start of `buf`. On success the head's bytes
/// are split off `buf` (header values share them, no copy) and what follows
/// (the start of the body) stays. `Ok(None)`: more bytes are needed. Fields
/// that only manage this connection are noted, not kept (see
/// `headers::connection_only`), except in a 101.
pub fn parse_response_head(
    buf: &mut BytesMut,
    names: &mut NameMemo,
) -> Result<Option<ResponseHead>, WireError> {
    // Offsets rather than slices, so the values can be cut from the frozen
    // head afterwards. (Both arrays are per request: httparse's is left
    // uninitialised, the offsets are small, so neither costs a large memset.)
    let mut spans: [Span; MAX_HEADERS] = [[0; 4]; MAX_HEADERS];
    let (len, status, version, count) = {
        let mut fields =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut resp,
            buf,
            &mut fields,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                return Err(WireError::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(WireError::HeadTooLarge),
            Err(_) => return Err(WireError::Head),
        };
        if len > MAX_HEAD {
            return Err(WireError::HeadTooLarge);
        }
        let status = resp
            .code
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or(WireError::Head)?;
        let version = match resp.version {
            Some(0) => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        let base = buf.as_ptr() as usize;
        let count = resp.headers.len();
        for (span, h) in spans.iter_mut().zip(resp.headers.iter()) {
            // Within the head, which is at most `MAX_HEAD` (u16) long.
            let name = h.name.as_ptr() as usize - base;
            let value = h.value.as_ptr() as usize - base;
            *span = [name, name + h.name.len(), value, value + h.value.len()].map(|o| o as u16);
        }
        (len, status, version, count)
    };
    let head: Bytes = buf.split_to(len).freeze();
    let mut fields = RawFields::new(head.clone(), count);
    let mut noted = Noted::NOTHING;
    // A 101 keeps its `Connection: upgrade` for the tunnel's handshake.
    let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
    for (i, span) in spans[..count].iter().enumerate() {
        let [ns, ne, vs, ve] = span.map(usize::from);
        let name = names.name(i, &head[ns..ne]).ok_or(WireError::Head)?;
        noted.field(&name, &head[vs..ve]);
        match crate::headers::response_field(&name, &head[vs..ve]) {
            // Noted for the framing and reuse rules, and nothing more.
            ResponseField::Consumed if !upgrade => continue,
            ResponseField::Kept => {}
            _ => noted.edited = true,
        }
        // httparse has checked the value's bytes (see `RawFields::push`).
        fields.push(name, span[2], span[3]);
    }
    Ok(Some(ResponseHead {
        status,
        version,
        fields,
        noted,
    }))
}

/// How the body of a response to `method` with this head is delimited.
/// A `Content-Length` beside a `Transfer-Encoding` is removed: it does not
/// describe the body, and must not be forwarded (RFC 9112 §6.3).
pub fn response_framing(method: &Method, head: &mut ResponseHead) -> Result<Framing, WireError> {
    let status = head.status;
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Empty);
    }
    if head.noted.transfer_encoding {
        // Transfer-Encoding overrides Content-Length; only a final `chunked`
        // delimits the body, anything else runs to the close.
        head.fields.remove(&CONTENT_LENGTH);
        return Ok(if head.noted.chunked {
            Framing::Chunked
        } else {
            Framing::Close
        });
    }
    match head.noted.content_length? {
        Some(0) => Ok(Framing::Empty),
        Some(n) => Ok(Framing::Length(n)),
        None => Ok(Framing::Close),
    }
}

/// Whether the connection may carry another request after this response.
pub fn keeps_alive(head: &ResponseHead) -> bool {
    !head.noted.close && (head.version == Version::HTTP_11 || head.noted.keep_alive)
}

/// The one `Content-Length` of a message: repeated fields or a list must all
/// agree (RFC 9110 §8.6), anything but digits is refused.
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, WireError> {
    let mut found = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        fold_content_length(&mut found, value.as_bytes())?;
    }
    Ok(found)
}

/// Adds one `Content-Length` field's value to the length `found` so far.
fn fold_content_length(found: &mut Option<u64>, value: &[u8]) -> Result<(), WireError> {
    for part in value.split(|&b| b == b',') {
        let n = parse_decimal(part.trim_ascii()).ok_or(WireError::ContentLength)?;
        if found.is_some_and(|f| f != n) {
            return Err(WireError::ContentLength);
        }
        *found = Some(n);
    }
    Ok(())
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// Whether the last coding of one `Transfer-Encoding` value is `chunked`.
fn last_coding_is_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(raw: &[u8]) -> Result<Option<ResponseHead>, WireError> {
        parse_response_head(&mut BytesMut::from(raw), &mut NameMemo::default())
    }

    fn framing(raw: &[u8]) -> Result<Framing, WireError> {
        framing_for(&Method::GET, raw)
    }

    fn framing_for(method: &Method, raw: &[u8]) -> Result<Framing, WireError> {
        response_framing(method, &mut parse(raw)?.expect("complete head"))
    }

    #[test]
    fn request_head_is_written_in_origin_form_with_the_framing_header() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("api.test"));
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        let peer = crate::headers::PeerAddr::new("192.0.2.1".parse().unwrap());
        let id = HeaderValue::from_static("id-1");
        let from = crate::headers::Forwarding {
            peer: &peer,
            trusted_peer: false,
            tls: false,
            host: None,
            request_id: Some(id),
        };
        let added = crate::headers::for_upstream(&mut HeaderMap::new(), false, from);
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            &Method::POST,
            "/p?q=1",
            &headers,
            &added,
            &[(&TRANSFER_ENCODING, b"chunked")],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /p?q=1 HTTP/1.1\r\nhost: api.test\r\nx-a: 1\r\nx-a: 2\r\n\
             x-forwarded-for: 192.0.2.1\r\nforwarded: for=192.0.2.1;proto=http\r\n\
             x-forwarded-proto: http\r\nx-request-id: id-1\r\n\
             transfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn head_is_split_off_and_the_body_start_stays() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 201 Created\r\nX-Y: a b\r\nX-Y: c\r\ncontent-length: 5\r\n\r\nhel"[..],
        );
        let head = parse_response_head(&mut buf, &mut NameMemo::default())
            .unwrap()
            .unwrap();
        assert_eq!(head.status, StatusCode::CREATED);
        assert_eq!(head.version, Version::HTTP_11);
        let map = head.fields.into_map();
        let values: Vec<_> = map.get_all("x-y").iter().collect();
        assert_eq!(values, ["a b", "c"]);
        assert_eq!(&buf[..], b"hel");
    }

    #[test]
    fn partial_head_asks_for_more_and_garbage_is_refused() {
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-le").unwrap().is_none());
        assert_eq!(
            parse(b"HTTP/1.1 2x0 OK\r\n\r\n").err(),
            Some(WireError::Head)
        );
        assert_eq!(
            parse(b"SSH-2.0-OpenSSH\r\n\r\n").err(),
            Some(WireError::Head)
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n").err(),
            Some(WireError::Head)
        );
    }

    #[test]
    fn oversized_heads_are_refused() {
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        while raw.len() <= MAX_HEAD {
            raw.extend_from_slice(b"x-filler: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(parse(&raw).err(), Some(WireError::HeadTooLarge));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many).err(), Some(WireError::HeadTooLarge));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n"),
            Ok(Framing::Length(12))
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
            Ok(Framing::Empty)
        );
        assert_eq!(framing(b"HTTP/1.1 200 OK\r\n\r\n"), Ok(Framing::Close));
        assert_eq!(
            framing(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 3\r\n\r\n"
            ),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n"),
            Ok(Framing::Close)
        );
        assert_eq!(
            framing(b"HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n"),
            Ok(Framing::Empty)
        );
        assert_eq!(
            framing(b"HTTP/1.1 304 Not Modified\r\n\r\n"),
            Ok(Framing::Empty)
        );
        assert_eq!(
            framing_for(
                &Method::HEAD,
                b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n"
            ),
            Ok(Framing::Empty)
        );
    }

    #[test]
    fn content_length_beside_transfer_encoding_is_dropped() {
        let mut head =
            parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(
            response_framing(&Method::GET, &mut head),
            Ok(Framing::Chunked)
        );
        assert!(head.fields.iter().all(|(n, _)| n != CONTENT_LENGTH));
    }

    #[test]
    fn content_length_must_be_one_number() {
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\ncontent-length: 7, 7\r\ncontent-length: 7\r\n\r\n"),
            Ok(Framing::Length(7))
        );
        for bad in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\ncontent-length: 8\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: +7\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0x10\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
        ] {
            assert_eq!(
                framing(bad),
                Err(WireError::ContentLength),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn keep_alive_depends_on_version_and_connection() {
        let ka = |raw: &[u8]| keeps_alive(&parse(raw).unwrap().unwrap());
        assert!(ka(b"HTTP/1.1 200 OK\r\n\r\n"));
        assert!(!ka(b"HTTP/1.1 200 OK\r\nconnection: x, Close\r\n\r\n"));
        assert!(!ka(b"HTTP/1.0 200 OK\r\n\r\n"));
        assert!(ka(b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\n\r\n"));
    }
}
