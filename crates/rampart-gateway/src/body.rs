//! Body types: what goes to the upstream and what goes back to the client.
//!
//! Bodies stream; nothing here buffers a whole body. The request side enforces
//! the idle read timeout (slowloris on bodies) and, when a filter inspects the
//! body, carries the chunks the pipeline let through. The response side counts
//! bytes, runs response-body filters, and closes the exchange's log when the
//! last byte is sent or the client goes away.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::log::Exchange;
use crate::upstream::fields::RawHead;
use crate::upstream::UpstreamBody;

/// Why a body stream stopped early.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("client body read timed out")]
    Timeout,
    #[error("client body error: {0}")]
    Client(#[from] hyper::Error),
    #[error("body stopped by a security filter")]
    Denied,
    #[error("upstream body error: {0}")]
    Upstream(#[source] crate::upstream::h1pool::ReadError),
}

/// A request body as the client sends it: from hyper's HTTP/1 or HTTP/2
/// connection, or none at all (rampart's own HTTP/1 server, `h1server`,
/// serves only requests without a body).
pub enum ClientBody {
    Hyper(Incoming),
    Empty,
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ClientBody::Hyper(inner) => Pin::new(inner).poll_frame(cx),
            ClientBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Hyper(inner) => inner.is_end_stream(),
            ClientBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Hyper(inner) => inner.size_hint(),
            ClientBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// A client body with an idle timeout between frames.
pub struct TimedIncoming {
    inner: ClientBody,
    idle: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// Bytes received, when someone outside the stream needs to know.
    counter: Option<Arc<AtomicU64>>,
    /// Slowest average rate in bytes per second (0: none), enforced once
    /// `idle` has passed since the body started: a client trickling bytes
    /// just inside the idle timeout is still cut off.
    min_rate: u64,
    started: Instant,
    received: u64,
}

impl TimedIncoming {
    pub fn new(inner: ClientBody, idle: Duration) -> Self {
        TimedIncoming {
            inner,
            idle,
            timer: None,
            armed: false,
            counter: None,
            min_rate: 0,
            started: Instant::now(),
            received: 0,
        }
    }

    /// Refuses bodies slower than `bytes_per_sec` on average (0: no minimum).
    pub fn min_rate(mut self, bytes_per_sec: u64) -> Self {
        self.min_rate = bytes_per_sec;
        self
    }

    fn too_slow(&mut self, n: usize) -> bool {
        self.received += n as u64;
        if self.min_rate == 0 {
            return false;
        }
        let elapsed = self.started.elapsed();
        elapsed > self.idle && (self.received as f64) < self.min_rate as f64 * elapsed.as_secs_f64()
    }

    /// Also counts received bytes into `counter` (for the access log, when the
    /// body streams straight to the upstream).
    pub fn counted(mut self, counter: Arc<AtomicU64>) -> Self {
        self.counter = Some(counter);
        self
    }

    pub fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                self.armed = false;
                let n = match &r {
                    Some(Ok(frame)) => frame.data_ref().map_or(0, |d| d.len()),
                    _ => 0,
                };
                if let Some(c) = &self.counter {
                    c.fetch_add(n as u64, Ordering::Relaxed);
                }
                if self.too_slow(n) {
                    return Poll::Ready(Some(Err(BodyError::Timeout)));
                }
                Poll::Ready(r.map(|r| r.map_err(BodyError::from)))
            }
            Poll::Pending => {
                let deadline = Instant::now() + self.idle;
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !self.armed {
                    timer.as_mut().reset(deadline);
                    self.armed = true;
                }
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(BodyError::Timeout)))
            }
        }
    }

    /// The next frame, as a future (for the pump).
    pub async fn next(&mut self) -> Option<Result<Frame<Bytes>, BodyError>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    pub fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    pub fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The size hint of a body held whole (`None` once it was handed out).
pub fn exact_hint(b: &Option<Bytes>) -> SizeHint {
    SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
}

/// Frames handed over by the request pump (see `proxy::pump_request_body`).
pub type PumpedFrame = Result<Frame<Bytes>, BodyError>;

/// The body sent to an upstream.
pub enum RequestBody {
    Full(Option<Bytes>),
    Stream(TimedIncoming),
    Pumped(mpsc::Receiver<PumpedFrame>, SizeHint),
}

impl RequestBody {
    pub fn full(b: Bytes) -> Self {
        RequestBody::Full((!b.is_empty()).then_some(b))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            RequestBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RequestBody::Stream(s) => s.poll_next(cx),
            RequestBody::Pumped(rx, _) => rx.poll_recv(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Full(b) => b.is_none(),
            RequestBody::Stream(s) => s.is_end_stream(),
            RequestBody::Pumped(..) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Full(b) => exact_hint(b),
            RequestBody::Stream(s) => s.size_hint(),
            RequestBody::Pumped(_, hint) => *hint,
        }
    }
}

