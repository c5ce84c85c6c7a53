//! Finding the credential a request presents, and telling API keys from
//! JWTs: `Authorization: Bearer` carries either (an API key starts with the
//! `rk_` prefix, a JWT has three dot-separated parts); the key header only
//! keys; the JWT header or cookie only tokens; the URL query either, and
//! only where the route allows it.

use std::borrow::Cow;

use http::{HeaderName, StatusCode};
use rampart_core::{Decision, RequestHead};

use super::CREDENTIAL_IN_QUERY;

/// A credential as presented, not yet verified.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented<'h> {
    ApiKey(Cow<'h, str>),
    Jwt(Cow<'h, str>),
}

/// Where a route looks for credentials.
pub struct Locations {
    pub api_keys: bool,
    pub jwt: bool,
    /// Header carrying an API key besides `Authorization: Bearer`.
    pub key_header: HeaderName,
    /// Header / cookie carrying a bare JWT.
    pub jwt_header: Option<HeaderName>,
    pub jwt_cookie: Option<String>,
    /// Query parameter names that carry credentials.
    pub query_params: Vec<String>,
    pub allow_query: bool,
}

impl Locations {
    /// The request's credential, if any. A credential in the query is
    /// refused (400 `credential_in_query`) unless allowed, even when a
    /// header credential is present too: the URL has leaked it already.
    pub fn find<'h>(&self, head: &'h RequestHead) -> Result<Option<Presented<'h>>, Decision> {
        let query = self.query_credential(head)?;
        if let Some(token) = bearer(head) {
            return Ok(self.classify(token.into()));
        }
        if self.api_keys {
            if let Some(v) = header_str(head, &self.key_header) {
                return Ok(Some(Presented::ApiKey(v.into())));
            }
        }
        if self.jwt {
            if let Some(v) = self.jwt_header.as_ref().and_then(|h| header_str(head, h)) {
                return Ok(Some(Presented::Jwt(v.into())));
            }
            if let Some(v) = self.jwt_cookie.as_deref().and_then(|c| cookie(head, c)) {
                return Ok(Some(Presented::Jwt(v.into())));
            }
        }
        Ok(query.and_then(|q| self.classify(q.into())))
    }

    /// An allowed query credential, or the refusal of a forbidden one.
    fn query_credential(&self, head: &RequestHead) -> Result<Option<String>, Decision> {
        let Some(query) = head.uri.query() else {
            return Ok(None);
        };
        if !self.may_name_a_credential(query.as_bytes()) {
            return Ok(None);
        }
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if self.query_params.iter().any(|p| p.eq_ignore_ascii_case(&k)) {
                if !self.allow_query {
                    return Err(Decision::deny(
                        StatusCode::BAD_REQUEST,
                        CREDENTIAL_IN_QUERY,
                        "credentials in the URL leak into logs and browser history; send them in the Authorization header",
                    ));
                }
                return Ok(Some(v.into_owned()));
            }
        }
        Ok(None)
    }

    /// A cheap pre-check so most queries are not decoded on every request:
    /// false only when no parameter name is one of `query_params` (any
    /// case) and no name is percent- or plus-encoded. Names end at `=` and
    /// parameters at `&`, as `form_urlencoded` splits them.
    fn may_name_a_credential(&self, query: &[u8]) -> bool {
        query.split(|b| *b == b'&').any(|pair| {
            let name = pair.split(|b| *b == b'=').next().unwrap_or(pair);
            name.iter().any(|b| matches!(b, b'%' | b'+'))
                || self
                    .query_params
                    .iter()
                    .any(|p| p.as_bytes().eq_ignore_ascii_case(name))
        })
    }

    /// API key or JWT, by shape, among the methods the route accepts.
    fn classify<'h>(&self, token: Cow<'h, str>) -> Option<Presented<'h>> {
        let looks_like_jwt = |t: &str| !t.starts_with("rk_") && t.split('.').count() == 3;
        match (self.api_keys, self.jwt) {
            (true, true) if looks_like_jwt(&token) => Some(Presented::Jwt(token)),
            (true, _) => Some(Presented::ApiKey(token)),
            (false, true) => Some(Presented::Jwt(token)),
            (false, false) => None,
        }
    }
}

