//! Request bodies that filters inspect: an optional hold phase, then a pump.
//!
//! When a route's filters want request-body chunks, the body runs through
//! their `request_body` hooks on its way to the upstream. A filter may ask
//! for the start of the body to be held back (`BodyInterest::hold_request`,
//! e.g. the WAF, which must judge before the upstream sees anything): up to
//! that many bytes are read and inspected before the upstream is contacted
//! at all. Past the hold — or at once without one — chunks stream through a
//! small bounded channel, so memory stays bounded either way.

use bytes::Bytes;
use http::StatusCode;
use hyper::body::Frame;
use rampart_core::reason::codes;
use rampart_core::{Denial, Filter, RequestCtx};
use tokio::sync::mpsc;

use crate::body::{BodyError, PumpedFrame, TimedIncoming};
use crate::snapshot::RouteRuntime;

/// The inspected start of a body, not yet sent.
pub struct Held {
    frames: Vec<Frame<Bytes>>,
    /// The whole body was read (and its end inspected).
    ended: bool,
    /// A filter replaced the body.
    replaced: bool,
}

fn interested(route: &RouteRuntime) -> impl Iterator<Item = &std::sync::Arc<dyn Filter>> {
    route.filters.iter().filter(|f| f.body_interest().request)
}

/// Runs one chunk (or the end, with an empty chunk) through the hooks.
fn inspect(
    ctx: &mut RequestCtx,
    route: &RouteRuntime,
    data: &Bytes,
    end: bool,
) -> Result<(), Denial> {
    if !end {
        ctx.request_body_bytes += data.len() as u64;
    }
    for f in interested(route) {
        let d = f.request_body(ctx, data, end);
        if let Some(denial) = ctx.apply(f.name(), f.mode(), d) {
            return Err(denial);
        }
    }
    Ok(())
}

fn read_error(e: BodyError) -> Denial {
    match e {
        BodyError::Timeout => Denial::new(
            StatusCode::REQUEST_TIMEOUT,
            codes::BODY_TIMEOUT,
            "request body was not received in time",
        ),
        _ => Denial::new(
            StatusCode::BAD_REQUEST,
            codes::BAD_REQUEST,
            "the request body could not be read",
        ),
    }
}

/// Reads and inspects up to the route's hold before anything is sent.
pub async fn hold(
    ctx: &mut RequestCtx,
    body: &mut TimedIncoming,
    route: &RouteRuntime,
) -> Result<Held, Denial> {
    let mut held = Held {
        frames: Vec::new(),
        ended: false,
        replaced: false,
    };
    let mut bytes = 0u64;
    while route.request_hold > 0 && bytes <= route.request_hold {
        match body.next().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    inspect(ctx, route, data, false)?;
                    bytes += data.len() as u64;
                }
                held.frames.push(frame);
            }
            Some(Err(e)) => return Err(read_error(e)),
            None => {
                inspect(ctx, route, &Bytes::new(), true)?;
                held.ended = true;
                break;
            }
        }
    }
    Ok(held)
}

/// Lets filters replace a completely held body; returns the new length
/// when one did.
pub fn replace(
    ctx: &RequestCtx,
    head: &http::request::Parts,
    route: &RouteRuntime,
    held: &mut Held,
) -> Option<usize> {
    if !held.ended {
        return None;
    }
    let mut whole: Option<Bytes> = None;
    for f in interested(route) {
        let current = whole.get_or_insert_with(|| concat(&held.frames));
        if let Some(new) = f.replace_request_body(ctx, head, current) {
            *current = new;
            held.frames = vec![Frame::data(current.clone())];
            held.replaced = true;
        }
    }
    held.replaced.then(|| whole.map_or(0, |b| b.len()))
}

fn concat(frames: &[Frame<Bytes>]) -> Bytes {
    let mut out = bytes::BytesMut::new();
    for f in frames {
        if let Some(d) = f.data_ref() {
            out.extend_from_slice(d);
        }
    }
    out.freeze()
}

/// Sends the held frames, then streams the rest through the hooks. On a
/// denial the upstream gets an error instead of the rest, so it never sees a
/// complete body.
pub async fn stream(
    ctx: &mut RequestCtx,
    held: Held,
    mut body: TimedIncoming,
    route: &RouteRuntime,
    tx: mpsc::Sender<PumpedFrame>,
) -> Result<(), Denial> {
    for frame in held.frames {
        if tx.send(Ok(frame)).await.is_err() {
            return Ok(()); // the upstream stopped reading
        }
    }
    if held.ended {
        return Ok(());
    }
    loop {
        match body.next().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    if let Err(d) = inspect(ctx, route, data, false) {
                        let _ = tx.send(Err(BodyError::Denied)).await;
                        return Err(d);
                    }
                }
                if tx.send(Ok(frame)).await.is_err() {
                    return Ok(());
                }
            }
            Some(Err(e)) => {
                let timeout = matches!(e, BodyError::Timeout);
                let _ = tx
                    .send(Err(if timeout {
                        BodyError::Timeout
                    } else {
                        BodyError::Denied
                    }))
                    .await;
                return Err(read_error(e));
            }
            None => {
                if let Err(d) = inspect(ctx, route, &Bytes::new(), true) {
                    let _ = tx.send(Err(BodyError::Denied)).await;
                    return Err(d);
                }
                return Ok(());
            }
        }
    }
}
