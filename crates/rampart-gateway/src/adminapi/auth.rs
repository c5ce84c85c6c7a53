//! Authentication for the admin API: bearer admin tokens, dashboard
//! sessions with CSRF protection, and the login/logout endpoints.
//!
//! A bearer token is checked with `AdminService::verify_token`; GET needs
//! scope `read` (which `write` implies), everything else `write`. A session
//! comes from `POST /api/login` as the HttpOnly, SameSite=Strict cookie
//! [`SESSION_COOKIE`]; mutations made with it must echo the session's CSRF
//! token in [`CSRF_HEADER`]. The authenticated [`Principal`] is put in the
//! request extensions for handlers to audit with.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rampart_store::{Actor, LoginError, TokenError, TokenScope, TokenVerifyError};
use serde::Deserialize;
use serde_json::json;

use super::problem::{ApiError, Body};
use super::Ctx;

/// The dashboard session cookie.
pub const SESSION_COOKIE: &str = "rampart_admin_session";
/// The header carrying the session's CSRF token on mutations.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who is calling, as established by [`require_auth`].
#[derive(Debug, Clone)]
pub struct Principal {
    /// The admin user the token or session belongs to.
    pub username: String,
    /// Set when authenticated by an admin token.
    pub token_id: Option<String>,
    pub ip: Option<IpAddr>,
}

impl Principal {
    /// The audit actor: `token:<id>` for tokens, `user:<name>` for sessions.
    pub fn actor(&self) -> Actor {
        let name = match &self.token_id {
            Some(id) => format!("token:{id}"),
            None => format!("user:{}", self.username),
        };
        Actor::new(name, self.ip)
    }
}

/// The peer address, when the listener was served with connect info.
pub fn client_ip(req_extensions: &axum::http::Extensions) -> Option<IpAddr> {
    req_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Middleware on every protected route.
pub async fn require_auth(State(ctx): State<Ctx>, mut req: Request, next: Next) -> Response {
    // Only Sync parts cross the awaits (the body is not Sync).
    let mutation = !matches!(*req.method(), Method::GET | Method::HEAD);
    let ip = client_ip(req.extensions());
    match authenticate(&ctx, req.headers(), mutation, ip).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

async fn authenticate(
    ctx: &Ctx,
    headers: &HeaderMap,
    mutation: bool,
    ip: Option<IpAddr>,
) -> Result<Principal, ApiError> {
    let admin = ctx
        .admin
        .as_ref()
        .ok_or_else(|| ApiError::not_configured("admin authentication (admin store)"))?;
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = bearer(value)?;
        return token_principal(admin, token, mutation, ip).await;
    }
    let Some(session_id) = cookie(headers, SESSION_COOKIE) else {
        return Err(ApiError::unauthorized(
            "authentication_required",
            "send an admin token as `Authorization: Bearer …` or log in",
        ));
    };
    session_principal(admin, session_id, headers, mutation, ip).await
}

fn bearer(value: &HeaderValue) -> Result<&str, ApiError> {
    let text = value.to_str().unwrap_or("");
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "invalid_authorization",
            "the Authorization header must be `Bearer <admin token>`",
        ));
    }
    Ok(token.trim())
}

async fn token_principal(
    admin: &rampart_store::AdminService,
    token: &str,
    mutation: bool,
    ip: Option<IpAddr>,
) -> Result<Principal, ApiError> {
    let record = match admin.verify_token(token).await {
        Ok(record) => record,
        Err(TokenVerifyError::Refused(why)) => {
            let reason = match why {
                TokenError::Expired => "token_expired",
                TokenError::Revoked => "token_revoked",
                TokenError::Malformed | TokenError::Unknown => "invalid_token",
            };
            return Err(ApiError::unauthorized(reason, why.to_string()));
        }
        Err(TokenVerifyError::Store(e)) => return Err(ApiError::internal("verify token", &e)),
    };
    let needed = if mutation {
        TokenScope::Write
    } else {
        TokenScope::Read
    };
    if !record.allows(needed) {
        return Err(ApiError::forbidden(
            "insufficient_scope",
            "this token may only read; the request needs scope `write`",
        ));
    }
    Ok(Principal {
        username: record.username,
        token_id: Some(record.token_id),
        ip,
    })
}

async fn session_principal(
    admin: &rampart_store::AdminService,
    session_id: &str,
    headers: &HeaderMap,
    mutation: bool,
    ip: Option<IpAddr>,
) -> Result<Principal, ApiError> {
    let session = admin
        .get_session(session_id)
        .await
        .map_err(|e| ApiError::internal("load session", &e))?
        .ok_or_else(|| {
            ApiError::unauthorized("session_expired", "the session is unknown or has expired")
        })?;
    let user_ok = admin
        .get_admin(&session.username)
        .await
        .map_err(|e| ApiError::internal("load admin user", &e))?
        .is_some_and(|u| !u.disabled);
    if !user_ok {
        return Err(ApiError::unauthorized(
            "session_expired",
            "the session's user is disabled or gone",
        ));
    }
    if mutation {
        let presented = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if presented.is_empty() || !session.csrf_matches(presented) {
            return Err(ApiError::forbidden(
                "csrf_token_invalid",
                "changes made with a session need the X-CSRF-Token header from the login response",
            ));
        }
    }
    Ok(Principal {
        username: session.username,
        token_id: None,
        ip,
    })
}

