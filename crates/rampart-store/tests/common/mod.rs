//! Shared test setup: a fresh SQLite store, a manual clock, services.
#![allow(dead_code)]

use rampart_store::*;
use std::sync::Arc;
use std::time::Duration;

pub const T0: u64 = 1_800_000_000;

pub fn secret() -> ServerSecret {
    ServerSecret::new(b"test-server-secret-0123456789abcdef").unwrap()
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: SqliteStore,
    pub clock: Arc<ManualClock>,
}

pub fn sqlite_env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    Env {
        dir,
        store,
        clock: Arc::new(ManualClock::new(T0)),
    }
}

pub async fn keyring(backend: Arc<dyn Backend>, clock: Arc<ManualClock>) -> Keyring {
    let options = KeyringOptions {
        usage_flush_interval: Duration::from_secs(3600),
        full_reload_interval: None,
        clock,
    };
    Keyring::open(backend, secret(), options).await.unwrap()
}

pub async fn admin(backend: Arc<dyn Backend>, clock: Arc<ManualClock>) -> AdminService {
    let options = AdminOptions {
        hash_cost: HashCost::insecure_for_tests(),
        clock,
        ..AdminOptions::default()
    };
    AdminService::new(backend, secret(), options).await.unwrap()
}

pub fn actor() -> Actor {
    Actor::new("ops", Some("10.0.0.9".parse().unwrap()))
}

pub fn new_consumer(id: &str) -> NewConsumer {
    NewConsumer {
        id: Some(id.to_string()),
        name: format!("consumer {id}"),
        tier: Some("pro".into()),
        scopes: vec!["orders:read".into()],
        ..NewConsumer::default()
    }
}

pub fn new_key(consumer: &str) -> NewKey {
    NewKey {
        consumer_id: consumer.to_string(),
        env: KeyEnv::Live,
        name: "ci".into(),
        scopes: vec![],
        rate_limit: Some("100/s".into()),
        ttl_secs: None,
    }
}
