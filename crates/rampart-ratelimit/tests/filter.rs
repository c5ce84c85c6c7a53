//! The filter: 429 with headers, success headers, monitor mode, quotas,
//! costs, missing key parts, and the store-error policies (with a real Redis).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use rampart_core::{
    AuthMethod, Decision, Filter, Identity, Mode, RequestCtx, RequestHead, Verdict,
};
use rampart_ratelimit::filter::{
    REASON_QUOTA_EXCEEDED, REASON_RATE_LIMITED, REASON_STORE_UNAVAILABLE,
};
use rampart_ratelimit::{
    CostRule, KeyPart, KeySpec, LeaseConfig, Limit, LimitRule, LocalConfig, LocalStore,
    ManualClock, OnMissing, OnStoreError, RateLimitFilter, RateLimitOptions, RateStore,
    RedisConfig, RedisStore, SystemClock,
};
use rampart_testkit::RedisServer;

fn ctx() -> RequestCtx {
    let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    RequestCtx::new("rid".into(), peer.ip(), peer, Arc::from("main"))
}

fn head(method: Method) -> RequestHead {
    http::Request::builder()
        .method(method)
        .uri("/a")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn local() -> (Arc<LocalStore>, ManualClock) {
    let clock = ManualClock::new(1_000_000_000);
    (
        Arc::new(LocalStore::new(
            LocalConfig::default(),
            Arc::new(clock.clone()),
        )),
        clock,
    )
}

fn filter(rules: Vec<LimitRule>, mode: Mode, store: Arc<dyn RateStore>) -> RateLimitFilter {
    RateLimitFilter::new(RateLimitOptions {
        limits: rules,
        mode,
        store,
        on_store_error: OnStoreError::Deny,
    })
}

fn ready(v: Verdict<'_>) -> Decision {
    match v {
        Verdict::Ready(d) => d,
        Verdict::Pending(_) => panic!("local store must answer at once"),
    }
}

fn run(f: &RateLimitFilter, c: &mut RequestCtx, method: Method) -> Decision {
    let mut h = head(method);
    ready(f.request_headers(c, &mut h))
}

fn header<'a>(d: &'a rampart_core::Denial, name: &str) -> &'a str {
    d.headers
        .iter()
        .find(|(n, _)| n.as_str() == name)
        .map(|(_, v)| v.to_str().unwrap())
        .unwrap_or_else(|| panic!("no {name} header"))
}

