//! One HTTP/1.1 connection to an upstream server and one exchange on it:
//! the request head (and a small body) written in one go, a streamed body
//! written while the response head is awaited, then the head parsed.
//!
//! The exchange runs inside the request's own future: no connection task,
//! no channel between the two, and the read and write buffers stay with the
//! connection from one request to the next.

use std::pin::Pin;

use bytes::BytesMut;
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::h1chunked::{write_chunk_header, write_last_chunk, CRLF};
use super::h1pool::{Error, ReadError};
use super::h1wire::{self, Framing, ResponseHead};
use crate::body::RequestBody;
use crate::name_memo::NameMemo;

/// A request body up to this size is written together with its head.
const COALESCE: usize = 16 * 1024;

/// Read buffer reserved per read.
const READ_CHUNK: usize = 8 * 1024;

/// A connection, its buffers and its response timer, reused request after
/// request.
pub struct Conn {
    pub(super) stream: TcpStream,
    pub(super) read: BytesMut,
    write: Vec<u8>,
    pub(super) timer: Pin<Box<Sleep>>,
    /// The upstream's response field names, by position.
    names: NameMemo,
}

/// A response head and what it says about the rest of the exchange.
pub struct Answer {
    pub head: ResponseHead,
    pub framing: Framing,
    /// Whether the connection may carry another request once this response
    /// body is read (keep-alive, delimited body, request fully sent).
    pub reusable: bool,
}

impl Conn {
    pub fn new(stream: TcpStream, deadline: tokio::time::Instant) -> Self {
        Conn {
            stream,
            read: BytesMut::with_capacity(READ_CHUNK),
            write: Vec::with_capacity(1024),
            // Lazy: tokio registers the timer on its first poll.
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            names: NameMemo::default(),
        }
    }

    /// Whether an idle connection can take a request: not closed by the
    /// upstream, and with no stray bytes waiting. Costs no system call
    /// unless the socket was reported readable since its last read.
    pub fn is_usable(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Sends a request (`parts`' origin-form target and headers, `host`
    /// added when they have none, then `body`) and reads the response head;
    /// gives up with [`Error::Timeout`] when the timer (set by the caller)
    /// fires first.
    pub async fn exchange(
        &mut self,
        parts: &http::request::Parts,
        added: &crate::headers::Added,
        host: &str,
        mut body: RequestBody,
    ) -> Result<Answer, Error> {
        let framing = request_framing(&parts.method, &parts.headers, &body)?;
        let length: HeaderValue;
        let mut extra: [(&HeaderName, &[u8]); 2] = [(&HOST, b""), (&HOST, b"")];
        let mut n = 0;
        if !parts.headers.contains_key(HOST) {
            // HTTP/1.1 requires Host; hyper's client filled it in likewise.
            extra[n] = (&HOST, host.as_bytes());
            n += 1;
        }
        match framing.1 {
            Some(ExtraHeader::Length(len)) => {
                length = HeaderValue::from(len);
                extra[n] = (&CONTENT_LENGTH, length.as_bytes());
                n += 1;
            }
            Some(ExtraHeader::Chunked) => {
                extra[n] = (&TRANSFER_ENCODING, b"chunked");
                n += 1;
            }
            None => {}
        }
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        self.write.clear();
        h1wire::write_request_head(
            &mut self.write,
            &parts.method,
            target,
            &parts.headers,
            added,
            &extra[..n],
        );
        let mut writer = BodyWriter {
            framing: framing.0,
            written: 0,
        };
        // A body already in memory and small goes out with the head.
        if let RequestBody::Full(Some(b)) = &mut body {
            if b.len() <= COALESCE {
                let data = std::mem::take(b);
                writer.data(&mut self.write, &data)?;
            }
        }
        let complete = body.is_end_stream();
        if complete {
            writer.end(&mut self.write, None)?;
        }
        let Conn {
            stream,
            read,
            write,
            timer,
            names,
        } = self;
        let (mut rd, mut wr) = stream.split();
        let sent = async {
            wr.write_all(write).await.map_err(Error::Write)?;
            if !complete {
                stream_body(&mut wr, &mut body, &mut writer, write).await?;
            }
            Ok::<(), Error>(())
        };
        let head = read_head(&mut rd, read, names);
        tokio::pin!(sent, head);
        let mut sending = true;
        let mut write_error = None;
        let mut head = loop {
            tokio::select! {
                biased;
                r = &mut sent, if sending => {
                    sending = false;
                    match r {
                        Ok(()) => {}
                        // The client's body failed: the upstream waits in vain.
                        Err(e @ Error::Body(_)) => return Err(e),
                        // The upstream may have answered before it closed.
                        Err(e) => write_error = Some(e),
                    }
                }
                r = &mut head => match r {
                    Ok(head) => break head,
                    Err(e) => return Err(write_error.take().unwrap_or(e)),
                },
                _ = timer.as_mut() => return Err(Error::Timeout),
            }
        };
        let framing =
            h1wire::response_framing(&parts.method, &mut head).map_err(ReadError::Wire)?;
        let reusable = !sending
            && write_error.is_none()
            && framing != Framing::Close
            && head.status != StatusCode::SWITCHING_PROTOCOLS
            && h1wire::keeps_alive(&head);
        Ok(Answer {
            head,
            framing,
            reusable,
        })
    }
}

/// Reads until a final response head is complete; informational answers
/// other than 101 (100 Continue, 103 Early Hints) are skipped.
async fn read_head<R: tokio::io::AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    names: &mut NameMemo,
) -> Result<ResponseHead, Error> {
    loop {
        if !buf.is_empty() {
            if let Some(head) = h1wire::parse_response_head(buf, names).map_err(ReadError::Wire)? {
                if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS
                {
                    continue;
                }
                return Ok(head);
            }
        }
        buf.reserve(READ_CHUNK);
        if rd.read_buf(buf).await.map_err(ReadError::Io)? == 0 {
            return Err(ReadError::Closed.into());
        }
    }
}

/// A framing header the client adds to the request's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtraHeader {
    Length(u64),
    Chunked,
}