enum Source {
    /// Straight from the upstream: every chunk goes through the filters.
    Upstream(UpstreamBody),
    /// Bytes the gateway made or the filters already saw (a denial page, a
    /// held and approved body), with the trailers that followed them.
    Full(Option<Bytes>, Option<HeaderMap>),
    /// An approved held prefix, then the rest of the upstream stream.
    Held(Option<Bytes>, UpstreamBody),
}

/// A response frame, and whether the filters must see it.
type NextFrame = (Result<Frame<Bytes>, BodyError>, bool);

/// The body sent to the client. It owns the exchange so that the log line is
/// written when the body is done, with the real byte count and duration.
pub struct ResponseBody {
    source: Source,
    exchange: Option<Box<Exchange>>,
}

impl ResponseBody {
    pub fn upstream(body: UpstreamBody, exchange: Option<Box<Exchange>>) -> Self {
        ResponseBody {
            source: Source::Upstream(body),
            exchange,
        }
    }

    /// The fields of a response that carries them with its exchange
    /// (`Exchange::raw_head`) rather than in its map: the server writing the
    /// head must write them (or put them into the map first).
    pub fn take_raw_head(&mut self) -> Option<RawHead> {
        self.exchange.as_mut()?.raw_head.take()
    }

    /// A body the filters need not (or already did) see.
    pub fn full(b: Bytes, exchange: Option<Box<Exchange>>) -> Self {
        Self::full_with_trailers(b, None, exchange)
    }

    pub fn full_with_trailers(
        b: Bytes,
        trailers: Option<HeaderMap>,
        exchange: Option<Box<Exchange>>,
    ) -> Self {
        ResponseBody {
            source: Source::Full((!b.is_empty()).then_some(b), trailers),
            exchange,
        }
    }

    /// An approved prefix followed by the remaining upstream stream.
    pub fn held(prefix: Bytes, rest: UpstreamBody, exchange: Option<Box<Exchange>>) -> Self {
        ResponseBody {
            source: Source::Held((!prefix.is_empty()).then_some(prefix), rest),
            exchange,
        }
    }

    fn finish(&mut self, complete: bool) {
        if let Some(ex) = self.exchange.take() {
            ex.finish(complete);
        }
    }

    /// The next frame, and whether the filters must see it.
    fn next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<NextFrame>> {
        let frame = match &mut self.source {
            Source::Full(b, trailers) => b
                .take()
                .map(|b| (Ok(Frame::data(b)), false))
                .or_else(|| trailers.take().map(|t| (Ok(Frame::trailers(t)), false))),
            Source::Held(prefix, rest) => match prefix.take() {
                Some(p) => Some((Ok(Frame::data(p)), false)),
                None => ready!(Pin::new(rest).poll_frame(cx)).map(|r| (r, true)),
            },
            Source::Upstream(inc) => ready!(Pin::new(inc).poll_frame(cx)).map(|r| (r, true)),
        };
        Poll::Ready(frame)
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match ready!(this.next_frame(cx)) {
            Some((Ok(mut frame), filtered)) => {
                if let (Some(data), Some(ex)) = (frame.data_mut(), this.exchange.as_mut()) {
                    let verdict = if filtered {
                        ex.on_response_chunk(data)
                    } else {
                        ex.count_response_bytes(data.len());
                        Ok(())
                    };
                    if verdict.is_err() {
                        this.finish(false);
                        return Poll::Ready(Some(Err(BodyError::Denied)));
                    }
                }
                if this.is_end_stream() {
                    this.finish(true);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some((Err(e), _)) => {
                this.finish(false);
                Poll::Ready(Some(Err(e)))
            }
            None => {
                let streamed = !matches!(this.source, Source::Full(..));
                if let (true, Some(ex)) = (streamed, this.exchange.as_mut()) {
                    if ex.on_response_end().is_err() {
                        this.finish(false);
                        return Poll::Ready(Some(Err(BodyError::Denied)));
                    }
                }
                this.finish(true);
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Full(b, t) => b.is_none() && t.is_none(),
            Source::Held(p, inc) => p.is_none() && inc.is_end_stream(),
            Source::Upstream(inc) => inc.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Full(b, _) => exact_hint(b),
            Source::Held(p, inc) => {
                let extra = p.as_ref().map_or(0, |p| p.len() as u64);
                let h = inc.size_hint();
                let mut out = SizeHint::new();
                out.set_lower(h.lower() + extra);
                if let Some(u) = h.upper() {
                    out.set_upper(u + extra);
                }
                out
            }
            Source::Upstream(inc) => inc.size_hint(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // The client went away, or hyper had nothing to poll (HEAD, 204, 304):
        // log the exchange either way, complete if nothing was left to send.
        let complete = self.is_end_stream();
        self.finish(complete);
    }
}