#[test]
fn refusal_is_429_with_retry_after_and_ratelimit_headers() {
    let (store, _) = local();
    let l = Limit::new(10, Duration::from_secs(1), 2).unwrap();
    let f = filter(
        vec![LimitRule::new("burst", l, KeySpec::client_ip())],
        Mode::Enforce,
        store,
    );
    assert_eq!(run(&f, &mut ctx(), Method::GET), Decision::Continue);
    assert_eq!(run(&f, &mut ctx(), Method::GET), Decision::Continue);
    let Decision::Deny(d) = run(&f, &mut ctx(), Method::GET) else {
        panic!("third request must be refused")
    };
    assert_eq!(d.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(d.reason, REASON_RATE_LIMITED);
    assert_eq!(header(&d, "retry-after"), "1");
    assert_eq!(header(&d, "ratelimit-policy"), "\"burst\";q=2;w=1");
    assert_eq!(header(&d, "ratelimit"), "\"burst\";r=0;t=1");
}

#[test]
fn admitted_responses_carry_ratelimit_headers() {
    let (store, _) = local();
    let l = Limit::per(100, Duration::from_secs(60)).unwrap();
    let f = filter(
        vec![LimitRule::new("api", l, KeySpec::client_ip())],
        Mode::Enforce,
        store,
    );
    let mut c = ctx();
    assert_eq!(run(&f, &mut c, Method::GET), Decision::Continue);
    let mut resp = http::Response::new(()).into_parts().0;
    assert_eq!(f.response_headers(&mut c, &mut resp), Decision::Continue);
    assert_eq!(resp.headers["ratelimit-policy"], "\"api\";q=100;w=60");
    assert_eq!(resp.headers["ratelimit"], "\"api\";r=99;t=1");
}

#[test]
fn monitor_mode_records_but_never_blocks_nor_adds_headers() {
    let (store, _) = local();
    let l = Limit::per(1, Duration::from_secs(60)).unwrap();
    let f = filter(
        vec![LimitRule::new("m", l, KeySpec::client_ip())],
        Mode::Monitor,
        store,
    );
    assert_eq!(f.mode(), Mode::Monitor);
    let mut c = ctx();
    let first = run(&f, &mut c, Method::GET);
    assert!(c.apply(f.name(), f.mode(), first).is_none());
    let mut c = ctx();
    let second = run(&f, &mut c, Method::GET);
    assert!(matches!(second, Decision::Deny(_)));
    assert!(
        c.apply(f.name(), f.mode(), second).is_none(),
        "monitor never enforces"
    );
    assert_eq!(c.events.len(), 1, "the would-be refusal is recorded");
    let mut resp = http::Response::new(()).into_parts().0;
    f.response_headers(&mut c, &mut resp);
    assert!(resp.headers.get("ratelimit").is_none());
}

#[test]
fn tier_quota_refusal_says_quota_exceeded() {
    let (store, _) = local();
    let day = Limit::per(2, Duration::from_secs(86_400)).unwrap();
    let burst = Limit::per(100, Duration::from_secs(1)).unwrap();
    let rules = vec![
        LimitRule::new("burst", burst, KeySpec::client_ip()),
        LimitRule::new("free-day", day, KeySpec::new(vec![KeyPart::Consumer])).for_tier("free"),
    ];
    let f = filter(rules, Mode::Enforce, store);
    let free = || {
        let mut c = ctx();
        c.identity = Some(Identity {
            method: AuthMethod::ApiKey,
            consumer_id: Arc::from("c1"),
            tier: Some(Arc::from("free")),
            scopes: Arc::from(Vec::<String>::new()),
            key_id: None,
            claims: None,
        });
        c
    };
    assert_eq!(run(&f, &mut free(), Method::GET), Decision::Continue);
    assert_eq!(run(&f, &mut free(), Method::GET), Decision::Continue);
    let Decision::Deny(d) = run(&f, &mut free(), Method::GET) else {
        panic!("quota spent")
    };
    assert_eq!(d.reason, REASON_QUOTA_EXCEEDED);
    assert!(header(&d, "ratelimit-policy").contains("\"free-day\";q=2;w=86400"));
    // An anonymous client from the same IP is not subject to the quota.
    assert_eq!(run(&f, &mut ctx(), Method::GET), Decision::Continue);
}

#[test]
fn method_costs_are_charged() {
    let (store, _) = local();
    let l = Limit::per(10, Duration::from_secs(60)).unwrap();
    let cost = CostRule {
        default: 1,
        per_method: vec![(Method::POST, 6)],
    };
    let f = filter(
        vec![LimitRule::new("c", l, KeySpec::client_ip()).with_cost(cost)],
        Mode::Enforce,
        store,
    );
    assert_eq!(run(&f, &mut ctx(), Method::POST), Decision::Continue);
    assert!(matches!(
        run(&f, &mut ctx(), Method::POST),
        Decision::Deny(_)
    ));
    assert_eq!(run(&f, &mut ctx(), Method::GET), Decision::Continue);
}

#[test]
fn missing_key_part_can_skip_the_limit() {
    let (store, _) = local();
    let l = Limit::per(1, Duration::from_secs(60)).unwrap();
    let spec = KeySpec::new(vec![KeyPart::Consumer]).on_missing(OnMissing::Skip);
    let f = filter(
        vec![LimitRule::new("s", l, spec)],
        Mode::Enforce,
        store.clone(),
    );
    for _ in 0..3 {
        assert_eq!(run(&f, &mut ctx(), Method::GET), Decision::Continue);
    }
    assert_eq!(store.size().keys, 0);
    let spec = KeySpec::new(vec![KeyPart::Consumer]);
    let f = filter(vec![LimitRule::new("s", l, spec)], Mode::Enforce, store);
    assert_eq!(run(&f, &mut ctx(), Method::GET), Decision::Continue);
    assert!(
        matches!(run(&f, &mut ctx(), Method::GET), Decision::Deny(_)),
        "falls back to IP"
    );
}

fn redis_filter(redis: &RedisServer, policy: OnStoreError) -> RateLimitFilter {
    let config = RedisConfig {
        lease: LeaseConfig {
            enabled: false,
            ..LeaseConfig::default()
        },
        timeout: Duration::from_secs(1),
        ..RedisConfig::default()
    };
    let store = RedisStore::new(&redis.url(), config, Arc::new(SystemClock::new())).unwrap();
    let l = Limit::per(1, Duration::from_secs(60)).unwrap();
    RateLimitFilter::new(RateLimitOptions {
        limits: vec![LimitRule::new("r", l, KeySpec::client_ip())],
        mode: Mode::Enforce,
        store: Arc::new(store),
        on_store_error: policy,
    })
}

async fn run_async(f: &RateLimitFilter) -> Decision {
    let mut c = ctx();
    let mut h = head(Method::GET);
    f.request_headers(&mut c, &mut h).resolve().await
}

#[tokio::test]
async fn redis_round_trip_is_pending_and_decides() {
    let redis = RedisServer::start();
    let f = redis_filter(&redis, OnStoreError::Deny);
    let mut c = ctx();
    let mut h = head(Method::GET);
    let v = f.request_headers(&mut c, &mut h);
    assert!(matches!(v, Verdict::Pending(_)));
    assert_eq!(v.resolve().await, Decision::Continue);
    assert!(matches!(run_async(&f).await, Decision::Deny(_)));
}

#[tokio::test]
async fn store_outage_policies() {
    let mut redis = RedisServer::start();
    let deny = redis_filter(&redis, OnStoreError::Deny);
    let allow = redis_filter(&redis, OnStoreError::Allow);
    let (fallback, _) = local();
    let local_policy = redis_filter(&redis, OnStoreError::Local(fallback));
    redis.stop();
    let Decision::Deny(d) = run_async(&deny).await else {
        panic!("deny policy")
    };
    assert_eq!(d.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(d.reason, REASON_STORE_UNAVAILABLE);
    assert_eq!(run_async(&allow).await, Decision::Continue);
    assert_eq!(run_async(&allow).await, Decision::Continue);
    // The local fallback still enforces the limit (1 per minute).
    assert_eq!(run_async(&local_policy).await, Decision::Continue);
    assert!(
        matches!(run_async(&local_policy).await, Decision::Deny(d) if d.reason == REASON_RATE_LIMITED)
    );
    redis.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        // Fresh Redis: the first request is admitted by Redis again.
        match run_async(&deny).await {
            Decision::Continue => break,
            Decision::Deny(d) => assert_eq!(d.reason, REASON_STORE_UNAVAILABLE),
            other => panic!("{other:?}"),
        }
        assert!(std::time::Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