/// How the request body goes out, and which header says so. The request's
/// own `Content-Length` (checked by the gateway's hygiene) is kept; without
/// one, a body of known size gets one, any other body is chunked.
/// (`Transfer-Encoding` was removed with the hop-by-hop headers.)
fn request_framing(
    method: &Method,
    headers: &http::HeaderMap,
    body: &RequestBody,
) -> Result<(Framing, Option<ExtraHeader>), Error> {
    if let Some(n) = h1wire::content_length(headers).map_err(|_| Error::RequestFraming)? {
        return Ok((Framing::Length(n), None));
    }
    if body.is_end_stream() {
        // Servers may ask for a length on methods that carry content.
        let extra = matches!(*method, Method::POST | Method::PUT | Method::PATCH)
            .then_some(ExtraHeader::Length(0));
        return Ok((Framing::Empty, extra));
    }
    Ok(match body.size_hint().exact() {
        Some(n) => (Framing::Length(n), Some(ExtraHeader::Length(n))),
        None => (Framing::Chunked, Some(ExtraHeader::Chunked)),
    })
}

/// Frames request body data, counting it against a declared length.
struct BodyWriter {
    framing: Framing,
    written: u64,
}

impl BodyWriter {
    /// Counts `len` more bytes; more than declared (or any, where the
    /// request has no body) is refused.
    fn count(&mut self, len: usize) -> Result<(), Error> {
        self.written += len as u64;
        match self.framing {
            Framing::Length(n) if self.written > n => Err(Error::RequestFraming),
            Framing::Empty if self.written > 0 => Err(Error::RequestFraming),
            _ => Ok(()),
        }
    }

    /// Appends `data`, chunk-framed when the body is chunked.
    fn data(&mut self, out: &mut Vec<u8>, data: &[u8]) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        self.count(data.len())?;
        if self.framing == Framing::Chunked {
            write_chunk_header(out, data.len());
            out.extend_from_slice(data);
            out.extend_from_slice(CRLF);
        } else {
            out.extend_from_slice(data);
        }
        Ok(())
    }

    /// Appends the end of the body; a body shorter than declared is refused.
    fn end(&mut self, out: &mut Vec<u8>, trailers: Option<&http::HeaderMap>) -> Result<(), Error> {
        match self.framing {
            Framing::Chunked => write_last_chunk(out, trailers),
            Framing::Length(n) if self.written != n => return Err(Error::RequestFraming),
            _ => {}
        }
        Ok(())
    }
}

/// Writes the rest of a streamed request body, frame by frame: small pieces
/// copied into one write with their framing, large ones written as they are.
async fn stream_body<W: AsyncWrite + Unpin>(
    wr: &mut W,
    body: &mut RequestBody,
    writer: &mut BodyWriter,
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    loop {
        buf.clear();
        let frame = match body.frame().await {
            None => {
                writer.end(buf, None)?;
                return wr.write_all(buf).await.map_err(Error::Write);
            }
            Some(Err(e)) => return Err(Error::Body(e)),
            Some(Ok(frame)) => frame,
        };
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                let trailers = frame.into_trailers().ok();
                writer.end(buf, trailers.as_ref())?;
                return wr.write_all(buf).await.map_err(Error::Write);
            }
        };
        if data.len() <= COALESCE {
            writer.data(buf, &data)?;
            wr.write_all(buf).await.map_err(Error::Write)?;
            continue;
        }
        writer.count(data.len())?;
        let chunked = writer.framing == Framing::Chunked;
        if chunked {
            write_chunk_header(buf, data.len());
            wr.write_all(buf).await.map_err(Error::Write)?;
        }
        wr.write_all(&data).await.map_err(Error::Write)?;
        if chunked {
            wr.write_all(CRLF).await.map_err(Error::Write)?;
        }
    }
}
