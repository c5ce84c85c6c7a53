//! Protocol hygiene and pass-through, over raw sockets: smuggling and
//! oversize requests, slowloris, streaming limits, WebSocket, HTTP/2.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody};
use tokio::io::AsyncWriteExt;

async fn gateway(up: &Upstream, extra_route: &str, limits: &str) -> Gw {
    Gw::start(&format!(
        r#"
[limits]
max_uri_bytes = 200
max_headers = 20
max_header_bytes = "2KiB"
header_read_timeout = "300ms"
body_read_timeout = "300ms"
{limits}

[listeners.main]
address = "127.0.0.1:0"

[listeners.h2c]
address = "127.0.0.1:0"
h2c = true

[upstreams.up]
servers = ["{addr}"]

[upstreams.grpc]
servers = ["{addr}"]
protocol = "http2"

[[routes]]
name = "grpc"
path = {{ prefix = "/grpc." }}
upstream = "grpc"

[[routes]]
name = "all"
upstream = "up"
{extra_route}
"#,
        addr = up.addr
    ))
    .await
}

/// An HTTP/2 (prior knowledge) client on the gateway's `h2c` listener.
async fn h2c_client(gw: &Gw) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(gw.addr("h2c"))
        .await
        .unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    sender
}

async fn raw_status(gw: &Gw, request: &str) -> (u16, String) {
    let out = raw(gw.addr("main"), request.as_bytes(), Duration::from_secs(2)).await;
    (status_of(&out), out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_signatures_are_refused_before_the_upstream() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, "", "").await;
    let (s, body) = raw_status(&gw, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("ambiguous_content_length"), "{body}");
    let (s, body) = raw_status(
        &gw,
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    )
    .await;
    assert_eq!(s, 400);
    assert!(body.contains("duplicate_content_length"), "{body}");
    // Conflicting lengths and bad bytes are refused by the parser itself.
    let (s, _) = raw_status(
        &gw,
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = raw_status(&gw, "GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\x01b\r\n\r\n").await;
    assert_eq!(s, 400);
    let (s, _) = raw_status(
        &gw,
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(up.hits(), 0, "none of these reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_keepalive_requests_after_a_body_are_not_flagged() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, "", "").await;
    let pipelined = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 16\r\n\r\nContent-Length: \
                     POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
                     GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let (_, out) = raw_status(&gw, pipelined).await;
    assert_eq!(out.matches("HTTP/1.1 200").count(), 3, "{out}");
    assert_eq!(up.hits(), 3);
}

/// rampart's own HTTP/1.1 server serves plain requests and hands the
/// connection to hyper at the first one with a body: both serve one
/// pipelined connection in order, and the framing scan still sees every
/// head after the hand-over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_server_and_hyper_serve_one_connection_in_turn() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, "", "").await;
    let pipelined = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\
                     GET /2 HTTP/1.1\r\nHost: a\r\n\r\n\
                     POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\
                     GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let (_, out) = raw_status(&gw, pipelined).await;
    assert_eq!(out.matches("HTTP/1.1 200").count(), 4, "{out}");
    assert_eq!(out.matches("x-request-id: ").count(), 4, "{out}");
    for path in ["/1", "/2", "/3", "/4"] {
        assert!(
            out.contains(&format!("\"uri\":\"{path}\"")),
            "{path} in {out}"
        );
    }
    assert_eq!(up.hits(), 4);
    // A smuggling signature after plain requests is still refused.
    let smuggle = "GET /5 HTTP/1.1\r\nHost: a\r\n\r\n\
                   POST /6 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let (first, out) = raw_status(&gw, smuggle).await;
    assert_eq!(first, 200, "{out}");
    assert!(out.contains("ambiguous_content_length"), "{out}");
    assert_eq!(
        up.hits(),
        5,
        "the smuggled request never reached the upstream"
    );
}

/// The own server frames its answers as hyper's did: HEAD keeps the
/// upstream's length and sends no body; `Connection: close` is answered
/// with the same field and the connection then closes; every answer has a
/// Date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_server_answers_head_and_close_like_hyper() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, "", "").await;
    let mut s = tokio::net::TcpStream::connect(gw.addr("main"))
        .await
        .unwrap();
    s.write_all(b"HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /g HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let out = read_until_close(&mut s, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the server closed: {out}"
    );
    let second = out
        .match_indices("HTTP/1.1 200")
        .nth(1)
        .expect("two answers")
        .0;
    let (head_answer, get_answer) = out.split_at(second);
    assert!(
        head_answer
            .to_ascii_lowercase()
            .contains("content-length: "),
        "{head_answer}"
    );
    assert!(
        head_answer.ends_with("\r\n\r\n"),
        "no body after a HEAD answer: {head_answer:?}"
    );
    assert!(!head_answer.contains("connection: close"), "{head_answer}");
    assert!(get_answer.contains("connection: close\r\n"), "{get_answer}");
    assert!(get_answer.contains("\"uri\":\"/g\""), "{get_answer}");
    assert_eq!(out.matches("date: ").count(), 2, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_fields_reach_the_client_whole_on_both_servers() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, "", "").await;
    // rampart's own server, which writes unchanged fields without a map.
    for path in ["/fields", "/fields-own-id"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        let (status, out) = raw_status(&gw, &request).await;
        assert_eq!(status, 200, "{out}");
        let cookies: Vec<_> = out
            .lines()
            .filter(|l| l.starts_with("set-cookie: "))
            .collect();
        assert_eq!(
            cookies,
            ["set-cookie: a=1", "set-cookie: b=2; Path=/"],
            "{out}"
        );
        assert!(out.contains("\r\nx-upstream: yes\r\n"), "{out}");
        assert!(
            out.contains("\r\ncontent-type: application/json\r\n"),
            "{out}"
        );
        let ids: Vec<_> = out
            .lines()
            .filter(|l| l.starts_with("x-request-id: "))
            .collect();
        assert_eq!(ids.len(), 1, "one id, the gateway's: {out}");
        assert_eq!(ids[0].len(), "x-request-id: ".len() + 32, "{out}");
        assert_eq!(out.matches("date: ").count(), 1, "{out}");
    }
    // hyper's server (HTTP/2 here), which gets them in the map.
    let mut sender = h2c_client(&gw).await;
    let resp = sender
        .send_request(
            req("GET", &format!("http://{}/fields", gw.addr("h2c")))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let h = resp.headers();
    let cookies: Vec<_> = h.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2; Path=/"]);
    assert_eq!(h["x-upstream"], "yes");
    assert_eq!(h.get_all("x-request-id").iter().count(), 1);
    assert_eq!(h["x-request-id"].len(), 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_get_their_status() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, "", "").await;
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(300));
    let (s, body) = raw_status(&gw, &long).await;
    assert_eq!(s, 414);
    assert!(body.contains("uri_too_long"));
    let many: String = (0..25).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (s, body) = raw_status(&gw, &format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")).await;
    assert_eq!(s, 431);
    assert!(body.contains("too_many_headers"));
    let (s, body) = raw_status(
        &gw,
        &format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
            "b".repeat(3000)
        ),
    )
    .await;
    assert_eq!(s, 431);
    assert!(body.contains("headers_too_large"));
    let (s, body) = raw_status(&gw, "GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(s, 400);
    assert!(body.contains("missing_host"));
    assert_eq!(up.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_cut_off() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, "", "").await;
    let mut s = tokio::net::TcpStream::connect(gw.addr("main"))
        .await
        .unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").await.unwrap();
    let started = std::time::Instant::now();
    // Trickle a header byte every 100 ms: the 300 ms header deadline still holds.
    let mut closed = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
    }
    let mut rest = Vec::new();
    let eof = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut rest),
    )
    .await;
    assert!(
        closed || eof.is_ok(),
        "the server kept a trickling connection open"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(up.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_body_times_out_with_408() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, "", "").await;
    let mut s = tokio::net::TcpStream::connect(gw.addr("main"))
        .await
        .unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly-part")
        .await
        .unwrap();
    let out = read_until_close(&mut s, Duration::from_secs(3)).await;
    assert_eq!(status_of(&out), 408, "{out}");
    assert!(out.contains("body_timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_body_over_the_route_limit_is_cut_with_413() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, "request_limits = { max_body_bytes = 1000 }", "").await;
    // Chunked: no Content-Length to check up front; the stream is counted.
    let chunks: Vec<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>> = (0..20)
        .map(|_| Ok(hyper::body::Frame::data(Bytes::from(vec![b'x'; 100]))))
        .collect();
    let body = StreamBody::new(futures_util::stream::iter(chunks));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let resp = client
        .request(req("POST", &gw.url("main", "/upload")).body(body).unwrap())
        .await
        .unwrap();
    let got = collect(resp).await;
    assert_eq!(got.status, 413);
    assert_eq!(got.json()["reason"], "body_too_large");
    // Within the limit the body streams through intact.
    let ok = send(
        req("POST", &gw.url("main", "/upload"))
            .body(Full::new(Bytes::from(vec![b'y'; 900])))
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["body_len"], 900);
}

/// A raw HTTP/1.1 upstream that answers by path with hand-written framing,
/// keeping connections alive unless the answer runs to the close; returns
/// its address and the count of connections it accepted.
async fn raw_framing_upstream() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        match s.read_u8().await {
                            Ok(b) => head.push(b),
                            Err(_) => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    let pieces: &[&[u8]] = match path.as_str() {
                        "/chunked" => &[
                            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 99\r\n\r\n5\r\nhel",
                            b"lo\r\n6\r\n world\r\n0\r\n\r\n",
                        ],
                        "/length" => &[b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello", b" world"],
                        "/close" => &[b"HTTP/1.1 200 OK\r\n\r\nhello", b" world"],
                        _ => &[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok"],
                    };
                    for piece in pieces {
                        if s.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    // Only the delimited answers leave the connection usable.
                    if path != "/length" && path != "/chunked" {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_framings_reach_the_client_and_a_confused_upstream_gets_502() {
    let (addr, accepted) = raw_framing_upstream().await;
    let gw = Gw::start(&format!(
        "[server]\nworkers = 1\nwatch = false\n[listeners.main]\naddress = \"127.0.0.1:0\"\n[upstreams.raw]\nservers = [\"{addr}\"]\n[[routes]]\nname = \"raw\"\nupstream = \"raw\"\n"
    ))
    .await;
    for path in ["/chunked", "/length", "/chunked", "/length"] {
        let got = get(&gw.url("main", path)).await;
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.text(), "hello world", "{path}");
        // The length beside the transfer coding was not forwarded.
        assert_ne!(
            got.headers.get("content-length").map(|v| v.as_bytes()),
            Some(&b"99"[..])
        );
    }
    // Four exchanges, one kept-alive upstream connection (one worker).
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    let got = get(&gw.url("main", "/close")).await;
    assert_eq!(
        (got.status.as_u16(), got.text().as_str()),
        (200, "hello world")
    );
    let got = get(&gw.url("main", "/conflicting")).await;
    assert_eq!(got.status, 502);
    assert_eq!(got.json()["reason"], "upstream_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_passes_through() {
    // A WebSocket echo upstream.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() {
                        ws.send(msg).await.unwrap();
                    }
                }
            });
        }
    });
    let gw = Gw::start(&format!(
        "[listeners.main]\naddress = \"127.0.0.1:0\"\n[upstreams.ws]\nservers = [\"{ws_addr}\"]\n[[routes]]\nname = \"ws\"\nupstream = \"ws\"\n"
    ))
    .await;
    let url = format!("ws://{}/chat", gw.addr("main"));
    let (mut ws, resp) = tokio_tungstenite::connect_async(url)
        .await
        .expect("handshake through the gateway");
    assert_eq!(resp.status(), 101);
    assert!(resp.headers().contains_key("x-request-id"));
    for text in ["hello", "through", "rampart"] {
        ws.send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .unwrap();
        let echoed = ws.next().await.unwrap().unwrap();
        assert_eq!(echoed.into_text().unwrap().as_str(), text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_in_and_grpc_style_http2_upstream() {
    let up = Upstream::start("up").await;
    let gw = gateway(&up, "", "").await;
    let mut sender = h2c_client(&gw).await;
    // An HTTP/2 request to an HTTP/1.1 pool...
    let resp = sender
        .send_request(
            req("GET", &format!("http://{}/plain", gw.addr("h2c")))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let got = collect(resp).await;
    assert_eq!(got.json()["version"], "HTTP/1.1");
    // ...and a gRPC-shaped one (POST, application/grpc, TE: trailers) to an
    // HTTP/2 pool: TE survives, and the response trailers come back.
    let resp = sender
        .send_request(
            req(
                "POST",
                &format!("http://{}/grpc.health.v1.Health/Check", gw.addr("h2c")),
            )
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::from_static(b"\0\0\0\0\0")))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/grpc");
    let collected = resp.into_body().collect().await.unwrap();
    assert_eq!(
        collected.trailers().expect("trailers forwarded")["grpc-status"],
        "0"
    );
    let v: serde_json::Value = serde_json::from_slice(&collected.to_bytes()).unwrap();
    assert_eq!(v["version"], "HTTP/2.0");
    assert_eq!(v["te"], "trailers");
}
