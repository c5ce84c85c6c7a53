//! Protocol hygiene: requests that are ambiguous or oversized are refused with
//! a reason code before any upstream sees them.
//!
//! hyper already rejects invalid header bytes and conflicting lengths, but it
//! quietly repairs two smuggling signatures — a `Content-Length` alongside
//! `Transfer-Encoding` (dropped) and repeated identical `Content-Length`
//! values (merged) — so the request reaching us no longer shows them.
//! [`FramingScan`] watches the raw HTTP/1 bytes as hyper reads them, follows
//! message framing (heads, fixed and chunked bodies), and queues one verdict
//! per request head; the handler takes the verdict for each request in order.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderMap, StatusCode, Version};
use rampart_core::reason::codes;
use rampart_core::Denial;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A framing problem seen in the raw bytes of one request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Clean,
    BothLengthAndChunked,
    DuplicateLength,
    /// The request-target carries a `#fragment`, which clients must never
    /// send (RFC 9112 §3.2); the URI parser would drop it silently.
    FragmentInTarget,
}

/// Per-connection verdict queue shared by the IO wrapper and the handler.
#[derive(Debug, Default)]
pub struct FramingVerdicts(Mutex<VecDeque<Framing>>);

impl FramingVerdicts {
    /// The verdict for the next request in order (Clean if none was queued,
    /// e.g. after the scan stopped at an upgrade).
    pub fn next(&self) -> Framing {
        self.0
            .lock()
            .map(|mut q| q.pop_front())
            .ok()
            .flatten()
            .unwrap_or(Framing::Clean)
    }

    fn push(&self, f: Framing) {
        if let Ok(mut q) = self.0.lock() {
            q.push_back(f);
        }
    }
}

/// Longest header line the scan follows; longer ones are hyper's to refuse.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug)]
enum State {
    Head,
    Fixed(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd(u8),
    Trailers,
    /// After an upgrade or a line too long to follow: stop scanning.
    Stopped,
}

/// The framing follower for one HTTP/1 connection.
#[derive(Debug)]
pub struct FramingScan {
    state: State,
    line: Vec<u8>,
    seen_request_line: bool,
    lengths: u32,
    length: Option<u64>,
    chunked: bool,
    upgrade: bool,
    fragment: bool,
    verdicts: Arc<FramingVerdicts>,
}

impl FramingScan {
    pub fn new(verdicts: Arc<FramingVerdicts>) -> Self {
        FramingScan {
            state: State::Head,
            line: Vec::new(),
            seen_request_line: false,
            lengths: 0,
            length: None,
            chunked: false,
            upgrade: false,
            fragment: false,
            verdicts,
        }
    }

