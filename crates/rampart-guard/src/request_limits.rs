//! Per-route request size limits: body, URI, query arguments, headers.
//!
//! Declared body sizes (`Content-Length`) are refused before the upstream is
//! contacted; streamed bodies are counted as they pass and cut off the moment
//! they cross the limit, so nothing is ever buffered to measure it.

use http::StatusCode;
use rampart_config::RequestLimitsPolicy;
use rampart_core::reason::codes;
use rampart_core::{BodyInterest, Decision, Filter, Mode, RequestCtx, RequestHead, Verdict};

pub struct RequestLimitsFilter {
    mode: Mode,
    max_body: Option<u64>,
    max_uri: Option<u64>,
    max_query_args: Option<usize>,
    max_headers: Option<usize>,
    max_header_bytes: Option<u64>,
}

impl RequestLimitsFilter {
    pub fn new(p: &RequestLimitsPolicy) -> Self {
        RequestLimitsFilter {
            mode: crate::mode(p.mode),
            max_body: p.max_body_bytes.map(|b| b.0),
            max_uri: p.max_uri_bytes.map(|b| b.0),
            max_query_args: p.max_query_args,
            max_headers: p.max_headers,
            max_header_bytes: p.max_header_bytes.map(|b| b.0),
        }
    }

    fn too_large_body(&self, limit: u64) -> Decision {
        Decision::deny(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BODY_TOO_LARGE,
            format!("request body is larger than this route's limit of {limit} bytes"),
        )
    }

    fn check_head(&self, head: &RequestHead) -> Decision {
        if let Some(max) = self.max_uri {
            let len = head.uri.path_and_query().map_or(0, |p| p.as_str().len()) as u64;
            if len > max {
                return Decision::deny(
                    StatusCode::URI_TOO_LONG,
                    codes::URI_TOO_LONG,
                    format!("request URI is longer than {max} bytes"),
                );
            }
        }
        if let Some(max) = self.max_query_args {
            let args = head
                .uri
                .query()
                .map_or(0, |q| q.split('&').filter(|a| !a.is_empty()).count());
            if args > max {
                return Decision::deny(
                    StatusCode::BAD_REQUEST,
                    "too_many_query_args",
                    format!("request has more than {max} query arguments"),
                );
            }
        }
        if let Some(max) = self.max_headers {
            if head.headers.len() > max {
                return Decision::deny(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    codes::TOO_MANY_HEADERS,
                    format!("request has more than {max} headers"),
                );
            }
        }
        if let Some(max) = self.max_header_bytes {
            let size: u64 = head
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().len() + v.len()) as u64)
                .sum();
            if size > max {
                return Decision::deny(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    codes::HEADERS_TOO_LARGE,
                    format!("request headers are larger than {max} bytes"),
                );
            }
        }
        if let (Some(max), Some(len)) = (self.max_body, declared_length(head)) {
            if len > max {
                return self.too_large_body(max);
            }
        }
        Decision::Continue
    }
}

fn declared_length(head: &RequestHead) -> Option<u64> {
    head.headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

impl Filter for RequestLimitsFilter {
    fn name(&self) -> &'static str {
        "request_limits"
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn body_interest(&self) -> BodyInterest {
        BodyInterest {
            request: self.max_body.is_some(),
            ..BodyInterest::default()
        }
    }

    fn request_headers<'a>(
        &'a self,
        _ctx: &'a mut RequestCtx,
        head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        Verdict::Ready(self.check_head(head))
    }

    fn request_body(&self, ctx: &mut RequestCtx, _chunk: &bytes::Bytes, _end: bool) -> Decision {
        match self.max_body {
            Some(max) if ctx.request_body_bytes > max => self.too_large_body(max),
            _ => Decision::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx, head, now};
    use rampart_config::{Bytes, FilterMode};

    fn filter() -> RequestLimitsFilter {
        RequestLimitsFilter::new(&RequestLimitsPolicy {
            mode: FilterMode::Enforce,
            max_body_bytes: Some(Bytes(100)),
            max_uri_bytes: Some(Bytes(30)),
            max_query_args: Some(2),
            max_headers: Some(3),
            max_header_bytes: Some(Bytes(64)),
        })
    }

    fn reason(uri: &str, headers: &[(&str, &str)]) -> Option<&'static str> {
        let mut c = ctx("192.0.2.1");
        let mut h = head(uri, headers);
        now(filter().request_headers(&mut c, &mut h)).reason()
    }

    #[test]
    fn head_limits() {
        assert_eq!(reason("/ok?a=1&b=2", &[]), None);
        assert_eq!(
            reason("/a-very-long-path-that-exceeds-thirty", &[]),
            Some(codes::URI_TOO_LONG)
        );
        assert_eq!(reason("/?a=1&b=2&c=3", &[]), Some("too_many_query_args"));
        assert_eq!(
            reason("/", &[("a", "1"), ("b", "1"), ("c", "1"), ("d", "1")]),
            Some(codes::TOO_MANY_HEADERS)
        );
        assert_eq!(
            reason("/", &[("a", &"x".repeat(80))]),
            Some(codes::HEADERS_TOO_LARGE)
        );
    }

    #[test]
    fn declared_body_over_limit_is_refused_up_front() {
        assert_eq!(
            reason("/", &[("content-length", "101")]),
            Some(codes::BODY_TOO_LARGE)
        );
        assert_eq!(reason("/", &[("content-length", "100")]), None);
    }

    #[test]
    fn streamed_body_is_cut_when_it_crosses_the_limit() {
        let f = filter();
        let mut c = ctx("192.0.2.1");
        let chunk = bytes::Bytes::from(vec![b'x'; 60]);
        c.request_body_bytes = 60;
        assert_eq!(f.request_body(&mut c, &chunk, false), Decision::Continue);
        c.request_body_bytes = 120;
        let d = f.request_body(&mut c, &chunk, false);
        assert_eq!(d.reason(), Some(codes::BODY_TOO_LARGE));
        assert!(f.body_interest().request);
    }
}
