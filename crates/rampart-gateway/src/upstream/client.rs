//! HTTP clients to upstream servers: pooled keep-alive connections, HTTP/1.1
//! or HTTP/2, plain or TLS (always verified, against the system roots or a
//! configured CA, with an optional client certificate).

use std::sync::Arc;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rampart_config::{Upstream, UpstreamProtocol};

use crate::body::RequestBody;
use crate::tls::{load_certs, load_key};

pub type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// One worker's client for one pool.
#[derive(Clone)]
pub enum UpstreamClient {
    Plain(Client<HttpConnector, RequestBody>),
    Tls(Client<HttpsConnector, RequestBody>),
}

impl UpstreamClient {
    pub fn request(
        &self,
        req: http::Request<RequestBody>,
    ) -> hyper_util::client::legacy::ResponseFuture {
        match self {
            UpstreamClient::Plain(c) => c.request(req),
            UpstreamClient::Tls(c) => c.request(req),
        }
    }
}

/// Everything needed to make clients for a pool, built once per config.
pub struct ClientFactory {
    tls: Option<Arc<rustls::ClientConfig>>,
    server_name: Option<String>,
    cfg: Upstream,
}

impl ClientFactory {
    /// Reads CA and client-certificate files; errors name the config key.
    pub fn new(cfg: &Upstream, path: &str) -> Result<Self, (String, String)> {
        let tls = match &cfg.tls {
            None => None,
            Some(t) => {
                let mut roots = rustls::RootCertStore::empty();
                match &t.ca {
                    Some(ca) => {
                        for cert in load_certs(ca).map_err(|e| (format!("{path}.tls.ca"), e))? {
                            roots.add(cert).map_err(|e| {
                                (
                                    format!("{path}.tls.ca"),
                                    format!("invalid CA certificate: {e}"),
                                )
                            })?;
                        }
                    }
                    None => {
                        let native = rustls_native_certs::load_native_certs();
                        for cert in native.certs {
                            let _ = roots.add(cert);
                        }
                        if roots.is_empty() {
                            return Err((
                                format!("{path}.tls.ca"),
                                "no system CA certificates found; set tls.ca".into(),
                            ));
                        }
                    }
                }
                let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| (format!("{path}.tls"), e.to_string()))?
                    .with_root_certificates(roots);
                let config = match (&t.client_cert, &t.client_key) {
                    (Some(c), Some(k)) => {
                        let certs =
                            load_certs(c).map_err(|e| (format!("{path}.tls.client_cert"), e))?;
                        let key = load_key(k).map_err(|e| (format!("{path}.tls.client_key"), e))?;
                        builder
                            .with_client_auth_cert(certs, key)
                            .map_err(|e| (format!("{path}.tls.client_cert"), e.to_string()))?
                    }
                    _ => builder.with_no_client_auth(),
                };
                // ALPN is offered by the connector (enable_http1/2 below).
                Some(Arc::new(config))
            }
        };
        Ok(ClientFactory {
            tls,
            server_name: cfg.tls.as_ref().and_then(|t| t.server_name.clone()),
            cfg: cfg.clone(),
        })
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A fresh client (one per worker, so connections stay on their thread).
    pub fn build(&self) -> UpstreamClient {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(self.cfg.connect_timeout.0));
        http.enforce_http(self.tls.is_none());
        let mut b = Client::builder(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(self.cfg.max_idle_per_server)
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .retry_canceled_requests(true);
        if self.cfg.protocol == UpstreamProtocol::Http2 {
            b.http2_only(true);
        }
        match &self.tls {
            None => UpstreamClient::Plain(b.build(http)),
            Some(tls) => {
                let builder = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config((**tls).clone())
                    .https_only();
                let builder = match &self.server_name {
                    Some(n) => builder.with_server_name_resolver(
                        hyper_rustls::FixedServerNameResolver::new(
                            rustls_pki_types::ServerName::try_from(n.clone())
                                .expect("validated server name"),
                        ),
                    ),
                    None => builder,
                };
                let connector = match self.cfg.protocol {
                    UpstreamProtocol::Http1 => builder.enable_http1().wrap_connector(http),
                    UpstreamProtocol::Http2 => builder.enable_http2().wrap_connector(http),
                    UpstreamProtocol::Auto => builder.enable_all_versions().wrap_connector(http),
                };
                UpstreamClient::Tls(b.build(connector))
            }
        }
    }
}
