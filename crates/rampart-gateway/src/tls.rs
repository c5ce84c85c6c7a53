//! TLS termination with rustls: TLS 1.2 and 1.3 only, modern AEAD suites (the
//! ring provider's defaults), certificates chosen by SNI (exact names and
//! `*.example.com`), ALPN for HTTP/2, optional client-certificate checks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rampart_config::{ListenerTls, TlsVersion};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The one crypto provider used for everything.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid PEM in {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate found in {}", path.display()));
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("no usable private key in {}: {e}", path.display()))
}

/// Picks the certificate for the SNI name a client asked for.
#[derive(Debug)]
struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by the suffix after `*` (e.g. `.example.com`).
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            return self.default.clone();
        };
        let name = name.to_ascii_lowercase();
        if let Some(ck) = self.exact.get(&name) {
            return Some(ck.clone());
        }
        // `*.example.com` covers exactly one more label, as in certificates.
        if let Some(dot) = name.find('.') {
            if let Some(ck) = self.wildcard.get(&name[dot..]) {
                return Some(ck.clone());
            }
        }
        self.default.clone()
    }
}

/// Builds a listener's server config; errors carry the config key path.
pub fn server_config(
    tls: &ListenerTls,
    path: &str,
) -> Result<Arc<rustls::ServerConfig>, (String, String)> {
    let provider = provider();
    let mut resolver = SniResolver {
        exact: HashMap::new(),
        wildcard: HashMap::new(),
        default: None,
    };
    for (i, c) in tls.certificates.iter().enumerate() {
        let cpath = format!("{path}.tls.certificates[{i}]");
        let certs = load_certs(&c.cert).map_err(|e| (format!("{cpath}.cert"), e))?;
        let key = load_key(&c.key).map_err(|e| (format!("{cpath}.key"), e))?;
        let signing = provider.key_provider.load_private_key(key).map_err(|e| {
            (
                format!("{cpath}.key"),
                format!("unsupported private key: {e}"),
            )
        })?;
        let ck = Arc::new(CertifiedKey::new(certs, signing));
        ck.keys_match().map_err(|e| {
            (
                cpath.clone(),
                format!("certificate and key do not match: {e}"),
            )
        })?;
        for n in &c.server_names {
            let n = n.to_ascii_lowercase();
            match n.strip_prefix('*') {
                Some(suffix) => resolver.wildcard.insert(suffix.to_string(), ck.clone()),
                None => resolver.exact.insert(n, ck.clone()),
            };
        }
        if c.default || resolver.default.is_none() {
            resolver.default = Some(ck);
        }
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| (format!("{path}.tls.min_version"), e.to_string()))?;
    let builder = match &tls.client_auth {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let cpath = format!("{path}.tls.client_auth.ca");
            let mut roots = rustls::RootCertStore::empty();
            for cert in load_certs(&ca.ca).map_err(|e| (cpath.clone(), e))? {
                roots
                    .add(cert)
                    .map_err(|e| (cpath.clone(), format!("invalid CA certificate: {e}")))?;
            }
            let vb = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let vb = if ca.required {
                vb
            } else {
                vb.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(vb.build().map_err(|e| (cpath, e.to_string()))?)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = tls.alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}