    /// Feeds bytes as they arrive from the client.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            data = match self.state {
                State::Stopped => return,
                State::Fixed(n) => {
                    let take = (n.min(data.len() as u64)) as usize;
                    self.state = if n == take as u64 {
                        State::Head
                    } else {
                        State::Fixed(n - take as u64)
                    };
                    &data[take..]
                }
                State::ChunkData(n) => {
                    let take = (n.min(data.len() as u64)) as usize;
                    self.state = if n == take as u64 {
                        State::ChunkDataEnd(2)
                    } else {
                        State::ChunkData(n - take as u64)
                    };
                    &data[take..]
                }
                State::ChunkDataEnd(k) => {
                    self.state = if k == 1 {
                        State::ChunkSize
                    } else {
                        State::ChunkDataEnd(k - 1)
                    };
                    &data[1..]
                }
                State::Head | State::ChunkSize | State::Trailers => self.feed_line(data),
            };
        }
    }

    fn feed_line<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        let (part, rest, complete) = match memchr_nl(data) {
            Some(i) => (&data[..i], &data[i + 1..], true),
            None => (data, &data[data.len()..], false),
        };
        if self.line.len() + part.len() > MAX_LINE {
            self.state = State::Stopped;
            return rest;
        }
        self.line.extend_from_slice(part);
        if complete {
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.on_line(&line);
            line.clear();
            self.line = line;
        }
        rest
    }

    fn on_line(&mut self, line: &[u8]) {
        match self.state {
            State::Head => self.on_head_line(line),
            State::ChunkSize => {
                let hex = line.split(|&b| b == b';').next().unwrap_or(b"");
                match std::str::from_utf8(hex)
                    .ok()
                    .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                {
                    Some(0) => self.state = State::Trailers,
                    Some(n) => self.state = State::ChunkData(n),
                    None => self.state = State::Stopped,
                }
            }
            State::Trailers if line.is_empty() => self.state = State::Head,
            _ => {}
        }
    }

    fn on_head_line(&mut self, line: &[u8]) {
        if !self.seen_request_line {
            // Empty lines before a request line are allowed and ignored.
            self.seen_request_line = !line.is_empty();
            let target = line.split(|&b| b == b' ').nth(1).unwrap_or(b"");
            self.fragment = target.contains(&b'#');
            return;
        }
        if !line.is_empty() {
            self.on_header(line);
            return;
        }
        let verdict = if self.fragment {
            Framing::FragmentInTarget
        } else if self.chunked && self.lengths > 0 {
            Framing::BothLengthAndChunked
        } else if self.lengths > 1 {
            Framing::DuplicateLength
        } else {
            Framing::Clean
        };
        self.verdicts.push(verdict);
        self.state = if self.upgrade {
            State::Stopped
        } else if self.chunked {
            State::ChunkSize
        } else {
            match self.length {
                Some(n) if n > 0 => State::Fixed(n),
                _ => State::Head,
            }
        };
        self.seen_request_line = false;
        self.lengths = 0;
        self.length = None;
        self.chunked = false;
        self.upgrade = false;
    }

    fn on_header(&mut self, line: &[u8]) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return;
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            self.lengths += 1;
            self.length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.chunked = true;
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.upgrade = true;
        }
    }
}

fn memchr_nl(d: &[u8]) -> Option<usize> {
    d.iter().position(|&b| b == b'\n')
}

/// Client IO that feeds every byte read to a [`FramingScan`].
pub struct ScannedIo<I> {
    inner: I,
    scan: FramingScan,
}

