//! The authentication filter: a route requires a credential — an API key,
//! a JWT or a verified client certificate, as its `methods` allow — and
//! scopes; the verified identity goes into the request context and, as
//! configured headers, to the upstream.
//!
//! Missing or invalid credentials get 401 with `WWW-Authenticate`; valid
//! ones without the required scopes get 403. A credential sent in the URL
//! query is refused (it leaks into logs, proxies and browser history) unless
//! the route allows it. Client-sent copies of the identity headers are always
//! stripped, so the upstream can trust them. An explicit credential (key or
//! token) takes precedence over the connection's client certificate.

mod credential;
mod mtls;

use std::sync::Arc;

use http::{HeaderName, HeaderValue, StatusCode};
use rampart_core::{
    CertName, Decision, Denial, Filter, Identity, IdentityHeaders, Mode, RequestCtx, RequestHead,
    Verdict,
};
use rampart_jwt::{JwtError, Verifier};
use rampart_store::Keyring;

pub use credential::{Locations, Presented};

pub const AUTH_REQUIRED: &str = "auth_required";
pub const CREDENTIAL_IN_QUERY: &str = "credential_in_query";
pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";
pub const JWT_ISSUER_NOT_ALLOWED: &str = "jwt_issuer_not_allowed";

/// JWT verification for a route.
pub struct JwtAuth {
    pub verifier: Arc<Verifier>,
    /// Issuers accepted on this route; empty: all the verifier knows.
    pub issuers: Vec<String>,
}

pub struct AuthOptions {
    pub mode: Mode,
    /// `None` only where no store was opened (`rampart check`): API keys and
    /// certificates are then refused with 503.
    pub keyring: Option<Arc<Keyring>>,
    /// Where credentials are read, and which kinds (keys, JWTs) count.
    pub locations: Locations,
    /// Set when the route accepts JWTs.
    pub jwt: Option<JwtAuth>,
    /// Set when the route accepts client certificates: the certificate
    /// names tried in order as the consumer id.
    pub mtls: Option<Vec<CertName>>,
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

    /// The 401 challenge: `Bearer` when the route takes keys or tokens,
    /// `ClientCertificate` when a certificate is the only way in.
    fn unauthorized(
        &self,
        reason: &'static str,
        detail: &'static str,
        error: Option<&str>,
    ) -> Decision {
        let bearer = self.0.locations.api_keys || self.0.locations.jwt;
        let challenge = match (bearer, error) {
            (false, _) => "ClientCertificate realm=\"rampart\"".to_string(),
            (true, Some(e)) => format!("Bearer realm=\"rampart\", error=\"{e}\""),
            (true, None) => "Bearer realm=\"rampart\"".to_string(),
        };
        let value = HeaderValue::try_from(challenge).unwrap_or(HeaderValue::from_static("Bearer"));
        Decision::Deny(
            Denial::new(StatusCode::UNAUTHORIZED, reason, detail)
                .with_header(http::header::WWW_AUTHENTICATE, value),
        )
    }

    fn store_unavailable() -> Decision {
        Decision::deny(
            StatusCode::SERVICE_UNAVAILABLE,
            "identity_store_unavailable",
            "credentials cannot be checked right now",
        )
    }

    fn verify_key(&self, ctx: &RequestCtx, key: &str) -> Verified {
        let Some(keyring) = &self.0.keyring else {
            return Err(Self::store_unavailable());
        };
        keyring
            .verify(key, ctx.client_ip.to_canonical())
            .map(|v| {
                let (identity, headers) = v.into_identity();
                (identity, Some(headers))
            })
            .map_err(|e| {
                self.unauthorized(
                    e.reason_code(),
                    "the API key was not accepted",
                    Some("invalid_token"),
                )
            })
    }

    async fn verify_jwt(&self, token: &str) -> Result<Identity, Decision> {
        let Some(jwt) = &self.0.jwt else {
            return Err(self.unauthorized(
                AUTH_REQUIRED,
                "this route does not accept tokens",
                None,
            ));
        };
        match jwt.verifier.verify(token).await {
            Ok(v) if jwt.issuers.is_empty() || jwt.issuers.iter().any(|i| **i == *v.issuer) => {
                Ok(v.identity)
            }
            Ok(_) => Err(self.unauthorized(
                JWT_ISSUER_NOT_ALLOWED,
                "tokens from this issuer are not accepted on this route",
                Some("invalid_token"),
            )),
            Err(e) => Err(jwt_refusal(e)),
        }
    }

