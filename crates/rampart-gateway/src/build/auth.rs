//! The `auth` section of a route → [`AuthFilter`] over the identity store.

use http::HeaderName;
use rampart_config::AuthPolicy;
use rampart_guard::auth::{AuthFilter, AuthOptions};

use super::BuildError;
use crate::services::Services;

pub fn filter(p: &AuthPolicy, services: &Services) -> Result<AuthFilter, BuildError> {
    let header = |k: &str, v: &str| {
        HeaderName::from_bytes(v.as_bytes()).map_err(|_| {
            (
                format!(".auth.{k}"),
                format!("expected a header name, found {v:?}"),
            )
        })
    };
    Ok(AuthFilter::new(AuthOptions {
        mode: rampart_guard::mode(p.mode),
        keyring: services.identity.as_ref().map(|i| i.keyring.clone()),
        key_header: header("key_header", &p.key_header)?,
        query_params: ["api_key", "apikey", "key", "access_token"]
            .map(String::from)
            .to_vec(),
        allow_query: p.allow_query,
        scopes: p.scopes.clone(),
        consumer_header: header("consumer_header", &p.consumer_header)?,
        scopes_header: header("scopes_header", &p.scopes_header)?,
        hide_credentials: p.hide_credentials,
        optional: p.optional,
    }))
}
