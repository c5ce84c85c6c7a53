//! Tests of rampart's own HTTP/1.1 client against scripted upstreams that
//! write raw bytes: framing, streaming, reuse and its refusals.

use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::body::BodyError;

/// An upstream whose every connection runs `script` on its own thread;
/// returns its address and the count of accepted connections.
pub(super) fn scripted(script: fn(StdStream)) -> (Authority, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || script(stream));
        }
    });
    (addr.to_string().parse().unwrap(), accepted)
}

/// Reads one request head; `None` when the client closed the connection.
pub(super) fn read_head(stream: &mut StdStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Reads until `end` has been seen; everything read.
fn read_until(stream: &mut StdStream, end: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(end) {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
    }
    got
}

fn pool() -> Arc<H1Pool> {
    Arc::new(H1Pool::new(1, 8, Duration::from_secs(1)))
}

fn request(method: &str, body: RequestBody) -> Request<RequestBody> {
    Request::builder()
        .method(method)
        .uri("/r")
        .header(http::header::HOST, "example.test")
        .body(body)
        .unwrap()
}

fn later() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(30)
}

async fn send(
    pool: &Arc<H1Pool>,
    authority: &Authority,
    req: Request<RequestBody>,
) -> Response<UpstreamBody> {
    pool.send_request(0, authority, req, later()).await.unwrap()
}

async fn get(pool: &Arc<H1Pool>, authority: &Authority) -> Response<UpstreamBody> {
    send(pool, authority, request("GET", RequestBody::Full(None))).await
}

#[tokio::test]
async fn chunked_response_streams_with_trailers_then_the_connection_is_reused() {
    let (authority, accepted) = scripted(|mut s| {
        while read_head(&mut s).is_some() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel");
            std::thread::sleep(Duration::from_millis(20));
            let _ = s.write_all(b"lo\r\n6;ext=1\r\n world\r\n0\r\nx-sum: 42\r\n\r\n");
        }
    });
    let pool = pool();
    for _ in 0..2 {
        let resp = get(&pool, &authority).await;
        let collected = resp.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-sum"], "42");
        assert_eq!(&collected.to_bytes()[..], b"hello world");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn body_split_across_reads_is_streamed_and_counted_exactly() {
    let (authority, accepted) = scripted(|mut s| {
        while read_head(&mut s).is_some() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n01234");
            std::thread::sleep(Duration::from_millis(20));
            let _ = s.write_all(b"56789");
        }
    });
    let pool = pool();
    for _ in 0..3 {
        let resp = get(&pool, &authority).await;
        assert_eq!(http_body::Body::size_hint(resp.body()).exact(), Some(10));
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"0123456789");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn close_delimited_response_is_read_to_the_end_and_not_reused() {
    let (authority, accepted) = scripted(|mut s| {
        if read_head(&mut s).is_some() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil the end");
        }
    });
    let pool = pool();
    for _ in 0..2 {
        let resp = get(&pool, &authority).await;
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"until the end");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(pool.idle_len(0), 0);
}

#[tokio::test]
async fn connection_close_and_http_1_0_answers_are_not_reused() {
    let (authority, accepted) = scripted(|mut s| {
        let mut n = 0;
        while read_head(&mut s).is_some() {
            n += 1;
            let answer: &[u8] = if n % 2 == 1 {
                b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
            } else {
                b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"
            };
            let _ = s.write_all(answer);
        }
    });
    let pool = pool();
    for _ in 0..2 {
        let resp = get(&pool, &authority).await;
        assert_eq!(
            &resp.into_body().collect().await.unwrap().to_bytes()[..],
            b"ok"
        );
    }
    // The upstream kept each socket open, but its answer said not to reuse it.
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn informational_answers_are_skipped() {
    let (authority, _) = scripted(|mut s| {
        if read_head(&mut s).is_some() {
            let _ = s.write_all(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
            );
        }
    });
    let resp = get(&pool(), &authority).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(resp.headers().get("link").is_none());
}

#[tokio::test]
async fn head_answers_have_no_body_and_keep_the_connection() {
    let (authority, accepted) = scripted(|mut s| {
        while read_head(&mut s).is_some() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n");
        }
    });
    let pool = pool();
    for _ in 0..2 {
        let resp = send(&pool, &authority, request("HEAD", RequestBody::Full(None))).await;
        assert_eq!(resp.headers()["content-length"], "100");
        assert!(http_body::Body::is_end_stream(resp.body()));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn ambiguous_or_garbled_answers_are_errors() {
    let (authority, _) = scripted(|mut s| {
        if read_head(&mut s).is_some() {
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok");
        }
    });
    let err = pool()
        .send_request(
            0,
            &authority,
            request("GET", RequestBody::Full(None)),
            later(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Read(ReadError::Wire(WireError::ContentLength))),
        "{err}"
    );

    let (authority, _) = scripted(|mut s| {
        if read_head(&mut s).is_some() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r");
        }
    });
    let err = pool()
        .send_request(
            0,
            &authority,
            request("GET", RequestBody::Full(None)),
            later(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Read(ReadError::Closed)), "{err}");
}

#[tokio::test]
async fn truncated_body_is_an_error_and_the_connection_is_dropped() {
    let (authority, accepted) = scripted(|mut s| {
        if read_head(&mut s).is_some() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n012");
        }
    });
    let pool = pool();
    let resp = get(&pool, &authority).await;
    let err = resp.into_body().collect().await.unwrap_err();
    assert!(
        matches!(err, BodyError::Upstream(ReadError::Closed)),
        "{err}"
    );
    assert_eq!(pool.idle_len(0), 0);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_body_left_unread_closes_its_connection() {
    let (authority, accepted) = scripted(|mut s| {
        while read_head(&mut s).is_some() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\nfirst bytes");
        }
    });
    let pool = pool();
    let mut body = send(&pool, &authority, request("GET", RequestBody::Full(None)))
        .await
        .into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first bytes");
    drop(body);
    let resp = get(&pool, &authority).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// Echoes what it received as the response body: the request head, then
/// the raw bytes of a chunked body up to the end of its trailer section.
fn echo_chunked(mut s: StdStream) {
    while let Some(head) = read_head(&mut s) {
        let body = if head.contains("transfer-encoding: chunked") {
            read_until(&mut s, b"\r\n0\r\nx-digest: d1\r\n\r\n")
        } else {
            Vec::new()
        };
        let all = [head.as_bytes(), &body].concat();
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            all.len()
        );
        let _ = s.write_all(&all);
    }
}

