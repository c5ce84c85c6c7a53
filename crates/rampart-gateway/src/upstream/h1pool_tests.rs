//! Tests of rampart's HTTP/1.1 upstream pool against small local upstreams
//! that count the connections they accept.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::*;

/// A keep-alive hyper upstream answering `ok` after `delay`; returns its
/// address and the count of accepted connections.
async fn upstream(delay: Duration) -> (Authority, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                    // `/slow` takes 5 s more, whatever `delay` is.
                    let slow = req.uri().path() == "/slow";
                    tokio::time::sleep(delay + Duration::from_secs(5 * u64::from(slow))).await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr.to_string().parse().unwrap(), accepted)
}

fn get(path: &str) -> Request<RequestBody> {
    Request::get(path)
        .header(http::header::HOST, "example.test")
        .body(RequestBody::Full(None))
        .unwrap()
}

/// A deadline no test reaches.
fn later() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(30)
}

/// Sends one request and reads the whole response body, as the proxy does
/// when it streams the body on to its client.
async fn fetch(pool: &Arc<H1Pool>, authority: &Authority) -> Bytes {
    let resp = pool
        .send_request(0, authority, get("/x?y=1"), later())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let (authority, accepted) = upstream(Duration::ZERO).await;
    let pool = Arc::new(H1Pool::new(1, 8, Duration::from_secs(1)));
    for _ in 0..5 {
        assert_eq!(&fetch(&pool, &authority).await[..], b"ok");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(pool.idle_len(0), 1);
}

#[tokio::test]
async fn idle_list_is_bounded() {
    let (authority, accepted) = upstream(Duration::from_millis(50)).await;
    let pool = Arc::new(H1Pool::new(1, 2, Duration::from_secs(1)));
    // Four requests at once need four connections; only two stay idle.
    let all = futures_util::future::join_all((0..4).map(|_| fetch(&pool, &authority))).await;
    assert!(all.iter().all(|b| &b[..] == b"ok"));
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
    assert_eq!(pool.idle_len(0), 2);
    // The two kept are used again.
    fetch(&pool, &authority).await;
    fetch(&pool, &authority).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
}

/// An upstream that answers one request per connection as if it kept the
/// connection alive, then closes it 20 ms later (as an upstream's idle
/// timeout would). It runs on its own thread, so it closes connections even
/// while the test's runtime is blocked.
fn closing_upstream() -> (Authority, Arc<AtomicUsize>) {
    use std::io::Write;
    super::client_tests::scripted(|mut stream| {
        if super::client_tests::read_head(&mut stream).is_some() {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

#[tokio::test]
async fn stale_connection_closed_by_upstream_is_replaced() {
    let (authority, accepted) = closing_upstream();
    let pool = Arc::new(H1Pool::new(1, 8, Duration::from_secs(1)));
    assert_eq!(&fetch(&pool, &authority).await[..], b"ok");
    assert_eq!(pool.idle_len(0), 1);
    // The pooled connection sees the upstream's close and is dropped.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(&fetch(&pool, &authority).await[..], b"ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn request_with_a_body_after_the_upstream_closed_goes_on_a_fresh_connection() {
    let (authority, accepted) = closing_upstream();
    let pool = Arc::new(H1Pool::new(1, 8, Duration::from_secs(1)));
    assert_eq!(&fetch(&pool, &authority).await[..], b"ok");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A body that the proxy's own retries could not repeat: it must not be
    // written to the dead connection.
    let req = Request::post("/upload")
        .header(http::header::HOST, "example.test")
        .body(RequestBody::full(Bytes::from_static(b"payload")))
        .unwrap();
    let resp = pool
        .send_request(0, &authority, req, later())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    // Bind then drop, so the port is very likely closed.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let authority: Authority = addr.to_string().parse().unwrap();
    let pool = Arc::new(H1Pool::new(1, 8, Duration::from_secs(1)));
    let err = pool
        .send_request(0, &authority, get("/"), later())
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
}

#[tokio::test]
async fn host_header_is_added_when_missing() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
            let tx = tx.clone();
            async move {
                let host = req.headers().get(http::header::HOST).cloned();
                let _ = tx.send((req.uri().to_string(), host)).await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            }
        });
        tokio::spawn(
            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc),
        );
        rx.recv().await.unwrap()
    });
    let authority: Authority = addr.to_string().parse().unwrap();
    let pool = Arc::new(H1Pool::new(1, 8, Duration::from_secs(1)));
    let req = Request::get("/p?q=1")
        .body(RequestBody::Full(None))
        .unwrap();
    pool.send_request(0, &authority, req, later())
        .await
        .unwrap();
    let (uri, host) = seen.await.unwrap();
    assert_eq!(uri, "/p?q=1");
    assert_eq!(host.unwrap(), addr.to_string().as_str());
}

#[tokio::test]
async fn slow_response_times_out_on_fresh_and_reused_connections() {
    let (authority, accepted) = upstream(Duration::ZERO).await;
    let pool = Arc::new(H1Pool::new(1, 8, Duration::from_secs(1)));
    // An exchange with a far deadline leaves a pooled connection whose
    // timer is armed far ahead.
    assert_eq!(&fetch(&pool, &authority).await[..], b"ok");
    assert_eq!(pool.idle_len(0), 1);
    // Reused with a nearer deadline: the timer is moved back, and holds.
    let started = std::time::Instant::now();
    let soon = tokio::time::Instant::now() + Duration::from_millis(200);
    let err = pool
        .send_request(0, &authority, get("/slow"), soon)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err}");
    assert!(!err.is_connect());
    assert!(started.elapsed() < Duration::from_secs(2));
    // The timed-out connection is not pooled (its answer would be stale).
    assert_eq!(pool.idle_len(0), 0);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // On a fresh connection, a deadline already past.
    let past = tokio::time::Instant::now();
    let err = pool
        .send_request(0, &authority, get("/slow"), past)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err}");
    // A later deadline after those is not cut short by them.
    assert_eq!(&fetch(&pool, &authority).await[..], b"ok");
}
