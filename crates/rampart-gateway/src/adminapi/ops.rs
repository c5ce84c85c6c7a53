//! Operations endpoints: IP bans, security events, config status and
//! reload, the audit log, admin tokens and admin users.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ipnet::IpNet;
use rampart_reputation::ThreatTracker;
use rampart_store::store::NewAuditEvent;
use rampart_store::{AdminService, AdminToken, TokenScope};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Principal;
use super::problem::{check_id, ApiError, Body, Params};
use super::{Ctx, Routes};

pub(super) fn routes(r: Routes) -> Routes {
    r.add(Method::GET, "/api/bans", list_bans)
        .add(Method::POST, "/api/bans", add_ban)
        .add(Method::DELETE, "/api/bans", remove_ban)
        .add(Method::GET, "/api/events", recent_events)
        .add(Method::GET, "/api/audit", recent_audit)
        .add(Method::GET, "/api/status", status)
        .add(Method::POST, "/api/reload", reload)
        .add(Method::GET, "/api/tokens", list_tokens)
        .add(Method::POST, "/api/tokens", create_token)
        .add(Method::POST, "/api/tokens/{token_id}/revoke", revoke_token)
        .add(Method::GET, "/api/users", list_users)
        .add(Method::GET, "/api/whoami", whoami)
}

/// Default and maximum `?limit=` for list endpoints.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

impl Limit {
    fn get(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

/// Appends an audit entry for actions the store services do not audit
/// themselves. A failure is logged, not returned: the action has happened.
pub(super) async fn audit(ctx: &Ctx, who: &Principal, action: &str, target: &str, detail: Value) {
    let Some(log) = &ctx.audit else { return };
    let actor = who.actor();
    let event = NewAuditEvent {
        at: now_secs(),
        actor: &actor.name,
        action,
        target,
        source_ip: actor.ip,
        detail,
    };
    if let Err(e) = log.append_audit(event).await {
        tracing::error!(target: "rampart::admin", action, error = %e, "audit entry not written");
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn tracker(ctx: &Ctx) -> Result<&ThreatTracker, ApiError> {
    ctx.tracker
        .as_deref()
        .ok_or_else(|| ApiError::not_configured("IP reputation (the ban tracker)"))
}

fn admin(ctx: &Ctx) -> Result<&AdminService, ApiError> {
    ctx.admin
        .as_deref()
        .ok_or_else(|| ApiError::not_configured("the admin store"))
}

/// Parses `203.0.113.7` or `203.0.113.0/24` (an address is a /32 or /128).
fn parse_target(text: &str) -> Result<IpNet, ApiError> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            ApiError::bad_request("invalid_target", "target must be an IP address or CIDR")
        })
}

async fn list_bans(State(ctx): State<Ctx>) -> Result<Json<Value>, ApiError> {
    let bans = tracker(&ctx)?.list();
    Ok(Json(json!({ "bans": bans })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BanBody {
    target: String,
    /// Ban length in seconds. Default 3600.
    #[serde(default = "default_ban_ttl")]
    ttl_secs: u64,
    #[serde(default = "default_ban_reason")]
    reason: String,
}

fn default_ban_ttl() -> u64 {
    3600
}

fn default_ban_reason() -> String {
    "manual".into()
}

/// Longest manual ban: one year.
const MAX_BAN_SECS: u64 = 365 * 86_400;

async fn add_ban(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    Body(body): Body<BanBody>,
) -> Result<Response, ApiError> {
    let target = parse_target(&body.target)?;
    if body.ttl_secs == 0 || body.ttl_secs > MAX_BAN_SECS {
        return Err(ApiError::bad_request(
            "invalid_input",
            format!("ttl_secs must be 1..={MAX_BAN_SECS}"),
        ));
    }
    if body.reason.len() > 200 || body.reason.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_input",
            "reason must be at most 200 printable characters",
        ));
    }
    let ban = tracker(&ctx)?
        .ban(target, Duration::from_secs(body.ttl_secs), &body.reason)
        .await
        .map_err(|e| ApiError::internal("ban", &e))?;
    let detail = json!({"ttl_secs": body.ttl_secs, "reason": body.reason});
    audit(&ctx, &who, "ban.add", &ban.target.to_string(), detail).await;
    tracing::info!(target: "rampart::admin", actor = %who.actor().name, target_net = %ban.target, ttl_secs = body.ttl_secs, "manual ban added");
    Ok((StatusCode::CREATED, Json(json!(ban))).into_response())
}

#[derive(Deserialize)]
struct BanTarget {
    target: String,
}

async fn remove_ban(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    Params(q): Params<BanTarget>,
) -> Result<Json<Value>, ApiError> {
    let target = parse_target(&q.target)?;
    let removed = tracker(&ctx)?
        .unban(target)
        .await
        .map_err(|e| ApiError::internal("unban", &e))?;
    if !removed {
        return Err(ApiError::not_found(format!("no ban on {target}")));
    }
    audit(&ctx, &who, "ban.remove", &target.to_string(), json!(null)).await;
    tracing::info!(target: "rampart::admin", actor = %who.actor().name, target_net = %target, "ban removed");
    Ok(Json(json!({ "removed": target.to_string() })))
}

async fn recent_events(State(ctx): State<Ctx>, Params(q): Params<Limit>) -> Json<Value> {
    let limit = q.get().min(crate::events::RECENT_EVENTS);
    Json(json!({ "events": ctx.events.recent(limit) }))
}

async fn recent_audit(
    State(ctx): State<Ctx>,
    Params(q): Params<Limit>,
) -> Result<Json<Value>, ApiError> {
    let log = ctx
        .audit
        .as_ref()
        .ok_or_else(|| ApiError::not_configured("the audit log (admin store)"))?;
    let events = log.recent_audit(q.get()).await?;
    Ok(Json(json!({ "entries": events })))
}

async fn status(State(ctx): State<Ctx>) -> Json<Value> {
    Json((ctx.status)())
}

async fn reload(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let outcome = (ctx.reload)().await;
    let ok = outcome.is_ok();
    audit(&ctx, &who, "config.reload", "config", json!({"ok": ok})).await;
    tracing::info!(target: "rampart::admin", actor = %who.actor().name, ok, "config reload requested");
    match outcome {
        Ok(status) => Ok(Json(json!({"status": "reloaded", "reload": status}))),
        Err(details) => {
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "config_rejected",
                "the new configuration is invalid; the previous one keeps serving",
            );
            e.extra = Some(json!({ "errors": details }));
            Err(e)
        }
    }
}

