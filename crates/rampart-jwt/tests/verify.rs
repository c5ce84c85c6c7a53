//! End-to-end verification with static key sources: every algorithm, refused
//! algorithms, algorithm confusion, claim checks and identity mapping.

mod common;

use std::time::Duration;

use common::*;
use rampart_core::AuthMethod;
use rampart_jwt::*;
use serde_json::json;

fn verifier(cfg: IssuerConfig) -> Verifier {
    Verifier::new(vec![cfg], VerifierOptions::default()).unwrap()
}

fn static_set(signer: &Signer, kid: &str) -> KeySource {
    KeySource::Static(parse_jwks(jwks(&[signer.jwk(kid)]).as_bytes()).unwrap())
}

#[tokio::test]
async fn every_algorithm_verifies_and_rejects_tampering() {
    let cases: Vec<(Algorithm, Signer)> = vec![
        (Algorithm::HS256, Signer::hmac()),
        (Algorithm::HS384, Signer::hmac()),
        (Algorithm::HS512, Signer::hmac()),
        (Algorithm::RS256, Signer::rsa_a()),
        (Algorithm::RS384, Signer::rsa_a()),
        (Algorithm::RS512, Signer::rsa_a()),
        (Algorithm::PS256, Signer::rsa_a()),
        (Algorithm::PS384, Signer::rsa_a()),
        (Algorithm::PS512, Signer::rsa_a()),
        (Algorithm::ES256, Signer::p256()),
        (Algorithm::ES384, Signer::p384()),
        (Algorithm::EdDSA, Signer::ed25519()),
    ];
    for (alg, signer) in cases {
        let source = match &signer {
            Signer::Hmac(secret) => KeySource::HmacSecret(secret.clone()),
            other => static_set(other, "k1"),
        };
        let v = verifier(IssuerConfig::new("https://idp", vec![alg], source));
        let token = token(&signer, alg, Some("k1"), &claims("https://idp"));
        let ok = v
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(ok.algorithm, alg);
        assert_eq!(&*ok.issuer, "https://idp");
        assert_eq!(&*ok.identity.consumer_id, "alice");

        // Flip one signature bit: must fail as a bad signature.
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut raw =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
        raw[0] ^= 1;
        let tampered = format!("{input}.{}", b64(&raw));
        assert_eq!(
            v.verify(&tampered).await.unwrap_err(),
            JwtError::BadSignature,
            "{alg}"
        );

        // Swap in other claims: signature no longer matches.
        let mut forged_claims = claims("https://idp");
        forged_claims["sub"] = json!("mallory");
        let other = common::token(&signer, alg, Some("k1"), &forged_claims);
        let forged = format!(
            "{}.{}",
            other.rsplit_once('.').unwrap().0,
            token.rsplit_once('.').unwrap().1
        );
        assert_eq!(
            v.verify(&forged).await.unwrap_err(),
            JwtError::BadSignature,
            "{alg}"
        );
    }
}

#[tokio::test]
async fn alg_none_is_refused() {
    let v = verifier(IssuerConfig::new(
        "i",
        vec![Algorithm::HS256],
        KeySource::HmacSecret(vec![7; 32]),
    ));
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims("i").to_string().as_bytes());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}.AAAA"),
    ] {
        assert_eq!(v.verify(&token).await.unwrap_err(), JwtError::AlgNotAllowed);
    }
}

#[tokio::test]
async fn algorithm_outside_allow_list_is_refused() {
    let signer = Signer::rsa_a();
    let source = static_set(&signer, "k");
    let v = verifier(IssuerConfig::new("i", vec![Algorithm::RS256], source));
    // Same key, valid PS256 signature, but PS256 is not allowed for this issuer.
    let token = token(&signer, Algorithm::PS256, Some("k"), &claims("i"));
    assert_eq!(v.verify(&token).await.unwrap_err(), JwtError::AlgNotAllowed);
}

