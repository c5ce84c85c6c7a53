//! What the TLS handshake told us about the client, computed once per
//! connection and shared by all its requests: the verified client
//! certificate's names (for mTLS consumer mapping) and the ClientHello's JA4
//! fingerprint (for bot scoring).

use std::sync::Arc;

/// Per-connection TLS facts. Cheap to share (`Arc`).
#[derive(Debug, Clone, Default)]
pub struct PeerTls {
    /// The client certificate, present only when the listener verified it
    /// against its CA bundle during the handshake.
    pub client_cert: Option<ClientCert>,
    /// JA4 fingerprint of the ClientHello, when it could be computed.
    pub ja4: Option<Arc<str>>,
}

/// Names of a verified client certificate (end entity only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCert {
    /// The subject's common name (the last CN when there are several).
    pub subject_cn: Option<String>,
    /// The subject distinguished name as RFC 4514 text.
    pub subject: String,
    pub san_dns: Vec<String>,
    pub san_uri: Vec<String>,
    pub san_email: Vec<String>,
    /// SHA-256 of the certificate's DER, lowercase hex.
    pub sha256: String,
}

/// A certificate name kind, in the order an operator lists them to map a
/// certificate to a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertName {
    SubjectCn,
    SanDns,
    SanUri,
    SanEmail,
}

impl ClientCert {
    /// The certificate's names of one kind.
    pub fn names(&self, kind: CertName) -> Vec<&str> {
        match kind {
            CertName::SubjectCn => self.subject_cn.as_deref().into_iter().collect(),
            CertName::SanDns => self.san_dns.iter().map(String::as_str).collect(),
            CertName::SanUri => self.san_uri.iter().map(String::as_str).collect(),
            CertName::SanEmail => self.san_email.iter().map(String::as_str).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_kind() {
        let c = ClientCert {
            subject_cn: Some("svc-a".into()),
            san_dns: vec!["a.internal".into(), "b.internal".into()],
            san_uri: vec!["spiffe://corp/svc-a".into()],
            ..Default::default()
        };
        assert_eq!(c.names(CertName::SubjectCn), ["svc-a"]);
        assert_eq!(c.names(CertName::SanDns), ["a.internal", "b.internal"]);
        assert_eq!(c.names(CertName::SanUri), ["spiffe://corp/svc-a"]);
        assert!(c.names(CertName::SanEmail).is_empty());
    }
}
