//! Response heads and body framing for rampart's own HTTP/1.1 server, by
//! the rules hyper's server follows (RFC 9112 §6.3), so a client sees the
//! same answer whichever side served it: `Content-Length` from the
//! response's own field or its exactly known body size, otherwise
//! `Transfer-Encoding: chunked`; no body (and no implicit length) for HEAD,
//! 204 and 304; a `Date` field when the response has none.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::response::Parts;
use http::{Method, StatusCode};
use http_body::SizeHint;

use crate::upstream::fields::RawHead;
use crate::upstream::h1wire::write_field;

/// How the response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body bytes are sent (HEAD, 204, 304, or an empty body).
    None,
    /// Exactly this many bytes.
    Length(u64),
    Chunked,
}

/// What writing the head decided.
pub struct HeadPlan {
    pub framing: BodyFraming,
    /// The connection closes after this response.
    pub close: bool,
}

/// Appends the status line and header block of `parts` to `out`. `close`:
/// the server means to close after this response (the client asked, or a
/// drain began); a `Connection: close` field is added then, and a
/// response that carries one closes the connection too.
pub fn write_head(
    out: &mut Vec<u8>,
    parts: &Parts,
    raw: Option<&RawHead>,
    method: &Method,
    hint: &SizeHint,
    close: bool,
) -> HeadPlan {
    let status = parts.status;
    write_status_line(out, status);
    let may_have_body = can_have_body(method, status);
    let mut declared: Option<u64> = None;
    // A 101 can only reach this server from an upstream that switched
    // protocols unasked (upgrades are hyper's): as hyper does, it is the
    // connection's last answer. No other 1xx reaches a handler's answer.
    let mut close = close || status.is_informational();
    let (mut wrote_date, mut wrote_connection) = (false, false);
    let mapped = parts.headers.iter().map(|(n, v)| (n, v.as_bytes()));
    for (name, value) in mapped.chain(raw.into_iter().flat_map(RawHead::iter)) {
        if name == TRANSFER_ENCODING {
            // Framing is this server's to choose (the handler removes it
            // from upstream responses as hop-by-hop).
            continue;
        }
        if name == CONTENT_LENGTH {
            let parsed = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse().ok());
            if declared.is_some() || parsed.is_none() || !may_have_length(status) {
                // Not one valid length: chosen below instead.
                continue;
            }
            declared = parsed;
        } else if name == CONNECTION {
            wrote_connection = true;
            close |= value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        } else if name == DATE {
            wrote_date = true;
        }
        write_field(out, name.as_str().as_bytes(), value);
    }
    let framing = match (declared, hint.exact()) {
        // A declared length frames the body (HEAD keeps it, with no body).
        (Some(n), _) if may_have_body => BodyFraming::Length(n),
        (Some(_), _) => BodyFraming::None,
        (None, Some(n)) => {
            let implicit_zero = *method != Method::HEAD;
            if may_have_length(status) && (n > 0 || implicit_zero) {
                write_field(
                    out,
                    b"content-length",
                    itoa::Buffer::new().format(n).as_bytes(),
                );
            }
            if may_have_body && n > 0 {
                BodyFraming::Length(n)
            } else {
                BodyFraming::None
            }
        }
        (None, None) if may_have_body => {
            write_field(out, b"transfer-encoding", b"chunked");
            BodyFraming::Chunked
        }
        (None, None) => BodyFraming::None,
    };
    if close && !wrote_connection {
        write_field(out, b"connection", b"close");
    }
    if !wrote_date {
        DATE_CACHE.with(|d| write_field(out, b"date", d.borrow_mut().now()));
    }
    out.extend_from_slice(b"\r\n");
    HeadPlan { framing, close }
}

