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
//!
//! The same per-connection state also drives the header-read timeout
//! (slowloris): [`header_watchdog`] closes an HTTP/1 connection that waits
//! longer than the timeout for a request head, the way hyper's own
//! `header_read_timeout` does, but with one timer per connection that is
//! pushed forward lazily instead of a timer made and cancelled per request.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderMap, StatusCode, Version};
use rampart_core::reason::codes;
use rampart_core::Denial;
use tokio::io::{AsyncRead, ReadBuf};

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

/// Per-connection state of an HTTP/1 connection, shared by the IO wrapper
/// (framing verdicts), the handler (exchanges open) and the header-read
/// watchdog.
#[derive(Debug)]
pub struct FramingVerdicts {
    queue: Mutex<VecDeque<Framing>>,
    /// Exchanges handed to the handler and not finished yet.
    open: AtomicU32,
    /// When the connection last had no exchange open (its start, or the end
    /// of the last exchange), in microseconds since `epoch`: the wait for
    /// the next request head runs from there.
    idle_since_us: AtomicU64,
    epoch: Instant,
}

impl Default for FramingVerdicts {
    fn default() -> Self {
        FramingVerdicts {
            queue: Mutex::default(),
            open: AtomicU32::new(0),
            idle_since_us: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl FramingVerdicts {
    /// The verdict for the next request in order (Clean if none was queued,
    /// e.g. after the scan stopped at an upgrade).
    pub fn next(&self) -> Framing {
        self.queue
            .lock()
            .map(|mut q| q.pop_front())
            .ok()
            .flatten()
            .unwrap_or(Framing::Clean)
    }

    fn push(&self, f: Framing) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(f);
        }
    }

    /// Notes that the handler took a request: no head is awaited until the
    /// returned guard is closed (or dropped).
    pub fn exchange_started(self: &Arc<Self>) -> OpenExchange {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenExchange(Some(self.clone()))
    }

    fn exchange_finished(&self, now: Instant) {
        let since = now.saturating_duration_since(self.epoch).as_micros();
        self.idle_since_us
            .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Relaxed);
        // Saturating, though every decrement follows its own increment.
        let _ = self
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
    }

    /// When the watchdog must look again, or `None` when the connection has
    /// awaited a request head for `timeout` already (and must close).
    pub fn header_deadline(&self, now: Instant, timeout: Duration) -> Option<Instant> {
        if self.open.load(Ordering::Relaxed) > 0 {
            // A request is being handled; body and upstream timeouts apply.
            return Some(now + timeout);
        }
        let idle_since = Duration::from_micros(self.idle_since_us.load(Ordering::Relaxed));
        let deadline = self.epoch + idle_since + timeout;
        (now < deadline).then_some(deadline)
    }
}

/// An exchange in progress on an HTTP/1 connection (see
/// [`FramingVerdicts::exchange_started`]).
#[derive(Debug)]
pub struct OpenExchange(Option<Arc<FramingVerdicts>>);

impl OpenExchange {
    /// The exchange is over at `now`: the wait for the next head starts.
    pub fn close(mut self, now: Instant) {
        if let Some(state) = self.0.take() {
            state.exchange_finished(now);
        }
    }
}

impl Drop for OpenExchange {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            state.exchange_finished(Instant::now());
        }
    }
}

