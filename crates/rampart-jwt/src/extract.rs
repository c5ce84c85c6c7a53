//! Finding the token in a request: the `Authorization: Bearer` header, a
//! configured header or cookie, and, only where a route allows it, the URL
//! query (RFC 6750 section 2.3 discourages query tokens: they end up in logs).

use http::header::{HeaderName, AUTHORIZATION, COOKIE};
use http::HeaderMap;

use crate::error::JwtError;

/// Where to look for a token. Sources are tried in field order; the first
/// present one is used.
#[derive(Debug, Clone)]
pub struct TokenLocation {
    /// Read `Authorization: Bearer <token>`. Default true.
    pub authorization_bearer: bool,
    /// A header carrying the bare token (no scheme), e.g. `x-access-token`.
    /// Default none.
    pub header: Option<HeaderName>,
    /// A cookie carrying the token. Default none.
    pub cookie: Option<String>,
    /// The query parameter that may carry the token. Default `access_token`
    /// (RFC 6750). Used to detect query tokens even when they are not allowed.
    pub query_param: String,
    /// Accept the token from `query_param`. Default false: a token there is
    /// refused with `credential_in_query`, even if a header token is present.
    pub allow_query: bool,
}

impl Default for TokenLocation {
    fn default() -> Self {
        TokenLocation {
            authorization_bearer: true,
            header: None,
            cookie: None,
            query_param: "access_token".to_string(),
            allow_query: false,
        }
    }
}

/// Returns the token from the request. `query` is the raw URL query string
/// (without `?`). Errors: `credential_in_query` for a refused query token,
/// `jwt_malformed` for ambiguous or unreadable credentials (several
/// `Authorization` headers, non-ASCII), `jwt_missing` when there is none.
pub fn extract_token<'a>(
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    location: &TokenLocation,
) -> Result<&'a str, JwtError> {
    let query_token = query.and_then(|q| query_value(q, &location.query_param));
    if query_token.is_some() && !location.allow_query {
        return Err(JwtError::CredentialInQuery);
    }
    if location.authorization_bearer {
        if let Some(token) = bearer(headers)? {
            return Ok(token);
        }
    }
    if let Some(name) = &location.header {
        if let Some(token) = single_header(headers, name)? {
            return non_empty(token.trim());
        }
    }
    if let Some(cookie) = &location.cookie {
        if let Some(token) = cookie_value(headers, cookie)? {
            return non_empty(token);
        }
    }
    match query_token {
        Some(token) => non_empty(token),
        None => Err(JwtError::Missing),
    }
}

fn non_empty(token: &str) -> Result<&str, JwtError> {
    if token.is_empty() {
        Err(JwtError::Malformed)
    } else {
        Ok(token)
    }
}

/// `Authorization: Bearer <token>`; other schemes (e.g. `Basic`) count as absent.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, JwtError> {
    let Some(value) = single_header(headers, &AUTHORIZATION)? else {
        return Ok(None);
    };
    let value = value.trim();
    let Some((scheme, token)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    non_empty(token.trim_start()).map(Some)
}

/// The only value of a header; several values are ambiguous and refused.
fn single_header<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a str>, JwtError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(JwtError::Malformed);
    }
    first.to_str().map(Some).map_err(|_| JwtError::Malformed)
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, JwtError> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k == name {
                    if found.is_some() {
                        // Two cookies of the same name: refuse rather than guess.
                        return Err(JwtError::Malformed);
                    }
                    found = Some(v.trim_matches('"'));
                }
            }
        }
    }
    Ok(found)
}

/// The raw value of `name` in a query string. JWTs use only URL-safe
/// characters, so no percent-decoding is done; an encoded token fails to parse.
fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn bearer_header() {
        let loc = TokenLocation::default();
        assert_eq!(
            extract_token(&headers(&[("authorization", "Bearer a.b.c")]), None, &loc),
            Ok("a.b.c")
        );
        assert_eq!(
            extract_token(
                &headers(&[("authorization", "bearer   a.b.c ")]),
                None,
                &loc
            ),
            Ok("a.b.c")
        );
        assert_eq!(
            extract_token(&headers(&[("authorization", "Basic eA==")]), None, &loc),
            Err(JwtError::Missing)
        );
        assert_eq!(
            extract_token(&headers(&[("authorization", "Bearer ")]), None, &loc),
            Err(JwtError::Missing)
        );
        assert_eq!(
            extract_token(&headers(&[("authorization", "Bearer  ")]), None, &loc),
            Err(JwtError::Missing)
        );
        assert_eq!(
            extract_token(&HeaderMap::new(), None, &loc),
            Err(JwtError::Missing)
        );
    }

    #[test]
    fn duplicate_authorization_is_refused() {
        let h = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert_eq!(
            extract_token(&h, None, &TokenLocation::default()),
            Err(JwtError::Malformed)
        );
    }

    #[test]
    fn custom_header_and_cookie() {
        let loc = TokenLocation {
            header: Some(HeaderName::from_static("x-access-token")),
            cookie: Some("session".into()),
            ..TokenLocation::default()
        };
        assert_eq!(
            extract_token(&headers(&[("x-access-token", " t1 ")]), None, &loc),
            Ok("t1")
        );
        let h = headers(&[("cookie", "a=1; session=t2; b=3")]);
        assert_eq!(extract_token(&h, None, &loc), Ok("t2"));
        let h = headers(&[("cookie", "session=t2"), ("cookie", "session=t3")]);
        assert_eq!(extract_token(&h, None, &loc), Err(JwtError::Malformed));
        let h = headers(&[("authorization", "Bearer t0"), ("x-access-token", "t1")]);
        assert_eq!(extract_token(&h, None, &loc), Ok("t0"));
    }

    #[test]
    fn query_token_refused_unless_allowed() {
        let h = headers(&[("authorization", "Bearer a.b.c")]);
        let loc = TokenLocation::default();
        assert_eq!(
            extract_token(&h, Some("x=1&access_token=q.r.s"), &loc),
            Err(JwtError::CredentialInQuery)
        );
        assert_eq!(
            extract_token(&h, Some("x=1&access_token_x=1"), &loc),
            Ok("a.b.c")
        );
        let allow = TokenLocation {
            allow_query: true,
            ..TokenLocation::default()
        };
        assert_eq!(
            extract_token(&HeaderMap::new(), Some("access_token=q.r.s"), &allow),
            Ok("q.r.s")
        );
        assert_eq!(
            extract_token(&h, Some("access_token=q.r.s"), &allow),
            Ok("a.b.c")
        );
        assert_eq!(
            extract_token(&HeaderMap::new(), Some("access_token"), &allow),
            Err(JwtError::Malformed)
        );
    }
}
