//! The verifier: parses a JWS compact token, picks the issuer configuration
//! by `iss`, checks the algorithm against the allow list, selects the key,
//! verifies the signature, validates the claims and maps the identity.
//!
//! Only the first load of a JWKS and the refresh for an unknown `kid` can wait
//! on the network, both bounded by the fetch timeout and the refresh rate
//! limit. Header members that point at keys (`jku`, `x5u`, `jwk`, `x5c`) are
//! ignored: keys come only from the configuration.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rampart_core::Identity;
use serde::Deserialize;
use serde_json::Value;

use crate::alg::Algorithm;
use crate::cache::JwksCache;
use crate::claims;
use crate::config::{ConfigError, IssuerConfig, KeySource, VerifierOptions};
use crate::der::keys_from_pem;
use crate::error::JwtError;
use crate::fetch::Fetcher;
use crate::jwks::KeySet;
use crate::key::VerifyingKey;

/// A successfully verified token.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// The identity for `RequestCtx::identity` (method `Jwt`, claims attached).
    pub identity: Identity,
    /// The configured issuer that vouched for the token.
    pub issuer: Arc<str>,
    pub algorithm: Algorithm,
    /// `exp` in Unix seconds, when present (e.g. to bound a cache entry).
    pub expires_at: Option<i64>,
}

/// Verifies tokens from a fixed set of issuers. Cheap to share behind an `Arc`;
/// dropping it stops the background JWKS refreshers.
#[derive(Debug)]
pub struct Verifier {
    issuers: Vec<Issuer>,
    options: VerifierOptions,
    refreshers: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Debug)]
struct Issuer {
    config: IssuerConfig,
    name: Arc<str>,
    keys: Keys,
}

#[derive(Debug)]
enum Keys {
    Static(Arc<KeySet>),
    Jwks(Arc<JwksCache>),
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    /// Extensions the signer marks critical; we implement none, so RFC 7515
    /// 4.1.11 requires refusing the token.
    crit: Option<Value>,
}

impl Drop for Verifier {
    fn drop(&mut self) {
        for task in &self.refreshers {
            task.abort();
        }
    }
}

impl Verifier {
    /// Builds the verifier. Static keys are parsed now (errors are returned);
    /// JWKS sources start loading in the background, which needs a tokio
    /// runtime when any issuer uses one.
    pub fn new(issuers: Vec<IssuerConfig>, options: VerifierOptions) -> Result<Self, ConfigError> {
        let mut built: Vec<Issuer> = Vec::with_capacity(issuers.len());
        let mut refreshers = Vec::new();
        for config in issuers {
            config.validate()?;
            if built.iter().any(|i| i.config.issuer == config.issuer) {
                return Err(ConfigError::DuplicateIssuer(config.issuer));
            }
            let keys = match &config.key_source {
                KeySource::HmacSecret(secret) => {
                    Keys::Static(Arc::new(KeySet::new(vec![VerifyingKey::hmac(secret)?])))
                }
                KeySource::Pem(pem) => Keys::Static(Arc::new(KeySet::new(keys_from_pem(pem)?))),
                KeySource::Static(set) => Keys::Static(Arc::new(set.clone())),
                KeySource::JwksFile(path) => Keys::Jwks(start_cache(
                    Fetcher::File(path.clone()),
                    &config,
                    &mut refreshers,
                )?),
                KeySource::JwksUrl(url) => {
                    let fetcher = Fetcher::url(url, config.jwks.tls.clone())?;
                    Keys::Jwks(start_cache(fetcher, &config, &mut refreshers)?)
                }
            };
            if let Keys::Static(set) = &keys {
                ensure_keys_for_algorithms(&config, set)?;
            }
            let name = Arc::from(config.issuer.as_str());
            built.push(Issuer { config, name, keys });
        }
        Ok(Verifier {
            issuers: built,
            options,
            refreshers,
        })
    }

    /// Verifies `token` against the current time.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, JwtError> {
        self.verify_at(token, unix_now()).await
    }

    /// Verifies `token` as of `now` (Unix seconds).
    pub async fn verify_at(&self, token: &str, now: i64) -> Result<VerifiedToken, JwtError> {
        let parsed = parse_token(token, self.options.max_token_bytes)?;
        let issuer = self.issuer_for(&parsed.claims)?;
        if !issuer.config.algorithms.contains(&parsed.alg) {
            return Err(JwtError::AlgNotAllowed);
        }
        issuer.verify_signature(&parsed).await?;
        let object = parsed.claims.as_object().ok_or(JwtError::Malformed)?;
        claims::validate(object, &issuer.config, now)?;
        let expires_at = object.get("exp").and_then(Value::as_f64).map(|f| f as i64);
        let identity = claims::identity(parsed.claims, &issuer.config.claims)?;
        Ok(VerifiedToken {
            identity,
            issuer: issuer.name.clone(),
            algorithm: parsed.alg,
            expires_at,
        })
    }

    fn issuer_for(&self, claims: &Value) -> Result<&Issuer, JwtError> {
        let iss = match claims.get("iss") {
            Some(Value::String(iss)) => iss,
            Some(_) => return Err(JwtError::Malformed),
            None => return Err(JwtError::MissingClaim),
        };
        self.issuers
            .iter()
            .find(|i| i.config.issuer == *iss)
            .ok_or(JwtError::WrongIssuer)
    }
}