/// A token as the API shows it: no digest.
fn token_view(t: &AdminToken) -> Value {
    json!({
        "token_id": t.token_id,
        "username": t.username,
        "name": t.name,
        "scopes": t.scopes,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "revoked_at": t.revoked_at,
    })
}

async fn list_tokens(State(ctx): State<Ctx>) -> Result<Json<Value>, ApiError> {
    let tokens = admin(&ctx)?.list_tokens().await?;
    Ok(Json(
        json!({ "tokens": tokens.iter().map(token_view).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    name: String,
    scopes: Vec<TokenScope>,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

/// `POST /api/tokens`: a token for the calling user; shown once.
async fn create_token(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    Body(body): Body<TokenBody>,
) -> Result<Response, ApiError> {
    let ttl = body.ttl_secs.map(Duration::from_secs);
    let created = admin(&ctx)?
        .create_token(&who.username, &body.name, body.scopes, ttl, &who.actor())
        .await?;
    tracing::info!(target: "rampart::admin", actor = %who.actor().name, token_id = %created.record.token_id, "admin token created");
    let mut view = token_view(&created.record);
    view["token"] = json!(created.token.expose());
    view["token_shown_once"] = json!(true);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn revoke_token(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    Path(token_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_id(&token_id)?;
    admin(&ctx)?.revoke_token(&token_id, &who.actor()).await?;
    tracing::info!(target: "rampart::admin", actor = %who.actor().name, token_id = %token_id, "admin token revoked");
    Ok(Json(json!({ "revoked": token_id })))
}

/// `GET /api/users`: admin users without hashes or TOTP secrets.
async fn list_users(State(ctx): State<Ctx>) -> Result<Json<Value>, ApiError> {
    let users = admin(&ctx)?.list_admins().await?;
    let view: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({
                "username": u.username,
                "totp_enabled": u.totp_secret.is_some(),
                "totp_pending": u.totp_pending.is_some(),
                "disabled": u.disabled,
                "failed_logins": u.failed_logins,
                "locked_until": u.locked_until,
                "created_at": u.created_at,
                "updated_at": u.updated_at,
            })
        })
        .collect();
    Ok(Json(json!({ "users": view })))
}

/// `GET /api/whoami`: the caller as authenticated.
async fn whoami(Extension(who): Extension<Principal>) -> Json<Value> {
    Json(json!({
        "username": who.username,
        "token_id": who.token_id,
        "actor": who.actor().name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ban_targets_accept_addresses_and_networks_only() {
        assert_eq!(
            parse_target("203.0.113.7").unwrap().to_string(),
            "203.0.113.7/32"
        );
        assert_eq!(
            parse_target(" 2001:db8::/32 ").unwrap().to_string(),
            "2001:db8::/32"
        );
        for bad in ["", "example.com", "10.0.0.0/33", "1.2.3"] {
            assert_eq!(
                parse_target(bad).unwrap_err().reason,
                "invalid_target",
                "{bad}"
            );
        }
    }

    #[test]
    fn limits_default_and_clamp() {
        assert_eq!(Limit { limit: None }.get(), DEFAULT_LIMIT);
        assert_eq!(Limit { limit: Some(0) }.get(), 1);
        assert_eq!(
            Limit {
                limit: Some(1_000_000)
            }
            .get(),
            MAX_LIMIT
        );
    }
}