#[tokio::test]
async fn hs256_signed_with_rsa_public_key_pem_is_refused() {
    // The classic confusion attack: the attacker knows the RSA public key and
    // uses its PEM bytes as an HMAC secret.
    let attacker = Signer::Hmac(RSA_A_PUB_PEM.as_bytes().to_vec());
    let token = token(&attacker, Algorithm::HS256, None, &claims("i"));

    // Issuer allows only RS256: refused by the allow list.
    let v = verifier(IssuerConfig::new(
        "i",
        vec![Algorithm::RS256],
        KeySource::Pem(RSA_A_PUB_PEM.into()),
    ));
    assert_eq!(v.verify(&token).await.unwrap_err(), JwtError::AlgNotAllowed);

    // Even an operator who lists HS256 next to a PEM key cannot make it work:
    // the configuration is refused at startup.
    let err = Verifier::new(
        vec![IssuerConfig::new(
            "i",
            vec![Algorithm::RS256, Algorithm::HS256],
            KeySource::Pem(RSA_A_PUB_PEM.into()),
        )],
        VerifierOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::AlgorithmKeyMismatch {
                alg: Algorithm::HS256,
                ..
            }
        ),
        "{err}"
    );

    // And the key itself refuses HS256 even if asked directly.
    let key = &keys_from_pem(RSA_A_PUB_PEM).unwrap()[0];
    assert!(!key.verify(Algorithm::HS256, b"x", &[0; 32]));
}

