//! Redis store against a real redis-server: correctness, atomic multi-limit
//! checks, key expiry, the two-node fleet bound, outages and recovery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_ratelimit::{
    CheckItem, Checked, LeaseConfig, Limit, RateStore, RedisConfig, RedisStore, StoreCall,
    StoreError, SystemClock,
};
use rampart_testkit::RedisServer;

/// Tests not about timeouts allow 1 s: the machine running them is shared
/// and the first call also connects and loads the script.
fn relaxed() -> RedisConfig {
    RedisConfig {
        timeout: Duration::from_secs(1),
        ..RedisConfig::default()
    }
}

fn exact() -> RedisConfig {
    RedisConfig {
        lease: LeaseConfig {
            enabled: false,
            ..LeaseConfig::default()
        },
        ..relaxed()
    }
}

/// The production default timeout (50 ms), without leases.
fn strict() -> RedisConfig {
    RedisConfig {
        timeout: RedisConfig::default().timeout,
        ..exact()
    }
}

fn store(redis: &RedisServer, config: RedisConfig) -> RedisStore {
    RedisStore::new(&redis.url(), config, Arc::new(SystemClock::new())).expect("store")
}

fn item(key: &str, limit: Limit, cost: u64) -> CheckItem {
    CheckItem {
        key: key.as_bytes().into(),
        limit,
        cost,
    }
}

async fn check(store: &RedisStore, items: Vec<CheckItem>) -> Result<Checked, StoreError> {
    store.check(items).resolve().await
}

#[tokio::test]
async fn enforces_the_burst_with_exact_outcomes() {
    let redis = RedisServer::start();
    let s = store(&redis, exact());
    let l = Limit::per(5, Duration::from_secs(60)).unwrap();
    for i in 0..5 {
        let c = check(&s, vec![item("k", l, 1)]).await.unwrap();
        assert!(c.admitted, "request {i}");
        assert_eq!(c.outcomes[0].remaining, 4 - i);
    }
    let c = check(&s, vec![item("k", l, 1)]).await.unwrap();
    assert!(!c.admitted);
    let retry = c.outcomes[0].retry_after.unwrap();
    // One unit drains every 12 s.
    assert!(
        retry > Duration::from_secs(11) && retry <= Duration::from_secs(12),
        "{retry:?}"
    );
}

#[tokio::test]
async fn costs_are_charged_in_units() {
    let redis = RedisServer::start();
    let s = store(&redis, exact());
    let l = Limit::per(10, Duration::from_secs(60)).unwrap();
    assert_eq!(
        check(&s, vec![item("k", l, 7)]).await.unwrap().outcomes[0].remaining,
        3
    );
    assert!(!check(&s, vec![item("k", l, 4)]).await.unwrap().admitted);
    assert!(check(&s, vec![item("k", l, 3)]).await.unwrap().admitted);
}

#[tokio::test]
async fn refused_multi_limit_request_consumes_from_none() {
    let redis = RedisServer::start();
    let s = store(&redis, exact());
    let loose = Limit::per(100, Duration::from_secs(60)).unwrap();
    let tight = Limit::per(1, Duration::from_secs(60)).unwrap();
    assert!(check(&s, vec![item("t", tight, 1)]).await.unwrap().admitted);
    let c = check(&s, vec![item("l", loose, 1), item("t", tight, 1)])
        .await
        .unwrap();
    assert!(!c.admitted);
    assert!(c.outcomes[0].allowed && !c.outcomes[1].allowed);
    assert!(
        redis.command("EXISTS rampart:rl:l").contains(":0"),
        "loose key untouched"
    );
    let c = check(&s, vec![item("l", loose, 1)]).await.unwrap();
    assert_eq!(c.outcomes[0].remaining, 99);
}

#[tokio::test]
async fn keys_are_prefixed_and_expire_when_idle() {
    let redis = RedisServer::start();
    let s = store(&redis, exact());
    let l = Limit::per(10, Duration::from_secs(1)).unwrap();
    check(&s, vec![item("e", l, 1)]).await.unwrap();
    let pttl: i64 = redis
        .command("PTTL rampart:rl:e")
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    // Backlog 100 ms plus the 1 s margin.
    assert!(pttl > 0 && pttl <= 1100, "pttl {pttl}");
}

