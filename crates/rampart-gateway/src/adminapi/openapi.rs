//! The admin API's OpenAPI 3.1 document, written by hand and kept next to
//! the routes; a unit test checks that every route appears in it and that
//! it documents no route the router lacks.

use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// `GET /api/openapi.json`.
pub async fn serve() -> Response {
    axum::Json(document()).into_response()
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

/// An operation answering `code` with `schema`; mutations list 403 too.
fn op(summary: &str, tag: &str, code: &str, schema: Value) -> Value {
    let mut responses = json!({
        code: { "description": "success", "content": { "application/json": { "schema": schema } } },
        "401": { "$ref": "#/components/responses/Unauthorized" },
        "403": { "$ref": "#/components/responses/Forbidden" },
        "404": { "$ref": "#/components/responses/Problem" },
        "503": { "$ref": "#/components/responses/Problem" },
    });
    if code != "200" {
        responses["400"] = json!({ "$ref": "#/components/responses/Problem" });
    }
    json!({ "summary": summary, "tags": [tag], "responses": responses })
}

fn with_body(mut operation: Value, schema: Value) -> Value {
    operation["requestBody"] = json_body(schema);
    operation
}

fn with_params(mut operation: Value, params: &[&str]) -> Value {
    let list: Vec<Value> = params
        .iter()
        .map(|p| json!({ "$ref": format!("#/components/parameters/{p}") }))
        .collect();
    operation["parameters"] = json!(list);
    operation
}

fn list_of(name: &str, key: &str) -> Value {
    json!({ "type": "object", "properties": { key: { "type": "array", "items": schema_ref(name) } } })
}

fn object() -> Value {
    json!({ "type": "object" })
}

/// The whole document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "rampart admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Manage consumers, API keys, IP bans and admin credentials; read security events and the audit log. Errors are application/problem+json with a stable `reason`.",
        },
        "security": [ { "bearer": [] }, { "session": [] } ],
        "paths": paths(),
        "components": components(),
    })
}

fn paths() -> Value {
    let mut p = serde_json::Map::new();
    for (path, item) in identity_paths().into_iter().chain(ops_paths()) {
        p.insert(path.to_string(), item);
    }
    Value::Object(p)
}

fn identity_paths() -> Vec<(&'static str, Value)> {
    let consumer = || schema_ref("Consumer");
    vec![
        (
            "/api/consumers",
            json!({
                "get": op("List consumers", "consumers", "200", list_of("Consumer", "consumers")),
                "post": with_body(op("Create a consumer", "consumers", "201", consumer()), schema_ref("ConsumerCreate")),
            }),
        ),
        (
            "/api/consumers/{id}",
            json!({
                "get": with_params(op("Get a consumer", "consumers", "200", consumer()), &["ConsumerId"]),
                "patch": with_body(with_params(op("Update a consumer (absent fields are kept)", "consumers", "200", consumer()), &["ConsumerId"]), schema_ref("ConsumerPatch")),
            }),
        ),
        (
            "/api/consumers/{id}/disable",
            json!({
                "post": with_params(op("Disable a consumer: its keys stop working", "consumers", "200", consumer()), &["ConsumerId"]),
            }),
        ),
        (
            "/api/consumers/{id}/enable",
            json!({
                "post": with_params(op("Enable a consumer", "consumers", "200", consumer()), &["ConsumerId"]),
            }),
        ),
        (
            "/api/consumers/{id}/keys",
            json!({
                "get": with_params(op("List a consumer's keys", "keys", "200", list_of("ApiKey", "keys")), &["ConsumerId"]),
                "post": with_body(with_params(op("Create a key (the key is in this response only)", "keys", "201", schema_ref("CreatedKey")), &["ConsumerId"]), schema_ref("KeyCreate")),
            }),
        ),
        (
            "/api/consumers/{id}/totp",
            json!({
                "get": with_params(op("A consumer's TOTP enrollment state", "consumers", "200", schema_ref("TotpStatus")), &["ConsumerId"]),
                "post": with_params(op("Start TOTP enrollment (secret and URI in this response only)", "consumers", "200", schema_ref("TotpEnrollment")), &["ConsumerId"]),
                "delete": with_params(op("Remove the consumer's TOTP: step-up no longer applies", "consumers", "200", schema_ref("TotpStatus")), &["ConsumerId"]),
            }),
        ),
        (
            "/api/consumers/{id}/totp/confirm",
            json!({
                "post": with_body(with_params(op("Confirm enrollment with a current code", "consumers", "200", schema_ref("TotpStatus")), &["ConsumerId"]), schema_ref("TotpCode")),
            }),
        ),
        (
            "/api/keys",
            json!({
                "get": with_params(op("List keys", "keys", "200", list_of("ApiKey", "keys")), &["ConsumerFilter"]),
            }),
        ),
        (
            "/api/keys/{key_id}",
            json!({
                "get": with_params(op("Get a key (never the secret)", "keys", "200", schema_ref("ApiKey")), &["KeyId"]),
            }),
        ),
        (
            "/api/keys/{key_id}/rotate",
            json!({
                "post": with_body(with_params(op("Rotate a key: a new key now, the old one works for grace_secs", "keys", "201", schema_ref("CreatedKey")), &["KeyId"]),
                    json!({ "type": "object", "properties": { "grace_secs": { "type": "integer", "minimum": 0, "maximum": 2_592_000, "default": 0 } } })),
            }),
        ),
        (
            "/api/keys/{key_id}/revoke",
            json!({
                "post": with_params(op("Revoke a key immediately", "keys", "200", schema_ref("ApiKey")), &["KeyId"]),
            }),
        ),
    ]
}

