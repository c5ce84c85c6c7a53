//! The `auth` section of a route → [`AuthFilter`] over the identity store
//! (API keys, certificate-named consumers) and the config's JWT verifier.

use std::sync::Arc;

use http::HeaderName;
use rampart_config::{AuthMethodName, AuthPolicy, CertNameConfig};
use rampart_core::CertName;
use rampart_guard::auth::{AuthFilter, AuthOptions, JwtAuth, Locations};
use rampart_jwt::Verifier;

use super::BuildError;
use crate::services::Services;

pub fn filter(
    p: &AuthPolicy,
    services: &Services,
    verifier: Option<&Arc<Verifier>>,
) -> Result<AuthFilter, BuildError> {
    let header = |k: &str, v: &str| {
        HeaderName::from_bytes(v.as_bytes()).map_err(|_| {
            (
                format!(".auth.{k}"),
                format!("expected a header name, found {v:?}"),
            )
        })
    };
    if p.methods.is_empty() {
        return Err((
            ".auth.methods".into(),
            "expected at least one of api_key, jwt, mtls".into(),
        ));
    }
    let uses = |m| p.methods.contains(&m);
    let jwt = match (uses(AuthMethodName::Jwt), verifier) {
        (false, _) => None,
        (true, None) => {
            return Err((
                ".auth.methods".into(),
                "jwt needs at least one [[jwt.issuers]] entry".into(),
            ))
        }
        (true, Some(v)) => Some(JwtAuth {
            verifier: v.clone(),
            issuers: p.jwt_issuers.clone(),
        }),
    };
    let mtls = uses(AuthMethodName::Mtls)
        .then(|| p.mtls_consumer_from.iter().map(|n| cert_name(*n)).collect());
    let locations = Locations {
        api_keys: uses(AuthMethodName::ApiKey),
        jwt: jwt.is_some(),
        key_header: header("key_header", &p.key_header)?,
        jwt_header: p
            .jwt_header
            .as_deref()
            .map(|h| header("jwt_header", h))
            .transpose()?,
        jwt_cookie: p.jwt_cookie.clone(),
        query_params: ["api_key", "apikey", "key", "access_token"]
            .map(String::from)
            .to_vec(),
        allow_query: p.allow_query,
    };
    Ok(AuthFilter::new(AuthOptions {
        mode: rampart_guard::mode(p.mode),
        keyring: services.identity.as_ref().map(|i| i.keyring.clone()),
        locations,
        jwt,
        mtls,
        scopes: p.scopes.clone(),
        consumer_header: header("consumer_header", &p.consumer_header)?,
        scopes_header: header("scopes_header", &p.scopes_header)?,
        hide_credentials: p.hide_credentials,
        optional: p.optional,
    }))
}

fn cert_name(n: CertNameConfig) -> CertName {
    match n {
        CertNameConfig::SubjectCn => CertName::SubjectCn,
        CertNameConfig::SanDns => CertName::SanDns,
    }
}
