//! Two tracker instances sharing one real Redis: shared scores, ban/unban propagation within
//! 1 s, full load at startup, and survival of a Redis outage.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use rampart_reputation::{
    kinds, RedisBanStore, RedisStoreOptions, SystemClock, ThreatConfig, ThreatTracker,
};
use rampart_testkit::RedisServer;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

async fn node(redis: &RedisServer, name: &str) -> ThreatTracker {
    let options = RedisStoreOptions {
        ping_interval: Duration::from_millis(300),
        ..RedisStoreOptions::new(redis.url())
    };
    let store = RedisBanStore::connect(options, Arc::new(SystemClock))
        .await
        .unwrap();
    let config = ThreatConfig {
        // Below 30 so a few ms of decay between three 10-point events still reach it.
        threshold: 25.0,
        node: name.to_owned(),
        ..ThreatConfig::default()
    };
    ThreatTracker::new(config, Arc::new(store), Arc::new(SystemClock))
}

/// Polls `check` every 10 ms until it holds or `limit` passes; returns the time it took.
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
async fn scores_are_shared_and_a_ban_reaches_the_other_node_within_a_second() {
    let redis = RedisServer::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let client = ip("198.51.100.20");
    assert!(a.record(client, kinds::WAF_BLOCK).await.is_none());
    assert!(b.record(client, kinds::WAF_BLOCK).await.is_none());
    assert!(
        (a.score(client).await.unwrap() - 20.0).abs() < 0.01,
        "both nodes add to one score"
    );
    let ban = a
        .record(client, kinds::WAF_BLOCK)
        .await
        .expect("third event bans");
    assert_eq!(&*ban.node, "a");
    let seen = within(Duration::from_secs(1), || b.is_banned(client).is_some()).await;
    assert!(seen.is_some(), "node b did not see the ban within 1 s");
    assert_eq!(b.is_banned(client), Some(ban));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_ban_and_unban_propagate() {
    let redis = RedisServer::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let net: IpNet = "203.0.113.0/24".parse().unwrap();
    a.ban(net, Duration::from_secs(600), "abuse report")
        .await
        .unwrap();
    assert!(within(Duration::from_secs(1), || b
        .is_banned(ip("203.0.113.9"))
        .is_some())
    .await
    .is_some());
    assert!(b.unban(net).await.unwrap());
    assert!(
        within(Duration::from_secs(1), || a
            .is_banned(ip("203.0.113.9"))
            .is_none())
        .await
        .is_some(),
        "unban did not reach node a within 1 s"
    );
    assert!(a.list().is_empty() && b.list().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_node_loads_existing_bans() {
    let redis = RedisServer::start();
    let a = node(&redis, "a").await;
    a.ban(
        "192.0.2.1/32".parse().unwrap(),
        Duration::from_secs(600),
        "x",
    )
    .await
    .unwrap();
    a.ban(
        "192.0.2.2/32".parse().unwrap(),
        Duration::from_secs(600),
        "y",
    )
    .await
    .unwrap();
    let late = node(&redis, "late").await;
    assert_eq!(late.list().len(), 2, "loaded before connect returned");
    assert!(late.is_banned(ip("192.0.2.2")).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_keeps_the_mirror_and_recovery_resubscribes() {
    let mut redis = RedisServer::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    a.ban(
        "192.0.2.0/24".parse().unwrap(),
        Duration::from_secs(600),
        "before",
    )
    .await
    .unwrap();
    assert!(within(Duration::from_secs(1), || b
        .is_banned(ip("192.0.2.5"))
        .is_some())
    .await
    .is_some());

    redis.stop();
    // Errors are reported, not panics, and the last known bans stay in force.
    assert!(a
        .record(ip("198.51.100.1"), kinds::WAF_BLOCK)
        .await
        .is_none());
    assert!(a
        .ban(
            "10.9.9.9/32".parse().unwrap(),
            Duration::from_secs(60),
            "down"
        )
        .await
        .is_err());
    assert!(b.is_banned(ip("192.0.2.5")).is_some());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        b.is_banned(ip("192.0.2.5")).is_some(),
        "mirror kept during the outage"
    );

    redis.restart();
    // The restarted server is empty (no persistence): after resync only new bans exist, and
    // a ban issued on a must reach b through the new subscription.
    let client = ip("198.51.100.66");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(Instant::now() < deadline, "no recovery within 15 s");
        if a.ban(IpNet::from(client), Duration::from_secs(600), "after")
            .await
            .is_ok()
            && within(Duration::from_secs(1), || b.is_banned(client).is_some())
                .await
                .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // b resynced with the (empty) restarted server, dropping the pre-outage ban.
    assert!(within(Duration::from_secs(5), || b
        .is_banned(ip("192.0.2.5"))
        .is_none())
    .await
    .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_at_startup_is_an_error_without_the_password() {
    let port = rampart_testkit::free_port();
    let options = RedisStoreOptions {
        timeout: Duration::from_millis(300),
        ..RedisStoreOptions::new(format!("redis://:hunter2secret@127.0.0.1:{port}/"))
    };
    let debug = format!("{options:?}");
    assert!(!debug.contains("hunter2secret"));
    let error = RedisBanStore::connect(options, Arc::new(SystemClock))
        .await
        .unwrap_err();
    assert!(!error.to_string().contains("hunter2secret"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_channel_messages_do_not_break_the_subscription() {
    let redis = RedisServer::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let reply = redis.command("PUBLISH rampart:rep:events {garbage");
    assert!(reply.starts_with(":2"), "both nodes subscribed: {reply}");
    a.ban(
        "192.0.2.9/32".parse().unwrap(),
        Duration::from_secs(60),
        "ok",
    )
    .await
    .unwrap();
    let seen = within(Duration::from_secs(1), || {
        b.is_banned(ip("192.0.2.9")).is_some()
    })
    .await;
    assert!(seen.is_some(), "node b stopped following the channel");
}
