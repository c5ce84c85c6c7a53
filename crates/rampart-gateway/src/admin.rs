//! The admin listener (loopback by default, apart from client traffic):
//! `/healthz`, `/readyz`, Prometheus `/metrics`, the operations endpoints
//! under `/admin/` (authenticated unless the listener is loopback), and the
//! authenticated REST API under `/api/`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::control::Control;

/// Serves the admin API on `addr` until the gateway has finished draining
/// (so `/readyz` can report 503 while it drains); returns the bound address.
pub async fn serve(addr: SocketAddr, control: Arc<Control>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(control.clone(), !addr.ip().is_loopback());
    let mut shutdown = control.gateway.stopped_signal();
    tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|&s| s).await;
        });
        if let Err(e) = server.await {
            tracing::error!(target: "rampart::admin", error = %e, "admin listener failed");
        }
    });
    tracing::info!(target: "rampart::admin", address = %local, "admin listener up");
    Ok(local)
}

/// On a loopback listener the operations endpoints are open, like SIGHUP
/// to a local user; on any other address `/admin/*` needs the same admin
/// token or session as `/api/` (health and metrics stay open for probes
/// and scrapers).
fn router(control: Arc<Control>, protect_ops: bool) -> Router {
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(control.clone());
    let ops = match protect_ops {
        true => crate::adminapi::protect(ops_router(control.clone()), api_deps(control.clone())),
        false => ops_router(control.clone()),
    };
    probes
        .merge(ops)
        .merge(crate::adminapi::router(api_deps(control)))
}

/// What the authenticated `/api/` needs, from the running gateway.
fn api_deps(control: Arc<Control>) -> crate::adminapi::AdminDeps {
    let services = control.gateway.services().clone();
    let identity = services.identity.clone();
    let status_control = control.clone();
    let reload_control = control.clone();
    crate::adminapi::AdminDeps {
        keyring: identity.as_ref().map(|i| i.keyring.clone()),
        admin: identity.as_ref().map(|i| i.admin.clone()),
        totp: identity.as_ref().map(|i| i.totp.clone()),
        audit: identity.as_ref().map(|i| i.audit.clone()),
        tracker: services.tracker.clone(),
        events: control.gateway.events().clone(),
        status: Arc::new(move || status_json(&status_control)),
        reload: Arc::new(move || {
            let c = reload_control.clone();
            Box::pin(async move {
                c.reload_from_disk()
                    .await
                    .map(|()| json!({ "status": "reloaded", "reload": c.gateway.status() }))
                    .map_err(|e| json!(e.0.iter().map(ToString::to_string).collect::<Vec<_>>()))
            })
        }),
        secure_cookies: false,
        session_ttl: crate::adminapi::DEFAULT_SESSION_TTL,
    }
}

/// The operations endpoints: config status and reload, recent events,
/// discovery.
fn ops_router(control: Arc<Control>) -> Router {
    Router::new()
        .route("/admin/status", get(status))
        .route("/admin/reload", post(reload))
        .route("/admin/events", get(recent_events))
        .route("/admin/discovery", get(discovery_export))
        .route("/admin/discovery/diff", get(discovery_diff))
        .with_state(control)
}

async fn readyz(State(c): State<Arc<Control>>) -> Response {
    if c.gateway.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics_setup::render(),
    )
        .into_response()
}

async fn status(State(c): State<Arc<Control>>) -> Json<serde_json::Value> {
    Json(status_json(&c))
}

fn status_json(c: &Control) -> serde_json::Value {
    let snap = c.gateway.snapshot();
    let upstreams: serde_json::Map<_, _> = snap
        .pools
        .iter()
        .map(|(name, p)| {
            let servers: Vec<_> = p
                .server_health()
                .into_iter()
                .map(|(addr, up)| json!({ "address": addr, "available": up }))
                .collect();
            (name.clone(), json!(servers))
        })
        .collect();
    let listeners: serde_json::Map<_, _> = snap
        .config
        .config
        .listeners
        .keys()
        .map(|n| {
            (
                n.clone(),
                json!(c.gateway.local_addr(n).map(|a| a.to_string())),
            )
        })
        .collect();
    json!({
        "config_file": c.config_path.as_ref().map(|p| p.display().to_string()),
        "reload": c.gateway.status(),
        "listeners": listeners,
        "upstreams": upstreams,
        "open_connections": c.gateway.open_connections(),
    })
}

#[derive(serde::Deserialize)]
struct EventsQuery {
    limit: Option<usize>,
}

/// The most recent security events, newest first (`?limit=N`, default 100).
async fn recent_events(
    State(c): State<Arc<Control>>,
    axum::extract::Query(q): axum::extract::Query<EventsQuery>,
) -> Json<serde_json::Value> {
    let limit = q.limit.unwrap_or(100).min(crate::events::RECENT_EVENTS);
    Json(json!({ "events": c.gateway.events().recent(limit) }))
}

/// A draft OpenAPI 3.1 document of the endpoints learnt from traffic.
async fn discovery_export(State(c): State<Arc<Control>>) -> Json<serde_json::Value> {
    Json(c.gateway.services().discovery.export())
}

#[derive(serde::Deserialize)]
struct DiffQuery {
    route: String,
}

/// Learnt endpoints against a route's OpenAPI document: shadow endpoints
/// (seen, undocumented) and documented ones never seen.
async fn discovery_diff(
    State(c): State<Arc<Control>>,
    axum::extract::Query(q): axum::extract::Query<DiffQuery>,
) -> Response {
    let snap = c.gateway.snapshot();
    let spec = snap
        .router
        .routes()
        .find(|r| *r.name == *q.route)
        .and_then(|r| r.spec.clone());
    let Some(spec) = spec else {
        let body =
            json!({ "reason": "no_spec", "detail": "no route of that name has an openapi spec" });
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    };
    let report = c.gateway.services().discovery.diff(&spec);
    Json(json!({
        "shadow": report.shadow.iter().map(|e| json!({"method": e.method, "path": e.path})).collect::<Vec<_>>(),
        "unseen": report.unseen.iter().map(|e| json!({"method": e.method, "path": e.path})).collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn reload(State(c): State<Arc<Control>>) -> Response {
    match c.reload_from_disk().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "reloaded", "reload": c.gateway.status() })),
        )
            .into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "status": "rejected",
                "detail": "the new configuration is invalid; the previous one keeps serving",
                "errors": e.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
    }
}
