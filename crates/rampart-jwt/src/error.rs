//! Verification errors, their stable reason codes and the RFC 6750
//! `WWW-Authenticate` challenge.
//!
//! Messages are fixed strings: they never contain the token, claim values or
//! key material, so they are safe for logs, responses and metric labels.

use rampart_core::Reason;

/// Stable reason codes emitted by this crate.
pub mod codes {
    use rampart_core::Reason;
    pub const MISSING: Reason = "jwt_missing";
    pub const MALFORMED: Reason = "jwt_malformed";
    pub const ALG_NOT_ALLOWED: Reason = "jwt_alg_not_allowed";
    pub const UNKNOWN_KID: Reason = "jwt_unknown_kid";
    pub const BAD_SIGNATURE: Reason = "jwt_bad_signature";
    pub const EXPIRED: Reason = "jwt_expired";
    pub const NOT_YET_VALID: Reason = "jwt_not_yet_valid";
    pub const WRONG_ISSUER: Reason = "jwt_wrong_issuer";
    pub const WRONG_AUDIENCE: Reason = "jwt_wrong_audience";
    pub const MISSING_CLAIM: Reason = "jwt_missing_claim";
    pub const JWKS_UNAVAILABLE: Reason = "jwks_unavailable";
    pub const CREDENTIAL_IN_QUERY: Reason = "credential_in_query";
}

/// Why a request's token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// No token was presented where the gateway looks for one.
    #[error("no bearer token presented")]
    Missing,
    /// Not a well-formed JWS compact token (bad base64, bad JSON, bad claim
    /// types, unsupported `crit` header, too long, several tokens).
    #[error("token is malformed")]
    Malformed,
    /// The header `alg` is `none`, unsupported, or not in the issuer's allow list.
    #[error("token algorithm is not allowed")]
    AlgNotAllowed,
    /// No key of the algorithm's family matches the token's `kid`.
    #[error("token signing key is unknown")]
    UnknownKid,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token is not yet valid")]
    NotYetValid,
    /// `iss` is absent or is not a configured issuer.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// No `aud` value matches the configured audiences.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// A required claim (or the consumer-id claim) is absent.
    #[error("token is missing a required claim")]
    MissingClaim,
    /// The issuer's key set could not be loaded and none is cached.
    #[error("signing keys are temporarily unavailable")]
    JwksUnavailable,
    /// A token was sent in the URL query, which the route does not allow.
    #[error("credentials in the URL query are not allowed")]
    CredentialInQuery,
}

impl JwtError {
    /// The stable snake_case reason code, e.g. `jwt_expired`.
    pub fn reason(self) -> Reason {
        match self {
            JwtError::Missing => codes::MISSING,
            JwtError::Malformed => codes::MALFORMED,
            JwtError::AlgNotAllowed => codes::ALG_NOT_ALLOWED,
            JwtError::UnknownKid => codes::UNKNOWN_KID,
            JwtError::BadSignature => codes::BAD_SIGNATURE,
            JwtError::Expired => codes::EXPIRED,
            JwtError::NotYetValid => codes::NOT_YET_VALID,
            JwtError::WrongIssuer => codes::WRONG_ISSUER,
            JwtError::WrongAudience => codes::WRONG_AUDIENCE,
            JwtError::MissingClaim => codes::MISSING_CLAIM,
            JwtError::JwksUnavailable => codes::JWKS_UNAVAILABLE,
            JwtError::CredentialInQuery => codes::CREDENTIAL_IN_QUERY,
        }
    }

    /// The HTTP status the gateway should answer with: 400 for a request the
    /// client must change (RFC 6750 `invalid_request`), 503 when keys are
    /// unavailable (the client is not at fault), 401 otherwise.
    pub fn http_status(self) -> u16 {
        match self {
            JwtError::CredentialInQuery => 400,
            JwtError::JwksUnavailable => 503,
            _ => 401,
        }
    }

    /// The `WWW-Authenticate` header value for this error (RFC 6750 section 3).
    /// `realm` is optional and must be a trusted, configured string.
    pub fn www_authenticate(self, realm: Option<&str>) -> String {
        let error = match self {
            // RFC 6750 3.1: no error attribute when no credentials were sent.
            JwtError::Missing => None,
            JwtError::CredentialInQuery => Some("invalid_request"),
            _ => Some("invalid_token"),
        };
        www_authenticate(realm, error.map(|e| (e, self.to_string())))
    }
}

/// Builds a `Bearer` challenge: `Bearer realm="r", error="e", error_description="d"`.
/// Quotes and backslashes in values are escaped and control characters dropped,
/// so the result is always a valid header value.
pub fn www_authenticate(realm: Option<&str>, error: Option<(&str, String)>) -> String {
    let mut out = String::from("Bearer");
    let mut sep = " ";
    if let Some(realm) = realm {
        push_param(&mut out, sep, "realm", realm);
        sep = ", ";
    }
    if let Some((code, description)) = error {
        push_param(&mut out, sep, "error", code);
        push_param(&mut out, ", ", "error_description", &description);
    }
    out
}

fn push_param(out: &mut String, sep: &str, name: &str, value: &str) {
    out.push_str(sep);
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            // RFC 6750 limits values to printable ASCII.
            ' '..='~' => out.push(c),
            _ => {}
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_for_invalid_token() {
        assert_eq!(
            JwtError::Expired.www_authenticate(Some("api")),
            r#"Bearer realm="api", error="invalid_token", error_description="token has expired""#
        );
    }

    #[test]
    fn challenge_without_credentials_has_no_error() {
        assert_eq!(JwtError::Missing.www_authenticate(None), "Bearer");
        assert_eq!(
            JwtError::Missing.www_authenticate(Some("api")),
            r#"Bearer realm="api""#
        );
    }

    #[test]
    fn query_credentials_are_an_invalid_request() {
        let v = JwtError::CredentialInQuery.www_authenticate(None);
        assert!(v.starts_with(r#"Bearer error="invalid_request""#), "{v}");
        assert_eq!(JwtError::CredentialInQuery.http_status(), 400);
        assert_eq!(JwtError::JwksUnavailable.http_status(), 503);
        assert_eq!(JwtError::BadSignature.http_status(), 401);
    }

    #[test]
    fn values_are_escaped_and_printable() {
        let v = www_authenticate(Some("a\"b\\c\r\nd\u{e9}"), None);
        assert_eq!(v, r#"Bearer realm="a\"b\\cd""#);
        assert!(http::HeaderValue::from_str(&v).is_ok());
    }

    #[test]
    fn reason_codes_are_stable() {
        assert_eq!(JwtError::UnknownKid.reason(), "jwt_unknown_kid");
        assert_eq!(JwtError::JwksUnavailable.reason(), "jwks_unavailable");
        assert_eq!(JwtError::CredentialInQuery.reason(), "credential_in_query");
    }
}
