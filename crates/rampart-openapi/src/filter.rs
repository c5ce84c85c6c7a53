//! `OpenApiFilter`: the document applied to live traffic as a
//! `rampart_core::Filter`.
//!
//! Each policy has its own [`PolicyMode`]. A policy in `Monitor` records a
//! security event through `RequestCtx::apply` with `Mode::Monitor` and lets
//! the exchange go on; in `Enforce` its denial is returned to the gateway.
//! The filter's own `mode()` is therefore always `Enforce`.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use rampart_core::{
    BodyInterest, Decision, Denial, Filter, Mode, RequestCtx, RequestHead, ResponseHead, Verdict,
};

use crate::openapi::OpenApi;
use crate::operation::{essence, Operation, Undeclared};
use crate::violation::{Violation, ViolationKind};

/// Reason codes this filter emits.
pub mod reasons {
    use rampart_core::Reason;
    pub const VALIDATION_FAILED: Reason = "openapi_validation_failed";
    pub const UNKNOWN_ENDPOINT: Reason = "unknown_endpoint";
    pub const METHOD_NOT_ALLOWED: Reason = "method_not_allowed";
    pub const BODY_TOO_LARGE: Reason = "openapi_body_too_large";
    pub const RESPONSE_INVALID: Reason = "openapi_response_invalid";
    /// Monitor-only: undeclared response fields seen (or stripped).
    pub const RESPONSE_UNDECLARED: Reason = "openapi_response_undeclared";
}

/// How one policy acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyMode {
    /// Not checked at all.
    Off,
    /// Checked; a failure is recorded as a monitor-mode security event only.
    Monitor,
    /// Checked; a failure changes the traffic (denial or rewrite).
    #[default]
    Enforce,
}

/// What to do with request properties no schema declares (mass assignment).
/// "Undeclared" is defined in [`crate::undeclared`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UndeclaredPolicy {
    /// Not looked for (schemas with `additionalProperties: false` still refuse them).
    #[default]
    Off,
    /// Recorded as a monitor event; the request goes on unchanged.
    Monitor,
    /// The request is refused (400 `openapi_validation_failed`, kind `undeclared_property`).
    Reject,
    /// Removed before validation. The body sent upstream is only rewritten
    /// if the gateway calls [`OpenApiFilter::rewrite_request_body`].
    Strip,
}

/// Options of [`OpenApiFilter`]. `Default` gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenApiOptions {
    /// Paths the document does not list (404 `unknown_endpoint`) and methods
    /// it does not list for a known path (405 `method_not_allowed`).
    /// Default `Enforce`.
    pub unknown_endpoints: PolicyMode,
    /// Parameters and JSON request bodies against their schemas
    /// (400 `openapi_validation_failed`). Default `Enforce`.
    pub request_validation: PolicyMode,
    /// Undeclared request body properties. Default `Off`.
    pub undeclared_request: UndeclaredPolicy,
    /// JSON response bodies and statuses against the document
    /// (502 `openapi_response_invalid`). Default `Off`.
    pub response_validation: PolicyMode,
    /// Removal of undeclared response fields (excessive data exposure):
    /// `Enforce` rewrites the body, `Monitor` only records. Default `Off`.
    pub strip_response: PolicyMode,
    /// Largest request body validated, in bytes; a larger one is refused
    /// with 413 `openapi_body_too_large` under `request_validation`.
    /// Default 1 MiB.
    pub max_request_body: u64,
    /// Largest response body checked, in bytes; larger ones pass unchecked.
    /// Default 1 MiB.
    pub max_response_body: u64,
}

impl Default for OpenApiOptions {
    fn default() -> Self {
        OpenApiOptions {
            unknown_endpoints: PolicyMode::Enforce,
            request_validation: PolicyMode::Enforce,
            undeclared_request: UndeclaredPolicy::Off,
            response_validation: PolicyMode::Off,
            strip_response: PolicyMode::Off,
            max_request_body: 1 << 20,
            max_response_body: 1 << 20,
        }
    }
}

/// The operation matched for this request, stored in `ctx.extensions` by
/// `request_headers` (the gateway reads rate-limit and auth extensions here).
#[derive(Debug, Clone)]
pub struct MatchedOperation(pub Arc<Operation>);

/// Returns the operation matched for this request, if any.
pub fn matched_operation(ctx: &RequestCtx) -> Option<&Arc<Operation>> {
    ctx.extensions.get::<MatchedOperation>().map(|m| &m.0)
}

#[derive(Clone)]
struct RequestBodyState {
    buf: Vec<u8>,
    content_type: Option<String>,
    done: bool,
}

#[derive(Clone)]
struct ResponseState {
    status: u16,
    content_type: Option<String>,
    /// Set once the response was checked, or found uncheckable (encoded).
    done: bool,
}

/// The OpenAPI positive-security filter.
pub struct OpenApiFilter {
    api: Arc<OpenApi>,
    options: OpenApiOptions,
}

impl OpenApiFilter {
    pub const NAME: &'static str = "openapi";

    pub fn new(api: Arc<OpenApi>, options: OpenApiOptions) -> Self {
        OpenApiFilter { api, options }
    }