#[tokio::test]
async fn hmac_secret_never_verifies_rs_tokens() {
    let err = Verifier::new(
        vec![IssuerConfig::new(
            "i",
            vec![Algorithm::HS256, Algorithm::RS256],
            KeySource::HmacSecret(vec![1; 32]),
        )],
        VerifierOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::AlgorithmKeyMismatch {
                alg: Algorithm::RS256,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn pem_keys_verify() {
    let rsa = Signer::rsa_a();
    let v = verifier(IssuerConfig::new(
        "i",
        vec![Algorithm::RS256],
        KeySource::Pem(RSA_A_PUB_PEM.into()),
    ));
    assert!(v
        .verify(&token(&rsa, Algorithm::RS256, None, &claims("i")))
        .await
        .is_ok());
    // A PEM key has no kid: a token kid still selects it as the only candidate.
    assert!(v
        .verify(&token(&rsa, Algorithm::RS256, Some("any"), &claims("i")))
        .await
        .is_ok());
    // A different RSA key does not verify.
    let other = token(&Signer::rsa_b(), Algorithm::RS256, None, &claims("i"));
    assert_eq!(v.verify(&other).await.unwrap_err(), JwtError::BadSignature);

    let ec = Signer::p256();
    let ed = Signer::ed25519();
    let pem = format!("{}{}", ec.spki_pem(), ed.spki_pem());
    let v = verifier(IssuerConfig::new(
        "i",
        vec![Algorithm::ES256, Algorithm::EdDSA],
        KeySource::Pem(pem),
    ));
    assert!(v
        .verify(&token(&ec, Algorithm::ES256, None, &claims("i")))
        .await
        .is_ok());
    assert!(v
        .verify(&token(&ed, Algorithm::EdDSA, None, &claims("i")))
        .await
        .is_ok());
}

#[tokio::test]
async fn kid_selection_in_a_multi_key_set() {
    let a = Signer::ed25519();
    let b = Signer::ed25519();
    let set = parse_jwks(jwks(&[a.jwk("a"), b.jwk("b")]).as_bytes()).unwrap();
    let v = verifier(IssuerConfig::new(
        "i",
        vec![Algorithm::EdDSA],
        KeySource::Static(set),
    ));
    assert!(v
        .verify(&token(&b, Algorithm::EdDSA, Some("b"), &claims("i")))
        .await
        .is_ok());
    // Signed by b but claims kid a: bad signature, never a fallback to b.
    let wrong = token(&b, Algorithm::EdDSA, Some("a"), &claims("i"));
    assert_eq!(v.verify(&wrong).await.unwrap_err(), JwtError::BadSignature);
    // Two candidate keys and no kid: refused rather than trying each.
    let no_kid = token(&a, Algorithm::EdDSA, None, &claims("i"));
    assert_eq!(v.verify(&no_kid).await.unwrap_err(), JwtError::UnknownKid);
    let unknown = token(&a, Algorithm::EdDSA, Some("zz"), &claims("i"));
    assert_eq!(v.verify(&unknown).await.unwrap_err(), JwtError::UnknownKid);
}

fn hmac_issuer() -> (Signer, IssuerConfig) {
    let signer = Signer::hmac();
    let Signer::Hmac(secret) = &signer else {
        unreachable!()
    };
    let mut cfg = IssuerConfig::new(
        "https://idp",
        vec![Algorithm::HS256],
        KeySource::HmacSecret(secret.clone()),
    );
    cfg.audiences = vec!["api".into()];
    cfg.leeway = Duration::from_secs(30);
    (signer, cfg)
}

#[tokio::test]
async fn time_claims_and_leeway() {
    let (signer, cfg) = hmac_issuer();
    let v = verifier(cfg);
    let now = now();
    let with = |patch: serde_json::Value| {
        let mut c = claims("https://idp");
        for (k, val) in patch.as_object().unwrap() {
            c[k] = val.clone();
        }
        token(&signer, Algorithm::HS256, None, &c)
    };
    assert_eq!(
        v.verify(&with(json!({"exp": now - 31}))).await.unwrap_err(),
        JwtError::Expired
    );
    assert!(
        v.verify(&with(json!({"exp": now - 20}))).await.is_ok(),
        "within leeway"
    );
    assert_eq!(
        v.verify(&with(json!({"nbf": now + 60}))).await.unwrap_err(),
        JwtError::NotYetValid
    );
    assert!(
        v.verify(&with(json!({"nbf": now + 20}))).await.is_ok(),
        "within leeway"
    );
    assert_eq!(
        v.verify(&with(json!({"iat": now + 120})))
            .await
            .unwrap_err(),
        JwtError::NotYetValid
    );
    // verify_at lets the gateway (and tests) pin the clock.
    let t = with(json!({"exp": 2_000, "iat": 900}));
    assert!(v.verify_at(&t, 1_000).await.is_ok());
    assert_eq!(v.verify_at(&t, 2_030).await.unwrap_err(), JwtError::Expired);
}

#[tokio::test]
async fn issuer_audience_and_required_claims() {
    let (signer, mut cfg) = hmac_issuer();
    cfg.required_claims = vec!["exp".into(), "jti".into()];
    let v = verifier(cfg);
    let mut c = claims("https://idp");
    c["jti"] = json!("1");
    assert!(v
        .verify(&token(&signer, Algorithm::HS256, None, &c))
        .await
        .is_ok());

    let mut wrong_iss = c.clone();
    wrong_iss["iss"] = json!("https://evil");
    assert_eq!(
        v.verify(&token(&signer, Algorithm::HS256, None, &wrong_iss))
            .await
            .unwrap_err(),
        JwtError::WrongIssuer
    );
    let mut no_iss = c.clone();
    no_iss.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        v.verify(&token(&signer, Algorithm::HS256, None, &no_iss))
            .await
            .unwrap_err(),
        JwtError::MissingClaim
    );
    let mut wrong_aud = c.clone();
    wrong_aud["aud"] = json!(["web", "mobile"]);
    assert_eq!(
        v.verify(&token(&signer, Algorithm::HS256, None, &wrong_aud))
            .await
            .unwrap_err(),
        JwtError::WrongAudience
    );
    let mut no_jti = c.clone();
    no_jti.as_object_mut().unwrap().remove("jti");
    assert_eq!(
        v.verify(&token(&signer, Algorithm::HS256, None, &no_jti))
            .await
            .unwrap_err(),
        JwtError::MissingClaim
    );
    let mut no_exp = c.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        v.verify(&token(&signer, Algorithm::HS256, None, &no_exp))
            .await
            .unwrap_err(),
        JwtError::MissingClaim
    );
}

#[tokio::test]
async fn issuers_are_selected_by_iss() {
    let ed = Signer::ed25519();
    let (hs, hs_cfg) = hmac_issuer();
    let ed_cfg = IssuerConfig::new(
        "https://other",
        vec![Algorithm::EdDSA],
        static_set(&ed, "e"),
    );
    let v = Verifier::new(vec![hs_cfg, ed_cfg], VerifierOptions::default()).unwrap();
    assert_eq!(
        &*v.verify(&token(&hs, Algorithm::HS256, None, &claims("https://idp")))
            .await
            .unwrap()
            .issuer,
        "https://idp"
    );
    assert_eq!(
        &*v.verify(&token(
            &ed,
            Algorithm::EdDSA,
            Some("e"),
            &claims("https://other")
        ))
        .await
        .unwrap()
        .issuer,
        "https://other"
    );
    // An EdDSA token claiming the HMAC issuer: that issuer does not allow EdDSA.
    let cross = token(&ed, Algorithm::EdDSA, Some("e"), &claims("https://idp"));
    assert_eq!(v.verify(&cross).await.unwrap_err(), JwtError::AlgNotAllowed);

    let dup = Verifier::new(
        vec![hmac_issuer().1, hmac_issuer().1],
        VerifierOptions::default(),
    );
    assert!(matches!(dup.unwrap_err(), ConfigError::DuplicateIssuer(_)));
}

#[tokio::test]
async fn scopes_and_tier_mapping() {
    let (signer, mut cfg) = hmac_issuer();
    cfg.claims = ClaimsMapping {
        consumer_claim: "azp".into(),
        scope_claims: vec!["scope".into(), "scp".into(), "permissions".into()],
        tier_claim: Some("plan".into()),
    };
    let v = verifier(cfg);
    let mut c = claims("https://idp");
    c["azp"] = json!("client-9");
    c["scope"] = json!("orders:read orders:write");
    c["scp"] = json!(["profile"]);
    c["permissions"] = json!(["admin", "orders:read"]);
    c["plan"] = json!("gold");
    let id = v
        .verify(&token(&signer, Algorithm::HS256, None, &c))
        .await
        .unwrap()
        .identity;
    assert_eq!(id.method, AuthMethod::Jwt);
    assert_eq!(&*id.consumer_id, "client-9");
    assert_eq!(id.tier.as_deref(), Some("gold"));
    assert_eq!(
        &*id.scopes,
        &["orders:read", "orders:write", "profile", "admin"]
    );
    assert!(id.has_scope("admin"));
    assert_eq!(id.claim("plan").as_deref(), Some("gold"));
    assert_eq!(id.claim("sub").as_deref(), Some("alice"));

    c.as_object_mut().unwrap().remove("azp");
    let err = v
        .verify(&token(&signer, Algorithm::HS256, None, &c))
        .await
        .unwrap_err();
    assert_eq!(err, JwtError::MissingClaim);
}

#[tokio::test]
async fn garbage_never_panics() {
    let (_, cfg) = hmac_issuer();
    let v = verifier(cfg);
    let inputs = [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "eyJ.eyJ.eyJ",
        "\u{0}.\u{0}.\u{0}",
        "e30.e30.",
        "e30.e30.AA",
    ];
    for input in inputs {
        let err = v.verify(input).await.unwrap_err();
        assert!(
            matches!(
                err,
                JwtError::Malformed | JwtError::AlgNotAllowed | JwtError::BadSignature
            ),
            "{input:?}: {err:?}"
        );
    }
}

#[test]
fn config_errors_never_print_secrets() {
    let cfg = IssuerConfig::new(
        "i",
        vec![Algorithm::HS256],
        KeySource::HmacSecret(b"topsecret-topsecret-topsecret-xx".to_vec()),
    );
    assert!(!format!("{cfg:?}").contains("topsecret"));
    let err = Verifier::new(
        vec![IssuerConfig::new(
            "i",
            vec![Algorithm::HS256],
            KeySource::HmacSecret(b"short-secret".to_vec()),
        )],
        VerifierOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err, ConfigError::Key(KeyError::ShortSecret));
    assert!(!err.to_string().contains("short-secret"));
}
