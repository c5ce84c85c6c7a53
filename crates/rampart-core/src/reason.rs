//! Stable reason codes.
//!
//! Every denial carries a machine-readable reason code that clients, logs and
//! metrics share. Codes are `&'static str` so that they are free to copy and
//! can be used as metric labels without risk of leaking request data.

/// A stable, documented reason code such as `ip_denied` or `body_too_large`.
pub type Reason = &'static str;

/// Reason codes emitted by the gateway itself (filters define their own).
pub mod codes {
    use super::Reason;
    pub const NO_ROUTE: Reason = "no_route";
    pub const METHOD_NOT_ALLOWED: Reason = "method_not_allowed";
    pub const AMBIGUOUS_LENGTH: Reason = "ambiguous_content_length";
    pub const DUPLICATE_LENGTH: Reason = "duplicate_content_length";
    pub const INVALID_LENGTH: Reason = "invalid_content_length";
    pub const BAD_TRANSFER_ENCODING: Reason = "bad_transfer_encoding";
    pub const URI_TOO_LONG: Reason = "uri_too_long";
    pub const HEADERS_TOO_LARGE: Reason = "headers_too_large";
    pub const TOO_MANY_HEADERS: Reason = "too_many_headers";
    pub const BODY_TOO_LARGE: Reason = "body_too_large";
    pub const BODY_TIMEOUT: Reason = "body_timeout";
    pub const BAD_REQUEST: Reason = "bad_request";
    pub const MISSING_HOST: Reason = "missing_host";
    pub const INVALID_HOST: Reason = "invalid_host";
    pub const INVALID_TARGET: Reason = "invalid_request_target";
    pub const UPSTREAM_UNAVAILABLE: Reason = "upstream_unavailable";
    pub const UPSTREAM_TIMEOUT: Reason = "upstream_timeout";
    pub const UPSTREAM_ERROR: Reason = "upstream_error";
    pub const IP_DENIED: Reason = "ip_denied";
    pub const IP_NOT_ALLOWED: Reason = "ip_not_allowed";
    pub const OVERLOADED: Reason = "overloaded";
    pub const ROUTE_OVERLOADED: Reason = "route_overloaded";
    pub const LOAD_SHED: Reason = "load_shed";
}
