//! Consumers and API keys endpoints, on top of `rampart_store::Keyring`
//! (which writes their audit entries). A created or rotated key is in the
//! response once and nowhere else: the store keeps only its digest.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ipnet::IpNet;
use rampart_store::{
    ApiKeyRecord, ConsumerState, CreatedKey, KeyEnv, Keyring, NewConsumer, NewKey,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Principal;
use super::problem::{check_id, ApiError, Body, Params};
use super::{Ctx, Routes};

pub(super) fn routes(r: Routes) -> Routes {
    r.add(Method::GET, "/api/consumers", list_consumers)
        .add(Method::POST, "/api/consumers", create_consumer)
        .add(Method::GET, "/api/consumers/{id}", get_consumer)
        .add(Method::PATCH, "/api/consumers/{id}", update_consumer)
        .add(
            Method::POST,
            "/api/consumers/{id}/disable",
            disable_consumer,
        )
        .add(Method::POST, "/api/consumers/{id}/enable", enable_consumer)
        .add(Method::GET, "/api/consumers/{id}/keys", list_consumer_keys)
        .add(Method::POST, "/api/consumers/{id}/keys", create_key)
        .add(Method::GET, "/api/keys", list_keys)
        .add(Method::GET, "/api/keys/{key_id}", get_key)
        .add(Method::POST, "/api/keys/{key_id}/rotate", rotate_key)
        .add(Method::POST, "/api/keys/{key_id}/revoke", revoke_key)
}

fn keyring(ctx: &Ctx) -> Result<&Keyring, ApiError> {
    ctx.keyring
        .as_deref()
        .ok_or_else(|| ApiError::not_configured("the API key store"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumerBody {
    id: Option<String>,
    name: String,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    metadata: Value,
    #[serde(default)]
    allowed_cidrs: Vec<IpNet>,
}

async fn list_consumers(State(ctx): State<Ctx>) -> Result<Json<Value>, ApiError> {
    let consumers = keyring(&ctx)?.list_consumers().await?;
    Ok(Json(json!({ "consumers": consumers })))
}

async fn create_consumer(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    Body(body): Body<ConsumerBody>,
) -> Result<Response, ApiError> {
    let new = NewConsumer {
        id: body.id,
        name: body.name,
        tier: body.tier,
        scopes: body.scopes,
        metadata: body.metadata,
        allowed_cidrs: body.allowed_cidrs,
    };
    let consumer = keyring(&ctx)?.create_consumer(new, &who.actor()).await?;
    tracing::info!(target: "rampart::admin", actor = %who.actor().name, consumer = %consumer.id, "consumer created");
    Ok((StatusCode::CREATED, Json(json!(consumer))).into_response())
}

async fn get_consumer(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let consumer = keyring(&ctx)?
        .get_consumer(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("consumer {id} not found")))?;
    Ok(Json(json!(consumer)))
}

/// Fields a PATCH may change; absent ones keep their value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumerPatch {
    name: Option<String>,
    #[serde(default, with = "double_option")]
    tier: Option<Option<String>>,
    scopes: Option<Vec<String>>,
    metadata: Option<Value>,
    allowed_cidrs: Option<Vec<IpNet>>,
}

/// Tells "absent" (keep) from `null` (clear) for optional fields.
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

async fn update_consumer(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Body(patch): Body<ConsumerPatch>,
) -> Result<Json<Value>, ApiError> {
    let keys = keyring(&ctx)?;
    let mut consumer = keys
        .get_consumer(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("consumer {id} not found")))?;
    if let Some(name) = patch.name {
        if name.trim().is_empty() {
            return Err(ApiError::bad_request(
                "invalid_input",
                "consumer name is empty",
            ));
        }
        consumer.name = name;
    }
    if let Some(tier) = patch.tier {
        consumer.tier = tier;
    }
    if let Some(scopes) = patch.scopes {
        consumer.scopes = scopes;
    }
    if let Some(metadata) = patch.metadata {
        consumer.metadata = metadata;
    }
    if let Some(cidrs) = patch.allowed_cidrs {
        consumer.allowed_cidrs = cidrs;
    }
    let consumer = keys.update_consumer(consumer, &who.actor()).await?;
    tracing::info!(target: "rampart::admin", actor = %who.actor().name, consumer = %consumer.id, "consumer updated");
    Ok(Json(json!(consumer)))
}

async fn disable_consumer(
    ctx: State<Ctx>,
    who: Extension<Principal>,
    id: Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_state(ctx, who, id, ConsumerState::Disabled).await
}

async fn enable_consumer(
    ctx: State<Ctx>,
    who: Extension<Principal>,
    id: Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_state(ctx, who, id, ConsumerState::Active).await
}

async fn set_state(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    state: ConsumerState,
) -> Result<Json<Value>, ApiError> {
    let consumer = keyring(&ctx)?
        .set_consumer_state(&id, state, &who.actor())
        .await?;
    tracing::info!(target: "rampart::admin", actor = %who.actor().name, consumer = %id, ?state, "consumer state changed");
    Ok(Json(json!(consumer)))
}

/// A key as the API shows it: no digest.
fn key_view(k: &ApiKeyRecord) -> Value {
    json!({
        "key_id": k.key_id,
        "consumer_id": k.consumer_id,
        "env": k.env,
        "name": k.name,
        "scopes": k.scopes,
        "rate_limit": k.rate_limit,
        "created_at": k.created_at,
        "expires_at": k.expires_at,
        "revoked_at": k.revoked_at,
        "rotated_to": k.rotated_to,
        "last_used_at": k.last_used_at,
        "last_used_ip": k.last_used_ip,
    })
}

/// A new key: the only response that ever carries the full key.
fn created_view(created: &CreatedKey) -> Value {
    let mut view = key_view(&created.record);
    view["key"] = json!(created.key.expose());
    view["key_shown_once"] = json!(true);
    view
}

#[derive(Deserialize)]
struct KeyFilter {
    consumer: Option<String>,
}

async fn list_keys(
    State(ctx): State<Ctx>,
    Params(filter): Params<KeyFilter>,
) -> Result<Json<Value>, ApiError> {
    let keys = keyring(&ctx)?.list_keys(filter.consumer.as_deref()).await?;
    Ok(Json(
        json!({ "keys": keys.iter().map(key_view).collect::<Vec<_>>() }),
    ))
}

async fn list_consumer_keys(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let keys = keyring(&ctx)?;
    if keys.get_consumer(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("consumer {id} not found")));
    }
    let list = keys.list_keys(Some(&id)).await?;
    Ok(Json(
        json!({ "keys": list.iter().map(key_view).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    #[serde(default)]
    name: String,
    /// `live` (default) or `test`.
    #[serde(default)]
    env: Option<KeyEnv>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    rate_limit: Option<String>,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

async fn create_key(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    Path(consumer_id): Path<String>,
    Body(body): Body<KeyBody>,
) -> Result<Response, ApiError> {
    let new = NewKey {
        consumer_id,
        env: body.env.unwrap_or(KeyEnv::Live),
        name: body.name,
        scopes: body.scopes,
        rate_limit: body.rate_limit,
        ttl_secs: body.ttl_secs,
    };
    let created = keyring(&ctx)?.create_key(new, &who.actor()).await?;
    tracing::info!(target: "rampart::admin", actor = %who.actor().name, key_id = %created.record.key_id, consumer = %created.record.consumer_id, "API key created");
    Ok((StatusCode::CREATED, Json(created_view(&created))).into_response())
}

async fn get_key(
    State(ctx): State<Ctx>,
    Path(key_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_id(&key_id)?;
    let key = keyring(&ctx)?
        .get_key(&key_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("API key {key_id} not found")))?;
    Ok(Json(key_view(&key)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the old key keeps working. Default 0 (stops now).
    #[serde(default)]
    grace_secs: u64,
}

/// Parses an optional JSON body: empty means all defaults.
fn optional_body<T: serde::de::DeserializeOwned + Default>(raw: &[u8]) -> Result<T, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(raw).map_err(|_| {
        ApiError::bad_request(
            "invalid_body",
            "the request body does not match this endpoint's schema (see /api/openapi.json)",
        )
    })
}

/// Longest grace period a rotation may give the old key: 30 days.
const MAX_GRACE_SECS: u64 = 30 * 86_400;

async fn rotate_key(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    Path(key_id): Path<String>,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    check_id(&key_id)?;
    let grace = optional_body::<RotateBody>(&raw)?.grace_secs;
    if grace > MAX_GRACE_SECS {
        return Err(ApiError::bad_request(
            "invalid_input",
            format!("grace_secs must be at most {MAX_GRACE_SECS}"),
        ));
    }
    let created = keyring(&ctx)?
        .rotate_key(&key_id, Duration::from_secs(grace), &who.actor())
        .await?;
    tracing::info!(target: "rampart::admin", actor = %who.actor().name, old_key_id = %key_id, new_key_id = %created.record.key_id, grace_secs = grace, "API key rotated");
    let mut view = created_view(&created);
    view["rotated_from"] = json!(key_id);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn revoke_key(
    State(ctx): State<Ctx>,
    Extension(who): Extension<Principal>,
    Path(key_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_id(&key_id)?;
    let key = keyring(&ctx)?.revoke_key(&key_id, &who.actor()).await?;
    tracing::info!(target: "rampart::admin", actor = %who.actor().name, key_id = %key_id, "API key revoked");
    Ok(Json(key_view(&key)))
}
