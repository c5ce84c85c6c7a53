//! The one trait every protection implements.
//!
//! Hooks are named after the point of the request they see, in the order the
//! gateway calls them; each defaults to "continue", so a filter implements only
//! what it needs. Hooks are synchronous except `request_headers`, which may
//! return a pending future (for checks that need a store round trip); a filter
//! that answers at once pays no allocation.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::ctx::RequestCtx;
use crate::decision::{Decision, Mode};

/// The request line and headers, mutable so filters may add or strip headers
/// before the upstream sees them.
pub type RequestHead = http::request::Parts;
/// The response status and headers, mutable for the same reason.
pub type ResponseHead = http::response::Parts;

/// A hook's answer: ready now, or a future for filters that must wait.
pub enum Verdict<'a> {
    Ready(Decision),
    Pending(Pin<Box<dyn Future<Output = Decision> + Send + 'a>>),
}

impl Verdict<'_> {
    pub async fn resolve(self) -> Decision {
        match self {
            Verdict::Ready(d) => d,
            Verdict::Pending(f) => f.await,
        }
    }
}

/// Which body hooks a filter needs. The gateway only tees a body through the
/// pipeline when some filter asks for it, so body-less filters cost nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BodyInterest {
    pub request: bool,
    pub response: bool,
    /// Request body bytes to hold back from the upstream until this filter
    /// has seen them (0: stream at once). The gateway holds at most the
    /// largest hold of a route's filters, and contacts the upstream only once
    /// the held part is approved, so a denial there means the upstream saw
    /// nothing. Bounded: past the hold the body streams.
    pub hold_request: u64,
    /// Response body bytes to hold back from the client until this filter
    /// has seen them (0: stream at once). The gateway reads up to this many
    /// bytes before it sends the response head, and calls `response_body`
    /// with the held bytes as one chunk (`end` true when that is the whole
    /// body). A filter may then rewrite the chunk (the gateway fixes
    /// `Content-Length`) or deny, and the client gets the denial instead of
    /// the response. Past the hold the body streams chunk by chunk.
    pub hold_response: u64,
}

/// A protection. One instance serves many requests concurrently; per-request
/// state goes in [`RequestCtx`].
pub trait Filter: Send + Sync {
    /// Stable name used in logs, metrics and security events (e.g. `ip_list`).
    fn name(&self) -> &'static str;

    /// Enforce or monitor, as configured for this instance.
    fn mode(&self) -> Mode {
        Mode::Enforce
    }

    /// Which body hooks this filter wants called.
    fn body_interest(&self) -> BodyInterest {
        BodyInterest::default()
    }

    /// Called once the request line and headers are read, before any upstream
    /// is contacted.
    fn request_headers<'a>(
        &'a self,
        _ctx: &'a mut RequestCtx,
        _head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        Verdict::Ready(Decision::Continue)
    }

    /// Called for each request body chunk as it streams to the upstream;
    /// `end` is true for the last call (the chunk may then be empty).
    fn request_body(&self, _ctx: &mut RequestCtx, _chunk: &Bytes, _end: bool) -> Decision {
        Decision::Continue
    }

    /// Called once with the whole request body when the gateway held all of
    /// it (it was within the route's hold) and every hook approved it; a
    /// filter may return a replacement (e.g. undeclared JSON properties
    /// stripped). The gateway then fixes `Content-Length`.
    fn replace_request_body(
        &self,
        _ctx: &RequestCtx,
        _head: &RequestHead,
        _body: &Bytes,
    ) -> Option<Bytes> {
        None
    }

    /// Called with the upstream's response status and headers.
    fn response_headers(&self, _ctx: &mut RequestCtx, _head: &mut ResponseHead) -> Decision {
        Decision::Continue
    }

    /// Called for each response body chunk; a filter may replace the chunk
    /// (masking). A denial here can only cut the response short once headers
    /// were sent, so filters that may block buffer up to their own limit.
    fn response_body(&self, _ctx: &mut RequestCtx, _chunk: &mut Bytes, _end: bool) -> Decision {
        Decision::Continue
    }

    /// Called once when the exchange is over, whatever happened.
    fn log(&self, _ctx: &RequestCtx) {}
}
