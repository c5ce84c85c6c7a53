//! Fleet mode: two instances sharing one real Redis.

mod common;

use common::*;
use rampart_store::*;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn ip() -> IpAddr {
    "10.0.0.1".parse().unwrap()
}

async fn instance(url: &str) -> (Arc<RedisStore>, Keyring) {
    let store = Arc::new(RedisStore::connect(RedisOptions::new(url)).await.unwrap());
    let options = KeyringOptions {
        usage_flush_interval: Duration::from_secs(3600),
        full_reload_interval: None,
        clock: Arc::new(SystemClock),
    };
    let ring = Keyring::open(store.clone(), secret(), options)
        .await
        .unwrap();
    (store, ring)
}

/// Polls until `check` holds, for at most `limit`; returns the time taken.
async fn within(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_on_one_instance_reaches_the_other_within_a_second() {
    let redis = rampart_testkit::RedisServer::start();
    let (_sa, a) = instance(&redis.url()).await;
    let (_sb, b) = instance(&redis.url()).await;
    a.create_consumer(new_consumer("acme"), &actor())
        .await
        .unwrap();
    let key = a.create_key(new_key("acme"), &actor()).await.unwrap();
    let text = key.key.expose().to_string();
    // B learns about the new key through pub/sub.
    assert!(
        within(Duration::from_secs(1), || b.verify(&text, ip()).is_ok())
            .await
            .is_some()
    );

    a.revoke_key(&key.record.key_id, &actor()).await.unwrap();
    let took = within(Duration::from_secs(1), || {
        b.verify(&text, ip()) == Err(KeyError::Revoked)
    })
    .await;
    assert!(took.is_some(), "B still accepts the revoked key after 1 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_consumer_disable_propagate() {
    let redis = rampart_testkit::RedisServer::start();
    let (_sa, a) = instance(&redis.url()).await;
    let (_sb, b) = instance(&redis.url()).await;
    a.create_consumer(new_consumer("acme"), &actor())
        .await
        .unwrap();
    let old = a.create_key(new_key("acme"), &actor()).await.unwrap();
    let new = a
        .rotate_key(&old.record.key_id, Duration::from_secs(0), &actor())
        .await
        .unwrap();
    let (old_text, new_text) = (old.key.expose().to_string(), new.key.expose().to_string());
    assert!(within(Duration::from_secs(1), || {
        b.verify(&new_text, ip()).is_ok() && b.verify(&old_text, ip()) == Err(KeyError::Expired)
    })
    .await
    .is_some());
    a.set_consumer_state("acme", ConsumerState::Disabled, &actor())
        .await
        .unwrap();
    assert!(within(Duration::from_secs(1), || {
        b.verify(&new_text, ip()) == Err(KeyError::ConsumerDisabled)
    })
    .await
    .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_outage_instances_resubscribe_and_reload() {
    let mut redis = rampart_testkit::RedisServer::start();
    let (_sa, a) = instance(&redis.url()).await;
    let (_sb, b) = instance(&redis.url()).await;
    a.create_consumer(new_consumer("acme"), &actor())
        .await
        .unwrap();
    let key = a.create_key(new_key("acme"), &actor()).await.unwrap();
    let text = key.key.expose().to_string();
    assert!(
        within(Duration::from_secs(1), || b.verify(&text, ip()).is_ok())
            .await
            .is_some()
    );

    // The test server keeps no data across restarts: the outage also wipes
    // the data, which the reload must then reflect.
    redis.restart();
    // During and after the outage B keeps serving from its cache until it
    // reloads; once resubscribed it reloads and sees the empty store.
    assert!(
        within(Duration::from_secs(5), || b.verify(&text, ip())
            == Err(KeyError::Unknown))
        .await
        .is_some(),
        "B did not reload after Redis came back"
    );
    // And live invalidation works again on the new subscription.
    let mut again = None;
    for _ in 0..50 {
        match a.create_consumer(new_consumer("acme2"), &actor()).await {
            Ok(_) => {
                again = Some(a.create_key(new_key("acme2"), &actor()).await.unwrap());
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let again = again.expect("A writes again after the outage");
    let text2 = again.key.expose().to_string();
    assert!(
        within(Duration::from_secs(1), || b.verify(&text2, ip()).is_ok())
            .await
            .is_some()
    );
    a.revoke_key(&again.record.key_id, &actor()).await.unwrap();
    assert!(within(Duration::from_secs(1), || b.verify(&text2, ip())
        == Err(KeyError::Revoked))
    .await
    .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_round_trips_admin_records_and_audit() {
    let redis = rampart_testkit::RedisServer::start();
    let store: Arc<dyn Backend> = Arc::new(
        RedisStore::connect(RedisOptions::new(redis.url()))
            .await
            .unwrap(),
    );
    let clock = Arc::new(ManualClock::new(SystemClock.now_secs()));
    let admin = admin(store.clone(), clock).await;
    admin
        .create_admin("alice", "correct horse battery", &actor())
        .await
        .unwrap();
    admin
        .login("alice", "correct horse battery", None, None)
        .await
        .unwrap();
    let token = admin
        .create_token("alice", "ci", vec![TokenScope::Write], None, &actor())
        .await
        .unwrap();
    assert!(admin.verify_token(token.token.expose()).await.is_ok());
    let session = admin
        .create_session("alice", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(admin
        .get_session(session.session_id.expose())
        .await
        .unwrap()
        .is_some());
    admin
        .delete_session(session.session_id.expose())
        .await
        .unwrap();
    assert!(admin
        .get_session(session.session_id.expose())
        .await
        .unwrap()
        .is_none());
    let events = store.recent_audit(10).await.unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["token.create", "admin.login", "admin.create"]);
    assert!(events[0].id > events[1].id);
}