/// Every allowed algorithm must have at least one static key able to verify it,
/// so a misconfiguration shows at startup rather than as `jwt_unknown_kid`.
fn ensure_keys_for_algorithms(config: &IssuerConfig, set: &KeySet) -> Result<(), ConfigError> {
    match config
        .algorithms
        .iter()
        .find(|alg| !set.keys().iter().any(|k| k.accepts(**alg)))
    {
        Some(alg) => Err(ConfigError::AlgorithmKeyMismatch {
            issuer: config.issuer.clone(),
            alg: *alg,
        }),
        None => Ok(()),
    }
}

fn start_cache(
    fetcher: Fetcher,
    config: &IssuerConfig,
    refreshers: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<Arc<JwksCache>, ConfigError> {
    tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
    let cache = JwksCache::new(fetcher, config.jwks.clone());
    refreshers.push(cache.spawn_refresher());
    Ok(cache)
}

impl Issuer {
    async fn verify_signature(&self, token: &ParsedToken<'_>) -> Result<(), JwtError> {
        let set = match &self.keys {
            Keys::Static(set) => set.clone(),
            Keys::Jwks(cache) => match cache.current() {
                Some(set) => set,
                None => cache
                    .refresh_if_allowed()
                    .await
                    .ok_or(JwtError::JwksUnavailable)?,
            },
        };
        let kid = token.kid.as_deref();
        let key = match (set.select(kid, token.alg), &self.keys) {
            (Ok(key), _) => key,
            (Err(JwtError::UnknownKid), Keys::Jwks(cache)) => {
                // Possibly a rotated key: refresh (rate-limited) and look again.
                let fresh = cache
                    .refresh_if_allowed()
                    .await
                    .ok_or(JwtError::JwksUnavailable)?;
                return check(fresh.select(kid, token.alg)?, token);
            }
            (Err(err), _) => return Err(err),
        };
        check(key, token)
    }
}

fn check(key: &VerifyingKey, token: &ParsedToken<'_>) -> Result<(), JwtError> {
    if key.verify(token.alg, token.signing_input.as_bytes(), &token.signature) {
        Ok(())
    } else {
        Err(JwtError::BadSignature)
    }
}

/// The decoded parts of a compact JWS; nothing here is trusted yet.
struct ParsedToken<'a> {
    alg: Algorithm,
    kid: Option<String>,
    claims: Value,
    /// `base64(header) "." base64(payload)`, the signed bytes.
    signing_input: &'a str,
    signature: Vec<u8>,
}

fn parse_token(token: &str, max_len: usize) -> Result<ParsedToken<'_>, JwtError> {
    if token.len() > max_len {
        return Err(JwtError::Malformed);
    }
    let (signing_input, signature_b64) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
    let (header_b64, payload_b64) = signing_input.split_once('.').ok_or(JwtError::Malformed)?;
    if payload_b64.contains('.') {
        // Five parts would be JWE, which this verifier does not accept.
        return Err(JwtError::Malformed);
    }
    let header: Header =
        serde_json::from_slice(&decode(header_b64)?).map_err(|_| JwtError::Malformed)?;
    // Checked before anything else about the token, so `alg: none` is always
    // reported as a refused algorithm.
    let alg = Algorithm::from_name(&header.alg).ok_or(JwtError::AlgNotAllowed)?;
    if header.crit.is_some() {
        return Err(JwtError::Malformed);
    }
    let claims: Value =
        serde_json::from_slice(&decode(payload_b64)?).map_err(|_| JwtError::Malformed)?;
    if !claims.is_object() {
        return Err(JwtError::Malformed);
    }
    let signature = decode(signature_b64)?;
    if signature.is_empty() {
        return Err(JwtError::BadSignature);
    }
    Ok(ParsedToken {
        alg,
        kid: header.kid,
        claims,
        signing_input,
        signature,
    })
}

fn decode(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &str) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    #[test]
    fn structure_errors_are_malformed() {
        let h = b64(r#"{"alg":"HS256"}"#);
        let p = b64(r#"{"iss":"i"}"#);
        for token in [
            String::new(),
            "abc".to_string(),
            format!("{h}.{p}"),
            format!("{h}.{p}.sig.x.y"),
            format!("{h}.{p}.a+b"),
            format!("{h}=.{p}.AAAA"),
            format!("{}.{p}.AAAA", b64("[]")),
            format!("{h}.{}.AAAA", b64("[1]")),
            format!("{h}.{}.AAAA", b64("not json")),
            format!("{}.{p}.AAAA", b64(r#"{"alg":"HS256","crit":["exp"]}"#)),
        ] {
            assert_eq!(
                parse_token(&token, 8192).err(),
                Some(JwtError::Malformed),
                "{token}"
            );
        }
    }

    #[test]
    fn none_and_unknown_algorithms_are_not_allowed() {
        let p = b64(r#"{"iss":"i"}"#);
        for alg in ["none", "NONE", "HS1", "RSA-OAEP"] {
            let token = format!("{}.{p}.", b64(&format!(r#"{{"alg":"{alg}"}}"#)));
            assert_eq!(
                parse_token(&token, 8192).err(),
                Some(JwtError::AlgNotAllowed),
                "{alg}"
            );
        }
    }

    #[test]
    fn oversized_token_is_malformed() {
        let token = "a".repeat(9000);
        assert_eq!(parse_token(&token, 8192).err(), Some(JwtError::Malformed));
    }
}
