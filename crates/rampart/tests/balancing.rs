//! Upstream pools end to end: balancing, health checks, passive ejection,
//! retries and timeouts.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;

fn pool_config(servers: &[String], extra: &str) -> String {
    let list = servers
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
[listeners.main]
address = "127.0.0.1:0"

[upstreams.pool]
servers = [{list}]
{extra}

[[routes]]
name = "all"
upstream = "pool"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_evenly() {
    let ups = [
        Upstream::start("a").await,
        Upstream::start("b").await,
        Upstream::start("c").await,
    ];
    let servers: Vec<_> = ups.iter().map(|u| u.addr.to_string()).collect();
    let gw = Gw::start(&pool_config(&servers, "")).await;
    for _ in 0..30 {
        assert_eq!(get(&gw.url("main", "/x")).await.status, 200);
    }
    for u in &ups {
        assert_eq!(u.hits(), 10, "server {} got {}", u.name, u.hits());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_keeps_a_key_on_one_server() {
    let ups = [
        Upstream::start("a").await,
        Upstream::start("b").await,
        Upstream::start("c").await,
    ];
    let servers: Vec<_> = ups.iter().map(|u| u.addr.to_string()).collect();
    let gw = Gw::start(&pool_config(
        &servers,
        "balance = \"consistent_hash\"\nhash_on = \"header:x-user\"",
    ))
    .await;
    let mut seen = std::collections::HashSet::new();
    for user in 0..12 {
        let mut first = None;
        for _ in 0..4 {
            let r = send(
                req("GET", &gw.url("main", "/x"))
                    .header("x-user", format!("u{user}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await;
            let server = r.json()["server"].as_str().unwrap().to_string();
            assert_eq!(
                *first.get_or_insert(server.clone()),
                server,
                "user {user} moved"
            );
            seen.insert(server);
        }
    }
    assert!(
        seen.len() >= 2,
        "12 users should spread over more than one server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connections_avoids_the_busy_server() {
    let ups = [Upstream::start("a").await, Upstream::start("b").await];
    let servers: Vec<_> = ups.iter().map(|u| u.addr.to_string()).collect();
    let gw = Gw::start(&pool_config(&servers, "balance = \"least_connections\"")).await;
    // Two slow requests occupy... one server each would be round robin; with
    // least connections, a slow request on one server sends the rest elsewhere.
    let slow_url = gw.url("main", "/slow/800");
    let slow = tokio::spawn(async move {
        get(&slow_url).await.json()["server"]
            .as_str()
            .unwrap()
            .to_string()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut others = Vec::new();
    for _ in 0..6 {
        others.push(
            get(&gw.url("main", "/x")).await.json()["server"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let busy = slow.await.unwrap();
    assert!(
        others.iter().all(|s| *s != busy),
        "requests went to busy {busy}: {others:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_health_checks_eject_and_restore() {
    let ups = [Upstream::start("a").await, Upstream::start("b").await];
    let servers: Vec<_> = ups.iter().map(|u| u.addr.to_string()).collect();
    let gw = Gw::start(&pool_config(
        &servers,
        "health_check = { path = \"/healthz\", interval = \"50ms\", timeout = \"200ms\", healthy_threshold = 1, unhealthy_threshold = 1 }",
    ))
    .await;
    ups[1]
        .healthy
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let pool = gw.running.gateway.snapshot().pools["pool"].clone();
    assert!(
        eventually(Duration::from_secs(3), || !pool.is_available(1)).await,
        "b never ejected"
    );
    let before = ups[1].hits();
    for _ in 0..10 {
        assert_eq!(get(&gw.url("main", "/x")).await.json()["server"], "a");
    }
    assert_eq!(ups[1].hits(), before);
    let status = get(&gw.admin("/admin/status")).await.json();
    assert_eq!(status["upstreams"]["pool"][1]["available"], false);
    let metrics = get(&gw.admin("/metrics")).await.text();
    assert!(
        metrics.contains(&format!(
            "rampart_upstream_healthy{{upstream=\"pool\",server=\"{}\"}} 0",
            servers[1]
        )),
        "{metrics}"
    );

    ups[1]
        .healthy
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(3), || pool.is_available(1)).await,
        "b never restored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_server_is_retried_for_get_and_passively_ejected() {
    let live = Upstream::start("live").await;
    // A port with nothing listening: connections are refused.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let gw = Gw::start(&pool_config(
        &[dead.clone(), live.addr.to_string()],
        "retries = 1\npassive_health = { max_failures = 2, eject_for = \"1h\" }",
    ))
    .await;
    for _ in 0..6 {
        let r = get(&gw.url("main", "/x")).await;
        assert_eq!(r.status, 200, "GET is retried on the live server");
        assert_eq!(r.json()["server"], "live");
    }
    let pool = gw.running.gateway.snapshot().pools["pool"].clone();
    assert!(
        !pool.is_available(0),
        "the dead server is ejected after repeated failures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_is_not_retried() {
    let live = Upstream::start("live").await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let gw = Gw::start(&pool_config(
        &[dead, live.addr.to_string()],
        "retries = 3\npassive_health = { max_failures = 0 }",
    ))
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = send(
            req("POST", &gw.url("main", "/x"))
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap(),
        )
        .await;
        statuses.push(r.status.as_u16());
        if r.status == 502 {
            assert_eq!(r.json()["reason"], "upstream_unavailable");
        }
    }
    assert!(
        statuses.contains(&502),
        "a POST to the dead server must fail, not be replayed: {statuses:?}"
    );
    assert!(statuses.contains(&200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_times_out_with_504() {
    let up = Upstream::start("slow").await;
    let gw = Gw::start(&pool_config(
        &[up.addr.to_string()],
        "read_timeout = \"200ms\"\nretries = 0",
    ))
    .await;
    let started = std::time::Instant::now();
    let r = get(&gw.url("main", "/slow/2000")).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["reason"], "upstream_timeout");
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_servers_down_gives_503() {
    let up = Upstream::start("a").await;
    let gw = Gw::start(&pool_config(
        &[up.addr.to_string()],
        "health_check = { path = \"/healthz\", interval = \"50ms\", healthy_threshold = 1, unhealthy_threshold = 1 }",
    ))
    .await;
    up.healthy.store(false, std::sync::atomic::Ordering::SeqCst);
    let pool = gw.running.gateway.snapshot().pools["pool"].clone();
    assert!(eventually(Duration::from_secs(3), || !pool.is_available(0)).await);
    let r = get(&gw.url("main", "/x")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["reason"], "upstream_unavailable");
}