#[tokio::test]
async fn script_is_reloaded_after_a_flush() {
    let redis = RedisServer::start();
    let s = store(&redis, exact());
    let l = Limit::per(10, Duration::from_secs(1)).unwrap();
    check(&s, vec![item("a", l, 1)]).await.unwrap();
    assert!(redis.command("SCRIPT FLUSH").starts_with("+OK"));
    assert!(check(&s, vec![item("a", l, 1)]).await.unwrap().admitted);
}

/// The acceptance test: two gateway nodes on one Redis, 1,000 interleaved
/// requests for one key, admitted count within 5 % of the limit.
#[tokio::test]
async fn two_nodes_admit_within_five_percent_of_the_limit() {
    let redis = RedisServer::start();
    let a = store(&redis, relaxed());
    let b = store(&redis, relaxed());
    let l = Limit::per(300, Duration::from_secs(3600)).unwrap();
    let (mut admitted, mut local_answers) = (0u64, 0u64);
    for i in 0..1000u64 {
        // Irregular interleaving: runs of 1-3 requests per node.
        let node = if (i * 7 + i / 3) % 5 < 3 { &a } else { &b };
        let call = node.check(vec![item("fleet", l, 1)]);
        if matches!(call, StoreCall::Ready(_)) {
            local_answers += 1;
        }
        if call.resolve().await.unwrap().admitted {
            admitted += 1;
        }
    }
    eprintln!("fleet: admitted {admitted} of 300, {local_answers} of 1000 answered locally");
    let limit = 300.0;
    assert!(
        (admitted as f64 - limit).abs() <= limit * 0.05,
        "admitted {admitted} of limit 300"
    );
    assert!(
        local_answers > 500,
        "only {local_answers} answered without Redis"
    );
}

#[tokio::test]
async fn far_under_the_limit_most_requests_skip_redis() {
    let redis = RedisServer::start();
    let s = store(&redis, relaxed());
    let l = Limit::per(100_000, Duration::from_secs(3600)).unwrap();
    let mut round_trips = 0;
    for _ in 0..200 {
        let call = s.check(vec![item("light", l, 1)]);
        if matches!(call, StoreCall::Pending(_)) {
            round_trips += 1;
        }
        assert!(call.resolve().await.unwrap().admitted);
    }
    assert!(
        round_trips <= 10,
        "{round_trips} round trips for 200 requests"
    );
}

#[tokio::test]
async fn at_the_limit_every_decision_is_exact() {
    let redis = RedisServer::start();
    let a = store(&redis, relaxed());
    let b = store(&redis, relaxed());
    // 8 is below the lease threshold (10 % of the room must be >= 1).
    let l = Limit::per(8, Duration::from_secs(3600)).unwrap();
    let mut admitted = 0;
    for i in 0..40 {
        let node = if i % 2 == 0 { &a } else { &b };
        if check(node, vec![item("near", l, 1)])
            .await
            .unwrap()
            .admitted
        {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 8);
}

#[tokio::test]
async fn outage_errors_fast_and_recovers_without_restart() {
    let mut redis = RedisServer::start();
    let s = store(&redis, strict());
    s.warm_up().await.unwrap();
    let l = Limit::per(1000, Duration::from_secs(60)).unwrap();
    assert!(check(&s, vec![item("o", l, 1)]).await.unwrap().admitted);
    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let r = check(&s, vec![item("o", l, 1)]).await;
        assert!(r.is_err(), "store down must be an error");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "took {:?}",
            started.elapsed()
        );
    }
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if check(&s, vec![item("o", l, 1)]).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "store did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn unreachable_at_startup_is_an_error_not_a_hang() {
    let port = rampart_testkit::free_port();
    let s = RedisStore::new(
        &format!("redis://127.0.0.1:{port}/"),
        strict(),
        Arc::new(SystemClock::new()),
    )
    .unwrap();
    assert!(s.warm_up().await.is_err());
    let l = Limit::per(10, Duration::from_secs(1)).unwrap();
    let started = Instant::now();
    assert!(check(&s, vec![item("x", l, 1)]).await.is_err());
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(RedisStore::new("not a url", exact(), Arc::new(SystemClock::new())).is_err());
}