/// The value of cookie `name`, if present.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// `POST /api/login` body. `Debug` is redacted: it holds a password.
#[derive(Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub totp: Option<String>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `POST /api/login`: password (+ TOTP code when enrolled) → session cookie
/// and the CSRF token in the body.
pub async fn login(
    State(ctx): State<Ctx>,
    req_parts: axum::http::Extensions,
    Body(body): Body<LoginRequest>,
) -> Result<Response, ApiError> {
    let admin = ctx
        .admin
        .as_ref()
        .ok_or_else(|| ApiError::not_configured("admin authentication (admin store)"))?;
    let ip = client_ip(&req_parts);
    let user = match admin
        .login(&body.username, &body.password, body.totp.as_deref(), ip)
        .await
    {
        Ok(user) => user,
        Err(LoginError::InvalidCredentials) => {
            // No username: people type passwords into that field. The
            // audit log has the attempt.
            tracing::info!(target: "rampart::admin", ?ip, "admin login failed");
            return Err(ApiError::unauthorized(
                "invalid_credentials",
                "invalid username, password or one-time code",
            ));
        }
        Err(LoginError::Locked { retry_after_secs }) => return Err(locked(retry_after_secs)),
        Err(LoginError::Store(e)) => return Err(ApiError::internal("login", &e)),
    };
    if user.totp_secret.is_none() && user.totp_pending.is_some() {
        // Enrollment was started but never confirmed: refuse rather than let
        // the password alone through.
        return Err(ApiError::forbidden(
            "totp_enrollment_incomplete",
            "confirm TOTP enrollment with `rampart admin confirm-totp` first",
        ));
    }
    let created = admin
        .create_session(&user.username, ctx.session_ttl)
        .await
        .map_err(|e| ApiError::internal("create session", &e))?;
    tracing::info!(target: "rampart::admin", username = %user.username, ?ip, "admin logged in");
    let cookie = session_cookie(
        created.session_id.expose(),
        ctx.session_ttl.as_secs(),
        ctx.secure_cookies,
    );
    let body = json!({
        "username": user.username,
        "csrf_token": created.csrf_token.expose(),
        "expires_at": created.session.expires_at,
    });
    Ok(with_cookie(Json(body).into_response(), cookie))
}

fn locked(retry_after_secs: u64) -> ApiError {
    let secs = retry_after_secs.max(1);
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "login_locked",
        format!("too many failed logins; try again in {secs} s"),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        e = e.with_header(header::RETRY_AFTER, v);
    }
    e
}

fn session_cookie(value: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/api; Max-Age={max_age}{secure}"
    )
}

fn with_cookie(mut response: Response, cookie: String) -> Response {
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `POST /api/logout`: ends the calling session and clears the cookie.
pub async fn logout(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admin = ctx
        .admin
        .as_ref()
        .ok_or_else(|| ApiError::not_configured("admin authentication (admin store)"))?;
    if who.token_id.is_some() {
        return Err(ApiError::bad_request(
            "not_a_session",
            "logout ends a session; revoke a token with POST /api/tokens/{id}/revoke",
        ));
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        admin
            .delete_session(id)
            .await
            .map_err(|e| ApiError::internal("delete session", &e))?;
    }
    super::ops::audit(&ctx, &who, "admin.logout", &who.username, json!(null)).await;
    let cookie = session_cookie("", 0, ctx.secure_cookies);
    Ok(with_cookie(
        Json(json!({"status": "logged_out"})).into_response(),
        cookie,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_cookie_among_others_and_across_headers() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; theme=dark"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("x=2;  rampart_admin_session=abc ; y=3"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
        // A prefix of the name is not the name.
        let mut prefixed = HeaderMap::new();
        prefixed.insert(
            header::COOKIE,
            HeaderValue::from_static("xrampart_admin_session=evil"),
        );
        assert_eq!(cookie(&prefixed, SESSION_COOKIE), None);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        let ok = HeaderValue::from_static("bearer rat_abc");
        assert_eq!(bearer(&ok).unwrap(), "rat_abc");
        for bad in ["Basic dXNlcjpwdw==", "Bearer", "Bearer   ", "rat_abc"] {
            let e = bearer(&HeaderValue::from_static(bad)).unwrap_err();
            assert_eq!(e.reason, "invalid_authorization", "{bad}");
            assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn session_cookie_is_strict_http_only_and_secure_on_request() {
        let plain = session_cookie("v", 60, false);
        assert_eq!(
            plain,
            "rampart_admin_session=v; HttpOnly; SameSite=Strict; Path=/api; Max-Age=60"
        );
        assert!(session_cookie("v", 60, true).ends_with("; Secure"));
    }

    #[test]
    fn login_request_debug_hides_the_password_and_code() {
        let req = LoginRequest {
            username: "alice".into(),
            password: "hunter2hunter2".into(),
            totp: Some("123456".into()),
        };
        let shown = format!("{req:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("hunter2") && !shown.contains("123456"));
    }

    #[test]
    fn actor_names_tokens_and_users_apart() {
        let token = Principal {
            username: "alice".into(),
            token_id: Some("ab12cd34".into()),
            ip: None,
        };
        assert_eq!(token.actor().name, "token:ab12cd34");
        let user = Principal {
            token_id: None,
            ..token
        };
        assert_eq!(user.actor().name, "user:alice");
    }
}
