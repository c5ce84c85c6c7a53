//! API keys through the gateway: 401 with `WWW-Authenticate` without or with
//! a bad key, keys in the URL refused, scopes enforced with 403, the
//! consumer passed upstream in headers the client cannot forge, rotation
//! with a grace period, and a revocation on one instance of a fleet refused
//! by the other within a second.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use rampart_store::Actor;
use rampart_testkit::RedisServer;

fn config(up: &Upstream, top: &str, auth: &str) -> String {
    one_route(up, top, &format!("auth = {{ {auth} }}"))
}

async fn with_key(url: &str, key: Option<&str>) -> Got {
    let mut b = req("GET", url).header("x-consumer-id", "forged");
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    send(b.body(Full::new(Bytes::new())).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_required_checked_and_mapped_to_its_consumer() {
    let up = Upstream::start("up").await;
    let g = Gw::start(&config(&up, "", "scopes = [\"orders:read\"]")).await;
    let url = g.url("main", "/orders");
    let r = with_key(&url, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "auth_required");
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let r = with_key(&url, Some("rk_live_notavalidkeyatall")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "api_key_malformed");

    let k = keyring(&g);
    let (_, key) = consumer_with_key(&k, &["orders:read"]).await;
    let r = with_key(&url, Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json();
    assert_ne!(seen["headers"]["x-consumer-id"], "forged");
    assert!(seen["headers"]["x-consumer-id"]
        .as_str()
        .unwrap()
        .starts_with("c_"));
    assert_eq!(seen["headers"]["x-consumer-scopes"], "orders:read");
    assert!(
        !r.text().contains(&key),
        "the key is removed before forwarding"
    );

    // The same key in the URL is refused: it would leak into logs.
    let r = get(&format!("{url}?api_key={key}")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["reason"], "credential_in_query");
    assert!(!r.text().contains(&key));

    // A consumer without the route's scope gets 403.
    let (_, weak) = consumer_with_key(&k, &["profile:read"]).await;
    let r = with_key(&url, Some(&weak)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["reason"], "insufficient_scope");
    assert_eq!(up.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_identity_headers_never_reach_the_upstream_unadmitted() {
    let up = Upstream::start("up").await;
    // Monitor mode: a refused key is only logged, and the request goes on.
    let g = Gw::start(&config(&up, "", "mode = \"monitor\"")).await;
    let r = with_key(&g.url("main", "/orders"), Some("rk_live_notavalidkeyatall")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json();
    assert!(seen["headers"].get("x-consumer-id").is_none(), "{seen}");
    drop(g);
    // Optional auth: an anonymous request goes on without identity.
    let g = Gw::start(&config(&up, "", "optional = true")).await;
    let r = with_key(&g.url("main", "/orders"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json();
    assert!(seen["headers"].get("x-consumer-id").is_none(), "{seen}");
    assert_eq!(up.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_both_keys_for_the_grace_period_and_revocation_is_immediate() {
    let up = Upstream::start("up").await;
    let g = Gw::start(&config(&up, "", "")).await;
    let url = g.url("main", "/x");
    let k = keyring(&g);
    let (key_id, old) = consumer_with_key(&k, &[]).await;
    let rotated = k
        .rotate_key(&key_id, Duration::from_secs(3600), &Actor::system())
        .await
        .unwrap();
    let new = rotated.key.expose().to_string();
    assert_eq!(with_key(&url, Some(&old)).await.status, 200);
    assert_eq!(with_key(&url, Some(&new)).await.status, 200);
    k.revoke_key(&rotated.record.key_id, &Actor::system())
        .await
        .unwrap();
    let r = with_key(&url, Some(&new)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "api_key_revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_is_refused_by_the_other_within_a_second() {
    let redis = RedisServer::start();
    let up = Upstream::start("up").await;
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("secret");
    std::fs::write(&secret, [7u8; 32]).unwrap();
    let top = format!(
        "[cluster]\nredis = \"{}\"\n[store]\ndata_dir = \"{{dir}}/data\"\nsecret_file = \"{}\"",
        redis.url(),
        secret.display()
    );
    let a = Gw::start(&config(&up, &top, "")).await;
    let b = Gw::start(&config(&up, &top, "")).await;
    let (key_id, key) = consumer_with_key(&keyring(&a), &[]).await;
    let url_b = b.url("main", "/x");
    let mut seen = false;
    for _ in 0..50 {
        if with_key(&url_b, Some(&key)).await.status == 200 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen, "B accepts the key created on A");
    keyring(&a)
        .revoke_key(&key_id, &Actor::system())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let r = with_key(&url_b, Some(&key)).await;
        if r.status == 401 {
            assert_eq!(r.json()["reason"], "api_key_revoked");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B still accepts the revoked key"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_allows_keys_in_the_query_accepts_them() {
    let up = Upstream::start("up").await;
    let g = Gw::start(&config(&up, "", "allow_query = true")).await;
    let (_, key) = consumer_with_key(&keyring(&g), &[]).await;
    let r = get(&g.url("main", &format!("/x?page=2&api_key={key}"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
}