impl<I> ScannedIo<I> {
    pub fn new(inner: I, verdicts: Arc<FramingVerdicts>) -> Self {
        ScannedIo {
            inner,
            scan: FramingScan::new(verdicts),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for ScannedIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            this.scan.feed(&buf.filled()[before..]);
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ScannedIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Global request limits, compiled from `[limits]`.
#[derive(Debug, Clone)]
pub struct ProtocolLimits {
    pub max_uri: usize,
    pub max_headers: usize,
    pub max_header_bytes: usize,
}

/// Checks one request's head; `framing` is the raw-byte verdict (HTTP/1).
pub fn check(
    method: &http::Method,
    version: Version,
    uri: &http::Uri,
    headers: &HeaderMap,
    framing: Framing,
    limits: &ProtocolLimits,
) -> Result<(), Denial> {
    let bad =
        |reason, detail: &'static str| Err(Denial::new(StatusCode::BAD_REQUEST, reason, detail));
    match framing {
        Framing::BothLengthAndChunked => {
            return bad(
                codes::AMBIGUOUS_LENGTH,
                "request has both Content-Length and Transfer-Encoding",
            )
        }
        Framing::DuplicateLength => {
            return bad(
                codes::DUPLICATE_LENGTH,
                "request has more than one Content-Length",
            )
        }
        Framing::FragmentInTarget => {
            return bad(
                codes::INVALID_TARGET,
                "the request target must not carry a #fragment",
            )
        }
        Framing::Clean => {}
    }
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next() {
        if lengths.next().is_some() {
            return bad(
                codes::DUPLICATE_LENGTH,
                "request has more than one Content-Length",
            );
        }
        let valid = first
            .to_str()
            .ok()
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
        if !valid {
            return bad(codes::INVALID_LENGTH, "Content-Length is not a number");
        }
    }
    let uri_len = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > limits.max_uri {
        return Err(Denial::new(
            StatusCode::URI_TOO_LONG,
            codes::URI_TOO_LONG,
            "request URI is too long",
        ));
    }
    if headers.len() > limits.max_headers {
        return Err(Denial::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            codes::TOO_MANY_HEADERS,
            "request has too many headers",
        ));
    }
    let size: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if size > limits.max_header_bytes {
        return Err(Denial::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            codes::HEADERS_TOO_LARGE,
            "request headers are too large",
        ));
    }
    if method == http::Method::CONNECT {
        // A gateway in front of APIs opens no tunnels. A CONNECT target must
        // be host:port; without a port the request is malformed.
        if uri.port().is_none() {
            return bad(codes::BAD_REQUEST, "a CONNECT target must be host:port");
        }
        return Err(Denial::new(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            "CONNECT tunnels are not supported",
        ));
    }
    if version == Version::HTTP_11 && !headers.contains_key(HOST) {
        return bad(codes::MISSING_HOST, "HTTP/1.1 request without Host");
    }
    if headers.get_all(HOST).iter().count() > 1
        || headers.get(HOST).is_some_and(|h| !valid_host(h.as_bytes()))
    {
        return bad(
            codes::INVALID_HOST,
            "the Host header is not a valid host[:port]",
        );
    }
    Ok(())
}

/// A DNS name or IPv4 address (letters, digits, `-`, `.`, `_`) or a
/// bracketed IPv6 literal, with an optional port. Stricter than RFC 3986's
/// reg-name on purpose: percent-encoding or control bytes in Host only serve
/// to confuse virtual-host routing and caches.
fn valid_host(h: &[u8]) -> bool {
    let (host, port) = match h.iter().rposition(|&b| b == b':') {
        Some(i) if !h.starts_with(b"[") || h[..i].ends_with(b"]") => (&h[..i], Some(&h[i + 1..])),
        _ => (h, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.iter().all(u8::is_ascii_digit));
    let host_ok = if let Some(v6) = host.strip_prefix(b"[").and_then(|r| r.strip_suffix(b"]")) {
        !v6.is_empty()
            && v6
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    };
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]]) -> Vec<Framing> {
        let v = Arc::new(FramingVerdicts::default());
        let mut s = FramingScan::new(v.clone());
        for c in chunks {
            s.feed(c);
        }
        let q = v.0.lock().unwrap();
        q.iter().copied().collect()
    }

    #[test]
    fn clean_pipelined_requests_with_bodies() {
        let raw = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n\
POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET /d HTTP/1.1\r\n\r\n";
        assert_eq!(scan(&[raw]), vec![Framing::Clean; 4]);
        // Byte by byte gives the same answer: chunk boundaries do not matter.
        let bytes: Vec<&[u8]> = raw.chunks(1).collect();
        assert_eq!(scan(&bytes), vec![Framing::Clean; 4]);
    }

    #[test]
    fn body_content_that_looks_like_headers_is_not_misread() {
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 43\r\n\r\nContent-Length: 1\r\nTransfer-Encoding: x\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(scan(&[raw]), vec![Framing::Clean, Framing::Clean]);
    }

    #[test]
    fn smuggling_signatures_are_flagged() {
        let te_cl = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(scan(&[te_cl]), vec![Framing::BothLengthAndChunked]);
        let dup =
            b"POST / HTTP/1.1\r\nHost: x\r\ncontent-length: 3\r\nCONTENT-LENGTH: 3\r\n\r\nabc";
        assert_eq!(scan(&[dup]), vec![Framing::DuplicateLength]);
    }

    #[test]
    fn fragments_in_the_request_target_are_flagged() {
        let raw = b"GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            scan(&[raw]),
            vec![Framing::FragmentInTarget, Framing::Clean]
        );
    }

    #[test]
    fn scan_stops_after_upgrade() {
        let raw =
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello";
        assert_eq!(scan(&[raw]), vec![Framing::Clean]);
    }

    fn limits() -> ProtocolLimits {
        ProtocolLimits {
            max_uri: 20,
            max_headers: 3,
            max_header_bytes: 100,
        }
    }

    fn check_with(uri: &str, headers: &[(&str, &str)]) -> Option<&'static str> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        check(
            &http::Method::GET,
            Version::HTTP_11,
            &uri.parse().unwrap(),
            &h,
            Framing::Clean,
            &limits(),
        )
        .err()
        .map(|d| d.reason)
    }

    #[test]
    fn head_checks() {
        assert_eq!(check_with("/", &[("host", "a")]), None);
        assert_eq!(check_with("/", &[]), Some(codes::MISSING_HOST));
        for bad in [
            "",
            "localhost%00",
            "a b",
            "x\ty",
            "localhost%1F",
            "host:port",
            "[::1",
            "a.test:123456",
        ] {
            assert_eq!(
                check_with("/", &[("host", bad)]),
                Some(codes::INVALID_HOST),
                "{bad:?}"
            );
        }
        for good in [
            "api.example.com",
            "api.example.com:8443",
            "127.0.0.1:80",
            "[::1]:8080",
            "[2001:db8::1]",
            "my_host",
        ] {
            assert_eq!(check_with("/", &[("host", good)]), None, "{good:?}");
        }
        assert_eq!(
            check_with("/012345678901234567890", &[("host", "a")]),
            Some(codes::URI_TOO_LONG)
        );
        assert_eq!(
            check_with(
                "/",
                &[
                    ("host", "a"),
                    ("content-length", "1"),
                    ("content-length", "1")
                ]
            ),
            Some(codes::DUPLICATE_LENGTH)
        );
        assert_eq!(
            check_with("/", &[("host", "a"), ("content-length", "-1")]),
            Some(codes::INVALID_LENGTH)
        );
        assert_eq!(
            check_with("/", &[("host", "a"), ("b", "1"), ("c", "1"), ("d", "1")]),
            Some(codes::TOO_MANY_HEADERS)
        );
        assert_eq!(
            check_with("/", &[("host", &"a".repeat(100))]),
            Some(codes::HEADERS_TOO_LARGE)
        );
    }

    /// Deterministic random inputs (a seeded mini-fuzz that runs in CI; the
    /// cargo-fuzz target `request_head` explores further).
    #[test]
    fn random_bytes_never_panic_or_lose_step() {
        let mut rng = fastrand::Rng::with_seed(7);
        let pieces: [&[u8]; 12] = [
            b"GET / HTTP/1.1\r\n",
            b"Host: a\r\n",
            b"Content-Length: 3\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"\r\n",
            b"abc",
            b"3\r\nabc\r\n",
            b"0\r\n\r\n",
            b"ffffffffffffffffff\r\n",
            b"\n",
            b":",
            b"Upgrade: x\r\n",
        ];
        for _ in 0..3000 {
            let mut input = Vec::new();
            for _ in 0..rng.usize(1..30) {
                if rng.bool() {
                    input.extend_from_slice(pieces[rng.usize(..pieces.len())]);
                } else {
                    input.extend((0..rng.usize(1..20)).map(|_| rng.u8(..)));
                }
            }
            let v = Arc::new(FramingVerdicts::default());
            let mut s = FramingScan::new(v.clone());
            for chunk in input.chunks(rng.usize(1..64)) {
                s.feed(chunk);
            }
            let queued = v.0.lock().unwrap().len();
            assert!(queued <= input.len(), "more verdicts than bytes");
        }
    }
}
