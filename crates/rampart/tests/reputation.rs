//! IP reputation through the gateway: feeds with bad lines and reloads,
//! allow-listed clients skipping checks, behaviour-based bans (per request
//! and at accept), bans surviving a restart, and a ban on one instance of a
//! fleet enforced by the other within a second.

mod common;

use std::time::Duration;

use common::*;
use rampart_testkit::RedisServer;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_feed_refuses_listed_clients_skips_bad_lines_and_reloads() {
    let up = Upstream::start("up").await;
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("drop.txt");
    std::fs::write(
        &feed,
        "; Spamhaus DROP style\n127.0.0.0/8 ; SBL1\nnot-an-address ; SBL2\n10.0.0.0/33\n",
    )
    .unwrap();
    let top = format!(
        "[reputation]\nfeed_poll = \"100ms\"\nfeeds = [{{ name = \"drop\", path = \"{}\" }}]",
        feed.display()
    );
    let g = Gw::start(&one_route(&up, &top, "reputation = {}")).await;
    let r = get(&g.url("main", "/x")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["reason"], "ip_reputation_denied");
    assert_eq!(up.hits(), 0);
    // The list changes on disk: the new version applies without a reload.
    std::fs::write(&feed, "192.0.2.0/24\n").unwrap();
    let mut allowed = false;
    for _ in 0..50 {
        if get(&g.url("main", "/x")).await.status == 200 {
            allowed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(allowed, "the reloaded feed no longer lists 127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_listed_clients_skip_the_checks_the_route_names() {
    let up = Upstream::start("up").await;
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("partners.txt");
    std::fs::write(&feed, "127.0.0.1\n").unwrap();
    let top = format!(
        "[reputation]\nfeeds = [{{ name = \"partners\", path = \"{}\", action = \"allow\" }}]",
        feed.display()
    );
    let route = "reputation = { allow_skips = [\"rate_limit\"] }\n\
                 rate_limit = { limits = [{ name = \"l\", rate = \"1/m\" }] }";
    let g = Gw::start(&one_route(&up, &top, route)).await;
    for _ in 0..4 {
        assert_eq!(get(&g.url("main", "/x")).await.status, 200);
    }
    // Without the allow entry the same route limits.
    let g2 = Gw::start(&one_route(&up, "", route)).await;
    assert_eq!(get(&g2.url("main", "/x")).await.status, 200);
    assert_eq!(get(&g2.url("main", "/x")).await.status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_attacks_earn_a_ban_enforced_per_request_and_at_accept() {
    let up = Upstream::start("up").await;
    let top = "[reputation.bans]\nauto = true\nthreshold = 15\nttl = \"1m\"";
    let route = "reputation = {}\nwaf = { rules = \"builtin\" }";
    let g = Gw::start(&one_route(&up, top, route)).await;
    let attack = "/x?id=1'%20OR%20'1'='1";
    // A connection opened before the ban stays open (keep-alive).
    let mut early = tokio::net::TcpStream::connect(g.addr("main"))
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(get(&g.url("main", attack)).await.status, 403);
    }
    let tracker = g.running.gateway.services().tracker.clone().unwrap();
    let mut banned = false;
    for _ in 0..50 {
        if tracker.is_banned("127.0.0.1".parse().unwrap()).is_some() {
            banned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        banned,
        "two WAF blocks at 10 points reach the threshold of 15"
    );
    // Per request: the open connection gets 403 ip_banned with Retry-After.
    early
        .write_all(b"GET /benign HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_close(&mut early, Duration::from_secs(3)).await;
    assert_eq!(status_of(&answer), 403, "{answer}");
    assert!(answer.contains("ip_banned"));
    assert!(answer.to_ascii_lowercase().contains("retry-after:"));
    // At accept: a new connection is closed unanswered.
    let answer = raw(
        g.addr("main"),
        b"GET /benign HTTP/1.1\r\nHost: t\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(answer, "");
    let m = get(&g.admin("/metrics")).await.text();
    assert!(
        m.contains("reason=\"banned\""),
        "refused connections are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_survives_a_gateway_restart() {
    let up = Upstream::start("up").await;
    let data = tempfile::tempdir().unwrap();
    let top = format!("[store]\ndata_dir = \"{}\"", data.path().display());
    let cfg = one_route(&up, &top, "reputation = {}");
    {
        let g = Gw::start(&cfg).await;
        let tracker = g.running.gateway.services().tracker.clone().unwrap();
        tracker
            .ban(
                "127.0.0.0/8".parse().unwrap(),
                Duration::from_secs(600),
                "test",
            )
            .await
            .unwrap();
        g.running.gateway.shutdown(Duration::from_secs(1)).await;
    }
    let g = Gw::start(&cfg).await;
    let tracker = g.running.gateway.services().tracker.clone().unwrap();
    assert!(tracker.is_banned("127.0.0.1".parse().unwrap()).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_on_one_instance_is_enforced_by_the_other_within_a_second() {
    let redis = RedisServer::start();
    let up = Upstream::start("up").await;
    let top = format!("[cluster]\nredis = \"{}\"", redis.url());
    let cfg = one_route(&up, &top, "reputation = {}");
    let a = Gw::start(&cfg).await;
    let b = Gw::start(&cfg).await;
    assert_eq!(get(&b.url("main", "/x")).await.status, 200);
    let tracker_a = a.running.gateway.services().tracker.clone().unwrap();
    let started = std::time::Instant::now();
    tracker_a
        .ban(
            "127.0.0.1/32".parse().unwrap(),
            Duration::from_secs(600),
            "fleet test",
        )
        .await
        .unwrap();
    let tracker_b = b.running.gateway.services().tracker.clone().unwrap();
    while tracker_b.is_banned("127.0.0.1".parse().unwrap()).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "ban not seen by B within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        raw(
            b.addr("main"),
            b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n",
            Duration::from_secs(2)
        )
        .await,
        ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn country_rules_without_a_database_are_a_config_error() {
    let up = Upstream::start("up").await;
    let err = Gw::try_start(&one_route(
        &up,
        "",
        "reputation = { deny_countries = [\"KP\"] }",
    ))
    .await
    .err()
    .expect("refused");
    let msg = err.to_string();
    assert!(msg.contains("routes[0].reputation"), "{msg}");
    assert!(msg.contains("country_db"), "{msg}");
}
