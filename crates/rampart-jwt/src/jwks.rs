//! Key sets: parsing a JWKS document (RFC 7517) and choosing the key for a token.
//!
//! Supported JWKs: `RSA` (`n`, `e`), `EC` on P-256/P-384 (`x`, `y`), and `OKP`
//! Ed25519 (`x`). Keys for encryption (`use: "enc"`), with an unsupported
//! `kty`/`crv`/`alg`, or symmetric (`oct`) keys are skipped: HMAC secrets are
//! configured directly, never downloaded.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use crate::alg::Algorithm;
use crate::error::JwtError;
use crate::key::{KeyError, VerifyingKey};

/// A JWKS with more keys than this is refused (protects memory and lookup cost).
pub const MAX_KEYS: usize = 100;

/// An immutable set of verification keys.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    pub fn new(keys: Vec<VerifyingKey>) -> Self {
        KeySet { keys }
    }

    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key with this exact `kid` exists (of any type).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == Some(kid))
    }

    /// Chooses the key for a token, considering only keys that accept `alg`:
    ///
    /// 1. a token `kid` selects the key with that exact `kid`;
    /// 2. otherwise (no `kid`, or a `kid` no key carries) the token is accepted
    ///    only when exactly one candidate remains: for a token with a `kid`,
    ///    exactly one accepting key *without* a kid; for a token without a
    ///    `kid`, exactly one accepting key at all.
    ///
    /// Anything ambiguous or empty is [`JwtError::UnknownKid`].
    pub fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&VerifyingKey, JwtError> {
        let mut accepting = self.keys.iter().filter(|k| k.accepts(alg));
        if let Some(kid) = kid {
            if let Some(key) = accepting.clone().find(|k| k.kid() == Some(kid)) {
                return Ok(key);
            }
            return only_one(accepting.filter(|k| k.kid().is_none()));
        }
        only_one(&mut accepting)
    }
}

fn only_one<'a>(
    mut keys: impl Iterator<Item = &'a VerifyingKey>,
) -> Result<&'a VerifyingKey, JwtError> {
    match (keys.next(), keys.next()) {
        (Some(key), None) => Ok(key),
        _ => Err(JwtError::UnknownKid),
    }
}

#[derive(Deserialize)]
struct JwksDoc {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// Parses a JWKS document. Individual unusable keys are skipped (logged at
/// debug level without key material); a document that is not a JWKS, has no
/// usable key, or has more than [`MAX_KEYS`] keys is an error.
pub fn parse_jwks(json: &[u8]) -> Result<KeySet, KeyError> {
    let doc: JwksDoc = serde_json::from_slice(json).map_err(|_| KeyError::Jwks)?;
    if doc.keys.len() > MAX_KEYS {
        return Err(KeyError::Jwks);
    }
    let mut keys = Vec::with_capacity(doc.keys.len());
    for (index, value) in doc.keys.into_iter().enumerate() {
        match serde_json::from_value::<Jwk>(value)
            .map_err(|_| KeyError::Jwks)
            .and_then(|jwk| key_from_jwk(&jwk))
        {
            Ok(Some(key)) => keys.push(key),
            Ok(None) => tracing::debug!(index, "skipping JWK not meant for JWS verification"),
            Err(err) => tracing::debug!(index, %err, "skipping unusable JWK"),
        }
    }
    if keys.is_empty() {
        return Err(KeyError::Jwks);
    }
    Ok(KeySet::new(keys))
}

/// `Ok(None)` for keys that are valid but not for us (encryption, `oct`).
fn key_from_jwk(jwk: &Jwk) -> Result<Option<VerifyingKey>, KeyError> {
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let pinned = match jwk.alg.as_deref() {
        None => None,
        Some(name) => match Algorithm::from_name(name) {
            Some(alg) => Some(alg),
            None => return Ok(None),
        },
    };
    let key = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => VerifyingKey::rsa(&b64(&jwk.n)?, &b64(&jwk.e)?)?,
        ("EC", Some("P-256")) => VerifyingKey::ec_p256(ec_point(jwk, 32)?)?,
        ("EC", Some("P-384")) => VerifyingKey::ec_p384(ec_point(jwk, 48)?)?,
        ("OKP", Some("Ed25519")) => VerifyingKey::ed25519(b64(&jwk.x)?)?,
        ("oct", _) => return Ok(None),
        _ => return Err(KeyError::UnsupportedKey),
    };
    let key = match &jwk.kid {
        Some(kid) => key.with_kid(kid.clone()),
        None => key,
    };
    match pinned {
        Some(alg) => key.with_alg(alg).map(Some),
        None => Ok(Some(key)),
    }
}

