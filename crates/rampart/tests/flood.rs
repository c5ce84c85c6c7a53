//! Flood guards through real sockets: per-IP connection caps, connection
//! rate, slow bodies, concurrency caps and load shedding — each refused as
//! configured while a well-behaved client keeps being served.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection from a chosen loopback source address (127.0.0.0/8 is all
/// local), so one test can play several clients.
async fn connect_from(src: &str, to: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(format!("{src}:0").parse().unwrap()).unwrap();
    sock.connect(to).await.unwrap()
}

async fn get_on(s: &mut TcpStream, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        _ => String::new(),
    }
}

fn config(up: &Upstream, limits: &str, routes: &str) -> String {
    format!(
        r#"
[limits]
{limits}

[listeners.main]
address = "127.0.0.1:0"

[upstreams.up]
servers = ["{}"]

{routes}
"#,
        up.addr
    )
}

const ONE_ROUTE: &str = "[[routes]]\nname = \"all\"\nupstream = \"up\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_ip_are_capped_while_other_clients_are_served() {
    let up = Upstream::start("up").await;
    let g = Gw::start(&config(&up, "max_connections_per_ip = 3", ONE_ROUTE)).await;
    let addr = g.addr("main");
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from("127.0.0.9", addr).await;
        assert_eq!(status_of(&get_on(&mut s, "/x").await), 200);
        held.push(s);
    }
    // The fourth connection from the same address is closed unanswered.
    let mut extra = connect_from("127.0.0.9", addr).await;
    assert_eq!(get_on(&mut extra, "/x").await, "");
    // Another client is unaffected.
    let mut other = connect_from("127.0.0.10", addr).await;
    assert_eq!(status_of(&get_on(&mut other, "/x").await), 200);
    // Closing one frees a slot.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut s = connect_from("127.0.0.9", addr).await;
        if status_of(&get_on(&mut s, "/x").await) == 200 {
            again = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a freed slot is usable again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_flood_from_one_ip_is_cut_to_the_rate() {
    let up = Upstream::start("up").await;
    let g = Gw::start(&config(
        &up,
        "connection_rate_per_ip = 5\nconnection_burst_per_ip = 5",
        ONE_ROUTE,
    ))
    .await;
    let addr = g.addr("main");
    let mut served = 0;
    for _ in 0..40 {
        let mut s = connect_from("127.0.0.20", addr).await;
        if status_of(&get_on(&mut s, "/x").await) == 200 {
            served += 1;
        }
    }
    // 1 + burst at once, plus whatever the rate refilled meanwhile.
    assert!((6..=12).contains(&served), "served {served} of 40");
    let mut other = connect_from("127.0.0.21", addr).await;
    assert_eq!(status_of(&get_on(&mut other, "/x").await), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_is_cut_off_by_the_minimum_rate() {
    let up = Upstream::start("up").await;
    let g = Gw::start(&config(
        &up,
        "body_read_timeout = \"400ms\"\nmin_body_rate = \"1KiB\"",
        ONE_ROUTE,
    ))
    .await;
    let mut s = TcpStream::connect(g.addr("main")).await.unwrap();
    s.write_all(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        .await
        .unwrap();
    // One byte every 150 ms: never idle for 400 ms, but far below 1 KiB/s.
    let trickle = async {
        for _ in 0..40 {
            if s.write_all(b"a").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), trickle).await;
    let answer = read_until_close(&mut s, Duration::from_secs(3)).await;
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(answer.contains("body_timeout"));
    // A normal client is served meanwhile and after.
    assert_eq!(get(&g.url("main", "/x")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_concurrency_cap_refuses_the_excess_with_503() {
    let up = Upstream::start("up").await;
    let routes = "[[routes]]\nname = \"capped\"\nupstream = \"up\"\nmax_concurrent = 1\n";
    let g = Gw::start(&config(&up, "", routes)).await;
    let slow = tokio::spawn(get(g.url("main", "/slow/600").leak()));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let r = get(&g.url("main", "/x")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["reason"], "route_overloaded");
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(slow.await.unwrap().status, 200);
    assert_eq!(get(&g.url("main", "/x")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shedding_refuses_low_routes_first_and_spares_critical_ones() {
    let up = Upstream::start("up").await;
    let routes = r#"
[[routes]]
name = "reports"
path = { prefix = "/reports" }
upstream = "up"
criticality = "low"

[[routes]]
name = "checkout"
path = { prefix = "/checkout" }
strip_prefix = "/checkout"
upstream = "up"
criticality = "critical"
"#;
    let cfg = config(&up, "", routes)
        + "\n[shedding]\nenabled = true\nlatency_target = \"50ms\"\nretry_after = \"3s\"\n";
    let g = Gw::start(&cfg).await;
    assert_eq!(get(&g.url("main", "/reports/a")).await.status, 200);
    // The upstream slows down well past the target for over a second.
    for _ in 0..8 {
        assert_eq!(get(&g.url("main", "/checkout/slow/150")).await.status, 200);
    }
    let r = get(&g.url("main", "/reports/a")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["reason"], "load_shed");
    assert_eq!(r.headers["retry-after"], "3");
    assert_eq!(get(&g.url("main", "/checkout/x")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_ip_list_closes_refused_peers_at_accept() {
    let up = Upstream::start("up").await;
    let cfg = format!(
        "[listeners.main]\naddress = \"127.0.0.1:0\"\nip_list = {{ deny = [\"127.0.0.66/32\"] }}\n\
         [upstreams.up]\nservers = [\"{}\"]\n{ONE_ROUTE}",
        up.addr
    );
    let g = Gw::start(&cfg).await;
    let mut refused = connect_from("127.0.0.66", g.addr("main")).await;
    assert_eq!(get_on(&mut refused, "/x").await, "");
    let mut other = connect_from("127.0.0.67", g.addr("main")).await;
    assert_eq!(status_of(&get_on(&mut other, "/x").await), 200);
    let m = get(&g.admin("/metrics")).await.text();
    assert!(m.contains("reason=\"ip_list\""), "refusals are counted");
}
