//! RFC 9457 problem responses for the admin API, and request extractors
//! whose rejections become problems too.
//!
//! Every error body is `application/problem+json` with `status`, a stable
//! snake_case `reason` and a human `detail`. Details are written here or
//! come from store messages that name record kinds and public ids only;
//! driver errors are logged and answered with a generic detail, and request
//! parse errors never echo the submitted values (they may hold a password).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rampart_store::StoreError;
use serde::de::DeserializeOwned;
use serde_json::json;

/// An error answer of the admin API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub reason: &'static str,
    pub detail: String,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// Extra members of the problem body (e.g. config reload errors).
    pub extra: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, reason: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            reason,
            detail: detail.into(),
            headers: Vec::new(),
            extra: None,
        }
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    pub fn bad_request(reason: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, reason, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 401 with the challenge clients need to retry with a token.
    pub fn unauthorized(reason: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, reason, detail).with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"rampart-admin\""),
        )
    }

    pub fn forbidden(reason: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, reason, detail)
    }

    /// A dependency (key store, admin store, ban tracker) is not configured.
    pub fn not_configured(feature: &str) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "feature_not_configured",
            format!("{feature} is not configured on this gateway"),
        )
    }

    /// An unexpected failure: the cause goes to the log, not to the client.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(target: "rampart::admin", context, error = %cause, "admin API request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the request could not be completed; see the gateway log",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(_) => ApiError::not_found(e.to_string()),
            StoreError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::Invalid(_) => ApiError::bad_request("invalid_input", e.to_string()),
            other => ApiError::internal("store", &other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "reason": self.reason,
            "detail": self.detail,
        });
        if let (Some(serde_json::Value::Object(extra)), Some(map)) =
            (self.extra, body.as_object_mut())
        {
            for (k, v) in extra {
                map.entry(k).or_insert(v);
            }
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

/// `Json<T>` whose rejection is a problem without the parser's message
/// (serde messages quote the offending value).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            )),
            Err(JsonRejection::JsonSyntaxError(_)) => Err(ApiError::bad_request(
                "invalid_json",
                "the request body is not valid JSON",
            )),
            Err(_) => Err(ApiError::bad_request(
                "invalid_body",
                "the request body does not match this endpoint's schema (see /api/openapi.json)",
            )),
        }
    }
}

/// `Query<T>` whose rejection is a problem.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|_: QueryRejection| {
                ApiError::bad_request("invalid_query", "the query string is not valid here")
            })
    }
}

/// Refuses a path id that is really a credential (an API key or admin
/// token pasted where its id belongs), so it is not echoed in a
/// "not found" answer or passed to the store.
pub fn check_id(id: &str) -> Result<&str, ApiError> {
    let looks_secret = id.len() > 64 || ["rk_", "rat_"].iter().any(|p| id.starts_with(p));
    if looks_secret {
        return Err(ApiError::bad_request(
            "credential_in_path",
            "this looks like a full key or token; pass its id instead",
        ));
    }
    Ok(id)
}

/// Answer for paths under `/api/` that do not exist.
pub async fn no_route() -> ApiError {
    ApiError::not_found("no such admin API endpoint (see /api/openapi.json)")
}

/// Answer for a known path with the wrong method.
pub async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method (see /api/openapi.json)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_id_position_are_refused() {
        assert_eq!(check_id("ab12cd34").unwrap(), "ab12cd34");
        for id in ["rk_live_abc", "rat_abc", &"x".repeat(65)] {
            assert_eq!(check_id(id).unwrap_err().reason, "credential_in_path");
        }
    }

    #[test]
    fn store_errors_map_to_codes_and_backend_text_stays_private() {
        let e = ApiError::from(StoreError::NotFound("consumer c1".into()));
        assert_eq!((e.status, e.reason), (StatusCode::NOT_FOUND, "not_found"));
        let e = ApiError::from(StoreError::Conflict("consumer c1".into()));
        assert_eq!(e.status, StatusCode::CONFLICT);
        let e = ApiError::from(StoreError::Backend(
            "sqlite: disk I/O at /secret/path".into(),
        ));
        assert_eq!(e.reason, "internal_error");
        assert!(!e.detail.contains("sqlite") && !e.detail.contains("/secret/path"));
    }

    #[tokio::test]
    async fn problem_body_has_the_stable_members_and_media_type() {
        let mut e = ApiError::forbidden("insufficient_scope", "read only");
        e.extra = Some(serde_json::json!({"errors": ["x"], "status": 999}));
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            body["status"], 403,
            "extra members never override the standard ones"
        );
        assert_eq!(body["reason"], "insufficient_scope");
        assert_eq!(body["detail"], "read only");
        assert_eq!(body["errors"][0], "x");
    }
}
