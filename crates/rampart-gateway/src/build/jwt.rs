//! `[jwt]` → one [`Verifier`] per loaded config, shared by every route that
//! accepts tokens (so each JWKS is cached and refreshed once). Errors name
//! the issuer's key path.

use std::sync::Arc;

use rampart_config::{Jwt, JwtIssuer};
use rampart_jwt::{
    Algorithm, ClaimsMapping, IssuerConfig, JwksOptions, KeySource, Verifier, VerifierOptions,
};

use super::BuildError;

/// The verifier, or `None` when no issuer is configured. JWKS sources start
/// loading in the background, which needs a tokio runtime.
pub fn verifier(cfg: &Jwt) -> Result<Option<Arc<Verifier>>, BuildError> {
    if cfg.issuers.is_empty() {
        return Ok(None);
    }
    let issuers = cfg
        .issuers
        .iter()
        .enumerate()
        .map(|(i, c)| issuer(c).map_err(|(k, m)| (format!("jwt.issuers[{i}]{k}"), m)))
        .collect::<Result<Vec<_>, _>>()?;
    let options = VerifierOptions {
        max_token_bytes: cfg.max_token_bytes,
    };
    Verifier::new(issuers, options)
        .map(|v| Some(Arc::new(v)))
        .map_err(|e| ("jwt.issuers".to_string(), e.to_string()))
}

fn issuer(c: &JwtIssuer) -> Result<IssuerConfig, BuildError> {
    let algorithms = c
        .algorithms
        .iter()
        .map(|name| {
            Algorithm::from_name(name).ok_or_else(|| {
                (
                    ".algorithms".to_string(),
                    format!("expected RS256/384/512, PS256/384/512, ES256/384, EdDSA or HS256/384/512, found {name:?}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = IssuerConfig::new(c.issuer.clone(), algorithms, key_source(c)?);
    out.audiences = c.audiences.clone();
    out.leeway = c.leeway.0;
    out.required_claims = c.required_claims.clone();
    out.jwks = JwksOptions {
        refresh_interval: c.jwks_refresh.0,
        min_refresh_interval: c.jwks_min_refresh.0,
        fetch_timeout: c.jwks_timeout.0,
        ..JwksOptions::default()
    };
    out.claims = ClaimsMapping {
        consumer_claim: c.consumer_claim.clone(),
        scope_claims: c.scope_claims.clone(),
        tier_claim: c.tier_claim.clone(),
    };
    Ok(out)
}

/// Exactly one key source must be set.
fn key_source(c: &JwtIssuer) -> Result<KeySource, BuildError> {
    let read = |key: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| {
            (
                format!(".{key}"),
                format!("cannot read {}: {e}", path.display()),
            )
        })
    };
    let mut sources = Vec::new();
    if let Some(url) = &c.jwks_url {
        sources.push(KeySource::JwksUrl(url.clone()));
    }
    if let Some(path) = &c.jwks_file {
        sources.push(KeySource::JwksFile(path.clone()));
    }
    if let Some(path) = &c.public_key_file {
        let pem = String::from_utf8(read("public_key_file", path)?).map_err(|_| {
            (
                ".public_key_file".to_string(),
                "expected PEM text".to_string(),
            )
        })?;
        sources.push(KeySource::Pem(pem));
    }
    if let Some(secret) = &c.hmac_secret {
        sources.push(KeySource::HmacSecret(secret.as_bytes().to_vec()));
    }
    if let Some(path) = &c.hmac_secret_file {
        let mut secret = read("hmac_secret_file", path)?;
        while secret.last().is_some_and(|b| b.is_ascii_whitespace()) {
            secret.pop();
        }
        sources.push(KeySource::HmacSecret(secret));
    }
    match sources.len() {
        1 => Ok(sources.remove(0)),
        n => Err((
            String::new(),
            format!("expected exactly one of jwks_url, jwks_file, public_key_file, hmac_secret, hmac_secret_file; found {n}"),
        )),
    }
}
