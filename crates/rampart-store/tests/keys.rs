//! API key lifecycle against the embedded store.

mod common;

use common::*;
use rampart_store::*;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn setup() -> (Env, Keyring) {
    let env = sqlite_env();
    let ring = keyring(Arc::new(env.store.clone()), env.clock.clone()).await;
    ring.create_consumer(new_consumer("acme"), &actor())
        .await
        .unwrap();
    (env, ring)
}

#[tokio::test]
async fn created_key_verifies_with_consumer_identity() {
    let (_env, ring) = setup().await;
    let created = ring.create_key(new_key("acme"), &actor()).await.unwrap();
    let text = created.key.expose();
    assert!(text.starts_with("rk_live_"));
    let verified = ring.verify(text, ip("203.0.113.5")).unwrap();
    assert_eq!(&*verified.consumer_id, "acme");
    assert_eq!(&*verified.key_id, created.record.key_id);
    assert_eq!(verified.tier.as_deref(), Some("pro"));
    assert_eq!(&*verified.scopes, ["orders:read".to_string()]);
    assert_eq!(verified.rate_limit.as_deref(), Some("100/s"));
    let identity = verified.identity();
    assert_eq!(
        identity.key_id.as_deref(),
        Some(created.record.key_id.as_str())
    );
}

#[tokio::test]
async fn key_scopes_override_consumer_scopes() {
    let (_env, ring) = setup().await;
    let mut spec = new_key("acme");
    spec.scopes = vec!["orders:write".into()];
    let created = ring.create_key(spec, &actor()).await.unwrap();
    let verified = ring.verify(created.key.expose(), ip("10.1.1.1")).unwrap();
    assert_eq!(&*verified.scopes, ["orders:write".to_string()]);
    // The upstream header values follow the same override.
    assert_eq!(verified.headers.scopes.unwrap(), "orders:write");
    assert_eq!(verified.headers.consumer.unwrap(), "acme");
    let plain = ring.create_key(new_key("acme"), &actor()).await.unwrap();
    let verified = ring.verify(plain.key.expose(), ip("10.1.1.1")).unwrap();
    assert_eq!(verified.headers.scopes.unwrap(), "orders:read");
}

#[tokio::test]
async fn malformed_and_unknown_keys_are_told_apart() {
    let (_env, ring) = setup().await;
    let created = ring.create_key(new_key("acme"), &actor()).await.unwrap();
    let text = created.key.expose().to_string();
    // A typo breaks the checksum: malformed, no lookup needed.
    let mut typo = text.clone().into_bytes();
    typo[15] = if typo[15] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(ring.verify(&typo, ip("10.0.0.1")), Err(KeyError::Malformed));
    assert_eq!(
        ring.verify("Bearer nonsense", ip("10.0.0.1")),
        Err(KeyError::Malformed)
    );
    // A well-formed key from another gateway (other secret) is unknown.
    let other_dir = tempfile::tempdir().unwrap();
    let other_store = SqliteStore::open(other_dir.path()).unwrap();
    let other = keyring(Arc::new(other_store), Arc::new(ManualClock::new(T0))).await;
    other
        .create_consumer(new_consumer("acme"), &actor())
        .await
        .unwrap();
    let foreign = other.create_key(new_key("acme"), &actor()).await.unwrap();
    assert_eq!(
        ring.verify(foreign.key.expose(), ip("10.0.0.1")),
        Err(KeyError::Unknown)
    );
    assert_eq!(KeyError::Unknown.reason_code(), "api_key_invalid");
    assert_eq!(KeyError::Malformed.reason_code(), "api_key_malformed");
}

#[tokio::test]
async fn rotation_keeps_both_valid_until_grace_ends() {
    let (env, ring) = setup().await;
    let old = ring.create_key(new_key("acme"), &actor()).await.unwrap();
    let new = ring
        .rotate_key(&old.record.key_id, Duration::from_secs(3600), &actor())
        .await
        .unwrap();
    assert_ne!(old.record.key_id, new.record.key_id);
    assert!(ring.verify(old.key.expose(), ip("10.0.0.1")).is_ok());
    assert!(ring.verify(new.key.expose(), ip("10.0.0.1")).is_ok());
    env.clock.advance(3599);
    assert!(ring.verify(old.key.expose(), ip("10.0.0.1")).is_ok());
    env.clock.advance(1);
    assert_eq!(
        ring.verify(old.key.expose(), ip("10.0.0.1")),
        Err(KeyError::Expired)
    );
    assert!(ring.verify(new.key.expose(), ip("10.0.0.1")).is_ok());
    let stored = ring.get_key(&old.record.key_id).await.unwrap().unwrap();
    assert_eq!(
        stored.rotated_to.as_deref(),
        Some(new.record.key_id.as_str())
    );
}