/// Returns once the connection has waited `timeout` for a request head: at
/// its start, or since its last exchange finished. The caller then closes
/// the connection (hyper's header timeout does the same, without a reply).
///
/// One timer per connection: while requests keep coming it is only pushed
/// forward, which tokio does without touching its timer wheel.
pub async fn header_watchdog(state: Arc<FramingVerdicts>, timeout: Duration) {
    let first = tokio::time::Instant::from_std(state.epoch + timeout);
    let sleep = tokio::time::sleep_until(first);
    tokio::pin!(sleep);
    loop {
        sleep.as_mut().await;
        match state.header_deadline(Instant::now(), timeout) {
            Some(next) => sleep.as_mut().reset(tokio::time::Instant::from_std(next)),
            None => return,
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
        if complete && self.line.is_empty() {
            // The whole line arrived in this read (the usual case): read it
            // in place instead of copying it into `line`.
            if part.len() > MAX_LINE {
                self.state = State::Stopped;
                return rest;
            }
            self.on_line(part.strip_suffix(b"\r").unwrap_or(part));
            return rest;
        }
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
        let Some(colon) = memchr::memchr(b':', line) else {
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

/// Vectorised: this runs over every byte a client sends in a head.
fn memchr_nl(d: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', d)
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

crate::io_wrap::write_through!(ScannedIo);

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
    // One pass over the headers gathers what the checks below need, instead
    // of a hashed lookup per check.
    let head = HeadFacts::of(headers);
    if let Some(first) = head.first_length {
        if head.lengths > 1 {
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
    if head.size > limits.max_header_bytes {
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
    if version == Version::HTTP_11 && head.hosts == 0 {
        return bad(codes::MISSING_HOST, "HTTP/1.1 request without Host");
    }
    if head.hosts > 1 || head.first_host.is_some_and(|h| !valid_host(h.as_bytes())) {
        return bad(
            codes::INVALID_HOST,
            "the Host header is not a valid host[:port]",
        );
    }
    Ok(())
}

/// What [`check`] needs from the headers, gathered in one pass.
struct HeadFacts<'h> {
    /// Bytes as on the wire: name, `: `, value, CRLF.
    size: usize,
    lengths: usize,
    first_length: Option<&'h http::HeaderValue>,
    hosts: usize,
    first_host: Option<&'h http::HeaderValue>,
}

impl<'h> HeadFacts<'h> {
    fn of(headers: &'h HeaderMap) -> Self {
        let mut facts = HeadFacts {
            size: 0,
            lengths: 0,
            first_length: None,
            hosts: 0,
            first_host: None,
        };
        for (name, value) in headers {
            facts.size += name.as_str().len() + value.len() + 4;
            if name == CONTENT_LENGTH {
                facts.lengths += 1;
                facts.first_length.get_or_insert(value);
            } else if name == HOST {
                facts.hosts += 1;
                facts.first_host.get_or_insert(value);
            }
        }
        facts
    }
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
        !host.is_empty() && host.iter().all(|&b| HOST_NAME_BYTE[usize::from(b)])
    };
    port_ok && host_ok
}

/// The bytes of a host name or IPv4 address in Host: letters, digits, `-`,
/// `.` and `_`. A table, because every request's Host is checked byte by
/// byte (four comparisons per byte otherwise).
static HOST_NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_';
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]]) -> Vec<Framing> {
        let v = Arc::new(FramingVerdicts::default());
        let mut s = FramingScan::new(v.clone());
        for c in chunks {
            s.feed(c);
        }
        let q = v.queue.lock().unwrap();
        q.iter().copied().collect()
    }

    #[test]
    fn header_deadline_runs_from_the_connection_start_or_the_last_exchange() {
        let state = Arc::new(FramingVerdicts::default());
        let t = Duration::from_millis(300);
        let start = state.epoch;
        // The first head is awaited from the start.
        assert_eq!(state.header_deadline(start, t), Some(start + t));
        assert_eq!(state.header_deadline(start + t, t), None);
        // While an exchange is open (a slow upstream, a long stream), the
        // header timeout does not run.
        let open = state.exchange_started();
        let later = start + Duration::from_secs(10);
        assert_eq!(state.header_deadline(later, t), Some(later + t));
        open.close(later);
        let soon = later + Duration::from_millis(100);
        assert_eq!(state.header_deadline(soon, t), Some(later + t));
        assert_eq!(state.header_deadline(later + t, t), None);
        // Pipelined: a second exchange keeps the connection busy after the first.
        let (a, b) = (state.exchange_started(), state.exchange_started());
        a.close(later + t);
        assert!(state.header_deadline(later + t * 5, t).is_some());
        // An exchange dropped without `close` (its handler went away) ends too.
        drop(b);
        let now = Instant::now();
        assert!(state.header_deadline(now, t).is_some_and(|d| d > now));
        assert_eq!(state.header_deadline(now + t * 2, t), None);
    }

    #[tokio::test]
    async fn watchdog_fires_on_an_idle_connection_but_not_during_an_exchange() {
        let state = Arc::new(FramingVerdicts::default());
        let open = state.exchange_started();
        let dog = tokio::spawn(header_watchdog(state.clone(), Duration::from_millis(50)));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!dog.is_finished(), "an open exchange was cut off");
        let closed = Instant::now();
        open.close(closed);
        tokio::time::timeout(Duration::from_secs(2), dog)
            .await
            .expect("the watchdog did not fire")
            .unwrap();
        assert!(closed.elapsed() >= Duration::from_millis(50));
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
            "bücher.example",
            "a/b",
            "a@b",
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
            "xn--bcher-kva.Example-1.TEST",
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
            let queued = v.queue.lock().unwrap().len();
            assert!(queued <= input.len(), "more verdicts than bytes");
        }
    }
}
