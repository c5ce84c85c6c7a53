//! Verification cost per token for HS256, RS256, ES256 and EdDSA with static
//! keys: parsing, signature check, claim validation and identity mapping.
//! `verify` is async but never awaits for static keys; each iteration drives
//! it on a current-thread runtime, which adds well under a microsecond.

use std::hint::black_box;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use rampart_jwt::{parse_jwks, Algorithm, IssuerConfig, KeySource, Verifier, VerifierOptions};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::json;

const RSA_PK8: &[u8] = include_bytes!("../tests/fixtures/rsa_a.pk8");
const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn signing_input(alg: Algorithm) -> String {
    let header = json!({"alg": alg.name(), "typ": "JWT", "kid": "k"});
    let claims = json!({"iss": "https://idp", "sub": "alice", "aud": "api", "exp": 4_000_000_000u64,
        "iat": 1_700_000_000u64, "scope": "orders:read orders:write"});
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// Returns (token, key source) for one algorithm.
fn fixture(alg: Algorithm) -> (String, KeySource) {
    let rng = SystemRandom::new();
    let input = signing_input(alg);
    let (sig, jwk) = match alg {
        Algorithm::HS256 => {
            let tag = ring::hmac::sign(
                &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET),
                input.as_bytes(),
            );
            let token = format!("{input}.{}", b64(tag.as_ref()));
            return (token, KeySource::HmacSecret(SECRET.to_vec()));
        }
        Algorithm::RS256 => {
            let key = RsaKeyPair::from_pkcs8(RSA_PK8).expect("fixture key");
            let mut sig = vec![0; key.public().modulus_len()];
            key.sign(
                &signature::RSA_PKCS1_SHA256,
                &rng,
                input.as_bytes(),
                &mut sig,
            )
            .expect("sign");
            let c = signature::RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
            (
                sig,
                json!({"kty": "RSA", "kid": "k", "n": b64(&c.n), "e": b64(&c.e)}),
            )
        }
        Algorithm::ES256 => {
            let a = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let pk8 = EcdsaKeyPair::generate_pkcs8(a, &rng).expect("keygen");
            let key = EcdsaKeyPair::from_pkcs8(a, pk8.as_ref(), &rng).expect("key");
            let sig = key
                .sign(&rng, input.as_bytes())
                .expect("sign")
                .as_ref()
                .to_vec();
            let p = key.public_key().as_ref();
            (
                sig,
                json!({"kty": "EC", "crv": "P-256", "kid": "k", "x": b64(&p[1..33]), "y": b64(&p[33..])}),
            )
        }
        _ => {
            let pk8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
            let key = Ed25519KeyPair::from_pkcs8(pk8.as_ref()).expect("key");
            let sig = key.sign(input.as_bytes()).as_ref().to_vec();
            (
                sig,
                json!({"kty": "OKP", "crv": "Ed25519", "kid": "k", "x": b64(key.public_key().as_ref())}),
            )
        }
    };
    let set = parse_jwks(json!({ "keys": [jwk] }).to_string().as_bytes()).expect("jwks");
    (format!("{input}.{}", b64(&sig)), KeySource::Static(set))
}

fn bench_verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("verify");
    for alg in [
        Algorithm::HS256,
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        let (token, source) = fixture(alg);
        let mut cfg = IssuerConfig::new("https://idp", vec![alg], source);
        cfg.audiences = vec!["api".into()];
        let verifier = Verifier::new(vec![cfg], VerifierOptions::default()).expect("verifier");
        assert!(
            rt.block_on(verifier.verify(&token)).is_ok(),
            "{alg} token must verify"
        );
        group.bench_function(alg.name(), |b| {
            b.iter(|| rt.block_on(verifier.verify(black_box(&token))).is_ok())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
