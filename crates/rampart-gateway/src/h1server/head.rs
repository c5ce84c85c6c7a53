//! Request heads for rampart's own HTTP/1.1 server: parsed with `httparse`
//! into an `http::Request` whose header values share the read buffer.
//!
//! The own server takes only the plain case, a request it can answer
//! exactly as hyper would: HTTP/1.1, no body, no upgrade, no `Expect`, no
//! `TE`, nothing that needs hyper's error answers. Every other head is
//! [`Parsed::HandOff`]: the connection, with the bytes read so far, goes to
//! hyper, which then serves it to the end with the framing scan of
//! `hygiene` in front (so smuggling signatures keep their reason codes).

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method, Request, Uri, Version};

use crate::body::ClientBody;
use crate::name_memo::NameMemo;

/// Most header fields the own server parses; a longer head goes to hyper,
/// which applies the configured limit.
pub const MAX_OWN_HEADERS: usize = 64;

/// Where a header's name and value lie in the head: start and end offsets.
type Span = [u32; 4];

/// What [`parse`] made of the bytes at the start of the buffer.
// Not boxed: a request is served every time but once per connection, so
// a box would be an allocation per request to save a move.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    /// A head the own server serves; its bytes were split off the buffer.
    Serve(OwnRequest),
    /// More bytes are needed.
    Partial,
    /// Not the plain case: hyper serves the connection from here on.
    HandOff,
}

/// A request the own server serves, with the facts the response needs.
pub struct OwnRequest {
    pub request: Request<ClientBody>,
    /// The client asked to close after this exchange (`Connection: close`).
    pub close: bool,
}

/// What the header scan found, beyond the fields themselves.
#[derive(Default)]
struct Notes {
    close: bool,
    /// Some field means the request is not the plain case.
    unusual: bool,
    lengths: u32,
}

/// Parses a request head at the start of `buf` when it is the plain case.
/// `max_headers` is the configured limit on header fields (hyper's too).
pub fn parse(buf: &mut BytesMut, max_headers: usize, names: &mut NameMemo) -> Parsed {
    let limit = max_headers.min(MAX_OWN_HEADERS);
    let mut spans: [Span; MAX_OWN_HEADERS] = [[0; 4]; MAX_OWN_HEADERS];
    let (len, method, target, count) = {
        let mut fields =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_OWN_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
            &mut req,
            buf,
            &mut fields[..limit],
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Parsed::Partial,
            // Too many fields, bad bytes: hyper answers those.
            Err(_) => return Parsed::HandOff,
        };
        if req.version != Some(1) || u32::try_from(len).is_err() {
            return Parsed::HandOff;
        }
        let base = buf.as_ptr() as usize;
        let offset = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        let (Some(method), Some(path)) = (req.method, req.path) else {
            return Parsed::HandOff;
        };
        let target = [
            offset(path.as_bytes()),
            offset(path.as_bytes()) + path.len() as u32,
        ];
        for (span, h) in spans.iter_mut().zip(req.headers.iter()) {
            let (name, value) = (offset(h.name.as_bytes()), offset(h.value));
            *span = [
                name,
                name + h.name.len() as u32,
                value,
                value + h.value.len() as u32,
            ];
        }
        (len, method.len(), target, req.headers.len())
    };
    let head = &buf[..len];
    let target_bytes = &head[target[0] as usize..target[1] as usize];
    if target_bytes.contains(&b'#') {
        return Parsed::HandOff;
    }
    let Ok(method) = Method::from_bytes(&head[..method]) else {
        return Parsed::HandOff;
    };
    if method == Method::CONNECT {
        return Parsed::HandOff;
    }
    let mut notes = Notes::default();
    for span in &spans[..count] {
        let [ns, ne, vs, ve] = span.map(|o| o as usize);
        note_field(&head[ns..ne], &head[vs..ve], &mut notes);
    }
    if notes.unusual || notes.lengths > 1 {
        return Parsed::HandOff;
    }
    // Split off, so the values share the head's bytes without a copy.
    let head: Bytes = buf.split_to(len).freeze();
    match build(method, target, &head, &spans[..count], names) {
        Some(request) => Parsed::Serve(OwnRequest {
            request,
            close: notes.close,
        }),
        None => {
            // A target or field that `http` refuses though httparse took
            // it: put the bytes back (a copy, on this rare path only) for
            // hyper, which answers it as before.
            let mut whole = BytesMut::with_capacity(head.len() + buf.len());
            whole.extend_from_slice(&head);
            whole.extend_from_slice(buf);
            *buf = whole;
            Parsed::HandOff
        }
    }
}

/// Looks at one field for what makes a request unusual or closes it.
fn note_field(name: &[u8], value: &[u8], notes: &mut Notes) {
    // Cheap first test on the length: most fields are none of these.
    match name.len() {
        14 if name.eq_ignore_ascii_case(b"content-length") => {
            notes.lengths += 1;
            // A body of any size, or a malformed length: hyper's.
            notes.unusual |= value.trim_ascii() != b"0";
        }
        17 if name.eq_ignore_ascii_case(b"transfer-encoding") => notes.unusual = true,
        7 if name.eq_ignore_ascii_case(b"upgrade") => notes.unusual = true,
        6 if name.eq_ignore_ascii_case(b"expect") => notes.unusual = true,
        2 if name.eq_ignore_ascii_case(b"te") => notes.unusual = true,
        10 if name.eq_ignore_ascii_case(b"connection") => {
            notes.close |= value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
        _ => {}
    }
}

/// The request for a plain head, or `None` when `http` refuses its target
/// or a field.
fn build(
    method: Method,
    target: [u32; 2],
    head: &Bytes,
    spans: &[Span],
    names: &mut NameMemo,
) -> Option<Request<ClientBody>> {
    let uri = Uri::from_maybe_shared(head.slice(target[0] as usize..target[1] as usize)).ok()?;
    // The forwarding fields are not inserted (`headers::Added`): the
    // request's own fields are all the map holds.
    let mut headers = crate::map_pool::take(spans.len());
    for (i, span) in spans.iter().enumerate() {
        let [ns, ne, vs, ve] = span.map(|o| o as usize);
        let name = names.name(i, &head[ns..ne])?;
        let value = HeaderValue::from_maybe_shared(head.slice(vs..ve)).ok()?;
        headers.append(name, value);
    }
    let mut request = Request::new(ClientBody::Empty);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(request)
}
