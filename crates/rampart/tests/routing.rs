//! Routing, header handling and denial rendering, end to end.

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::Full;

async fn two_upstreams() -> (Upstream, Upstream, Gw) {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let gw = Gw::start(&format!(
        r#"
[server]
workers = 2
watch = false
trusted_proxies = ["127.0.0.2/32"]

[listeners.main]
address = "127.0.0.1:0"

[upstreams.a]
servers = ["{a}"]
[upstreams.b]
servers = ["{b}"]

[[routes]]
name = "api-v1"
hosts = ["api.test"]
path = {{ prefix = "/v1/" }}
methods = ["GET", "POST"]
upstream = "a"

[[routes]]
name = "wild"
hosts = ["*.wild.test"]
upstream = "b"

[[routes]]
name = "stripped"
path = {{ prefix = "/svc/" }}
strip_prefix = "/svc"
upstream = "b"

[[routes]]
name = "users"
path = {{ regex = "^/users/[0-9]+$" }}
upstream = "a"
priority = 5
"#,
        a = a.addr,
        b = b.addr
    ))
    .await;
    (a, b, gw)
}

fn with_host(method: &str, url: &str, host: &str) -> http::Request<Full<Bytes>> {
    req(method, url)
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_host_path_and_method() {
    let (_a, _b, gw) = two_upstreams().await;
    let r = send(with_host(
        "GET",
        &gw.url("main", "/v1/items?x=1"),
        "api.test",
    ))
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["server"], "a");
    assert_eq!(r.json()["uri"], "/v1/items?x=1");

    let r = send(with_host(
        "GET",
        &gw.url("main", "/anything"),
        "deep.sub.wild.test:8080",
    ))
    .await;
    assert_eq!(r.json()["server"], "b");

    let r = send(with_host("GET", &gw.url("main", "/users/42"), "other.test")).await;
    assert_eq!(r.json()["server"], "a");

    let r = send(with_host(
        "GET",
        &gw.url("main", "/svc/inner/path?q=2"),
        "other.test",
    ))
    .await;
    assert_eq!(r.json()["server"], "b");
    assert_eq!(
        r.json()["uri"],
        "/inner/path?q=2",
        "prefix stripped, query kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_requests_get_404_and_wrong_methods_405() {
    let (a, _b, gw) = two_upstreams().await;
    let r = send(with_host("GET", &gw.url("main", "/nope"), "other.test")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(r.json()["reason"], "no_route");

    let r = send(with_host(
        "DELETE",
        &gw.url("main", "/v1/items"),
        "api.test",
    ))
    .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET, POST");
    assert_eq!(r.json()["reason"], "method_not_allowed");
    assert_eq!(a.hits(), 0, "refused requests never reach the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_carry_request_id_and_html_for_browsers() {
    let (_a, _b, gw) = two_upstreams().await;
    let r = send(
        req("GET", &gw.url("main", "/nope"))
            .header("host", "x.test")
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let rid = r.headers["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(rid.len(), 32);
    assert!(r.text().contains(&rid) && r.text().contains("no_route"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_are_set_and_spoofs_replaced() {
    let (_a, _b, gw) = two_upstreams().await;
    let r = send(
        req("GET", &gw.url("main", "/v1/x"))
            .header("host", "api.test")
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-forwarded-proto", "https")
            .header("x-request-id", "client-chosen")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    let h = &r.json()["headers"];
    assert_eq!(
        h["x-forwarded-for"], "127.0.0.1",
        "untrusted client cannot inject a chain"
    );
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "api.test");
    assert_eq!(h["forwarded"], "for=127.0.0.1;proto=http;host=\"api.test\"");
    assert_eq!(h["host"], "api.test", "the client's Host is kept");
    let rid = h["x-request-id"].as_str().unwrap();
    assert_ne!(rid, "client-chosen", "untrusted request ids are replaced");
    assert_eq!(
        r.headers["x-request-id"].to_str().unwrap(),
        rid,
        "client sees the same id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_chain_and_request_id_are_kept() {
    let (_a, _b, gw) = two_upstreams().await;
    // Connect from 127.0.0.2, which the config trusts.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = sock.connect(gw.addr("main")).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            req("GET", "/v1/x")
                .header("host", "api.test")
                .header("x-forwarded-for", "203.0.113.7")
                .header("x-request-id", "edge-123")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let r = collect(resp).await;
    let h = &r.json()["headers"];
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 127.0.0.2");
    assert_eq!(h["x-request-id"], "edge-123");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_removed_both_ways() {
    let (_a, _b, gw) = two_upstreams().await;
    let r = send(
        req("GET", &gw.url("main", "/v1/x"))
            .header("host", "api.test")
            .header("connection", "x-private-hop")
            .header("x-private-hop", "secret")
            .header("te", "gzip")
            .header("proxy-authorization", "Basic Zm9vOmJhcg==")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    let h = r.json()["headers"].clone();
    for gone in ["x-private-hop", "te", "proxy-authorization", "connection"] {
        assert!(h.get(gone).is_none(), "{gone} reached the upstream: {h}");
    }
    let r = send(with_host("GET", &gw.url("main", "/svc/hop"), "x.test")).await;
    assert!(r.headers.get("x-upstream-private").is_none());
    assert!(r.headers.get("keep-alive").is_none());
}