    pub fn api(&self) -> &Arc<OpenApi> {
        &self.api
    }

    /// The request body with undeclared properties removed, when the
    /// `Strip` policy applies and something was removed; `None` to send
    /// the body unchanged. For the gateway's request-rewrite hook.
    pub fn rewrite_request_body(
        &self,
        ctx: &RequestCtx,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Option<Bytes> {
        if self.options.undeclared_request != UndeclaredPolicy::Strip {
            return None;
        }
        let op = matched_operation(ctx)?;
        let outcome = op
            .check_request_body(content_type, body, Undeclared::Strip)
            .ok()?;
        let value = outcome.value.filter(|_| outcome.stripped > 0)?;
        serde_json::to_vec(&value).ok().map(Bytes::from)
    }

    /// Applies `mode` to `decision`: returned when enforced, recorded as a
    /// monitor event otherwise.
    fn decide(&self, ctx: &mut RequestCtx, mode: PolicyMode, decision: Decision) -> Decision {
        match mode {
            PolicyMode::Off => Decision::Continue,
            PolicyMode::Enforce => decision,
            PolicyMode::Monitor => {
                ctx.apply(Self::NAME, Mode::Monitor, decision);
                Decision::Continue
            }
        }
    }

    fn on_request_headers(&self, ctx: &mut RequestCtx, head: &RequestHead) -> Decision {
        let matched = match self.api.find(&head.method, head.uri.path()) {
            Ok(m) => m,
            Err(v) => {
                let denial = self.endpoint_denial(&v, head.uri.path());
                return self.decide(ctx, self.options.unknown_endpoints, Decision::Deny(denial));
            }
        };
        let op = matched.operation.clone();
        ctx.extensions.insert(MatchedOperation(op.clone()));
        if self.options.request_validation != PolicyMode::Off {
            if let Err(v) = op.check_params(&matched.path_params, head.uri.query(), &head.headers) {
                return self.decide(ctx, self.options.request_validation, invalid_request(&v));
            }
        }
        if !self.wants_request_body(&op) {
            return Decision::Continue;
        }
        let content_type = head
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if !ctx.has_request_body {
            return self.check_body(ctx, &op, content_type.as_deref(), &[]);
        }
        ctx.extensions.insert(RequestBodyState {
            buf: Vec::new(),
            content_type,
            done: false,
        });
        Decision::Continue
    }

    fn endpoint_denial(&self, v: &Violation, path: &str) -> Denial {
        if v.kind == ViolationKind::MethodNotAllowed {
            let methods = self.api.allowed_methods(path);
            let allow = methods
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let denial = Denial::new(
                StatusCode::METHOD_NOT_ALLOWED,
                reasons::METHOD_NOT_ALLOWED,
                "method not documented for this path",
            );
            return match HeaderValue::from_str(&allow) {
                Ok(value) => denial.with_header(http::header::ALLOW, value),
                Err(_) => denial,
            };
        }
        Denial::new(
            StatusCode::NOT_FOUND,
            reasons::UNKNOWN_ENDPOINT,
            "endpoint not documented",
        )
    }

    fn wants_request_body(&self, op: &Operation) -> bool {
        op.has_request_body()
            && (self.options.request_validation != PolicyMode::Off
                || self.options.undeclared_request != UndeclaredPolicy::Off)
    }

    fn on_request_body(&self, ctx: &mut RequestCtx, chunk: &Bytes, end: bool) -> Decision {
        let Some(state) = ctx.extensions.get_mut::<RequestBodyState>() else {
            return Decision::Continue;
        };
        if state.done {
            return Decision::Continue;
        }
        state.buf.extend_from_slice(chunk);
        if state.buf.len() as u64 > self.options.max_request_body {
            state.done = true;
            state.buf = Vec::new();
            let d = Decision::deny(
                StatusCode::PAYLOAD_TOO_LARGE,
                reasons::BODY_TOO_LARGE,
                "request body too large to validate",
            );
            return self.decide(ctx, self.options.request_validation, d);
        }
        if !end {
            return Decision::Continue;
        }
        state.done = true;
        let buf = std::mem::take(&mut state.buf);
        let content_type = state.content_type.take();
        let Some(op) = matched_operation(ctx).cloned() else {
            return Decision::Continue;
        };
        self.check_body(ctx, &op, content_type.as_deref(), &buf)
    }

    /// Undeclared properties first (under their own policy), then the schema.
    fn check_body(
        &self,
        ctx: &mut RequestCtx,
        op: &Operation,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Decision {
        let undeclared_mode = match self.options.undeclared_request {
            UndeclaredPolicy::Off => None,
            UndeclaredPolicy::Monitor => Some(PolicyMode::Monitor),
            UndeclaredPolicy::Reject => Some(PolicyMode::Enforce),
            UndeclaredPolicy::Strip => None,
        };
        if let Some(mode) = undeclared_mode {
            if let Err(v) = op.check_request_body(content_type, body, Undeclared::Reject) {
                if v.kind == ViolationKind::UndeclaredProperty {
                    let d = self.decide(ctx, mode, invalid_request(&v));
                    if d != Decision::Continue {
                        return d;
                    }
                }
            }
        }
        if self.options.request_validation == PolicyMode::Off {
            return Decision::Continue;
        }
        let mode = if self.options.undeclared_request == UndeclaredPolicy::Strip {
            Undeclared::Strip
        } else {
            Undeclared::Allow
        };
        match op.check_request_body(content_type, body, mode) {
            Ok(_) => Decision::Continue,
            Err(v) => self.decide(ctx, self.options.request_validation, invalid_request(&v)),
        }
    }

    fn response_checks_on(&self) -> bool {
        self.options.response_validation != PolicyMode::Off
            || self.options.strip_response != PolicyMode::Off
    }

    fn on_response_headers(&self, ctx: &mut RequestCtx, head: &ResponseHead) -> Decision {
        if !self.response_checks_on() {
            return Decision::Continue;
        }
        let Some(op) = matched_operation(ctx).cloned() else {
            return Decision::Continue;
        };
        let encoded = head
            .headers
            .get(http::header::CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        let content_type = head
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let status = head.status.as_u16();
        if self.options.response_validation != PolicyMode::Off
            && op.responses.for_status(status).is_none()
        {
            let v = Violation::new(
                ViolationKind::UndocumentedStatus,
                crate::violation::Place::Response,
            )
            .at(&format!("/{status}"));
            ctx.extensions.insert(ResponseState {
                status,
                content_type,
                done: true,
            });
            return self.decide(ctx, self.options.response_validation, invalid_response(&v));
        }
        let has_json = content_type
            .as_deref()
            .map(essence)
            .is_some_and(|e| crate::operation::is_json(&e));
        ctx.extensions.insert(ResponseState {
            status,
            content_type,
            done: encoded || !has_json,
        });
        Decision::Continue
    }

    fn on_response_body(&self, ctx: &mut RequestCtx, chunk: &mut Bytes, end: bool) -> Decision {
        let Some(state) = ctx.extensions.get_mut::<ResponseState>() else {
            return Decision::Continue;
        };
        if state.done {
            return Decision::Continue;
        }
        state.done = true;
        if !end {
            // Larger than the hold: it streams, unchecked.
            return Decision::Continue;
        }
        let (status, content_type) = (state.status, state.content_type.take());
        let Some(op) = matched_operation(ctx).cloned() else {
            return Decision::Continue;
        };
        let strip = self.options.strip_response != PolicyMode::Off;
        let outcome = op.check_response_body(status, content_type.as_deref(), chunk, strip);
        if outcome.stripped > 0 {
            let found = Decision::Risk {
                points: 0,
                reason: reasons::RESPONSE_UNDECLARED,
            };
            if self.options.strip_response == PolicyMode::Enforce {
                if let Some(bytes) = outcome
                    .value
                    .as_ref()
                    .and_then(|v| serde_json::to_vec(v).ok())
                {
                    *chunk = Bytes::from(bytes);
                }
            }
            ctx.apply(Self::NAME, Mode::Monitor, found);
        }
        match outcome.violation {
            Some(v) if self.options.response_validation != PolicyMode::Off => {
                self.decide(ctx, self.options.response_validation, invalid_response(&v))
            }
            _ => Decision::Continue,
        }
    }
}

fn invalid_request(v: &Violation) -> Decision {
    Decision::deny(
        StatusCode::BAD_REQUEST,
        reasons::VALIDATION_FAILED,
        v.to_string(),
    )
}

fn invalid_response(v: &Violation) -> Decision {
    Decision::deny(
        StatusCode::BAD_GATEWAY,
        reasons::RESPONSE_INVALID,
        format!("upstream response does not match the API document ({v})"),
    )
}

impl Filter for OpenApiFilter {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn replace_request_body(
        &self,
        ctx: &RequestCtx,
        head: &RequestHead,
        body: &Bytes,
    ) -> Option<Bytes> {
        let content_type = head
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        self.rewrite_request_body(ctx, content_type, body)
    }

    fn body_interest(&self) -> BodyInterest {
        let request = self.options.request_validation != PolicyMode::Off
            || self.options.undeclared_request != UndeclaredPolicy::Off;
        let response = self.response_checks_on();
        BodyInterest {
            request,
            response,
            hold_request: if request {
                self.options.max_request_body
            } else {
                0
            },
            hold_response: if response {
                self.options.max_response_body
            } else {
                0
            },
        }
    }

    fn request_headers<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        Verdict::Ready(self.on_request_headers(ctx, head))
    }

    fn request_body(&self, ctx: &mut RequestCtx, chunk: &Bytes, end: bool) -> Decision {
        self.on_request_body(ctx, chunk, end)
    }

    fn response_headers(&self, ctx: &mut RequestCtx, head: &mut ResponseHead) -> Decision {
        self.on_response_headers(ctx, head)
    }

    fn response_body(&self, ctx: &mut RequestCtx, chunk: &mut Bytes, end: bool) -> Decision {
        self.on_response_body(ctx, chunk, end)
    }
}