fn write_status_line(out: &mut Vec<u8>, status: StatusCode) {
    if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    // A reason must be written: many parsers expect one.
    let reason = status.canonical_reason().unwrap_or("<none>");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// HEAD answers, informational answers, 204 and 304 carry no body bytes.
fn can_have_body(method: &Method, status: StatusCode) -> bool {
    *method != Method::HEAD
        && !status.is_informational()
        && !matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
}

/// 204, 304 and informational answers carry no `Content-Length` either.
fn may_have_length(status: StatusCode) -> bool {
    !status.is_informational()
        && !matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
}

thread_local! {
    static DATE_CACHE: RefCell<CachedDate> = RefCell::new(CachedDate::default());
}

/// The IMF-fixdate of the current second, formatted once per second per
/// worker thread rather than once per response.
#[derive(Default)]
struct CachedDate {
    text: Vec<u8>,
    second: u64,
}

impl CachedDate {
    fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = httpdate::fmt_http_date(now).into_bytes();
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, Response};

    fn head(resp: Response<()>, method: Method, hint: SizeHint, close: bool) -> (String, HeadPlan) {
        let (parts, ()) = resp.into_parts();
        let mut out = Vec::new();
        let plan = write_head(&mut out, &parts, None, &method, &hint, close);
        (String::from_utf8(out).expect("ascii"), plan)
    }

    #[test]
    fn raw_fields_are_written_and_framed_like_mapped_ones() {
        let bytes =
            bytes::Bytes::from_static(b"HTTP/1.1 200 OK\r\nServer: a\r\nContent-Length: 5\r\n\r\n");
        let mut fields = crate::upstream::fields::RawFields::new(bytes, 2);
        fields.push(http::HeaderName::from_static("server"), 25, 26);
        fields.push(http::header::CONTENT_LENGTH, 44, 45);
        let raw = RawHead {
            fields,
            request_id: Some(HeaderValue::from_static("id-1")),
            hsts: None,
        };
        let (parts, ()) = Response::new(()).into_parts();
        let mut out = Vec::new();
        // The body's own hint disagrees: the declared length frames it, as
        // it does for a mapped field.
        let plan = write_head(
            &mut out,
            &parts,
            Some(&raw),
            &Method::GET,
            &SizeHint::new(),
            false,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "HTTP/1.1 200 OK\r\nserver: a\r\ncontent-length: 5\r\nx-request-id: id-1\r\ndate: "
            ),
            "{text}"
        );
        assert_eq!(plan.framing, BodyFraming::Length(5));
    }

    #[test]
    fn exact_bodies_get_a_length_and_unknown_ones_are_chunked() {
        let (text, plan) = head(
            Response::new(()),
            Method::GET,
            SizeHint::with_exact(2),
            false,
        );
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ndate: "));
        assert!(text.ends_with("GMT\r\n\r\n"));
        assert_eq!(plan.framing, BodyFraming::Length(2));
        assert!(!plan.close);
        let (text, plan) = head(Response::new(()), Method::GET, SizeHint::new(), false);
        assert!(text.contains("transfer-encoding: chunked\r\n"));
        assert_eq!(plan.framing, BodyFraming::Chunked);
    }

    #[test]
    fn empty_bodies_say_zero_except_to_head_204_and_304() {
        let (text, plan) = head(
            Response::new(()),
            Method::GET,
            SizeHint::with_exact(0),
            false,
        );
        assert!(text.contains("content-length: 0\r\n"));
        assert_eq!(plan.framing, BodyFraming::None);
        let (text, _) = head(
            Response::new(()),
            Method::HEAD,
            SizeHint::with_exact(0),
            false,
        );
        assert!(!text.contains("content-length"));
        let mut resp = Response::new(());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let (text, plan) = head(resp, Method::GET, SizeHint::new(), false);
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"));
        assert!(!text.contains("content-length") && !text.contains("chunked"));
        assert_eq!(plan.framing, BodyFraming::None);
    }

    #[test]
    fn a_declared_length_frames_the_body_and_head_keeps_it() {
        let mut resp = Response::new(());
        resp.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from_static("5"));
        resp.headers_mut()
            .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        let (text, plan) = head(resp, Method::GET, SizeHint::new(), false);
        assert_eq!(plan.framing, BodyFraming::Length(5));
        assert!(text.contains("content-length: 5\r\n"));
        assert!(!text.contains("chunked"), "{text}");
        let mut resp = Response::new(());
        resp.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from_static("5"));
        let (text, plan) = head(resp, Method::HEAD, SizeHint::with_exact(0), false);
        assert_eq!(plan.framing, BodyFraming::None);
        assert!(text.contains("content-length: 5\r\n"));
    }

    #[test]
    fn closing_adds_connection_close_and_a_response_close_is_honoured() {
        let (text, plan) = head(
            Response::new(()),
            Method::GET,
            SizeHint::with_exact(0),
            true,
        );
        assert!(text.contains("connection: close\r\n"));
        assert!(plan.close);
        let mut resp = Response::new(());
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("Close"));
        let (text, plan) = head(resp, Method::GET, SizeHint::with_exact(0), false);
        assert!(plan.close);
        assert_eq!(text.matches("connection").count(), 1);
    }

    #[test]
    fn an_unasked_switch_of_protocols_closes_the_connection() {
        let mut resp = Response::new(());
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let (text, plan) = head(resp, Method::GET, SizeHint::with_exact(0), false);
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(plan.close);
        assert_eq!(plan.framing, BodyFraming::None);
        assert!(!text.contains("content-length"));
    }

    #[test]
    fn an_own_date_is_kept() {
        let mut resp = Response::new(());
        resp.headers_mut().insert(
            DATE,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        let (text, _) = head(resp, Method::GET, SizeHint::with_exact(0), false);
        assert_eq!(text.matches("date: ").count(), 1);
        assert!(text.contains("1994"));
    }
}