    /// The identity of the connection's client certificate, if the route
    /// takes certificates and the connection presented a verified one.
    fn certificate_identity(&self, ctx: &RequestCtx) -> Option<Result<Identity, Decision>> {
        let order = self.0.mtls.as_ref()?;
        let cert = ctx.peer_tls.as_ref()?.client_cert.as_ref()?;
        let Some(keyring) = &self.0.keyring else {
            return Some(Err(Self::store_unavailable()));
        };
        Some(
            mtls::identity(keyring, cert, order, ctx.client_ip.to_canonical())
                .map_err(|(reason, detail)| self.unauthorized(reason, detail, None)),
        )
    }

    /// Admits a verified identity (scopes, then the headers) or refuses the
    /// credential. Every way out that does not admit strips the client's
    /// copies of the identity headers: in monitor mode the request still
    /// goes upstream. `headers` are the identity's upstream header values
    /// when the store rendered them already (API keys).
    fn conclude(
        &self,
        ctx: &mut RequestCtx,
        head: &mut RequestHead,
        verified: Verified,
    ) -> Decision {
        let (identity, headers) = match verified {
            Ok(v) => v,
            Err(d) => {
                self.strip_identity_headers(head);
                return d;
            }
        };
        let o = &self.0;
        if let Some(missing) = o.scopes.iter().find(|s| !identity.has_scope(s)) {
            let detail = format!("the credential lacks the scope {missing:?} this route requires");
            ctx.identity = Some(identity);
            self.strip_identity_headers(head);
            let value =
                HeaderValue::from_static("Bearer realm=\"rampart\", error=\"insufficient_scope\"");
            return Decision::Deny(
                Denial::new(StatusCode::FORBIDDEN, INSUFFICIENT_SCOPE, detail)
                    .with_header(http::header::WWW_AUTHENTICATE, value),
            );
        }
        if o.hide_credentials {
            self.hide(head);
        }
        let headers =
            headers.unwrap_or_else(|| IdentityHeaders::of(&identity.consumer_id, &identity.scopes));
        // `insert` replaces every client-sent value of these headers.
        set_or_remove(head, &o.consumer_header, headers.consumer);
        set_or_remove(head, &o.scopes_header, headers.scopes);
        ctx.identity = Some(identity);
        Decision::Continue
    }

    fn strip_identity_headers(&self, head: &mut RequestHead) {
        head.headers.remove(&self.0.consumer_header);
        head.headers.remove(&self.0.scopes_header);
    }

    /// Removes the credentials this route reads from the forwarded request.
    fn hide(&self, head: &mut RequestHead) {
        let l = &self.0.locations;
        head.headers.remove(http::header::AUTHORIZATION);
        if l.api_keys {
            head.headers.remove(&l.key_header);
        }
        if let Some(h) = &l.jwt_header {
            head.headers.remove(h);
        }
        // A JWT cookie stays: removing one cookie means rewriting the
        // Cookie header, and the upstream's own session cookies live there.
    }
}

/// A verified identity with its upstream header values when known, or the
/// refusal.
type Verified = Result<(Identity, Option<IdentityHeaders>), Decision>;

fn set_or_remove(head: &mut RequestHead, name: &HeaderName, value: Option<HeaderValue>) {
    match value {
        Some(v) => {
            head.headers.insert(name.clone(), v);
        }
        None => {
            head.headers.remove(name);
        }
    }
}

/// The refusal of a token: the library's status, reason and challenge.
fn jwt_refusal(e: JwtError) -> Decision {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let detail: &'static str = match e {
        JwtError::JwksUnavailable => "token signing keys are temporarily unavailable",
        _ => "the token was not accepted",
    };
    let mut denial = Denial::new(status, e.reason(), detail);
    if status == StatusCode::UNAUTHORIZED {
        if let Ok(v) = HeaderValue::try_from(e.www_authenticate(Some("rampart"))) {
            denial = denial.with_header(http::header::WWW_AUTHENTICATE, v);
        }
    }
    Decision::Deny(denial)
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
        let presented = match o.locations.find(head) {
            Ok(p) => p,
            Err(d) => return Verdict::Ready(self.conclude(ctx, head, Err(d))),
        };
        let verified = match presented {
            Some(Presented::ApiKey(key)) => self.verify_key(ctx, &key),
            Some(Presented::Jwt(token)) => {
                let token = token.into_owned();
                return Verdict::Pending(Box::pin(async move {
                    let verified = self.verify_jwt(&token).await.map(|id| (id, None));
                    self.conclude(ctx, head, verified)
                }));
            }
            None => match self.certificate_identity(ctx) {
                Some(result) => result.map(|id| (id, None)),
                None if o.optional => {
                    self.strip_identity_headers(head);
                    return Verdict::Ready(Decision::Continue);
                }
                None => Err(self.unauthorized(AUTH_REQUIRED, "this route needs credentials", None)),
            },
        };
        Verdict::Ready(self.conclude(ctx, head, verified))
    }
}
