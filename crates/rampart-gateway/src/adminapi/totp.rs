//! Consumers' TOTP enrollment for MFA step-up, on top of
//! `rampart_store::ConsumerTotpService` (which writes the audit entries).
//! The secret and provisioning URI are in the enrollment response once.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::{Extension, Json};
use rampart_store::{ConsumerTotpService, TotpStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Principal;
use super::problem::{check_id, ApiError, Body};
use super::{Ctx, Routes};

pub(super) fn routes(r: Routes) -> Routes {
    r.add(Method::GET, "/api/consumers/{id}/totp", status)
        .add(Method::POST, "/api/consumers/{id}/totp", enroll)
        .add(Method::POST, "/api/consumers/{id}/totp/confirm", confirm)
        .add(Method::DELETE, "/api/consumers/{id}/totp", disable)
}

fn service(ctx: &Ctx) -> Result<&ConsumerTotpService, ApiError> {
    ctx.totp
        .as_deref()
        .ok_or_else(|| ApiError::not_configured("consumer TOTP (identity store)"))
}

/// The consumer must exist: enrolling a typo would silently do nothing.
async fn existing(ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    let keyring = ctx
        .keyring
        .as_deref()
        .ok_or_else(|| ApiError::not_configured("the consumer store"))?;
    match keyring.get_consumer(check_id(id)?).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("no consumer {id:?}"))),
    }
}

fn status_view(id: &str, s: TotpStatus) -> Value {
    let (state, pending) = match s {
        TotpStatus::NotEnrolled => ("not_enrolled", false),
        TotpStatus::Pending => ("pending", true),
        TotpStatus::Enabled { pending } => ("enabled", pending),
    };
    json!({ "consumer_id": id, "totp": state, "confirmation_pending": pending })
}

async fn status(State(ctx): State<Ctx>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    existing(&ctx, &id).await?;
    Ok(Json(status_view(&id, service(&ctx)?.status(&id).await?)))
}

async fn enroll(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    existing(&ctx, &id).await?;
    let e = service(&ctx)?.enroll(&id, &who.actor()).await?;
    tracing::info!(target: "rampart::admin", actor = %who.actor().name, consumer = %id, "consumer TOTP enrollment started");
    Ok(Json(json!({
        "consumer_id": id,
        "secret_base32": e.secret_base32.expose(),
        "provisioning_uri": e.uri.expose(),
        "qr": e.qr.expose(),
        "shown_once": true,
        "next": "confirm with POST /api/consumers/{id}/totp/confirm and a current code",
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
}

async fn confirm(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Body(body): Body<Code>,
) -> Result<Json<Value>, ApiError> {
    existing(&ctx, &id).await?;
    let svc = service(&ctx)?;
    if !svc.confirm(&id, &body.code, &who.actor()).await? {
        return Err(ApiError::bad_request(
            "totp_code_invalid",
            "the code does not match the pending enrollment",
        ));
    }
    Ok(Json(status_view(&id, svc.status(&id).await?)))
}

async fn disable(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    existing(&ctx, &id).await?;
    let svc = service(&ctx)?;
    svc.disable(&id, &who.actor()).await?;
    Ok(Json(status_view(&id, svc.status(&id).await?)))
}
