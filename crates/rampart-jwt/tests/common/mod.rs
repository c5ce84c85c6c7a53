//! Test helpers: key pairs for every algorithm family, token signing and
//! JWK rendering. Keys are generated per test run, except RSA (ring cannot
//! generate RSA keys), which comes from throw-away PKCS#8 fixtures.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rampart_jwt::Algorithm;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value};

pub const RSA_A_PK8: &[u8] = include_bytes!("../fixtures/rsa_a.pk8");
pub const RSA_B_PK8: &[u8] = include_bytes!("../fixtures/rsa_b.pk8");
pub const RSA_A_PUB_PEM: &str = include_str!("../fixtures/rsa_a.pub.pem");

pub enum Signer {
    Hmac(Vec<u8>),
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl Signer {
    pub fn hmac() -> Signer {
        Signer::Hmac(b"0123456789abcdef0123456789abcdef-test-secret".to_vec())
    }

    pub fn rsa_a() -> Signer {
        Signer::Rsa(RsaKeyPair::from_pkcs8(RSA_A_PK8).unwrap())
    }

    pub fn rsa_b() -> Signer {
        Signer::Rsa(RsaKeyPair::from_pkcs8(RSA_B_PK8).unwrap())
    }

    pub fn p256() -> Signer {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pk8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Signer::P256(EcdsaKeyPair::from_pkcs8(alg, pk8.as_ref(), &rng).unwrap())
    }

    pub fn p384() -> Signer {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P384_SHA384_FIXED_SIGNING;
        let pk8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Signer::P384(EcdsaKeyPair::from_pkcs8(alg, pk8.as_ref(), &rng).unwrap())
    }

    pub fn ed25519() -> Signer {
        let pk8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Signer::Ed(Ed25519KeyPair::from_pkcs8(pk8.as_ref()).unwrap())
    }

    pub fn sign(&self, alg: Algorithm, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Signer::Hmac(secret) => {
                let h = match alg {
                    Algorithm::HS384 => ring::hmac::HMAC_SHA384,
                    Algorithm::HS512 => ring::hmac::HMAC_SHA512,
                    _ => ring::hmac::HMAC_SHA256,
                };
                ring::hmac::sign(&ring::hmac::Key::new(h, secret), msg)
                    .as_ref()
                    .to_vec()
            }
            Signer::Rsa(key) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(padding, &rng, msg, &mut sig).unwrap();
                sig
            }
            Signer::P256(key) | Signer::P384(key) => key.sign(&rng, msg).unwrap().as_ref().to_vec(),
            Signer::Ed(key) => key.sign(msg).as_ref().to_vec(),
        }
    }

    /// The public key as a JWK (no `alg`), with `kid`.
    pub fn jwk(&self, kid: &str) -> Value {
        match self {
            Signer::Hmac(_) => panic!("no public JWK for HMAC"),
            Signer::Rsa(key) => {
                let c = signature::RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
                json!({"kty": "RSA", "kid": kid, "n": b64(&c.n), "e": b64(&c.e)})
            }
            Signer::P256(key) => ec_jwk(kid, "P-256", key.public_key().as_ref()),
            Signer::P384(key) => ec_jwk(kid, "P-384", key.public_key().as_ref()),
            Signer::Ed(key) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(key.public_key().as_ref())})
            }
        }
    }

    /// The public key as a SubjectPublicKeyInfo PEM (EC and Ed25519 only;
    /// RSA uses the openssl-made fixture).
    pub fn spki_pem(&self) -> String {
        let prefix: &[u8] = match self {
            Signer::P256(_) => &[
                0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
            ],
            Signer::Ed(_) => &[
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ],
            _ => panic!("spki_pem: unsupported in tests"),
        };
        let public = match self {
            Signer::P256(k) => k.public_key().as_ref().to_vec(),
            Signer::Ed(k) => k.public_key().as_ref().to_vec(),
            _ => unreachable!(),
        };
        let der = [prefix, &public].concat();
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
    }
}

fn ec_jwk(kid: &str, crv: &str, point: &[u8]) -> Value {
    let n = (point.len() - 1) / 2;
    json!({"kty": "EC", "crv": crv, "kid": kid, "x": b64(&point[1..1 + n]), "y": b64(&point[1 + n..])})
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs a token with an explicit header.
pub fn token_with_header(signer: &Signer, alg: Algorithm, header: Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = signer.sign(alg, input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// Signs a token with header `{"alg": alg, "kid": kid?, "typ": "JWT"}`.
pub fn token(signer: &Signer, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = json!({"alg": alg.name(), "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    token_with_header(signer, alg, header, claims)
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Standard claims for issuer `iss`, valid for an hour.
pub fn claims(iss: &str) -> Value {
    json!({"iss": iss, "sub": "alice", "aud": "api", "exp": now() + 3600, "iat": now()})
}

pub fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}
