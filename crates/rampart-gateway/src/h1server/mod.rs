//! rampart's own HTTP/1.1 server loop, for the plain case: a request head
//! with no body, answered in the connection's own future — read, parse,
//! handle, write the response head and body in as few writes as the body
//! allows — with none of hyper's dispatcher, body channel or per-request
//! future moves (the reason: `docs/benchmarks.md`, "rampart's own HTTP/1.1
//! server").
//!
//! Everything else is hyper's, unchanged: the first head that is not the
//! plain case (a body, `Upgrade`, `Expect`, `TE`, HTTP/1.0, a head hyper
//! must refuse with its own status) hands the connection over, bytes read
//! so far included ([`Prefixed`]), and hyper serves it to its end behind
//! `hygiene::ScannedIo` as every HTTP/1 connection was served before. The
//! header-read watchdog, the exchange bookkeeping and graceful drain work
//! the same on both sides.

pub mod encode;
pub mod head;
mod prefixed;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

pub use prefixed::Prefixed;

use crate::body::ResponseBody;
use crate::name_memo::NameMemo;
use crate::proxy::{self, ConnInfo};
use crate::server::Shared;
use crate::upstream::h1chunked::{write_chunk_header, write_last_chunk, CRLF};
use encode::BodyFraming;
use head::{OwnRequest, Parsed};

/// Read buffer size (hyper's too).
const READ_BUF: usize = 8 * 1024;
/// Below this much free room the buffer grows before a read.
const MIN_READ: usize = 1024;
/// Body chunks up to this size are copied behind the head (one write);
/// larger ones are written on their own.
const COALESCE: usize = 16 * 1024;

/// Limits the own server shares with hyper's server.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Largest request head buffered; beyond it hyper answers (431).
    pub max_head: usize,
    /// Most header fields (hyper's `max_headers`).
    pub max_headers: usize,
}

/// How the own server left a connection.
pub enum Ended<I> {
    /// Closed (by either side, an error, or a drain).
    Closed,
    /// Not the plain case: hyper serves the rest, starting with these bytes.
    HandOff(Prefixed<I>),
}

/// Serves plain requests on `io` until it closes or a head needs hyper.
pub async fn serve<I>(
    mut io: I,
    conn: Arc<ConnInfo>,
    shared: Arc<Shared>,
    settings: Settings,
    shutdown: watch::Receiver<bool>,
) -> Ended<I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(READ_BUF);
    let mut out = Vec::with_capacity(1024);
    let mut names = NameMemo::default();
    // One waiter for a drain, kept for the connection's life: a fresh one
    // per read joined the watch's waiter list every time (~380 instructions
    // per request, callgrind). Fused: it is not polled once it has ended.
    let mut drain_watch = shutdown.clone();
    let mut drain = std::pin::pin!(drain_watch.wait_for(|&s| s).fuse());
    loop {
        let next = next_request(&mut io, &mut buf, &mut names, settings, drain.as_mut()).await;
        let request = match next {
            Next::Request(r) => r,
            Next::HandOff => return Ended::HandOff(Prefixed::new(buf.freeze(), io)),
            Next::Closed => return Ended::Closed,
        };
        let OwnRequest { request, close } = request;
        let method = request.method().clone();
        let Ok(response) = proxy::handle(request, conn.clone(), shared.snapshot.load_full()).await;
        let (parts, mut body) = response.into_parts();
        // A drain that began meanwhile makes this the last exchange.
        let close = close || *shutdown.borrow();
        out.clear();
        let raw = body.take_raw_head();
        let hint = body.size_hint();
        let plan = encode::write_head(&mut out, &parts, raw.as_ref(), &method, &hint, close);
        drop(raw);
        crate::map_pool::give_back(parts.headers);
        let sent = write_body(&mut io, &mut out, body, plan.framing).await;
        if sent.is_err() || plan.close {
            let _ = io.shutdown().await;
            return Ended::Closed;
        }
    }
}

#[allow(clippy::large_enum_variant)] // see `head::Parsed`
enum Next {
    Request(OwnRequest),
    HandOff,
    Closed,
}

/// Reads until a whole head is buffered, then parses it.
async fn next_request<I>(
    io: &mut I,
    buf: &mut BytesMut,
    names: &mut NameMemo,
    settings: Settings,
    mut drain: Pin<&mut impl Future>,
) -> Next
where
    I: AsyncRead + Unpin,
{
    loop {
        if !buf.is_empty() {
            match head::parse(buf, settings.max_headers, names) {
                Parsed::Serve(r) => return Next::Request(r),
                Parsed::HandOff => return Next::HandOff,
                // hyper refuses an oversized head with its status code.
                Parsed::Partial if buf.len() >= settings.max_head => return Next::HandOff,
                Parsed::Partial => {}
            }
        }
        if buf.capacity() - buf.len() < MIN_READ {
            buf.reserve(READ_BUF);
        }
        let read = tokio::select! {
            biased;
            r = io.read_buf(buf) => r,
            // Between requests a drain closes at once (hyper does the same).
            _ = drain.as_mut(), if buf.is_empty() => return Next::Closed,
        };
        match read {
            Ok(0) | Err(_) => return Next::Closed,
            Ok(_) => {}
        }
    }
}

/// Writes the head in `out` and the body, framed as the head said. The
/// body goes in as few writes as it allows: frames that are ready join the
/// buffer, which is written when the body must be waited for or ends.
async fn write_body<I>(
    io: &mut I,
    out: &mut Vec<u8>,
    mut body: ResponseBody,
    framing: BodyFraming,
) -> io::Result<()>
where
    I: AsyncWrite + Unpin,
{
    if framing == BodyFraming::None {
        // Nothing to send (HEAD, 204, 304, empty): the body is not polled,
        // as hyper does not poll it either.
        drop(body);
        io.write_all(out).await?;
        return io.flush().await;
    }
    let mut sent = 0u64;
    loop {
        let frame = match body.frame().now_or_never() {
            Some(frame) => frame,
            None => {
                io.write_all(out).await?;
                io.flush().await?;
                out.clear();
                body.frame().await
            }
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => return Err(io::Error::other(e)),
            // Trailers are dropped: the own server serves no request that
            // asked for them with `TE: trailers`, and hyper sends none then.
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        sent += data.len() as u64;
        if let BodyFraming::Length(n) = framing {
            if sent > n {
                return Err(io::Error::other("response body longer than its length"));
            }
        }
        append_data(io, out, framing, data).await?;
    }
    if framing == BodyFraming::Chunked {
        write_last_chunk(out, None);
    }
    io.write_all(out).await?;
    io.flush().await?;
    match framing {
        BodyFraming::Length(n) if sent != n => {
            Err(io::Error::other("response body shorter than its length"))
        }
        _ => Ok(()),
    }
}

/// Adds one data frame: copied into `out` when small, else written after
/// what `out` holds.
async fn append_data<I>(
    io: &mut I,
    out: &mut Vec<u8>,
    framing: BodyFraming,
    data: Bytes,
) -> io::Result<()>
where
    I: AsyncWrite + Unpin,
{
    if data.is_empty() {
        return Ok(());
    }
    let chunked = framing == BodyFraming::Chunked;
    if chunked {
        write_chunk_header(out, data.len());
    }
    if data.len() <= COALESCE {
        out.extend_from_slice(&data);
    } else {
        io.write_all(out).await?;
        out.clear();
        io.write_all(&data).await?;
    }
    if chunked {
        out.extend_from_slice(CRLF);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
