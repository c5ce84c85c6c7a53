//! Verification keys and the signature check itself (via `ring`).
//!
//! A key knows its [`KeyFamily`]; [`VerifyingKey::verify`] refuses any
//! algorithm of another family, so an HMAC secret never checks an RSA/EC/EdDSA
//! signature and a public key is never used as an HMAC secret.

use std::fmt;

use ring::{hmac, signature};

use crate::alg::{Algorithm, KeyFamily};

/// HMAC secrets shorter than this are refused (RFC 7518 3.2 asks for at least
/// the hash size; 32 bytes is the HS256 minimum).
pub const MIN_HMAC_SECRET_LEN: usize = 32;
/// RSA keys below 2048 bits are refused (ring's verifier enforces the same).
const MIN_RSA_MODULUS_LEN: usize = 256;
const MAX_RSA_MODULUS_LEN: usize = 1024;

/// Why a key could not be loaded. Messages never include key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("HMAC secret must be at least {MIN_HMAC_SECRET_LEN} bytes")]
    ShortSecret,
    #[error("RSA key must be 2048 to 8192 bits with a valid exponent")]
    BadRsaKey,
    #[error("EC key must be an uncompressed point on its curve")]
    BadEcKey,
    #[error("Ed25519 key must be 32 bytes")]
    BadEd25519Key,
    #[error("unsupported key type or curve")]
    UnsupportedKey,
    #[error("invalid PEM")]
    Pem,
    #[error("PEM block is not a public key (expected PUBLIC KEY or RSA PUBLIC KEY)")]
    PemLabel,
    #[error("invalid DER in public key")]
    Der,
    #[error("invalid JWKS document")]
    Jwks,
}

/// The raw material of a key, by family.
#[derive(Clone)]
enum Material {
    Hmac(Box<HmacKeys>),
    Rsa(signature::RsaPublicKeyComponents<Vec<u8>>),
    /// Uncompressed SEC1 point (`04 || x || y`).
    EcP256(Vec<u8>),
    EcP384(Vec<u8>),
    Ed25519(Vec<u8>),
}

/// One ring key per HMAC hash, derived from the same secret (boxed: ring's
/// HMAC keys are large).
#[derive(Clone)]
struct HmacKeys {
    sha256: hmac::Key,
    sha384: hmac::Key,
    sha512: hmac::Key,
}

/// A key that can verify JWS signatures of exactly one [`KeyFamily`].
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    /// The JWK `alg`, when the key set pins one: the key then verifies only that algorithm.
    pinned_alg: Option<Algorithm>,
    material: Material,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public keys are not secret, but keep Debug uniform and short; HMAC
        // secrets must never be printed.
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("family", &self.family())
            .field("alg", &self.pinned_alg)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// An HMAC secret (the raw bytes, not base64) for HS256/384/512.
    pub fn hmac(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_HMAC_SECRET_LEN {
            return Err(KeyError::ShortSecret);
        }
        Ok(Self::from_material(Material::Hmac(Box::new(HmacKeys {
            sha256: hmac::Key::new(hmac::HMAC_SHA256, secret),
            sha384: hmac::Key::new(hmac::HMAC_SHA384, secret),
            sha512: hmac::Key::new(hmac::HMAC_SHA512, secret),
        }))))
    }

    /// An RSA public key from its unsigned big-endian modulus and exponent.
    pub fn rsa(n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        let n = trim_leading_zeros(n);
        let e = trim_leading_zeros(e);
        let n_ok = (MIN_RSA_MODULUS_LEN..=MAX_RSA_MODULUS_LEN).contains(&n.len());
        // ring accepts exponents of 3..=2^33-1; check the size here so bad keys
        // fail at load time rather than on every request.
        let e_ok = !e.is_empty() && e.len() <= 4 && e.last().is_some_and(|b| b & 1 == 1);
        if !n_ok || !e_ok || e == [1] {
            return Err(KeyError::BadRsaKey);
        }
        Ok(Self::from_material(Material::Rsa(
            signature::RsaPublicKeyComponents {
                n: n.to_vec(),
                e: e.to_vec(),
            },
        )))
    }

    /// A P-256 public key as an uncompressed point (65 bytes, `04 || x || y`).
    pub fn ec_p256(point: Vec<u8>) -> Result<Self, KeyError> {
        check_point(&point, 32)?;
        Ok(Self::from_material(Material::EcP256(point)))
    }

    /// A P-384 public key as an uncompressed point (97 bytes).
    pub fn ec_p384(point: Vec<u8>) -> Result<Self, KeyError> {
        check_point(&point, 48)?;
        Ok(Self::from_material(Material::EcP384(point)))
    }

    /// An Ed25519 public key (32 bytes).
    pub fn ed25519(public: Vec<u8>) -> Result<Self, KeyError> {
        if public.len() != 32 {
            return Err(KeyError::BadEd25519Key);
        }
        Ok(Self::from_material(Material::Ed25519(public)))
    }

    fn from_material(material: Material) -> Self {
        VerifyingKey {
            kid: None,
            pinned_alg: None,
            material,
        }
    }

    /// Sets the key id tokens use to select this key.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Restricts the key to one algorithm (the JWK `alg` member). Fails if the
    /// algorithm belongs to another key family.
    pub fn with_alg(mut self, alg: Algorithm) -> Result<Self, KeyError> {
        if alg.family() != self.family() {
            return Err(KeyError::UnsupportedKey);
        }
        self.pinned_alg = Some(alg);
        Ok(self)
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn family(&self) -> KeyFamily {
        match self.material {
            Material::Hmac(_) => KeyFamily::Hmac,
            Material::Rsa(_) => KeyFamily::Rsa,
            Material::EcP256(_) => KeyFamily::EcP256,
            Material::EcP384(_) => KeyFamily::EcP384,
            Material::Ed25519(_) => KeyFamily::Ed25519,
        }
    }

    /// Whether this key may verify tokens signed with `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        alg.family() == self.family() && self.pinned_alg.is_none_or(|pinned| pinned == alg)
    }

    /// Checks `signature` over `message` (the `header.payload` bytes).
    /// Returns false for a wrong signature and for any algorithm this key does
    /// not accept: the family check is what makes algorithm confusion impossible.
    pub fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> bool {
        if !self.accepts(alg) {
            return false;
        }
        match &self.material {
            Material::Hmac(keys) => {
                let key = match alg {
                    Algorithm::HS256 => &keys.sha256,
                    Algorithm::HS384 => &keys.sha384,
                    _ => &keys.sha512,
                };
                // Constant-time comparison inside ring.
                hmac::verify(key, message, sig).is_ok()
            }
            Material::Rsa(components) => components.verify(rsa_params(alg), message, sig).is_ok(),
            Material::EcP256(point) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            Material::EcP384(point) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            Material::Ed25519(public) => {
                signature::UnparsedPublicKey::new(&signature::ED25519, public)
                    .verify(message, sig)
                    .is_ok()
            }
        }
    }
}

