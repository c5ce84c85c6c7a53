//! Upstream pools: servers with their health, a balancer, and pooled
//! connections per worker thread: rampart's own pool ([`h1pool`]) for plain
//! HTTP/1.1 servers, hyper-util's client for TLS and HTTP/2.

pub mod balance;
pub mod client;
pub mod fields;
mod h1body;
pub(crate) mod h1chunked;
mod h1conn;
pub mod h1pool;
pub(crate) mod h1wire;
pub mod health;

pub use h1body::{RawUpgrade, UpstreamBody};

/// An upstream's answer. rampart's own HTTP/1 client leaves its fields raw
/// ([`fields::RawFields`], the response's map empty): a response the proxy
/// forwards with its fields unchanged then needs no map at all
/// ([`UpstreamResponse::into_unedited`]); every other use asks for the
/// whole response ([`UpstreamResponse::into_response`]).
pub struct UpstreamResponse {
    response: Response<UpstreamBody>,
    raw: Option<(fields::RawFields, bool)>,
}

impl UpstreamResponse {
    /// A response whose fields are in its map (hyper's client).
    pub fn mapped(response: Response<UpstreamBody>) -> Self {
        UpstreamResponse {
            response,
            raw: None,
        }
    }

    /// `response` (its map empty) with its fields raw; `edited`: some field
    /// is one the proxy changes on the way out.
    pub(crate) fn raw(
        response: Response<UpstreamBody>,
        fields: fields::RawFields,
        edited: bool,
    ) -> Self {
        UpstreamResponse {
            response,
            raw: Some((fields, edited)),
        }
    }

    pub fn status(&self) -> http::StatusCode {
        self.response.status()
    }

    /// The response with every field in its map.
    pub fn into_response(self) -> Response<UpstreamBody> {
        let mut response = self.response;
        // While the fields are raw the map is empty (see `raw`): it is
        // replaced, by one from the pool.
        if let Some((fields, _)) = self.raw {
            *response.headers_mut() = fields.into_map();
        }
        response
    }

    /// The response (its map empty) and its raw fields, when none of them
    /// is one the proxy changes on the way out; otherwise `self` back.
    // Not boxed: the error is the common case for hyper's client, and a box
    // would be an allocation per response to spare a move.
    #[allow(clippy::result_large_err)]
    pub fn into_unedited(self) -> Result<(Response<UpstreamBody>, fields::RawFields), Self> {
        match self.raw {
            Some((fields, false)) => Ok((self.response, fields)),
            raw => Err(UpstreamResponse {
                response: self.response,
                raw,
            }),
        }
    }
}

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{Either, TryFutureExt};
use http::uri::{Authority, Scheme};
use http::{Request, Response};
use metrics::Gauge;
use rampart_config::validate::{parse_hash_on, HashOn};
use rampart_config::{Upstream, UpstreamProtocol};

use crate::body::RequestBody;
use balance::{hash64, Balancer};
use client::{ClientFactory, UpstreamClient};
use h1pool::H1Pool;

thread_local! {
    /// Index of the worker running on this thread; the control thread uses the
    /// last slot. Set once when a worker starts.
    static WORKER: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Marks the current thread as worker `i`.
pub fn set_worker_index(i: usize) {
    WORKER.with(|w| w.set(i));
}

/// One upstream server and what we know of its health.
pub struct Server {
    pub authority: Authority,
    /// Set by active health checks.
    healthy: AtomicBool,
    /// Passive ejection: milliseconds since the pool's epoch until which the
    /// server rests.
    ejected_until: AtomicU64,
    failures: AtomicU32,
    /// Requests in flight (for least connections).
    pub active: AtomicUsize,
    up_gauge: Gauge,
}

/// A pool of servers behind one name.
pub struct Pool {
    pub name: String,
    pub servers: Vec<Server>,
    pub scheme: Scheme,
    pub cfg: Upstream,
    balancer: Balancer,
    hash_on: Option<HashOn>,
    /// Legacy clients: one per worker plus the control thread's when `h1` is
    /// None, else just one for health checks.
    clients: Vec<UpstreamClient>,
    /// rampart's own pool, for plain HTTP/1.1 servers.
    h1: Option<Arc<H1Pool>>,
    epoch: Instant,
}

/// Why a request to an upstream server failed, from either client.
#[derive(Debug)]
pub enum SendError {
    Legacy(hyper_util::client::legacy::Error),
    Pool(h1pool::Error),
}

impl SendError {
    /// Whether no connection could be made to the server.
    pub fn is_connect(&self) -> bool {
        match self {
            SendError::Legacy(e) => e.is_connect(),
            SendError::Pool(e) => e.is_connect(),
        }
    }

    /// Whether the response headers did not come by the deadline.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendError::Pool(h1pool::Error::Timeout))
    }

    /// The underlying error, to walk its source chain.
    pub fn as_error(&self) -> &(dyn std::error::Error + 'static) {
        match self {
            SendError::Legacy(e) => e,
            SendError::Pool(e) => e,
        }
    }
}

