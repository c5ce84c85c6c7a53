//! The authentication filter: a route requires a credential (an API key
//! today) and scopes; the verified identity goes into the request context
//! and, as configured headers, to the upstream.
//!
//! Missing or invalid credentials get 401 with `WWW-Authenticate`; valid
//! ones without the required scopes get 403. A key sent in the URL query is
//! refused (it leaks into logs, proxies and browser history) unless the
//! route allows it. Client-sent copies of the identity headers are always
//! stripped, so the upstream can trust them.

use std::sync::Arc;

use http::{HeaderName, HeaderValue, StatusCode};
use rampart_core::{Decision, Denial, Filter, Mode, RequestCtx, RequestHead, Verdict};
use rampart_store::Keyring;

pub const AUTH_REQUIRED: &str = "auth_required";
pub const CREDENTIAL_IN_QUERY: &str = "credential_in_query";
pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";

pub struct AuthOptions {
    pub mode: Mode,
    /// `None` only where no store was opened (`rampart check`): every
    /// request is then refused with 503.
    pub keyring: Option<Arc<Keyring>>,
    /// Header carrying the key besides `Authorization: Bearer`.
    pub key_header: HeaderName,
    /// Query parameter names refused (or accepted, with `allow_query`).
    pub query_params: Vec<String>,
    pub allow_query: bool,
    /// Every scope listed is required.
    pub scopes: Vec<String>,
    /// Headers set for the upstream (and stripped from the client's request).
    pub consumer_header: HeaderName,
    pub scopes_header: HeaderName,
    /// Remove the credential before forwarding: the upstream learns who the
    /// client is from the consumer headers, never from the key itself.
    pub hide_credentials: bool,
    /// Without a credential, continue anonymously instead of refusing.
    pub optional: bool,
}

pub struct AuthFilter(AuthOptions);

impl AuthFilter {
    pub fn new(options: AuthOptions) -> Self {
        AuthFilter(options)
    }

    fn unauthorized(reason: &'static str, detail: &'static str, error: Option<&str>) -> Decision {
        let challenge = match error {
            Some(e) => format!("Bearer realm=\"rampart\", error=\"{e}\""),
            None => "Bearer realm=\"rampart\"".to_string(),
        };
        let value = HeaderValue::try_from(challenge).unwrap_or(HeaderValue::from_static("Bearer"));
        Decision::Deny(
            Denial::new(StatusCode::UNAUTHORIZED, reason, detail)
                .with_header(http::header::WWW_AUTHENTICATE, value),
        )
    }

    /// The key as presented: bearer token, key header, or (when allowed) query.
    fn presented<'h>(
        &self,
        head: &'h RequestHead,
    ) -> Result<Option<std::borrow::Cow<'h, str>>, Decision> {
        let o = &self.0;
        if let Some(v) = head
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            if let Some(token) = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
            {
                return Ok(Some(token.trim().into()));
            }
        }
        if let Some(v) = head
            .headers
            .get(&o.key_header)
            .and_then(|v| v.to_str().ok())
        {
            return Ok(Some(v.trim().into()));
        }
        let Some(query) = head.uri.query() else {
            return Ok(None);
        };
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if o.query_params.iter().any(|p| p.eq_ignore_ascii_case(&k)) {
                if !o.allow_query {
                    return Err(Decision::deny(
                        StatusCode::BAD_REQUEST,
                        CREDENTIAL_IN_QUERY,
                        "credentials in the URL leak into logs and browser history; send the key in the Authorization header",
                    ));
                }
                return Ok(Some(v.into_owned().into()));
            }
        }
        Ok(None)
    }
}

impl Filter for AuthFilter {
    fn name(&self) -> &'static str {
        "auth"
    }

    fn mode(&self) -> Mode {
        self.0.mode
    }

    fn request_headers<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        let o = &self.0;
        head.headers.remove(&o.consumer_header);
        head.headers.remove(&o.scopes_header);
        let presented = match self.presented(head) {
            Ok(Some(k)) => k.into_owned(),
            Ok(None) if o.optional => return Verdict::Ready(Decision::Continue),
            Ok(None) => {
                return Verdict::Ready(Self::unauthorized(
                    AUTH_REQUIRED,
                    "this route needs an API key",
                    None,
                ))
            }
            Err(d) => return Verdict::Ready(d),
        };
        let Some(keyring) = &o.keyring else {
            return Verdict::Ready(Decision::deny(
                StatusCode::SERVICE_UNAVAILABLE,
                "identity_store_unavailable",
                "credentials cannot be checked right now",
            ));
        };
        let verified = match keyring.verify(&presented, ctx.client_ip.to_canonical()) {
            Ok(v) => v,
            Err(e) => {
                return Verdict::Ready(Self::unauthorized(
                    e.reason_code(),
                    "the API key was not accepted",
                    Some("invalid_token"),
                ))
            }
        };
        let identity = verified.identity();
        if let Some(missing) = o.scopes.iter().find(|s| !identity.has_scope(s)) {
            let detail = format!("the API key lacks the scope {missing:?} this route requires");
            ctx.identity = Some(identity);
            let value =
                HeaderValue::from_static("Bearer realm=\"rampart\", error=\"insufficient_scope\"");
            return Verdict::Ready(Decision::Deny(
                Denial::new(StatusCode::FORBIDDEN, INSUFFICIENT_SCOPE, detail)
                    .with_header(http::header::WWW_AUTHENTICATE, value),
            ));
        }
        if o.hide_credentials {
            head.headers.remove(http::header::AUTHORIZATION);
            head.headers.remove(&o.key_header);
        }
        if let Ok(v) = HeaderValue::try_from(identity.consumer_id.as_ref()) {
            head.headers.insert(o.consumer_header.clone(), v);
        }
        if let Ok(v) = HeaderValue::try_from(identity.scopes.join(" ")) {
            head.headers.insert(o.scopes_header.clone(), v);
        }
        ctx.identity = Some(identity);
        Verdict::Ready(Decision::Continue)
    }
}
