//! Response bodies from upstream servers, whichever client fetched them.
//!
//! rampart's own HTTP/1.1 client reads a body from the connection the
//! response came on: a body that arrived with its head is handed out whole
//! and the connection goes back to its pool at once; a longer one streams,
//! and the connection goes back when its last byte was read (or is closed
//! if the client stops reading first).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::h1chunked::{ChunkedDecoder, Decoded};
use super::h1conn::Conn;
use super::h1pool::{H1Pool, ReadError};
use super::h1wire::Framing;
use crate::body::BodyError;

/// Read buffer reserved per body read.
const READ_CHUNK: usize = 16 * 1024;

/// An upstream connection switched to another protocol (101), with the
/// bytes the upstream already sent on it.
pub struct RawUpgrade {
    pub stream: TcpStream,
    pub leftover: Bytes,
}

/// A response body from an upstream server.
pub enum UpstreamBody {
    /// From hyper's client (TLS and HTTP/2 upstreams).
    Hyper(Incoming),
    /// Complete already (or empty): the connection is back in its pool.
    Full(Option<Bytes>),
    /// Still arriving on its connection.
    Stream(Box<H1Body>),
    /// A 101 answer: no body; the connection is for the tunnel.
    Upgrade(Option<RawUpgrade>),
}

impl UpstreamBody {
    /// The upgraded connection of a 101 answer from rampart's own client.
    pub fn take_upgrade(&mut self) -> Option<RawUpgrade> {
        match self {
            UpstreamBody::Upgrade(u) => u.take(),
            _ => None,
        }
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            UpstreamBody::Hyper(_) => "Hyper",
            UpstreamBody::Full(_) => "Full",
            UpstreamBody::Stream(_) => "Stream",
            UpstreamBody::Upgrade(_) => "Upgrade",
        };
        write!(f, "UpstreamBody::{kind}")
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            UpstreamBody::Hyper(inc) => Pin::new(inc)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(BodyError::from))),
            UpstreamBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            UpstreamBody::Stream(s) => s.poll_next(cx),
            UpstreamBody::Upgrade(_) => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Hyper(inc) => inc.is_end_stream(),
            UpstreamBody::Full(b) => b.is_none(),
            UpstreamBody::Stream(s) => s.conn.is_none(),
            UpstreamBody::Upgrade(_) => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Hyper(inc) => inc.size_hint(),
            UpstreamBody::Full(b) => crate::body::exact_hint(b),
            UpstreamBody::Stream(s) => match s.decode {
                Decode::Length(left) => SizeHint::with_exact(left),
                _ => SizeHint::default(),
            },
            UpstreamBody::Upgrade(_) => SizeHint::with_exact(0),
        }
    }
}

/// Where a connection goes when its body is done.
pub struct Home {
    pub pool: Arc<H1Pool>,
    pub server: usize,
}

enum Decode {
    Length(u64),
    Chunked(ChunkedDecoder),
    Close,
}

/// A body still streaming from its connection.
pub struct H1Body {
    /// `None` once the body is complete (or failed).
    conn: Option<Conn>,
    decode: Decode,
    /// Set when the connection may serve another request afterwards.
    home: Option<Home>,
}

impl H1Body {
    /// A body that continues on `conn`, framed by `framing` (not `Empty`).
    pub fn new(conn: Conn, framing: Framing, home: Option<Home>) -> Self {
        let decode = match framing {
            Framing::Length(n) => Decode::Length(n),
            Framing::Chunked => Decode::Chunked(ChunkedDecoder::default()),
            Framing::Empty | Framing::Close => Decode::Close,
        };
        H1Body {
            conn: Some(conn),
            decode,
            home,
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        loop {
            match self.take_buffered() {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(self.fail(e)))),
            }
            // Complete (the connection went home) or more bytes needed.
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(poll_fill(&mut conn.stream, &mut conn.read, cx)) {
                Ok(0) if matches!(self.decode, Decode::Close) => {
                    self.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => return Poll::Ready(Some(Err(self.fail(ReadError::Closed)))),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(self.fail(ReadError::Io(e))))),
            }
        }
    }

    /// The body cannot complete: its connection is closed.
    fn fail(&mut self, e: ReadError) -> BodyError {
        self.conn = None;
        BodyError::Upstream(e)
    }

    /// The next frame the read buffer already holds; the body's end when it
    /// completes (the connection then goes home).
    fn take_buffered(&mut self) -> Result<Option<Frame<Bytes>>, ReadError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        let buf = &mut conn.read;
        let (frame, done) = match &mut self.decode {
            Decode::Length(left) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = (buf.len() as u64).min(*left) as usize;
                *left -= n as u64;
                (Some(Frame::data(buf.split_to(n).freeze())), *left == 0)
            }
            Decode::Close => {
                if buf.is_empty() {
                    return Ok(None);
                }
                (Some(Frame::data(buf.split().freeze())), false)
            }
            Decode::Chunked(dec) => match dec.decode(buf).map_err(ReadError::Wire)? {
                Decoded::Data(d) => (Some(Frame::data(d)), false),
                Decoded::Trailers(t) => (Some(Frame::trailers(t)), true),
                Decoded::End => (None, true),
                Decoded::NeedMore => return Ok(None),
            },
        };
        if done {
            self.finish();
        }
        Ok(frame)
    }

    /// The body is complete: the connection goes back to its pool when it
    /// may carry another request and nothing unexpected followed the body.
    fn finish(&mut self) {
        let conn = self.conn.take();
        if let (Some(conn), Some(home)) = (conn, self.home.take()) {
            if conn.read.is_empty() {
                home.pool.checkin(home.server, conn);
            }
        }
    }
}

/// Reads what the socket has into `buf`.
fn poll_fill(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    buf.reserve(READ_CHUNK);
    // `read_buf`'s future holds no state between polls, so one made per
    // poll is dropped without losing bytes.
    let read = std::pin::pin!(stream.read_buf(buf));
    std::future::Future::poll(read, cx)
}
