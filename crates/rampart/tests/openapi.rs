//! OpenAPI positive security through the gateway: shadow endpoints refused,
//! parameters and bodies validated with the failing constraint named,
//! undeclared request properties stripped before the upstream sees them,
//! undeclared response fields removed, and API discovery learning templates
//! from traffic and diffing them against the spec.

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::Full;

/// The test upstream echoes `{server, method, uri, version, headers,
/// body_len}`; the spec declares only part of it.
const SPEC: &str = r#"
openapi: 3.1.0
info: { title: users, version: "1" }
paths:
  /users/{id}:
    get:
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer, minimum: 1 } }
      responses:
        "200":
          description: a user
          content:
            application/json:
              schema:
                type: object
                properties:
                  server: { type: string }
                  method: { type: string }
  /users:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [name]
              properties:
                name: { type: string, maxLength: 20 }
      responses:
        "200": { description: created }
  /orders:
    get:
      x-rampart-ratelimit: { count: 2, period: 1m, key: ip }
      responses:
        "200": { description: orders }
  /account:
    get:
      x-rampart-auth: { methods: [api_key], scopes: ["account:read"] }
      responses:
        "200": { description: account }
"#;

struct Api {
    g: Gw,
    _spec_dir: tempfile::TempDir,
}

async fn gw(up: &Upstream, openapi: &str) -> Api {
    let spec_dir = tempfile::tempdir().unwrap();
    let spec = spec_dir.path().join("spec.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let g = Gw::start(&format!(
        r#"
[listeners.main]
address = "127.0.0.1:0"

[upstreams.up]
servers = ["{}"]

[[routes]]
name = "api"
upstream = "up"
discovery = true
openapi = {{ spec = "{}", {openapi} }}
"#,
        up.addr,
        spec.display()
    ))
    .await;
    Api {
        g,
        _spec_dir: spec_dir,
    }
}

fn post_json(url: &str, body: &str) -> http::Request<Full<Bytes>> {
    req("POST", url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_endpoints_and_invalid_requests_are_refused_with_the_failed_constraint() {
    let up = Upstream::start("up").await;
    let api = gw(&up, "").await;
    let g = &api.g;
    let r = get(&g.url("main", "/admin/backup")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["reason"], "unknown_endpoint");
    let r = send(post_json(&g.url("main", "/users/7"), "{}")).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET");
    let r = get(&g.url("main", "/users/abc")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["reason"], "openapi_validation_failed");
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("type"), "{detail}");
    let r = send(post_json(
        &g.url("main", "/users"),
        r#"{"name":"a very long name indeed, too long"}"#,
    ))
    .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["detail"].as_str().unwrap().contains("maxLength"));
    assert_eq!(up.hits(), 0, "nothing invalid reached the upstream");
    assert_eq!(get(&g.url("main", "/users/7")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_request_properties_are_stripped_before_the_upstream_sees_them() {
    let up = Upstream::start("up").await;
    let api = gw(&up, "undeclared_request = \"strip\"").await;
    let r = send(post_json(
        &api.g.url("main", "/users"),
        r#"{"name":"mallory","is_admin":true}"#,
    ))
    .await;
    assert_eq!(r.status, 200);
    // The echo reports the body length it received: {"name":"mallory"}.
    assert_eq!(r.json()["body_len"], r#"{"name":"mallory"}"#.len());
    let api = gw(&up, "undeclared_request = \"reject\"").await;
    let r = send(post_json(
        &api.g.url("main", "/users"),
        r#"{"name":"m","role":"admin"}"#,
    ))
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_response_fields_are_removed() {
    let up = Upstream::start("up").await;
    let api = gw(&up, "strip_response = \"enforce\"").await;
    let r = get(&api.g.url("main", "/users/7")).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["server"], "up");
    assert_eq!(v["method"], "GET");
    assert!(
        v.get("headers").is_none(),
        "undeclared fields are gone: {v}"
    );
    assert_eq!(
        r.headers["content-length"],
        r.body.len().to_string().as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_learns_templates_and_reports_shadow_and_unseen_endpoints() {
    let up = Upstream::start("up").await;
    let api = gw(&up, "unknown_endpoints = \"monitor\"").await;
    let g = &api.g;
    for id in 1..=30 {
        assert_eq!(
            get(&g.url("main", &format!("/users/{id}"))).await.status,
            200
        );
    }
    for id in [
        "a1f3c9e2-0b7d-4c5e-9f10-2b3c4d5e6f70",
        "5d0c7f3a-1e2b-4a6c-8d9e-0f1a2b3c4d5e",
    ] {
        get(&g.url("main", &format!("/internal/debug/{id}"))).await;
    }
    let doc = get(&g.admin("/admin/discovery")).await.json();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/users/{id}"), "{doc}");
    assert!(
        paths.keys().any(|p| p.starts_with("/internal/debug/{")),
        "{doc}"
    );
    let diff = get(&g.admin("/admin/discovery/diff?route=api"))
        .await
        .json();
    let shadow = diff["shadow"].to_string();
    let unseen = diff["unseen"].to_string();
    assert!(shadow.contains("/internal/debug/"), "{diff}");
    assert!(
        unseen.contains("/orders") && unseen.contains("/users"),
        "{diff}"
    );
    assert!(!shadow.contains("/users/{id}"), "{diff}");

    // The same through the CLI.
    let admin = format!("http://{}", g.running.admin.unwrap());
    let cli = move |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(args)
            .args(["--admin", &admin])
            .env_remove("RAMPART_ADMIN_TOKEN")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let exported = tokio::task::spawn_blocking(move || {
        (
            cli(&["discover", "export"]),
            cli(&["discover", "diff", "--route", "api"]),
        )
    })
    .await
    .unwrap();
    assert!(exported.0.contains("/users/{id}"), "{}", exported.0);
    assert!(exported.1.contains("/internal/debug/"), "{}", exported.1);
}

/// The spec is the single source of policy: an operation's
/// `x-rampart-ratelimit` and `x-rampart-auth` apply to it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_extensions_set_per_operation_rate_limits_and_auth() {
    let up = Upstream::start("up").await;
    let spec_dir = tempfile::tempdir().unwrap();
    let spec = spec_dir.path().join("spec.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let g = Gw::start(&format!(
        "[listeners.main]\naddress = \"127.0.0.1:0\"\n[upstreams.up]\nservers = [\"{}\"]\n\
         [[routes]]\nname = \"api\"\nupstream = \"up\"\nauth = {{ optional = true }}\n\
         openapi = {{ spec = \"{}\" }}\n",
        up.addr,
        spec.display()
    ))
    .await;
    // x-rampart-ratelimit on GET /orders: two a minute, then 429.
    assert_eq!(get(&g.url("main", "/orders")).await.status, 200);
    assert_eq!(get(&g.url("main", "/orders")).await.status, 200);
    let r = get(&g.url("main", "/orders")).await;
    assert_eq!(r.status, 429);
    assert!(r.headers["ratelimit-policy"]
        .to_str()
        .unwrap()
        .contains("q=2"));
    // Other operations are not limited by it, and need no credential.
    for _ in 0..4 {
        assert_eq!(get(&g.url("main", "/users/7")).await.status, 200);
    }
    // x-rampart-auth on GET /account: anonymous is refused with 401.
    let r = get(&g.url("main", "/account")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "auth_required");
    assert!(r.headers.contains_key("www-authenticate"));
}
