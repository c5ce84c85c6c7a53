//! Shared end-to-end test harness: in-process upstreams and a gateway on
//! ephemeral loopback ports, with small clients (plain, TLS, raw TCP).
#![allow(dead_code)]

pub mod pki;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An in-process upstream: echoes requests as JSON, with test endpoints.
pub struct Upstream {
    pub addr: SocketAddr,
    pub name: String,
    pub hits: Arc<AtomicUsize>,
    pub healthy: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// Serves HTTP/1.1 and HTTP/2 (prior knowledge) on 127.0.0.1:0.
    pub async fn start(name: &str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, name, None).await
    }

    /// Serves HTTPS with the given rustls config.
    pub async fn start_tls(name: &str, tls: Arc<rustls::ServerConfig>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, name, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn serve(
        listener: TcpListener,
        name: &str,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Upstream {
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let healthy = Arc::new(AtomicBool::new(true));
        let (n, h, ok) = (name.to_string(), hits.clone(), healthy.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (n, h, ok, tls) = (n.clone(), h.clone(), ok.clone(), tls.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, n.clone(), h.clone(), ok.clone()));
                    let b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = b
                                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                                .await;
                        }
                        Some(acc) => {
                            if let Ok(s) = acc.accept(stream).await {
                                let _ =
                                    b.serve_connection_with_upgrades(TokioIo::new(s), svc).await;
                            }
                        }
                    }
                });
            }
        });
        Upstream {
            addr,
            name: name.to_string(),
            hits,
            healthy,
            task,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn json_resp(status: StatusCode, v: Value) -> Response<BoxBody> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

/// A gRPC-shaped answer: one data frame, then `grpc-status` in trailers.
fn grpc_like(req: &Request<Incoming>, name: &str) -> Response<BoxBody> {
    let te = req
        .headers()
        .get("te")
        .map(|v| v.to_str().unwrap_or("").to_string());
    let info = json!({ "server": name, "version": format!("{:?}", req.version()), "te": te });
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    let frames: Vec<Result<hyper::body::Frame<Bytes>, Infallible>> = vec![
        Ok(hyper::body::Frame::data(Bytes::from(info.to_string()))),
        Ok(hyper::body::Frame::trailers(trailers)),
    ];
    let mut r =
        Response::new(http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed());
    r.headers_mut()
        .insert("content-type", "application/grpc".parse().unwrap());
    r
}

type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn handle(
    req: Request<Incoming>,
    name: String,
    hits: Arc<AtomicUsize>,
    healthy: Arc<AtomicBool>,
) -> Result<Response<BoxBody>, Infallible> {
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        let ok = healthy.load(Ordering::SeqCst);
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return Ok(json_resp(status, json!({ "server": name })));
    }
    hits.fetch_add(1, Ordering::SeqCst);
    if let Some(code) = path.strip_prefix("/status/") {
        let code = StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap();
        return Ok(json_resp(code, json!({ "server": name })));
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(100))).await;
    }
    if path.starts_with("/grpc.") {
        return Ok(grpc_like(&req, &name));
    }
    if path == "/gzip" {
        // A gzip-compressed JSON answer carrying the x-payload request header.
        use std::io::Write as _;
        let payload = req
            .headers()
            .get("x-payload")
            .map(|v| v.to_str().unwrap_or("").to_string());
        let body = json!({ "server": name, "payload": payload }).to_string();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(body.as_bytes()).unwrap();
        let mut r = Response::new(Full::new(Bytes::from(gz.finish().unwrap())).boxed());
        r.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        r.headers_mut()
            .insert("content-encoding", "gzip".parse().unwrap());
        return Ok(r);
    }
    if path == "/fields" || path == "/fields-own-id" {
        // Repeated and custom fields, and (on request) an id of its own.
        let mut r = json_resp(StatusCode::OK, json!({ "server": name }));
        let h = r.headers_mut();
        h.append("set-cookie", "a=1".parse().unwrap());
        h.append("set-cookie", "b=2; Path=/".parse().unwrap());
        h.insert("x-upstream", "yes".parse().unwrap());
        if path == "/fields-own-id" {
            h.insert("x-request-id", "upstream-chosen".parse().unwrap());
        }
        return Ok(r);
    }
    if path == "/hop" {
        let mut r = json_resp(StatusCode::OK, json!({ "server": name }));
        r.headers_mut()
            .insert("connection", "x-upstream-private".parse().unwrap());
        r.headers_mut()
            .insert("x-upstream-private", "1".parse().unwrap());
        r.headers_mut()
            .insert("keep-alive", "timeout=5".parse().unwrap());
        return Ok(r);
    }
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let version = format!("{:?}", req.version());
    let headers: serde_json::Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(String::from_utf8_lossy(v.as_bytes()))))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok(json_resp(
        StatusCode::OK,
        json!({ "server": name, "method": method, "uri": uri, "version": version, "headers": headers, "body_len": body.len() }),
    ))
}

