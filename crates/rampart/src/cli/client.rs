//! A small HTTP/1.1 client for the admin API: JSON in, JSON out, problem
//! documents turned into readable errors (`reason: detail`).

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use http::{header, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::ApiArgs;

/// How long one admin API call may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response the CLI reads (the audit log at its limit fits).
const MAX_RESPONSE: usize = 16 << 20;

/// Talks to one gateway's admin API with one token.
pub struct AdminClient {
    base: String,
    token: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl AdminClient {
    pub fn new(args: &ApiArgs) -> anyhow::Result<AdminClient> {
        let token = args
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow!("no admin token: set RAMPART_ADMIN_TOKEN or pass --token"))?;
        let base = args.admin_url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") {
            bail!("the admin URL must be http://host:port (got {base})");
        }
        let http = Client::builder(TokioExecutor::new()).build_http();
        Ok(AdminClient { base, token, http })
    }

    /// A client for the admin listener's unauthenticated operations
    /// endpoints (`/admin/…`), which need no token.
    pub fn operations(args: &ApiArgs) -> anyhow::Result<AdminClient> {
        let mut args = args.clone();
        args.token = Some(args.token.unwrap_or_else(|| "-".into()));
        Self::new(&args)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::DELETE, path, None).await
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let uri: Uri = format!("{}{path}", self.base)
            .parse()
            .with_context(|| format!("bad admin URL {}", self.base))?;
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::ACCEPT, "application/json");
        let payload = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(payload))
            .context("building the request")?;
        let response = tokio::time::timeout(TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| anyhow!("the admin API at {} did not answer in time", self.base))?
            .with_context(|| format!("cannot reach the admin API at {}", self.base))?;
        let status = response.status();
        let bytes = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|_| anyhow!("reading the admin API response failed"))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let reason = value["reason"].as_str().unwrap_or("error");
        let detail = value["detail"].as_str().unwrap_or("");
        bail!("{reason}: {detail} (HTTP {})", status.as_u16())
    }
}

/// Percent-encodes a path segment or query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
