//! API discovery's view of one exchange: what the request looked like
//! (taken before the head is rewritten for the upstream) and how it was
//! answered. Only routes with `discovery = true` pay for it.

use rampart_core::RequestCtx;
use rampart_openapi::{Discovery, Exchange};

/// The request side, kept until the response head is known.
pub struct Seen {
    method: http::Method,
    path: String,
    query: Option<String>,
    content_type: Option<String>,
}

impl Seen {
    pub fn of(head: &http::request::Parts) -> Seen {
        Seen {
            method: head.method.clone(),
            path: head.uri.path().to_string(),
            query: head.uri.query().map(str::to_string),
            content_type: content_type(&head.headers),
        }
    }

    /// Records the exchange once the response head is known.
    pub fn record(self, discovery: &Discovery, ctx: &RequestCtx, response: &http::response::Parts) {
        let response_type = content_type(&response.headers);
        discovery.record(&Exchange {
            method: self.method.as_str(),
            path: &self.path,
            query: self.query.as_deref(),
            request_content_type: self.content_type.as_deref(),
            status: response.status.as_u16(),
            response_content_type: response_type.as_deref(),
            authenticated: ctx.identity.is_some(),
            request_body: None,
            response_body: None,
        });
    }
}

fn content_type(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
