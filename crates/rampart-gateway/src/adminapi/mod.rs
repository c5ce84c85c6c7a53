//! The admin REST API under `/api/`: consumers, API keys, IP bans, security
//! events, config status and reload, admin tokens and users, sessions, the
//! audit log, and its own OpenAPI document.
//!
//! [`router`] returns a self-contained axum [`Router`] to merge into the
//! admin listener. Every endpoint except `POST /api/login` and
//! `GET /api/openapi.json` is authenticated ([`auth`]): a bearer admin
//! token (scope `read` for GET, `write` for the rest) or a dashboard session
//! cookie plus `X-CSRF-Token` on mutations. Errors are problem documents
//! ([`problem`]). Serve it with
//! `into_make_service_with_connect_info::<SocketAddr>()` so the audit log
//! records client IPs.

pub mod auth;
mod identity;
pub mod openapi;
mod ops;
pub mod problem;
mod totp;

use std::sync::Arc;
use std::time::Duration;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::Router;
use futures_util::future::BoxFuture;
use rampart_reputation::ThreatTracker;
use rampart_store::store::AuditLog;
use rampart_store::{AdminService, Keyring};

use crate::events::EventHub;

/// Config status as JSON (what `GET /api/status` shows).
pub type StatusFn = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;
/// Reloads the config: `Ok(status)` or `Err(details)` (shown to the admin).
pub type ReloadFn =
    Arc<dyn Fn() -> BoxFuture<'static, Result<serde_json::Value, serde_json::Value>> + Send + Sync>;

/// What the admin API works on. A `None` dependency makes its endpoints
/// answer 503 `feature_not_configured`; without `admin` nothing but
/// `/api/openapi.json` is served, since no one can authenticate.
#[derive(Clone)]
pub struct AdminDeps {
    pub keyring: Option<Arc<Keyring>>,
    pub admin: Option<Arc<AdminService>>,
    /// Consumers' TOTP enrollments (MFA step-up).
    pub totp: Option<Arc<rampart_store::ConsumerTotpService>>,
    pub tracker: Option<Arc<ThreatTracker>>,
    /// The store's audit log: read by `GET /api/audit`, and written for the
    /// actions the store services do not audit themselves (bans, reloads,
    /// logouts). Pass the same store the keyring and admin service use.
    pub audit: Option<Arc<dyn AuditLog>>,
    pub events: Arc<EventHub>,
    pub status: StatusFn,
    pub reload: ReloadFn,
    /// Mark the session cookie `Secure` (set when the admin listener is
    /// behind TLS).
    pub secure_cookies: bool,
    /// Dashboard session lifetime. [`DEFAULT_SESSION_TTL`] is 8 hours.
    pub session_ttl: Duration,
}

/// Default dashboard session lifetime.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

impl std::fmt::Debug for AdminDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminDeps")
            .field("keyring", &self.keyring.is_some())
            .field("admin", &self.admin.is_some())
            .field("tracker", &self.tracker.is_some())
            .field("audit", &self.audit.is_some())
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

/// Shared handler state.
pub(crate) type Ctx = Arc<AdminDeps>;

/// The admin API router (paths start with `/api/`).
pub fn router(deps: AdminDeps) -> Router {
    build(deps).0
}

/// Puts `router` behind the API's authentication (admin token or session,
/// CSRF on mutations), e.g. the operations endpoints on a non-loopback
/// admin listener.
pub fn protect(router: Router, deps: AdminDeps) -> Router {
    router.route_layer(axum::middleware::from_fn_with_state(
        Arc::new(deps),
        auth::require_auth,
    ))
}

/// Every `(method, path)` the router serves, for docs and tests.
pub fn routes() -> Vec<(Method, &'static str)> {
    let deps = AdminDeps {
        keyring: None,
        totp: None,
        admin: None,
        tracker: None,
        audit: None,
        events: Arc::default(),
        status: Arc::new(|| serde_json::Value::Null),
        reload: Arc::new(|| Box::pin(async { Ok(serde_json::Value::Null) })),
        secure_cookies: false,
        session_ttl: DEFAULT_SESSION_TTL,
    };
    build(deps).1
}

/// Collects routes and remembers each `(method, path)` it adds.
struct Routes {
    router: Router<Ctx>,
    seen: Vec<(Method, &'static str)>,
}

impl Routes {
    fn add<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Routes
    where
        H: Handler<T, Ctx>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
        self.router = self.router.route(path, on(filter, handler));
        self.seen.push((method, path));
        self
    }
}

fn build(deps: AdminDeps) -> (Router, Vec<(Method, &'static str)>) {
    let ctx: Ctx = Arc::new(deps);
    let protected = ops::routes(totp::routes(identity::routes(Routes {
        router: Router::new(),
        seen: Vec::new(),
    })))
    .add(Method::POST, "/api/logout", auth::logout);
    let protected_router = protected
        .router
        .route_layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            auth::require_auth,
        ));
    let mut seen = protected.seen;
    seen.push((Method::POST, "/api/login"));
    seen.push((Method::GET, "/api/openapi.json"));
    let router = Router::new()
        .route("/api/login", axum::routing::post(auth::login))
        .route("/api/openapi.json", axum::routing::get(openapi::serve))
        .merge(protected_router)
        .route("/api/{*rest}", axum::routing::any(problem::no_route))
        .method_not_allowed_fallback(problem::wrong_method)
        .with_state(ctx);
    (router, seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc = openapi::document();
        let routes = routes();
        assert!(routes.len() >= 25, "route table looks incomplete");
        for (method, path) in routes {
            let method = method.as_str().to_ascii_lowercase();
            assert!(
                doc["paths"][path][&method].is_object(),
                "{method} {path} missing from openapi.json"
            );
        }
    }

    #[test]
    fn merges_into_the_admin_listener_router() {
        let deps = AdminDeps {
            keyring: None,
            totp: None,
            admin: None,
            tracker: None,
            audit: None,
            events: Arc::default(),
            status: Arc::new(|| serde_json::Value::Null),
            reload: Arc::new(|| Box::pin(async { Ok(serde_json::Value::Null) })),
            secure_cookies: false,
            session_ttl: DEFAULT_SESSION_TTL,
        };
        // The shape of crate::admin's router: must not panic on overlap.
        let _merged: Router = Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route("/admin/status", axum::routing::get(|| async { "{}" }))
            .merge(router(deps));
    }

    #[test]
    fn openapi_document_lists_no_route_the_router_lacks() {
        let doc = openapi::document();
        let routes = routes();
        let paths = doc["paths"].as_object().expect("paths object");
        for (path, item) in paths {
            for method in item.as_object().expect("path item").keys() {
                let known = routes
                    .iter()
                    .any(|(m, p)| p == path && m.as_str().eq_ignore_ascii_case(method));
                assert!(
                    known,
                    "openapi.json documents {method} {path} that is not routed"
                );
            }
        }
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
