//! Rate limits through the gateway: 429 with the IETF headers, limits keyed
//! by header, a fleet of two gateways sharing one real Redis, and each
//! `on_store_error` policy while Redis is down, with recovery after.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use rampart_testkit::RedisServer;

fn config(up: &Upstream, cluster: &str, rate_limit: &str) -> String {
    one_route(up, cluster, &format!("rate_limit = {{ {rate_limit} }}"))
}

async fn get_with(url: &str, header: Option<(&str, &str)>) -> Got {
    let mut b = req("GET", url);
    if let Some((k, v)) = header {
        b = b.header(k, v);
    }
    send(b.body(Full::new(Bytes::new())).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_gets_429_with_retry_after_and_ratelimit_headers() {
    let up = Upstream::start("up").await;
    let g = Gw::start(&config(
        &up,
        "",
        r#"limits = [{ name = "burst", rate = "5/m", burst = 3 }]"#,
    ))
    .await;
    let url = g.url("main", "/x");
    for i in 0..3 {
        let r = get(&url).await;
        assert_eq!(r.status, 200, "request {i}");
        assert!(
            r.headers.contains_key("ratelimit"),
            "admitted responses say what is left"
        );
    }
    let r = get(&url).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["reason"], "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry), "retry-after {retry}");
    let policy = r.headers["ratelimit-policy"].to_str().unwrap();
    assert!(policy.starts_with("\"burst\";q=3"), "{policy}");
    assert!(r.headers["ratelimit"].to_str().unwrap().contains("r=0"));
    assert_eq!(up.hits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_keyed_by_a_header_are_separate_per_value_and_monitor_only_logs() {
    let up = Upstream::start("up").await;
    let g = Gw::start(&config(
        &up,
        "",
        r#"limits = [{ name = "tenant", rate = "2/m", key = ["header:x-tenant"] }]"#,
    ))
    .await;
    let url = g.url("main", "/x");
    for _ in 0..2 {
        assert_eq!(get_with(&url, Some(("x-tenant", "a"))).await.status, 200);
    }
    assert_eq!(get_with(&url, Some(("x-tenant", "a"))).await.status, 429);
    assert_eq!(get_with(&url, Some(("x-tenant", "b"))).await.status, 200);

    let g = Gw::start(&config(
        &up,
        "",
        r#"mode = "monitor", limits = [{ name = "m", rate = "1/m" }]"#,
    ))
    .await;
    let url = g.url("main", "/x");
    for _ in 0..3 {
        assert_eq!(get(&url).await.status, 200);
    }
    let m = get(&g.admin("/metrics")).await.text();
    assert!(
        m.contains("reason=\"rate_limited\",mode=\"monitor\""),
        "monitor mode records what it would have refused"
    );
}

/// The acceptance test of the fleet: 1,000 requests spread over two
/// gateways on one Redis; the number admitted is within 5% of the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_redis_enforce_one_shared_limit() {
    let redis = RedisServer::start();
    let up = Upstream::start("up").await;
    let cluster = format!(
        "[cluster]\nredis = \"{}\"\ntimeout = \"500ms\"",
        redis.url()
    );
    let limits = r#"limits = [{ name = "shared", rate = "300/h", burst = 300 }]"#;
    let a = Gw::start(&config(&up, &cluster, limits)).await;
    let b = Gw::start(&config(&up, &cluster, limits)).await;
    let (ua, ub) = (a.url("main", "/x"), b.url("main", "/x"));
    let mut admitted = 0;
    for i in 0..1000 {
        let url = if i % 2 == 0 { &ua } else { &ub };
        if get(url).await.status == 200 {
            admitted += 1;
        }
    }
    assert!(
        (285..=315).contains(&admitted),
        "admitted {admitted} of 1000 against a shared limit of 300"
    );
}

async fn outage_policy(policy: &str) -> (RedisServer, Gw, String, Upstream) {
    let redis = RedisServer::start();
    let up = Upstream::start("up").await;
    let cluster = format!(
        "[cluster]\nredis = \"{}\"\ntimeout = \"100ms\"",
        redis.url()
    );
    let g = Gw::start(&config(
        &up,
        &cluster,
        &format!(r#"on_store_error = "{policy}", limits = [{{ name = "l", rate = "3/m" }}]"#),
    ))
    .await;
    let url = g.url("main", "/x");
    (redis, g, url, up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_with_deny_refuses_with_503_and_recovers_when_it_is_back() {
    let (mut redis, _g, url, _up) = outage_policy("deny").await;
    assert_eq!(get(&url).await.status, 200);
    redis.stop();
    let r = get(&url).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["reason"], "rate_limit_store_unavailable");
    redis.restart();
    let mut back = false;
    for _ in 0..100 {
        if get(&url).await.status == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        back,
        "limits work again once Redis is back, without a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_with_allow_lets_everything_through() {
    let (mut redis, _g, url, _up) = outage_policy("allow").await;
    redis.stop();
    for _ in 0..6 {
        assert_eq!(get(&url).await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_with_local_falls_back_to_this_nodes_counters() {
    let (mut redis, _g, url, _up) = outage_policy("local").await;
    redis.stop();
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(get(&url).await.status.as_u16());
        }
        v
    };
    assert_eq!(
        statuses,
        vec![200, 200, 200, 429, 429],
        "the local limit holds"
    );
}