fn b64(field: &Option<String>) -> Result<Vec<u8>, KeyError> {
    let text = field.as_deref().ok_or(KeyError::Jwks)?;
    URL_SAFE_NO_PAD.decode(text).map_err(|_| KeyError::Jwks)
}

/// Builds `04 || x || y`; coordinates must have the curve's exact length.
fn ec_point(jwk: &Jwk, coordinate_len: usize) -> Result<Vec<u8>, KeyError> {
    let x = b64(&jwk.x)?;
    let y = b64(&jwk.y)?;
    if x.len() != coordinate_len || y.len() != coordinate_len {
        return Err(KeyError::BadEcKey);
    }
    let mut point = Vec::with_capacity(1 + 2 * coordinate_len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::KeyFamily;

    fn ed_jwk(kid: &str, fill: u8) -> serde_json::Value {
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": URL_SAFE_NO_PAD.encode([fill; 32])})
    }

    #[test]
    fn parses_and_skips_unusable_keys() {
        let doc = serde_json::json!({"keys": [
            ed_jwk("a", 1),
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "kid": "s", "k": "c2VjcmV0"},
            {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "crv": "P-256", "kid": "short", "x": "AA", "y": "AA"},
        ]});
        let set = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.keys().len(), 1);
        assert_eq!(set.keys()[0].family(), KeyFamily::Ed25519);
        assert!(set.has_kid("a"));
    }

    #[test]
    fn not_a_jwks_is_an_error() {
        for doc in [
            &b"{}"[..],
            b"[]",
            b"not json",
            br#"{"keys": []}"#,
            br#"{"keys": [1]}"#,
        ] {
            assert_eq!(parse_jwks(doc).unwrap_err(), KeyError::Jwks);
        }
    }

    #[test]
    fn too_many_keys_is_an_error() {
        let keys: Vec<_> = (0..=MAX_KEYS).map(|i| ed_jwk(&i.to_string(), 1)).collect();
        let doc = serde_json::json!({ "keys": keys }).to_string();
        assert_eq!(parse_jwks(doc.as_bytes()).unwrap_err(), KeyError::Jwks);
    }

    #[test]
    fn selection_rules() {
        let a = VerifyingKey::ed25519(vec![1; 32]).unwrap().with_kid("a");
        let b = VerifyingKey::ed25519(vec![2; 32]).unwrap().with_kid("b");
        let h = VerifyingKey::hmac(&[3; 32]).unwrap();
        let set = KeySet::new(vec![a, b, h]);
        assert_eq!(
            set.select(Some("b"), Algorithm::EdDSA).unwrap().kid(),
            Some("b")
        );
        // Two Ed25519 keys: a token without kid is ambiguous.
        assert_eq!(
            set.select(None, Algorithm::EdDSA).unwrap_err(),
            JwtError::UnknownKid
        );
        assert_eq!(
            set.select(Some("zz"), Algorithm::EdDSA).unwrap_err(),
            JwtError::UnknownKid
        );
        // Exactly one HMAC key without kid: selected with or without a kid.
        assert_eq!(
            set.select(None, Algorithm::HS256).unwrap().family(),
            KeyFamily::Hmac
        );
        assert_eq!(
            set.select(Some("x"), Algorithm::HS256).unwrap().family(),
            KeyFamily::Hmac
        );
        // kid "a" names an Ed25519 key: never used for RS256.
        assert_eq!(
            set.select(Some("a"), Algorithm::RS256).unwrap_err(),
            JwtError::UnknownKid
        );
    }
}
