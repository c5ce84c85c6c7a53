//! The client's TLS facts, taken once per connection: [`HelloTap`] records
//! the first bytes the client sends (the ClientHello) while rustls reads
//! them, so its JA4 fingerprint can be computed after the handshake; the
//! verified client certificate's names are read for mTLS consumer mapping.
//!
//! rustls parses the ClientHello itself but does not expose the extension
//! order and lists JA4 needs, hence the tap rather than rustls' own view.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rampart_core::{ClientCert, PeerTls};
use tokio::io::{AsyncRead, ReadBuf};

/// Stop recording after this much: real ClientHellos are under 2 KiB, and
/// the JA4 parser refuses anything larger than 16 KiB anyway.
const MAX_RECORDED: usize = 16 * 1024;

/// A stream that copies what is read from it until [`HelloTap::take`].
pub struct HelloTap<S> {
    inner: S,
    recorded: Option<Vec<u8>>,
}

impl<S> HelloTap<S> {
    pub fn new(inner: S) -> Self {
        HelloTap {
            inner,
            recorded: Some(Vec::new()),
        }
    }

    /// The bytes recorded so far; recording stops for good.
    pub fn take(&mut self) -> Vec<u8> {
        self.recorded.take().unwrap_or_default()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HelloTap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(rec)) = (&polled, this.recorded.as_mut()) {
            let new = &buf.filled()[before..];
            let room = MAX_RECORDED.saturating_sub(rec.len());
            rec.extend_from_slice(&new[..new.len().min(room)]);
        }
        polled
    }
}

crate::io_wrap::write_through!(HelloTap);

/// The connection's TLS facts after a completed handshake.
pub fn peer_tls(conn: &rustls::ServerConnection, hello: &[u8]) -> Arc<PeerTls> {
    let ja4 = rampart_bot::ja4::fingerprint(hello, rampart_bot::ja4::Transport::Tcp)
        .ok()
        .map(Arc::from);
    let client_cert = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|der| client_cert(der.as_ref()));
    Arc::new(PeerTls { client_cert, ja4 })
}

/// The names of a DER certificate; `None` if it does not parse (rustls
/// verified it already, so this does not happen in practice).
pub fn client_cert(der: &[u8]) -> Option<ClientCert> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let mut out = ClientCert {
        subject_cn: subject
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .last()
            .map(str::to_string),
        subject: subject.to_string(),
        sha256: rampart_bot::crypto::hex(&rampart_bot::crypto::sha256(der)),
        ..ClientCert::default()
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(s) => out.san_dns.push(s.to_ascii_lowercase()),
                GeneralName::URI(s) => out.san_uri.push(s.to_string()),
                GeneralName::RFC822Name(s) => out.san_email.push(s.to_string()),
                _ => {}
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = vec![
            rcgen::SanType::DnsName("Svc-A.Internal".try_into().unwrap()),
            rcgen::SanType::URI("spiffe://corp/svc-a".try_into().unwrap()),
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "svc-a");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Corp");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let c = client_cert(cert.der()).unwrap();
        assert_eq!(c.subject_cn.as_deref(), Some("svc-a"));
        assert!(c.subject.contains("CN=svc-a"), "{}", c.subject);
        assert_eq!(c.san_dns, ["svc-a.internal"]);
        assert_eq!(c.san_uri, ["spiffe://corp/svc-a"]);
        assert_eq!(c.sha256.len(), 64);
    }

    /// A real handshake through the tap: the recorded bytes give a TLS 1.3
    /// JA4 carrying the client's ALPN (`h2` → "h2" at the end of part a).
    #[tokio::test]
    async fn the_tap_records_the_client_hello_for_ja4() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"h2".to_vec()];
        let (a, b) = tokio::io::duplex(64 * 1024);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = rustls_pki_types::ServerName::try_from("a.test").unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let (client, server) = tokio::join!(
            connector.connect(name, a),
            acceptor.accept(HelloTap::new(b))
        );
        let _client = client.unwrap();
        let mut tls = server.unwrap();
        let (tap, session) = tls.get_mut();
        let hello = tap.take();
        assert!(tap.take().is_empty(), "recording stops once taken");
        let facts = peer_tls(session, &hello);
        let ja4 = facts.ja4.as_deref().expect("a JA4 of the ClientHello");
        assert!(ja4.starts_with("t13d"), "{ja4}");
        assert_eq!(&ja4[8..10], "h2", "{ja4}");
        assert!(facts.client_cert.is_none());
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(client_cert(b"not a certificate"), None);
    }
}