fn ops_paths() -> Vec<(&'static str, Value)> {
    let public = |mut v: Value| {
        v["security"] = json!([]);
        v
    };
    vec![
        (
            "/api/bans",
            json!({
                "get": op("List active bans", "bans", "200", list_of("Ban", "bans")),
                "post": with_body(op("Ban an IP or CIDR", "bans", "201", schema_ref("Ban")), schema_ref("BanCreate")),
                "delete": with_params(op("Remove a ban", "bans", "200", object()), &["BanTarget"]),
            }),
        ),
        (
            "/api/events",
            json!({
                "get": with_params(op("Recent security events, newest first", "events", "200", object()), &["Limit"]),
            }),
        ),
        (
            "/api/audit",
            json!({
                "get": with_params(op("Audit log, newest first", "audit", "200", list_of("AuditEntry", "entries")), &["Limit"]),
            }),
        ),
        (
            "/api/status",
            json!({ "get": op("Config and runtime status", "config", "200", object()) }),
        ),
        (
            "/api/reload",
            json!({
                "post": op("Reload the config file (422 config_rejected keeps the old one)", "config", "200", object()),
            }),
        ),
        (
            "/api/tokens",
            json!({
                "get": op("List admin tokens", "tokens", "200", list_of("AdminToken", "tokens")),
                "post": with_body(op("Create a token for the caller (the token is in this response only)", "tokens", "201", schema_ref("CreatedToken")), schema_ref("TokenCreate")),
            }),
        ),
        (
            "/api/tokens/{token_id}/revoke",
            json!({
                "post": with_params(op("Revoke an admin token", "tokens", "200", object()), &["TokenId"]),
            }),
        ),
        (
            "/api/users",
            json!({
                "get": op("List admin users (create them with `rampart admin create-user`)", "users", "200", list_of("AdminUser", "users")),
            }),
        ),
        (
            "/api/whoami",
            json!({ "get": op("The authenticated caller", "session", "200", object()) }),
        ),
        (
            "/api/login",
            json!({
                "post": public(with_body(json!({
                    "summary": "Log in: sets the session cookie; returns the CSRF token",
                    "tags": ["session"],
                    "responses": {
                        "200": { "description": "logged in", "content": { "application/json": { "schema": schema_ref("LoginResult") } } },
                        "401": { "$ref": "#/components/responses/Unauthorized" },
                        "403": { "$ref": "#/components/responses/Forbidden" },
                        "429": { "description": "locked out; see Retry-After", "content": { "application/problem+json": { "schema": schema_ref("Problem") } } },
                    },
                }), schema_ref("Login"))),
            }),
        ),
        (
            "/api/logout",
            json!({ "post": op("End the current session", "session", "200", object()) }),
        ),
        (
            "/api/openapi.json",
            json!({
                "get": public(json!({ "summary": "This document", "tags": ["meta"], "responses": { "200": { "description": "OpenAPI 3.1" } } })),
            }),
        ),
    ]
}

fn components() -> Value {
    json!({
        "securitySchemes": {
            "bearer": { "type": "http", "scheme": "bearer", "description": "Admin token (rat_…): scope read for GET, write for the rest" },
            "session": { "type": "apiKey", "in": "cookie", "name": "rampart_admin_session", "description": "From POST /api/login; mutations also need X-CSRF-Token" },
        },
        "parameters": parameters(),
        "responses": {
            "Problem": { "description": "error", "content": { "application/problem+json": { "schema": schema_ref("Problem") } } },
            "Unauthorized": { "description": "missing or invalid credentials", "headers": { "WWW-Authenticate": { "schema": { "type": "string" } } }, "content": { "application/problem+json": { "schema": schema_ref("Problem") } } },
            "Forbidden": { "description": "insufficient scope or bad CSRF token", "content": { "application/problem+json": { "schema": schema_ref("Problem") } } },
        },
        "schemas": schemas(),
    })
}

