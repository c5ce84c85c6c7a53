//! Identities beyond API keys, through the gateway: JWTs from configured
//! issuers (claims to consumer and scopes, expiry, audience, `alg: none`,
//! HS/EdDSA confusion, issuer restriction per route, JWKS rotation), client
//! certificates mapped to consumers (mTLS), and per-key quotas.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use bytes::Bytes;
use common::pki::*;
use common::*;
use http_body_util::Full;
use rampart_store::{Actor, ConsumerState, KeyEnv, Keyring, NewConsumer, NewKey};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};

const HS_SECRET: &str = "an-hmac-secret-of-at-least-32-bytes!";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(header: Value, claims: Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig))
}

fn hs256(claims: Value) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, HS_SECRET.as_bytes());
    token(json!({"alg": "HS256", "typ": "JWT"}), claims, |m| {
        ring::hmac::sign(&key, m).as_ref().to_vec()
    })
}

fn claims(extra: Value) -> Value {
    let mut c = json!({
        "iss": "https://idp.test/",
        "sub": "alice",
        "aud": "orders-api",
        "exp": now() + 300,
        "scope": "orders:read profile",
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn ed25519() -> Ed25519KeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn jwk(kid: &str, key: &Ed25519KeyPair) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": B64.encode(key.public_key().as_ref())})
}

fn eddsa(kid: &str, key: &Ed25519KeyPair, claims: Value) -> String {
    token(json!({"alg": "EdDSA", "kid": kid}), claims, |m| {
        key.sign(m).as_ref().to_vec()
    })
}

async fn bearer(url: &str, token: &str) -> Got {
    send(
        req("GET", url)
            .header("authorization", format!("Bearer {token}"))
            .header("x-consumer-id", "forged")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
}

fn jwt_top(jwks: &std::path::Path) -> String {
    format!(
        r#"
[[jwt.issuers]]
issuer = "https://idp.test/"
algorithms = ["HS256"]
audiences = ["orders-api"]
hmac_secret = "{HS_SECRET}"

[[jwt.issuers]]
issuer = "https://keys.test/"
algorithms = ["EdDSA"]
jwks_file = "{}"
jwks_min_refresh = "0s"
"#,
        jwks.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_claims_become_the_consumer_and_bad_tokens_are_refused() {
    let keys = tempfile::tempdir().unwrap();
    let jwks = keys.path().join("jwks.json");
    let k1 = ed25519();
    std::fs::write(&jwks, json!({"keys": [jwk("k1", &k1)]}).to_string()).unwrap();
    let up = Upstream::start("up").await;
    let route = r#"auth = { methods = ["jwt"], scopes = ["orders:read"], jwt_issuers = ["https://idp.test/"] }"#;
    let g = Gw::start(&one_route(&up, &jwt_top(&jwks), route)).await;
    let url = g.url("main", "/orders");

    let good = hs256(claims(json!({})));
    let r = bearer(&url, &good).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json();
    assert_eq!(seen["headers"]["x-consumer-id"], "alice");
    assert_eq!(seen["headers"]["x-consumer-scopes"], "orders:read profile");
    assert!(!r.text().contains(&good), "the token is not forwarded");

    let refused = [
        (hs256(claims(json!({"exp": now() - 3600}))), "jwt_expired"),
        (
            hs256(claims(json!({"aud": "billing"}))),
            "jwt_wrong_audience",
        ),
        (
            token(json!({"alg": "none"}), claims(json!({})), |_| Vec::new()),
            "jwt_alg_not_allowed",
        ),
        // HS256 "signed" with a secret the issuer does not have.
        (
            token(json!({"alg": "HS256"}), claims(json!({})), |m| {
                let k = ring::hmac::Key::new(
                    ring::hmac::HMAC_SHA256,
                    b"another-secret-of-32-bytes-or-more",
                );
                ring::hmac::sign(&k, m).as_ref().to_vec()
            }),
            "jwt_bad_signature",
        ),
        // A valid token of an issuer this route does not accept.
        (
            eddsa("k1", &k1, claims(json!({"iss": "https://keys.test/"}))),
            "jwt_issuer_not_allowed",
        ),
    ];
    for (t, reason) in refused {
        let r = bearer(&url, &t).await;
        assert_eq!(r.status, 401, "{reason}: {}", r.text());
        assert_eq!(r.json()["reason"], reason);
        assert!(r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
    // Valid, but without the route's scope: 403.
    let weak = hs256(claims(json!({"scope": "profile"})));
    let r = bearer(&url, &weak).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["reason"], "insufficient_scope");
    // No credential at all: 401 auth_required.
    let r = get(&url).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "auth_required");
    assert_eq!(up.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_rotation_and_algorithm_confusion() {
    let keys = tempfile::tempdir().unwrap();
    let jwks = keys.path().join("jwks.json");
    let (k1, k2) = (ed25519(), ed25519());
    std::fs::write(&jwks, json!({"keys": [jwk("k1", &k1)]}).to_string()).unwrap();
    let up = Upstream::start("up").await;
    let g = Gw::start(&one_route(
        &up,
        &jwt_top(&jwks),
        r#"auth = { methods = ["jwt"] }"#,
    ))
    .await;
    let url = g.url("main", "/x");
    let c = || claims(json!({"iss": "https://keys.test/", "aud": null}));

    assert_eq!(bearer(&url, &eddsa("k1", &k1, c())).await.status, 200);
    // HS256 over the issuer's public key as the "secret": the EdDSA issuer
    // does not allow HS256, and its keys never verify HMAC.
    let confused = token(json!({"alg": "HS256", "kid": "k1"}), c(), |m| {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k1.public_key().as_ref());
        ring::hmac::sign(&k, m).as_ref().to_vec()
    });
    let r = bearer(&url, &confused).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "jwt_alg_not_allowed");
    // An unknown kid before rotation.
    let r = bearer(&url, &eddsa("k2", &k2, c())).await;
    assert_eq!(r.json()["reason"], "jwt_unknown_kid");

    // The issuer rotates to k2: the unknown kid triggers a refresh.
    std::fs::write(&jwks, json!({"keys": [jwk("k2", &k2)]}).to_string()).unwrap();
    let r = bearer(&url, &eddsa("k2", &k2, c())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = bearer(&url, &eddsa("k1", &k1, c())).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "jwt_unknown_kid");
}

async fn consumer(k: &Keyring, id: &str, tier: Option<&str>, scopes: &[&str]) {
    k.create_consumer(
        NewConsumer {
            id: Some(id.into()),
            name: id.into(),
            tier: tier.map(String::from),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            metadata: json!({}),
            allowed_cidrs: Vec::new(),
        },
        &Actor::system(),
    )
    .await
    .unwrap();
}

async fn mtls_gateway(pki: &Pki, up: &Upstream) -> Gw {
    let (cert, key) = pki.issue("server", &["a.test"], false);
    Gw::start(&format!(
        r#"
[listeners.tls]
address = "127.0.0.1:0"
[listeners.tls.tls]
certificates = [{{ cert = "{}", key = "{}", server_names = ["a.test"] }}]
client_auth = {{ ca = "{}", required = false }}

[upstreams.up]
servers = ["{}"]

[[routes]]
name = "svc"
upstream = "up"
auth = {{ methods = ["mtls"], scopes = ["orders:write"] }}
"#,
        cert.display(),
        key.display(),
        pki.path("ca.pem").display(),
        up.addr
    ))
    .await
}

async fn get_with_cert(
    g: &Gw,
    pki: &Pki,
    cert: Option<(&std::path::Path, &std::path::Path)>,
) -> Got {
    let cfg = pki.client_config(&[b"http/1.1"], cert);
    let s = connect(g.addr("tls"), "a.test", cfg).await.unwrap();
    get_over(s, "a.test", "/orders").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_map_to_consumers() {
    let pki = Pki::new();
    let up = Upstream::start("up").await;
    let g = mtls_gateway(&pki, &up).await;
    let k = keyring(&g);
    consumer(&k, "svc-orders", None, &["orders:write"]).await;
    consumer(&k, "billing.internal", None, &["orders:write"]).await;
    consumer(&k, "svc-reader", None, &["orders:read"]).await;

    // The subject CN names the consumer.
    let (c, key) = pki.issue_client("orders", "svc-orders", &[]);
    let r = get_with_cert(&g, &pki, Some((&c, &key))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["headers"]["x-consumer-id"], "svc-orders");
    // Else a DNS SAN does (the CN names nobody).
    let (c, key) = pki.issue_client("billing", "Billing Service", &["billing.internal"]);
    let r = get_with_cert(&g, &pki, Some((&c, &key))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["headers"]["x-consumer-id"], "billing.internal");
    // A certificate from the CA that names no consumer.
    let (c, key) = pki.issue_client("stranger", "stranger", &["stranger.internal"]);
    let r = get_with_cert(&g, &pki, Some((&c, &key))).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "mtls_unknown_consumer");
    // A consumer without the route's scope.
    let (c, key) = pki.issue_client("reader", "svc-reader", &[]);
    let r = get_with_cert(&g, &pki, Some((&c, &key))).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["reason"], "insufficient_scope");
    // No certificate (the listener makes it optional; the route does not).
    let r = get_with_cert(&g, &pki, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "auth_required");
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("ClientCertificate"));
    // A disabled consumer's certificate stops working.
    k.set_consumer_state("svc-orders", ConsumerState::Disabled, &Actor::system())
        .await
        .unwrap();
    let (c, key) = (pki.path("orders.pem"), pki.path("orders.key"));
    let r = get_with_cert(&g, &pki, Some((&c, &key))).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "consumer_disabled");
    assert_eq!(up.hits(), 2);
}

async fn key_for(k: &Keyring, consumer_id: &str, rate_limit: Option<&str>) -> String {
    let created = k
        .create_key(
            NewKey {
                consumer_id: consumer_id.into(),
                env: KeyEnv::Live,
                name: "quota".into(),
                scopes: Vec::new(),
                rate_limit: rate_limit.map(String::from),
                ttl_secs: None,
            },
            &Actor::system(),
        )
        .await
        .unwrap();
    created.key.expose().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_its_own_quota_tier_gets_that_quota() {
    let up = Upstream::start("up").await;
    let route = r#"auth = {}
[[routes.rate_limit.limits]]
name = "free-daily"
rate = "2/d"
key = ["api_key"]
tier = "free"
[[routes.rate_limit.limits]]
name = "gold-daily"
rate = "4/d"
key = ["api_key"]
tier = "gold"
"#;
    let g = Gw::start(&one_route(&up, "", route)).await;
    let url = g.url("main", "/x");
    let k = keyring(&g);
    consumer(&k, "acme", Some("free"), &[]).await;
    let plain = key_for(&k, "acme", None).await;
    let gold = key_for(&k, "acme", Some("gold")).await;

    let statuses = |key: String| {
        let url = url.clone();
        async move {
            let mut out = Vec::new();
            for _ in 0..5 {
                let r = bearer(&url, &key).await;
                out.push((
                    r.status.as_u16(),
                    r.json()["reason"].as_str().map(String::from),
                ));
            }
            out
        }
    };
    let p = statuses(plain).await;
    assert_eq!(
        p.iter().map(|s| s.0).collect::<Vec<_>>(),
        [200, 200, 429, 429, 429]
    );
    assert_eq!(p[2].1.as_deref(), Some("quota_exceeded"));
    let q = statuses(gold).await;
    assert_eq!(
        q.iter().map(|s| s.0).collect::<Vec<_>>(),
        [200, 200, 200, 200, 429]
    );
}

/// MFA step-up on a sensitive route: a consumer with TOTP must send a
/// current code; a wrong one and a replayed one are refused, a right one
/// passes and earns a grant cookie; consumers without TOTP pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_needs_a_fresh_totp_code_from_enrolled_consumers() {
    let up = Upstream::start("up").await;
    let route = "auth = {}\nstep_up = { cookie_secure = false }";
    let g = Gw::start(&one_route(&up, "", route)).await;
    let url = g.url("main", "/payouts");
    let k = keyring(&g);
    consumer(&k, "treasurer", None, &[]).await;
    consumer(&k, "viewer", None, &[]).await;
    let key = key_for(&k, "treasurer", None).await;
    let plain = key_for(&k, "viewer", None).await;

    let services = g.running.gateway.services();
    let totp = &services.identity.as_ref().unwrap().totp;
    let actor = Actor::system();
    let enrollment = totp.enroll("treasurer", &actor).await.unwrap();
    let secret = rampart_store::secret::base32_decode(enrollment.secret_base32.expose()).unwrap();
    // Confirm with the previous time step's code (accepted within the
    // window), so the current step's code is still unused below.
    let previous = rampart_store::totp::code_at(&secret, now() as u64 - 30);
    assert!(totp.confirm("treasurer", &previous, &actor).await.unwrap());

    let with = |key: &str, code: Option<&str>, cookie: Option<&str>| {
        let mut b = req("GET", &url).header("authorization", format!("Bearer {key}"));
        if let Some(c) = code {
            b = b.header("x-rampart-otp", c);
        }
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        send(b.body(Full::new(Bytes::new())).unwrap())
    };
    let r = with(&key, None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "step_up_required");
    let code = rampart_store::totp::code_at(&secret, now() as u64);
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let r = with(&key, Some(&wrong), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "step_up_invalid");
    let r = with(&key, Some(&code), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !r.text().contains(&code),
        "the code never reaches the upstream"
    );
    let grant = r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(grant.starts_with("rampart_step_up="), "{grant}");
    let r = with(&key, Some(&code), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "step_up_replayed");
    // The grant spares further codes.
    assert_eq!(with(&key, None, Some(&grant)).await.status, 200);
    // A consumer without TOTP is not asked (not_enrolled = "allow").
    assert_eq!(with(&plain, None, None).await.status, 200);
    assert_eq!(up.hits(), 3);
}