fn header_str<'h>(head: &'h RequestHead, name: &HeaderName) -> Option<&'h str> {
    let v = head.headers.get(name)?.to_str().ok()?.trim();
    (!v.is_empty()).then_some(v)
}

fn bearer(head: &RequestHead) -> Option<&str> {
    let v = header_str(head, &http::header::AUTHORIZATION)?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn cookie<'h>(head: &'h RequestHead, name: &str) -> Option<&'h str> {
    head.headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(uri: &str, headers: &[(&str, &str)]) -> RequestHead {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn both() -> Locations {
        Locations {
            api_keys: true,
            jwt: true,
            key_header: HeaderName::from_static("x-api-key"),
            jwt_header: Some(HeaderName::from_static("x-access-token")),
            jwt_cookie: Some("session_jwt".into()),
            query_params: vec!["api_key".into(), "access_token".into()],
            allow_query: false,
        }
    }

    #[test]
    fn bearer_tokens_are_told_apart_by_shape() {
        let l = both();
        let key = head("/", &[("authorization", "Bearer rk_live_abc")]);
        assert_eq!(
            l.find(&key).unwrap(),
            Some(Presented::ApiKey("rk_live_abc".into()))
        );
        let jwt = head("/", &[("authorization", "bearer aaa.bbb.ccc")]);
        assert_eq!(
            l.find(&jwt).unwrap(),
            Some(Presented::Jwt("aaa.bbb.ccc".into()))
        );
    }

    #[test]
    fn a_route_with_one_method_reads_bearer_as_that_method() {
        let mut l = both();
        l.api_keys = false;
        let h = head("/", &[("authorization", "Bearer rk_live_abc")]);
        assert_eq!(
            l.find(&h).unwrap(),
            Some(Presented::Jwt("rk_live_abc".into()))
        );
        l.jwt = false;
        assert_eq!(l.find(&h).unwrap(), None);
    }

    #[test]
    fn jwt_header_and_cookie() {
        let l = both();
        let h = head("/", &[("x-access-token", "a.b.c")]);
        assert_eq!(l.find(&h).unwrap(), Some(Presented::Jwt("a.b.c".into())));
        let c = head("/", &[("cookie", "theme=dark; session_jwt=x.y.z")]);
        assert_eq!(l.find(&c).unwrap(), Some(Presented::Jwt("x.y.z".into())));
    }

    #[test]
    fn query_credentials_are_refused_unless_allowed() {
        let mut l = both();
        let h = head(
            "/?access_token=a.b.c",
            &[("authorization", "Bearer rk_live_abc")],
        );
        assert!(matches!(l.find(&h), Err(Decision::Deny(_))));
        l.allow_query = true;
        let q = head("/?access_token=a.b.c", &[]);
        assert_eq!(l.find(&q).unwrap(), Some(Presented::Jwt("a.b.c".into())));
    }

    #[test]
    fn encoded_or_differently_cased_names_are_still_found() {
        let l = both();
        for uri in [
            "/?a=1&API_KEY=k",
            "/?a=1&api%5Fkey=k",
            "/?x=1&Access_Token=a.b.c",
        ] {
            assert!(
                matches!(l.find(&head(uri, &[])), Err(Decision::Deny(_))),
                "{uri}"
            );
        }
        assert_eq!(l.find(&head("/?a=1&b=2&c=3", &[])).unwrap(), None);
    }

    #[test]
    fn the_query_pre_check_reads_parameter_names_only() {
        let l = both();
        // Names in values, names inside longer names, encoded values: no
        // credential can be there, so the query is not decoded.
        assert!(!l.may_name_a_credential(b"q=api_key&v=a%20b+c"));
        assert!(!l.may_name_a_credential(b"my_api_key=1&access_tokens=2"));
        assert!(l.may_name_a_credential(b"a=1&API_KEY"));
        assert!(l.may_name_a_credential(b"a=1&api%5Fkey=k"));
        assert!(l.may_name_a_credential(b"access+token=1"));
    }

    #[test]
    fn other_schemes_are_not_credentials() {
        let l = both();
        let h = head("/", &[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(l.find(&h).unwrap(), None);
    }
}
