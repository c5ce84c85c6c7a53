//! The two shipped filters through the whole pipeline: IP lists (IPv4 and
//! IPv6, enforce and monitor) and request size limits.

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::Full;

async fn gw(up: &Upstream, route_extra: &str) -> Gw {
    Gw::start(&format!(
        r#"
[listeners.v4]
address = "127.0.0.1:0"
[listeners.v6]
address = "[::1]:0"

[upstreams.up]
servers = ["{}"]

[[routes]]
name = "guarded"
upstream = "up"
{route_extra}
"#,
        up.addr
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_deny_list_blocks_v4_and_v6_clients() {
    let up = Upstream::start("up").await;
    let g = gw(&up, "ip_list = { deny = [\"127.0.0.0/8\", \"::1/128\"] }").await;
    let r = get(&g.url("v4", "/x")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["reason"], "ip_denied");
    let r = get(&format!("http://{}/x", g.addr("v6"))).await;
    assert_eq!(r.status, 403);
    assert_eq!(up.hits(), 0);
    let m = get(&g.admin("/metrics")).await.text();
    assert!(m.contains("rampart_decisions_total{filter=\"ip_list\",decision=\"deny\",reason=\"ip_denied\",mode=\"enforce\"}"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_allow_list_admits_only_its_networks() {
    let up = Upstream::start("up").await;
    let g = gw(&up, "ip_list = { allow = [\"::1/128\"] }").await;
    assert_eq!(get(&format!("http://{}/x", g.addr("v6"))).await.status, 200);
    let r = get(&g.url("v4", "/x")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["reason"], "ip_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_mode_records_but_lets_traffic_through() {
    let up = Upstream::start("up").await;
    let g = gw(
        &up,
        "ip_list = { mode = \"monitor\", deny = [\"127.0.0.0/8\"] }",
    )
    .await;
    assert_eq!(get(&g.url("v4", "/x")).await.status, 200);
    assert_eq!(up.hits(), 1);
    let m = get(&g.admin("/metrics")).await.text();
    assert!(m.contains("rampart_decisions_total{filter=\"ip_list\",decision=\"deny\",reason=\"ip_denied\",mode=\"monitor\"}"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limits_refuse_before_the_upstream() {
    let up = Upstream::start("up").await;
    let g = gw(
        &up,
        "request_limits = { max_body_bytes = \"1KiB\", max_query_args = 2, max_uri_bytes = 64 }",
    )
    .await;
    let r = send(
        req("POST", &g.url("v4", "/x"))
            .body(Full::new(Bytes::from(vec![b'a'; 2000])))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["reason"], "body_too_large");
    let r = get(&g.url("v4", "/x?a=1&b=2&c=3")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["reason"], "too_many_query_args");
    let r = get(&g.url("v4", &format!("/{}", "p".repeat(80)))).await;
    assert_eq!(r.status, 414);
    assert_eq!(up.hits(), 0);
    assert_eq!(get(&g.url("v4", "/x?a=1")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_appear_in_the_admin_event_list_without_request_data() {
    let up = Upstream::start("up").await;
    let g = gw(&up, "ip_list = { deny = [\"127.0.0.0/8\"] }").await;
    let r = get(&g.url("v4", "/x?api_key=secret-value")).await;
    assert_eq!(r.status, 403);
    let rid = r.headers["x-request-id"].to_str().unwrap().to_string();
    let mut found = None;
    for _ in 0..50 {
        let events = get(&g.admin("/admin/events?limit=10")).await.json();
        found = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["request_id"] == rid.as_str())
            .cloned();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let event = found.expect("the refusal is listed");
    assert_eq!(event["status"], 403);
    assert_eq!(event["client_ip"], "127.0.0.1");
    assert_eq!(event["events"][0]["reason"], "ip_denied");
    assert!(!event.to_string().contains("secret-value"));
}