#[tokio::test]
async fn streamed_body_of_unknown_length_goes_chunked_with_trailers() {
    let (authority, accepted) = scripted(echo_chunked);
    let pool = pool();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let feed = async move {
        tx.send(Ok(Frame::data(Bytes::from_static(b"hello"))))
            .await
            .unwrap();
        tx.send(Ok(Frame::data(Bytes::from(vec![b'z'; 20_000]))))
            .await
            .unwrap();
        let mut t = http::HeaderMap::new();
        t.insert("x-digest", http::HeaderValue::from_static("d1"));
        tx.send(Ok(Frame::trailers(t))).await.unwrap();
    };
    let body = RequestBody::Pumped(rx, http_body::SizeHint::default());
    let (resp, ()) = tokio::join!(send(&pool, &authority, request("POST", body)), feed);
    let echoed = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&echoed);
    assert!(
        text.starts_with(
            "POST /r HTTP/1.1\r\nhost: example.test\r\ntransfer-encoding: chunked\r\n\r\n"
        ),
        "{text}"
    );
    let expected_body = format!(
        "5\r\nhello\r\n4e20\r\n{}\r\n0\r\nx-digest: d1\r\n\r\n",
        "z".repeat(20_000)
    );
    assert!(text.ends_with(&expected_body));
    // The whole body was sent, so the connection serves again.
    let again = get(&pool, &authority).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn body_of_known_length_gets_a_content_length_and_is_sent_whole() {
    let (authority, _) = scripted(|mut s| {
        while let Some(head) = read_head(&mut s) {
            let mut body = vec![0u8; 40_000];
            let ok = s.read_exact(&mut body).is_ok() && body.iter().all(|&b| b == b'q');
            let verdict = format!("{}|{ok}", head.contains("content-length: 40000\r\n"));
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{verdict}",
                verdict.len()
            );
        }
    });
    let body = RequestBody::full(Bytes::from(vec![b'q'; 40_000]));
    let resp = send(&pool(), &authority, request("PUT", body)).await;
    assert_eq!(
        &resp.into_body().collect().await.unwrap().to_bytes()[..],
        b"true|true"
    );
}

#[tokio::test]
async fn empty_post_says_content_length_zero() {
    let (authority, _) = scripted(|mut s| {
        if let Some(head) = read_head(&mut s) {
            let verdict = head.contains("content-length: 0\r\n").to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{verdict}",
                verdict.len()
            );
        }
    });
    let resp = send(
        &pool(),
        &authority,
        request("POST", RequestBody::Full(None)),
    )
    .await;
    assert_eq!(
        &resp.into_body().collect().await.unwrap().to_bytes()[..],
        b"true"
    );
}

#[tokio::test]
async fn early_answer_stops_the_body_and_the_connection_is_not_reused() {
    let (authority, accepted) = scripted(|mut s| {
        if read_head(&mut s).is_some() {
            let _ = s.write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n");
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let pool = pool();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    // The body never ends: only the early answer can complete the exchange.
    let body = RequestBody::Pumped(rx, http_body::SizeHint::default());
    let resp = send(&pool, &authority, request("POST", body)).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    drop(tx);
    assert_eq!(pool.idle_len(0), 0);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn client_body_failure_is_reported_as_such() {
    let (authority, _) = scripted(|mut s| {
        let _ = read_head(&mut s);
        std::thread::sleep(Duration::from_secs(2));
    });
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(Err(BodyError::Timeout)).await.unwrap();
    let body = RequestBody::Pumped(rx, http_body::SizeHint::default());
    let err = pool()
        .send_request(0, &authority, request("POST", body), later())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Body(BodyError::Timeout)), "{err}");
}

#[tokio::test]
async fn switching_protocols_hands_over_the_socket_with_what_followed() {
    let (authority, _) = scripted(|mut s| {
        if let Some(head) = read_head(&mut s) {
            assert!(head.contains("upgrade: websocket\r\n"));
            let _ = s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\nHELLO");
            let mut buf = [0u8; 4];
            if s.read_exact(&mut buf).is_ok() {
                let _ = s.write_all(&buf);
            }
        }
    });
    let req = Request::get("/ws")
        .header(http::header::HOST, "example.test")
        .header(http::header::CONNECTION, "upgrade")
        .header(http::header::UPGRADE, "websocket")
        .body(RequestBody::Full(None))
        .unwrap();
    let mut resp = send(&pool(), &authority, req).await;
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    let RawUpgrade {
        mut stream,
        leftover,
    } = resp.body_mut().take_upgrade().expect("upgraded socket");
    assert_eq!(&leftover[..], b"HELLO");
    stream.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping");
}