#[tokio::test]
async fn revocation_is_immediate_and_survives_reopen() {
    let (env, ring) = setup().await;
    let created = ring.create_key(new_key("acme"), &actor()).await.unwrap();
    assert!(ring.verify(created.key.expose(), ip("10.0.0.1")).is_ok());
    ring.revoke_key(&created.record.key_id, &actor())
        .await
        .unwrap();
    assert_eq!(
        ring.verify(created.key.expose(), ip("10.0.0.1")),
        Err(KeyError::Revoked)
    );
    drop(ring);
    let reopened = SqliteStore::open(env.dir.path()).unwrap();
    let ring = keyring(Arc::new(reopened), env.clock.clone()).await;
    assert_eq!(
        ring.verify(created.key.expose(), ip("10.0.0.1")),
        Err(KeyError::Revoked)
    );
}

#[tokio::test]
async fn expiry_is_enforced() {
    let (env, ring) = setup().await;
    let mut spec = new_key("acme");
    spec.ttl_secs = Some(60);
    let created = ring.create_key(spec, &actor()).await.unwrap();
    env.clock.advance(59);
    assert!(ring.verify(created.key.expose(), ip("10.0.0.1")).is_ok());
    env.clock.advance(1);
    assert_eq!(
        ring.verify(created.key.expose(), ip("10.0.0.1")),
        Err(KeyError::Expired)
    );
}

#[tokio::test]
async fn disabled_consumer_and_cidrs_are_enforced() {
    let (_env, ring) = setup().await;
    let created = ring.create_key(new_key("acme"), &actor()).await.unwrap();
    let mut consumer = ring.get_consumer("acme").await.unwrap().unwrap();
    consumer.allowed_cidrs = vec!["192.0.2.0/24".parse().unwrap()];
    ring.update_consumer(consumer, &actor()).await.unwrap();
    assert!(ring.verify(created.key.expose(), ip("192.0.2.7")).is_ok());
    assert!(ring
        .verify(created.key.expose(), ip("::ffff:192.0.2.7"))
        .is_ok());
    assert_eq!(
        ring.verify(created.key.expose(), ip("198.51.100.1")),
        Err(KeyError::IpNotAllowed)
    );
    ring.set_consumer_state("acme", ConsumerState::Disabled, &actor())
        .await
        .unwrap();
    assert_eq!(
        ring.verify(created.key.expose(), ip("192.0.2.7")),
        Err(KeyError::ConsumerDisabled)
    );
}

#[tokio::test]
async fn usage_is_coalesced_and_flushed() {
    let (env, ring) = setup().await;
    let created = ring.create_key(new_key("acme"), &actor()).await.unwrap();
    for _ in 0..100 {
        ring.verify(created.key.expose(), ip("10.0.0.1")).unwrap();
    }
    env.clock.advance(5);
    ring.verify(created.key.expose(), ip("10.0.0.2")).unwrap();
    let before = ring.get_key(&created.record.key_id).await.unwrap().unwrap();
    assert_eq!(before.last_used_at, None, "no write per request");
    ring.flush_usage().await.unwrap();
    let after = ring.get_key(&created.record.key_id).await.unwrap().unwrap();
    assert_eq!(after.last_used_at, Some(T0 + 5));
    assert_eq!(after.last_used_ip, Some(ip("10.0.0.2")));
}

#[tokio::test]
async fn mutations_are_audited_without_secrets() {
    let (_env, ring) = setup().await;
    let created = ring.create_key(new_key("acme"), &actor()).await.unwrap();
    ring.revoke_key(&created.record.key_id, &actor())
        .await
        .unwrap();
    let events = ring.recent_audit(10).await.unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["key.revoke", "key.create", "consumer.create"]);
    assert_eq!(events[0].actor, "ops");
    assert_eq!(events[0].source_ip, Some(ip("10.0.0.9")));
    let dump = format!("{events:?}");
    assert!(!dump.contains(&created.key.expose()[8..]));
}

#[tokio::test]
async fn invalid_consumer_ids_and_missing_consumers_are_refused() {
    let (_env, ring) = setup().await;
    let mut bad = new_consumer("acme");
    bad.id = Some("has space".into());
    assert!(matches!(
        ring.create_consumer(bad, &actor()).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        ring.create_consumer(new_consumer("acme"), &actor()).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        ring.create_key(new_key("nobody"), &actor()).await,
        Err(StoreError::NotFound(_))
    ));
}
