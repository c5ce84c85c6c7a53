//! Mapping a verified client certificate to a consumer: the route lists
//! certificate name kinds in order (e.g. SAN URI, then SAN DNS, then the
//! subject CN); the first name that is the id of a consumer in the identity
//! store decides. The listener has already verified the chain against its
//! CA bundle, so only the mapping is decided here.

use std::net::IpAddr;

use rampart_core::{AuthMethod, CertName, ClientCert, Identity};
use rampart_store::{KeyError, Keyring};

pub const MTLS_UNKNOWN_CONSUMER: &str = "mtls_unknown_consumer";

/// The consumer the certificate names, or the reason and detail of a 401.
pub fn identity(
    keyring: &Keyring,
    cert: &ClientCert,
    order: &[CertName],
    client_ip: IpAddr,
) -> Result<Identity, (&'static str, &'static str)> {
    for kind in order {
        for name in cert.names(*kind) {
            match keyring.consumer_identity(name, client_ip, AuthMethod::Mtls) {
                Ok(identity) => return Ok(identity),
                Err(KeyError::Unknown) => continue,
                // The certificate names a consumer that may not come in:
                // do not fall through to another name.
                Err(e) => {
                    return Err((
                        e.reason_code(),
                        "the client certificate's consumer is not allowed",
                    ))
                }
            }
        }
    }
    Err((
        MTLS_UNKNOWN_CONSUMER,
        "the client certificate does not name a known consumer",
    ))
}
