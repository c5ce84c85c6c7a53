//! Response hold: read the start of an upstream response before the client
//! sees anything, so filters can rewrite it (masking) or refuse it (leak
//! blocking, response rules) with a clean error instead of a cut stream.
//!
//! The hold is bounded by the largest `hold_response` of the route's filters.
//! A body that fits is sent as one piece with a corrected `Content-Length`;
//! a longer one is sent as the inspected prefix followed by the rest of the
//! stream, whose chunks the filters then see one by one.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use rampart_core::reason::codes;
use rampart_core::{Denial, RequestCtx};

use crate::snapshot::RouteRuntime;
use crate::upstream::UpstreamBody;

/// What holding the response produced.
pub enum Held {
    /// The whole body was read and approved (possibly rewritten).
    Complete {
        body: Bytes,
        trailers: Option<HeaderMap>,
    },
    /// The first `prefix` bytes were approved; `rest` still streams.
    Partial { prefix: Bytes, rest: UpstreamBody },
    /// A filter refused the response, or the upstream failed mid-body.
    Refused(Denial),
}

/// Reads up to `limit` body bytes (within `timeout`), then runs the route's
/// response-body filters on them once.
pub async fn hold(
    ctx: &mut RequestCtx,
    route: &RouteRuntime,
    mut body: UpstreamBody,
    limit: u64,
    timeout: Duration,
) -> Held {
    let mut buf = BytesMut::new();
    let mut trailers = None;
    let mut complete = false;
    let read = async {
        while (buf.len() as u64) < limit {
            match body.frame().await {
                None => {
                    complete = true;
                    break;
                }
                Some(Err(_)) => return Err(()),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => buf.extend_from_slice(&data),
                    Err(frame) => {
                        trailers = frame.into_trailers().ok();
                        complete = true;
                        break;
                    }
                },
            }
        }
        Ok(())
    };
    let read_ok = matches!(tokio::time::timeout(timeout, read).await, Ok(Ok(())));
    if !read_ok {
        return Held::Refused(Denial::new(
            StatusCode::BAD_GATEWAY,
            codes::UPSTREAM_ERROR,
            "the upstream server failed to send its response",
        ));
    }
    complete = complete || body.is_end_stream();
    let mut chunk = buf.freeze();
    for f in route.filters.iter().filter(|f| f.body_interest().response) {
        let decision = f.response_body(ctx, &mut chunk, complete);
        if let Some(d) = ctx.apply(f.name(), f.mode(), decision) {
            return Held::Refused(d);
        }
    }
    if complete {
        Held::Complete {
            body: chunk,
            trailers,
        }
    } else {
        Held::Partial {
            prefix: chunk,
            rest: body,
        }
    }
}

/// After a complete hold the body length is known: say so exactly, since
/// filters may have changed it.
pub fn fix_length(headers: &mut HeaderMap, len: usize) {
    headers.remove(TRANSFER_ENCODING);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
}

/// Whether a response of this status to this method has a body to hold.
pub fn may_have_body(method: &http::Method, status: StatusCode) -> bool {
    !(method == http::Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}
