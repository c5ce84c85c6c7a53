//! What a filter hook decides, and how strongly it is enforced.

use std::borrow::Cow;

use http::StatusCode;

use crate::reason::Reason;

/// Whether a filter's decisions change traffic (`Enforce`) or are only
/// recorded as what would have happened (`Monitor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Enforce,
    Monitor,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }
}

/// A refusal: status, stable reason code, a public detail message, and
/// optional extra response headers (e.g. `Retry-After`).
///
/// The detail is shown to the client, so it must never contain secrets or
/// internal error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub status: StatusCode,
    pub reason: Reason,
    pub detail: Cow<'static, str>,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Rules behind the refusal (WAF rule ids), for the security event only.
    pub rule_ids: Vec<String>,
    /// A page of the filter's own (content type, bytes) sent instead of the
    /// standard problem document: challenge pages, or the answer to a
    /// challenge's verify endpoint. Ordinary refusals leave it empty.
    pub body: Option<Box<(http::HeaderValue, bytes::Bytes)>>,
}

impl Denial {
    pub fn new(status: StatusCode, reason: Reason, detail: impl Into<Cow<'static, str>>) -> Self {
        Denial {
            status,
            reason,
            detail: detail.into(),
            headers: Vec::new(),
            rule_ids: Vec::new(),
            body: None,
        }
    }

    /// Replaces the standard problem document with the filter's own page.
    pub fn with_body(mut self, content_type: http::HeaderValue, body: bytes::Bytes) -> Self {
        self.body = Some(Box::new((content_type, body)));
        self
    }

    pub fn with_rule_ids(mut self, ids: Vec<String>) -> Self {
        self.rule_ids = ids;
        self
    }

    pub fn with_header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// A challenge the client must pass before it may continue (bot defence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    ProofOfWork,
    Captcha,
}

/// The outcome of one filter hook.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Decision {
    /// Nothing to say: go on with the next filter.
    #[default]
    Continue,
    /// Stop the request (or response) with this denial.
    Deny(Denial),
    /// Ask the client to pass a challenge first.
    Challenge { kind: Challenge, reason: Reason },
    /// Let it pass, but add risk points with a reason.
    Risk { points: u32, reason: Reason },
}

impl Decision {
    pub fn deny(status: StatusCode, reason: Reason, detail: impl Into<Cow<'static, str>>) -> Self {
        Decision::Deny(Denial::new(status, reason, detail))
    }

    /// The reason code this decision carries, if any.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Decision::Continue => None,
            Decision::Deny(d) => Some(d.reason),
            Decision::Challenge { reason, .. } | Decision::Risk { reason, .. } => Some(reason),
        }
    }

    /// A short name for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Continue => "continue",
            Decision::Deny(_) => "deny",
            Decision::Challenge { .. } => "challenge",
            Decision::Risk { .. } => "risk",
        }
    }
}