impl Pool {
    /// Builds the pool with `workers + 1` clients (the extra one for the
    /// control thread's health checks).
    pub fn new(name: &str, cfg: &Upstream, workers: usize) -> Result<Self, (String, String)> {
        let path = format!("upstreams.{name}");
        let factory = ClientFactory::new(cfg, &path)?;
        let mut servers = Vec::with_capacity(cfg.servers.len());
        for (i, s) in cfg.servers.iter().enumerate() {
            let authority: Authority = s.parse().map_err(|e| {
                (
                    format!("{path}.servers[{i}]"),
                    format!("invalid server address: {e}"),
                )
            })?;
            let up_gauge = metrics::gauge!("rampart_upstream_healthy", "upstream" => name.to_string(), "server" => s.clone());
            up_gauge.set(1.0);
            servers.push(Server {
                authority,
                healthy: AtomicBool::new(true),
                ejected_until: AtomicU64::new(0),
                failures: AtomicU32::new(0),
                active: AtomicUsize::new(0),
                up_gauge,
            });
        }
        // Plain TCP without prior-knowledge HTTP/2 is HTTP/1.1 (`auto` only
        // negotiates on TLS).
        let h1 = (!factory.is_tls() && cfg.protocol != UpstreamProtocol::Http2).then(|| {
            Arc::new(H1Pool::new(
                servers.len(),
                cfg.max_idle_per_server,
                cfg.connect_timeout.0,
            ))
        });
        let legacy_clients = if h1.is_some() { 1 } else { workers + 1 };
        Ok(Pool {
            name: name.to_string(),
            balancer: Balancer::new(cfg.balance, &cfg.servers),
            hash_on: cfg.hash_on.as_deref().and_then(|h| parse_hash_on(h).ok()),
            scheme: if factory.is_tls() {
                Scheme::HTTPS
            } else {
                Scheme::HTTP
            },
            clients: (0..legacy_clients).map(|_| factory.build()).collect(),
            h1,
            servers,
            cfg: cfg.clone(),
            epoch: Instant::now(),
        })
    }

    /// Sends a request with head `head` (its URI in origin or absolute form,
    /// the client's `Host` header) and `body` to server `i`: through
    /// rampart's own client, which writes the head from the reference (so a
    /// retry needs no copy of it), or through hyper's, which gets a request
    /// of its own in absolute form. Without response headers by `deadline`,
    /// fails with a timeout ([`SendError::is_timeout`]).
    ///
    /// Not an `async fn`: that would keep one more copy of its arguments in
    /// every request's future, which is moved as a whole.
    pub fn send<'a>(
        &'a self,
        i: usize,
        head: &'a http::request::Parts,
        added: &'a crate::headers::Added,
        body: RequestBody,
        deadline: tokio::time::Instant,
    ) -> impl Future<Output = Result<UpstreamResponse, SendError>> + Send + 'a {
        match &self.h1 {
            Some(h1) => Either::Left(
                h1.send(i, &self.servers[i].authority, head, added, body, deadline)
                    .map_err(SendError::Pool),
            ),
            None => {
                let req = self.legacy_request(i, head, added, body);
                Either::Right(async move {
                    match tokio::time::timeout_at(deadline, self.client().request(req)).await {
                        Ok(r) => r
                            .map(|r| UpstreamResponse::mapped(r.map(UpstreamBody::Hyper)))
                            .map_err(SendError::Legacy),
                        Err(_) => Err(SendError::Pool(h1pool::Error::Timeout)),
                    }
                })
            }
        }
    }

    /// hyper's client takes its request by value, in absolute form.
    fn legacy_request(
        &self,
        i: usize,
        head: &http::request::Parts,
        added: &crate::headers::Added,
        body: RequestBody,
    ) -> Request<RequestBody> {
        let mut req = Request::new(body);
        *req.method_mut() = head.method.clone();
        *req.headers_mut() = head.headers.clone();
        added.insert_into(req.headers_mut());
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(self.scheme.clone());
        uri.authority = Some(self.servers[i].authority.clone());
        uri.path_and_query = Some(
            head.uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
        );
        *req.uri_mut() = http::Uri::from_parts(uri).unwrap_or_default();
        *req.version_mut() = http::Version::HTTP_11;
        req
    }

    /// The legacy client of the calling worker thread (health checks use it
    /// for every pool).
    pub fn client(&self) -> &UpstreamClient {
        let i = WORKER.with(Cell::get).min(self.clients.len() - 1);
        &self.clients[i]
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn is_available(&self, i: usize) -> bool {
        let s = &self.servers[i];
        // 0: never ejected, or the ejection was seen to end; only then is
        // the clock not read (it is, otherwise, on every pick).
        let until = s.ejected_until.load(Ordering::Relaxed);
        if !s.healthy.load(Ordering::Relaxed) {
            return false;
        }
        if until == 0 {
            return true;
        }
        if until > self.now_ms() {
            return false;
        }
        // Over: forget it (another thread may have ejected anew meanwhile,
        // which this leaves in place).
        let _ = s
            .ejected_until
            .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed);
        true
    }

    /// The hash key for consistent hashing, from the request.
    pub fn hash_key(&self, client_ip: std::net::IpAddr, headers: &http::HeaderMap) -> Option<u64> {
        match self.hash_on.as_ref()? {
            HashOn::ClientIp => Some(hash64(client_ip.to_string().as_bytes())),
            HashOn::Header(h) => Some(headers.get(h).map_or(0, |v| hash64(v.as_bytes()))),
            HashOn::Cookie(name) => Some(cookie(headers, name).map_or(0, |v| hash64(v.as_bytes()))),
        }
    }

    /// Picks an available server, or None (→ 503).
    pub fn pick(&self, key: Option<u64>) -> Option<usize> {
        self.balancer.pick(
            self.servers.len(),
            key,
            |i| self.is_available(i),
            |i| self.servers[i].active.load(Ordering::Relaxed),
        )
    }

    /// Passive health: a live request to server `i` succeeded or failed.
    pub fn report(&self, i: usize, ok: bool) {
        let s = &self.servers[i];
        if ok {
            s.failures.store(0, Ordering::Relaxed);
            return;
        }
        let max = self.cfg.passive_health.max_failures;
        if max == 0 {
            return;
        }
        let n = s.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= max {
            s.failures.store(0, Ordering::Relaxed);
            let until = self.now_ms() + self.cfg.passive_health.eject_for.0.as_millis() as u64;
            s.ejected_until.store(until, Ordering::Relaxed);
            tracing::warn!(target: "rampart::upstream", upstream = %self.name, server = %s.authority,
                failures = n, eject_for_ms = self.cfg.passive_health.eject_for.0.as_millis() as u64,
                "server ejected after consecutive failures");
        }
    }

    /// Active health: records the verdict of a probe.
    pub(crate) fn set_healthy(&self, i: usize, healthy: bool) {
        let s = &self.servers[i];
        if s.healthy.swap(healthy, Ordering::Relaxed) != healthy {
            s.up_gauge.set(if healthy { 1.0 } else { 0.0 });
            tracing::warn!(target: "rampart::upstream", upstream = %self.name, server = %s.authority,
                healthy, "server health changed");
        }
    }

    pub fn server_health(&self) -> Vec<(String, bool)> {
        (0..self.servers.len())
            .map(|i| (self.servers[i].authority.to_string(), self.is_available(i)))
            .collect()
    }

    pub fn retry_budget(&self) -> u32 {
        self.cfg.retries
    }

    pub fn read_timeout(&self) -> Duration {
        self.cfg.read_timeout.0
    }

    pub fn total_timeout(&self) -> Duration {
        self.cfg.total_timeout.0
    }
}