/// A gateway started from TOML on ephemeral ports (admin too).
pub struct Gw {
    pub running: rampart::Running,
    pub dir: tempfile::TempDir,
}

impl Gw {
    /// Starts a gateway; `{dir}` in the config is replaced by a temp folder
    /// that also holds the written config file (so reloads can rewrite it).
    pub async fn start(config: &str) -> Gw {
        Self::try_start(config).await.unwrap()
    }

    pub async fn try_start(config: &str) -> anyhow::Result<Gw> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("rampart.toml");
        let text = with_defaults(config).replace("{dir}", dir.path().to_str().unwrap());
        std::fs::write(&path, &text)?;
        let loaded = rampart_config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let running = rampart::start(loaded, Some(path)).await?;
        Ok(Gw { running, dir })
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        self.running
            .gateway
            .local_addr(listener)
            .expect("listener bound")
    }

    pub fn url(&self, listener: &str, path: &str) -> String {
        format!("http://{}{}", self.addr(listener), path)
    }

    pub fn admin(&self, path: &str) -> String {
        format!("http://{}{}", self.running.admin.unwrap(), path)
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("rampart.toml")
    }

    /// Rewrites the config file (same `{dir}` substitution).
    pub fn write_config(&self, config: &str) {
        let text = with_defaults(config).replace("{dir}", self.dir.path().to_str().unwrap());
        std::fs::write(self.config_path(), text).unwrap();
    }
}

/// Test defaults: two workers, admin on an ephemeral port, quiet logs, no
/// file watching unless a test turns it on.
fn with_defaults(config: &str) -> String {
    let mut out = String::new();
    if !config.contains("[server]") {
        out.push_str("[server]\nworkers = 2\nwatch = false\n");
    }
    if !config.contains("[admin]") {
        out.push_str("[admin]\nlisten = \"127.0.0.1:0\"\n");
    }
    if !config.contains("[log]") {
        out.push_str("[log]\nlevel = \"warn\"\n");
    }
    if !config.contains("[store]") {
        out.push_str("[store]\ndata_dir = \"{dir}/data\"\n");
    }
    out.push_str(config);
    out
}

/// A response read fully.
pub struct Got {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

impl Got {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

pub fn client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

pub async fn send(req: Request<Full<Bytes>>) -> Got {
    let resp = client().request(req).await.expect("request failed");
    collect(resp).await
}

pub async fn collect(resp: Response<Incoming>) -> Got {
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
        version: parts.version,
    }
}

pub async fn get(url: &str) -> Got {
    send(Request::get(url).body(Full::new(Bytes::new())).unwrap()).await
}

pub fn req(method: &str, url: &str) -> http::request::Builder {
    Request::builder().method(method).uri(url)
}

/// Sends raw bytes on a fresh connection and returns what comes back until
/// the server closes or `wait` passes.
pub async fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    read_until_close(&mut s, wait).await
}

pub async fn read_until_close(s: &mut TcpStream, wait: Duration) -> String {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// The status code of the first response in a raw HTTP/1 answer.
pub fn status_of(raw: &str) -> u16 {
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Polls `f` until it is true or `limit` passes.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// The usual test gateway: `top` (process-wide sections), one listener
/// `main`, the upstream `up`, and one route `api` with `route` (its
/// protection keys) added.
pub fn one_route(up: &Upstream, top: &str, route: &str) -> String {
    format!(
        "{top}\n\n[listeners.main]\naddress = \"127.0.0.1:0\"\n\n[upstreams.up]\nservers = [\"{}\"]\n\n\
         [[routes]]\nname = \"api\"\nupstream = \"up\"\n{route}\n",
        up.addr
    )
}

/// The running gateway's keyring (the config must open an identity store).
pub fn keyring(g: &Gw) -> Arc<rampart_store::Keyring> {
    g.running
        .gateway
        .services()
        .identity
        .as_ref()
        .expect("identity store")
        .keyring
        .clone()
}

/// A new active consumer with `scopes` (tier "gold") and a live key for
/// it: (the key's public id, the key).
pub async fn consumer_with_key(k: &rampart_store::Keyring, scopes: &[&str]) -> (String, String) {
    use rampart_store::{Actor, KeyEnv, NewConsumer, NewKey};
    let actor = Actor::system();
    let consumer = k
        .create_consumer(
            NewConsumer {
                id: None,
                name: "acme".into(),
                tier: Some("gold".into()),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                metadata: serde_json::json!({}),
                allowed_cidrs: Vec::new(),
            },
            &actor,
        )
        .await
        .unwrap();
    let created = k
        .create_key(
            NewKey {
                consumer_id: consumer.id.clone(),
                env: KeyEnv::Live,
                name: "ci".into(),
                scopes: Vec::new(),
                rate_limit: None,
                ttl_secs: None,
            },
            &actor,
        )
        .await
        .unwrap();
    (
        created.record.key_id.clone(),
        created.key.expose().to_string(),
    )
}