fn rsa_params(alg: Algorithm) -> &'static signature::RsaParameters {
    match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        // Only PS512 is left in the RSA family (callers check the family first).
        _ => &signature::RSA_PSS_2048_8192_SHA512,
    }
}

fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn check_point(point: &[u8], coordinate_len: usize) -> Result<(), KeyError> {
    if point.len() == 1 + 2 * coordinate_len && point[0] == 0x04 {
        Ok(())
    } else {
        Err(KeyError::BadEcKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_hmac_secret_is_refused() {
        assert_eq!(
            VerifyingKey::hmac(&[1u8; 31]).unwrap_err(),
            KeyError::ShortSecret
        );
        assert!(VerifyingKey::hmac(&[1u8; 32]).is_ok());
    }

    #[test]
    fn hmac_key_never_verifies_public_key_algorithms() {
        let secret = [9u8; 32];
        let key = VerifyingKey::hmac(&secret).unwrap();
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &secret), b"m");
        assert!(key.verify(Algorithm::HS256, b"m", tag.as_ref()));
        for alg in [
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
            Algorithm::PS256,
        ] {
            assert!(!key.verify(alg, b"m", tag.as_ref()), "{alg}");
        }
    }

    #[test]
    fn pinned_alg_restricts_key() {
        let key = VerifyingKey::hmac(&[3u8; 32])
            .unwrap()
            .with_alg(Algorithm::HS512)
            .unwrap();
        assert!(key.accepts(Algorithm::HS512));
        assert!(!key.accepts(Algorithm::HS256));
        let wrong = VerifyingKey::hmac(&[3u8; 32])
            .unwrap()
            .with_alg(Algorithm::RS256);
        assert_eq!(wrong.unwrap_err(), KeyError::UnsupportedKey);
    }

    #[test]
    fn malformed_public_keys_are_refused() {
        assert_eq!(
            VerifyingKey::rsa(&[0xff; 128], &[1, 0, 1]).unwrap_err(),
            KeyError::BadRsaKey
        );
        assert_eq!(
            VerifyingKey::rsa(&[0xff; 256], &[2]).unwrap_err(),
            KeyError::BadRsaKey
        );
        assert!(VerifyingKey::rsa(&[0xff; 256], &[1, 0, 1]).is_ok());
        assert_eq!(
            VerifyingKey::ec_p256(vec![4; 64]).unwrap_err(),
            KeyError::BadEcKey
        );
        assert_eq!(
            VerifyingKey::ec_p384(vec![2; 97]).unwrap_err(),
            KeyError::BadEcKey
        );
        assert_eq!(
            VerifyingKey::ed25519(vec![0; 31]).unwrap_err(),
            KeyError::BadEd25519Key
        );
    }

    #[test]
    fn debug_does_not_print_secret() {
        let key = VerifyingKey::hmac(b"super-secret-super-secret-super-secret").unwrap();
        let text = format!("{key:?}");
        assert!(!text.contains("super-secret"), "{text}");
        assert!(text.contains("Hmac"));
    }
}