/// The value of cookie `name` from the `Cookie` headers.
pub fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// Keeps a server's in-flight count right however the request ends.
pub struct InFlight<'p>(&'p Server);

impl<'p> InFlight<'p> {
    pub fn new(s: &'p Server) -> Self {
        s.active.fetch_add(1, Ordering::Relaxed);
        InFlight(s)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(extra: &str) -> Pool {
        let cfg: Upstream = toml::from_str(&format!(
            "servers = ['127.0.0.1:1', '127.0.0.1:2']\n{extra}"
        ))
        .unwrap();
        Pool::new("p", &cfg, 1).unwrap()
    }

    #[test]
    fn passive_ejection_after_max_failures() {
        let p = pool("passive_health = { max_failures = 2, eject_for = '1h' }");
        assert!(p.is_available(0));
        p.report(0, false);
        assert!(p.is_available(0));
        p.report(0, false);
        assert!(!p.is_available(0));
        for _ in 0..4 {
            assert_eq!(p.pick(None), Some(1));
        }
    }

    #[test]
    fn an_ejection_ends_and_can_begin_again() {
        let p = pool("passive_health = { max_failures = 1, eject_for = '40ms' }");
        p.report(0, false);
        assert!(!p.is_available(0));
        std::thread::sleep(std::time::Duration::from_millis(80));
        assert!(p.is_available(0));
        // Seen to be over: forgotten, so picks no longer read the clock.
        assert_eq!(p.servers[0].ejected_until.load(Ordering::Relaxed), 0);
        p.report(0, false);
        assert!(!p.is_available(0));
    }

    #[test]
    fn success_resets_the_failure_count() {
        let p = pool("passive_health = { max_failures = 2, eject_for = '1h' }");
        p.report(0, false);
        p.report(0, true);
        p.report(0, false);
        assert!(p.is_available(0));
    }

    #[test]
    fn active_health_takes_servers_out_and_back() {
        let p = pool("");
        p.set_healthy(1, false);
        assert_eq!(p.pick(None), Some(0));
        assert_eq!(p.pick(None), Some(0));
        p.set_healthy(0, false);
        assert_eq!(p.pick(None), None);
        p.set_healthy(1, true);
        assert_eq!(p.pick(None), Some(1));
    }

    #[test]
    fn cookie_lookup() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::COOKIE, "a=1; sid=xyz; b=2".parse().unwrap());
        assert_eq!(cookie(&h, "sid"), Some("xyz"));
        assert_eq!(cookie(&h, "none"), None);
    }
}