fn parameters() -> Value {
    let path = |name: &str| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } });
    json!({
        "ConsumerId": path("id"),
        "KeyId": path("key_id"),
        "TokenId": path("token_id"),
        "ConsumerFilter": { "name": "consumer", "in": "query", "schema": { "type": "string" } },
        "BanTarget": { "name": "target", "in": "query", "required": true, "schema": { "type": "string" }, "description": "IP or CIDR" },
        "Limit": { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 } },
    })
}

fn schemas() -> Value {
    let s = || json!({ "type": "string" });
    let ns = || json!({ "type": ["string", "null"] });
    let int = || json!({ "type": "integer" });
    let nint = || json!({ "type": ["integer", "null"] });
    let strings = || json!({ "type": "array", "items": { "type": "string" } });
    json!({
        "Problem": { "type": "object", "required": ["status", "reason", "detail"], "properties": {
            "type": s(), "title": s(), "status": int(), "reason": s(), "detail": s() } },
        "TotpStatus": { "type": "object", "properties": {
            "consumer_id": s(), "totp": { "enum": ["not_enrolled", "pending", "enabled"] },
            "confirmation_pending": { "type": "boolean" } } },
        "TotpEnrollment": { "type": "object", "properties": {
            "consumer_id": s(), "secret_base32": s(), "provisioning_uri": s(), "qr": s(),
            "shown_once": { "type": "boolean" }, "next": s() } },
        "TotpCode": { "type": "object", "required": ["code"], "properties": { "code": s() } },
        "Consumer": { "type": "object", "properties": {
            "id": s(), "name": s(), "tier": ns(), "scopes": strings(), "metadata": {},
            "allowed_cidrs": strings(), "state": { "enum": ["active", "disabled"] },
            "created_at": int(), "updated_at": int() } },
        "ConsumerCreate": { "type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "id": s(), "name": s(), "tier": ns(), "scopes": strings(), "metadata": {}, "allowed_cidrs": strings() } },
        "ConsumerPatch": { "type": "object", "additionalProperties": false, "properties": {
            "name": s(), "tier": ns(), "scopes": strings(), "metadata": {}, "allowed_cidrs": strings() } },
        "ApiKey": { "type": "object", "properties": {
            "key_id": s(), "consumer_id": s(), "env": { "enum": ["live", "test"] }, "name": s(),
            "scopes": strings(), "rate_limit": ns(), "created_at": int(), "expires_at": nint(),
            "revoked_at": nint(), "rotated_to": ns(), "last_used_at": nint(), "last_used_ip": ns() } },
        "CreatedKey": { "allOf": [ schema_ref("ApiKey"), { "type": "object", "properties": {
            "key": { "type": "string", "description": "The full key. Shown once." }, "key_shown_once": { "type": "boolean" } } } ] },
        "KeyCreate": { "type": "object", "additionalProperties": false, "properties": {
            "name": s(), "env": { "enum": ["live", "test"], "default": "live" }, "scopes": strings(),
            "rate_limit": ns(), "ttl_secs": nint() } },
        "Ban": { "type": "object", "properties": {
            "target": s(), "reason": s(), "source": { "enum": ["automatic", "manual"] }, "node": s(),
            "created_ms": int(), "expires_ms": int(), "offence": int() } },
        "BanCreate": { "type": "object", "required": ["target"], "additionalProperties": false, "properties": {
            "target": s(), "ttl_secs": { "type": "integer", "minimum": 1, "default": 3600 }, "reason": { "type": "string", "default": "manual" } } },
        "AuditEntry": { "type": "object", "properties": {
            "id": int(), "at": int(), "actor": s(), "action": s(), "target": s(), "source_ip": ns(), "detail": {} } },
        "AdminToken": { "type": "object", "properties": {
            "token_id": s(), "username": s(), "name": s(), "scopes": { "type": "array", "items": { "enum": ["read", "write"] } },
            "created_at": int(), "expires_at": nint(), "revoked_at": nint() } },
        "CreatedToken": { "allOf": [ schema_ref("AdminToken"), { "type": "object", "properties": {
            "token": { "type": "string", "description": "The token. Shown once." }, "token_shown_once": { "type": "boolean" } } } ] },
        "TokenCreate": { "type": "object", "required": ["name", "scopes"], "additionalProperties": false, "properties": {
            "name": s(), "scopes": { "type": "array", "items": { "enum": ["read", "write"] } }, "ttl_secs": nint() } },
        "AdminUser": { "type": "object", "properties": {
            "username": s(), "totp_enabled": { "type": "boolean" }, "totp_pending": { "type": "boolean" },
            "disabled": { "type": "boolean" }, "failed_logins": int(), "locked_until": nint(),
            "created_at": int(), "updated_at": int() } },
        "Login": { "type": "object", "required": ["username", "password"], "properties": {
            "username": s(), "password": { "type": "string", "format": "password" }, "totp": s() } },
        "LoginResult": { "type": "object", "properties": {
            "username": s(), "csrf_token": s(), "expires_at": int() } },
    })
}
