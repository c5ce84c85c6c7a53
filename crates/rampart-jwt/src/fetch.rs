//! Loading a JWKS document from a file or an HTTPS URL.
//!
//! URLs must be `https`, except plain `http` to a loopback address (tests and
//! sidecars). Redirects are not followed, the body size is capped and the
//! whole fetch runs under a timeout set by the caller.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::ConfigError;

/// Why one fetch failed. Never contains response bodies or key material.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("reading JWKS file failed: {0}")]
    File(std::io::ErrorKind),
    #[error("JWKS request failed")]
    Request,
    #[error("JWKS endpoint answered HTTP {0}")]
    Status(u16),
    #[error("JWKS response exceeds the size limit")]
    TooLarge,
    #[error("JWKS fetch timed out")]
    Timeout,
    #[error("JWKS document rejected: {0}")]
    Parse(#[from] crate::key::KeyError),
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Where a JWKS comes from.
#[derive(Clone)]
pub(crate) enum Fetcher {
    File(PathBuf),
    Url {
        client: Box<HttpsClient>,
        uri: http::Uri,
    },
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fetcher::File(path) => write!(f, "File({})", path.display()),
            Fetcher::Url { uri, .. } => write!(f, "Url({uri})"),
        }
    }
}

impl Fetcher {
    /// A fetcher for `url`; `tls` overrides the native root store (for a private CA).
    pub(crate) fn url(
        url: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Fetcher, ConfigError> {
        let uri = validate_url(url)?;
        let tls = match tls {
            Some(cfg) => (*cfg).clone(),
            None => default_tls_config(uri.scheme_str() == Some("https"))?,
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Fetcher::Url {
            client: Box::new(client),
            uri,
        })
    }

    /// Fetches the raw document (at most `max_bytes`). No timeout here: the
    /// cache wraps every call in one.
    pub(crate) async fn fetch(&self, max_bytes: usize) -> Result<Bytes, FetchError> {
        match self {
            Fetcher::File(path) => {
                let data = tokio::fs::read(path)
                    .await
                    .map_err(|e| FetchError::File(e.kind()))?;
                if data.len() > max_bytes {
                    return Err(FetchError::TooLarge);
                }
                Ok(Bytes::from(data))
            }
            Fetcher::Url { client, uri } => fetch_url(client, uri, max_bytes).await,
        }
    }
}

async fn fetch_url(
    client: &HttpsClient,
    uri: &http::Uri,
    max_bytes: usize,
) -> Result<Bytes, FetchError> {
    let request = http::Request::get(uri.clone())
        .header(
            http::header::ACCEPT,
            "application/jwk-set+json, application/json",
        )
        .header(http::header::USER_AGENT, "rampart-jwt")
        .body(Empty::new())
        .map_err(|_| FetchError::Request)?;
    let response = client
        .request(request)
        .await
        .map_err(|_| FetchError::Request)?;
    if response.status() != http::StatusCode::OK {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    let body = Limited::new(response.into_body(), max_bytes)
        .collect()
        .await
        .map_err(|err| {
            if err.is::<http_body_util::LengthLimitError>() {
                FetchError::TooLarge
            } else {
                FetchError::Request
            }
        })?;
    Ok(body.to_bytes())
}

/// Accepts `https://...`, or `http://` to `localhost`/a loopback IP; refuses
/// credentials in the URL (they would end up in logs).
pub(crate) fn validate_url(url: &str) -> Result<http::Uri, ConfigError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| ConfigError::JwksUrl("not a valid URL"))?;
    let authority = uri
        .authority()
        .ok_or(ConfigError::JwksUrl("URL has no host"))?;
    if authority.as_str().contains('@') {
        return Err(ConfigError::JwksUrl("URL must not contain credentials"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(authority.host()) => Ok(uri),
        Some("http") => Err(ConfigError::JwksUrl(
            "JWKS URL must use https (plain http only to loopback)",
        )),
        _ => Err(ConfigError::JwksUrl("JWKS URL must use https")),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// rustls with the ring provider and the system's root certificates.
fn default_tls_config(need_roots: bool) -> Result<rustls::ClientConfig, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    if need_roots {
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if roots.is_empty() {
            return Err(ConfigError::Tls("no system root certificates found"));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| ConfigError::Tls("no usable TLS protocol versions"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rules() {
        assert!(validate_url("https://idp.example.com/.well-known/jwks.json").is_ok());
        assert!(validate_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(validate_url("http://localhost/jwks").is_ok());
        assert!(validate_url("http://[::1]:9/jwks").is_ok());
        assert!(validate_url("http://idp.example.com/jwks").is_err());
        assert!(validate_url("http://10.0.0.1/jwks").is_err());
        assert!(validate_url("ftp://idp.example.com/jwks").is_err());
        assert!(validate_url("https://user:pw@idp.example.com/jwks").is_err());
        assert!(validate_url("/jwks").is_err());
    }
}
