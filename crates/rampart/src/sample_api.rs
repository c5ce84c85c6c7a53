//! The built-in sample JSON API used by the demo: users, orders, a login
//! endpoint and an echo endpoint, served by rampart itself on a loopback port
//! so a new user sees the gateway work with nothing else installed.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// Binds the sample API and serves it in the background.
pub async fn spawn(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = service_fn(handle);
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    tracing::info!(target: "rampart::demo", address = %local, "sample API up");
    Ok(local)
}

fn users() -> Value {
    json!([
        { "id": 1, "name": "Alice Liddell", "email": "alice@example.com", "tier": "gold" },
        { "id": 2, "name": "Bob Builder", "email": "bob@example.com", "tier": "free" },
        { "id": 3, "name": "Carol Danvers", "email": "carol@example.com", "tier": "free" }
    ])
}

fn orders() -> Value {
    json!([
        { "id": 101, "user_id": 1, "item": "tea set", "total": 42.5,
          "payment": { "card_number": "4111 1111 1111 1111", "holder": "Alice Liddell" } },
        { "id": 102, "user_id": 2, "item": "hammer", "total": 12.0,
          "payment": { "card_number": "5500 0000 0000 0004", "holder": "Bob Builder" } }
    ])
}

fn json_response(status: StatusCode, v: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn find(list: Value, id: &str) -> Response<Full<Bytes>> {
    let hit = id
        .parse::<u64>()
        .ok()
        .and_then(|id| list.as_array()?.iter().find(|u| u["id"] == id).cloned());
    match hit {
        Some(v) => json_response(StatusCode::OK, &v),
        None => json_response(StatusCode::NOT_FOUND, &json!({ "error": "not found" })),
    }
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let resp = match (req.method(), segments.as_slice()) {
        (&Method::GET, ["healthz"]) => json_response(StatusCode::OK, &json!({ "status": "ok" })),
        (&Method::GET, ["users"]) => json_response(StatusCode::OK, &users()),
        (&Method::GET, ["users", id]) => find(users(), id),
        (&Method::GET, ["orders"]) => json_response(StatusCode::OK, &orders()),
        (&Method::GET, ["orders", id]) => find(orders(), id),
        (&Method::POST, ["login"]) => login(req).await,
        (&Method::GET, ["debug"]) => debug_leak(),
        (_, ["echo", ..]) => echo(req).await,
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": "no such endpoint" }),
        ),
    };
    Ok(resp)
}

/// A careless error page, as frameworks in debug mode send: it leaks a
/// stack trace (the DLP demo blocks it).
fn debug_leak() -> Response<Full<Bytes>> {
    let trace = "java.lang.IllegalStateException: order store unavailable\n\
                 \tat com.example.shop.OrderService.load(OrderService.java:42)\n\
                 \tat com.example.shop.OrderController.get(OrderController.java:17)\n";
    let mut r = Response::new(Full::new(Bytes::from_static(trace.as_bytes())));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}

async fn read_json(req: Request<Incoming>) -> Option<Value> {
    let body = Limited::new(req.into_body(), 64 * 1024)
        .collect()
        .await
        .ok()?
        .to_bytes();
    serde_json::from_slice(&body).ok()
}

async fn login(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(v) = read_json(req).await else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "expected a JSON body" }),
        );
    };
    let ok = v["username"] == "alice" && v["password"] == "wonderland";
    if ok {
        json_response(
            StatusCode::OK,
            &json!({ "token": "demo-session-token", "user_id": 1 }),
        )
    } else {
        json_response(
            StatusCode::UNAUTHORIZED,
            &json!({ "error": "invalid credentials" }),
        )
    }
}

/// Echoes the request as the upstream saw it (method, path, headers, body
/// size), which makes the gateway's header handling visible.
async fn echo(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let headers: serde_json::Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(String::from_utf8_lossy(v.as_bytes()))))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    json_response(
        StatusCode::OK,
        &json!({ "method": method, "uri": uri, "headers": headers, "body_bytes": body }),
    )
}
