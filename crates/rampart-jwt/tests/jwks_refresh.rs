//! JWKS caching against a real local HTTP server on 127.0.0.1: first load,
//! rotation, rate-limited refresh on unknown `kid`, outages and timeouts.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rampart_jwt::*;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// A JWKS endpoint whose answer can change during the test.
struct JwksServer {
    url: String,
    body: Arc<Mutex<(u16, String)>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start(body: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new((200u16, body)));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, h) = (state.clone(), hits.clone());
        let task = tokio::spawn(async move {
            // Connections live in this set, so aborting the task closes them too.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (s, h) = (s.clone(), h.clone());
                conns.spawn(async move {
                    let svc = service_fn(move |_req| {
                        h.fetch_add(1, Ordering::SeqCst);
                        let (status, body) = s.lock().unwrap().clone();
                        async move {
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        JwksServer {
            url,
            body: state,
            hits,
            task,
        }
    }

    fn set(&self, status: u16, body: String) {
        *self.body.lock().unwrap() = (status, body);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn stop(&self) {
        self.task.abort();
    }
}

fn options(refresh: Duration, min_refresh: Duration) -> JwksOptions {
    JwksOptions {
        refresh_interval: refresh,
        min_refresh_interval: min_refresh,
        fetch_timeout: Duration::from_millis(500),
        ..JwksOptions::default()
    }
}

fn verifier(source: KeySource, opts: JwksOptions) -> Verifier {
    let mut cfg = IssuerConfig::new(
        "https://idp",
        vec![Algorithm::ES256, Algorithm::EdDSA],
        source,
    );
    cfg.jwks = opts;
    Verifier::new(vec![cfg], VerifierOptions::default()).unwrap()
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn new_kid_is_fetched_and_accepted() {
    let (a, b) = (Signer::p256(), Signer::ed25519());
    let server = JwksServer::start(jwks(&[a.jwk("a")])).await;
    let v = verifier(
        KeySource::JwksUrl(server.url.clone()),
        options(HOUR, Duration::from_millis(200)),
    );
    assert!(v
        .verify(&token(
            &a,
            Algorithm::ES256,
            Some("a"),
            &claims("https://idp")
        ))
        .await
        .is_ok());

    server.set(200, jwks(&[a.jwk("a"), b.jwk("b")]));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let before = server.hits();
    let tb = token(&b, Algorithm::EdDSA, Some("b"), &claims("https://idp"));
    assert!(v.verify(&tb).await.is_ok());
    assert_eq!(server.hits(), before + 1, "exactly one on-demand refresh");
    // Now cached: no further fetch.
    assert!(v.verify(&tb).await.is_ok());
    assert_eq!(server.hits(), before + 1);
}

#[tokio::test]
async fn unknown_kid_refresh_is_rate_limited() {
    let a = Signer::p256();
    let b = Signer::ed25519();
    let server = JwksServer::start(jwks(&[a.jwk("a")])).await;
    let v = Arc::new(verifier(
        KeySource::JwksUrl(server.url.clone()),
        options(HOUR, Duration::from_millis(400)),
    ));
    assert!(v
        .verify(&token(
            &a,
            Algorithm::ES256,
            Some("a"),
            &claims("https://idp")
        ))
        .await
        .is_ok());
    assert_eq!(server.hits(), 1);

    // Within the rate-limit window a flood of made-up kids fetches nothing.
    for i in 0..50 {
        let t = token(
            &a,
            Algorithm::ES256,
            Some(&format!("bogus-{i}")),
            &claims("https://idp"),
        );
        assert_eq!(v.verify(&t).await.unwrap_err(), JwtError::UnknownKid);
    }
    assert_eq!(server.hits(), 1);

    // Even a genuinely new key waits for the window to pass.
    server.set(200, jwks(&[a.jwk("a"), b.jwk("b")]));
    let tb = token(&b, Algorithm::EdDSA, Some("b"), &claims("https://idp"));
    assert_eq!(v.verify(&tb).await.unwrap_err(), JwtError::UnknownKid);
    assert_eq!(server.hits(), 1);

    // After the window, 20 concurrent unknown-kid tokens cause one fetch.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let (v, a_token) = (
            v.clone(),
            token(
                &a,
                Algorithm::ES256,
                Some(&format!("x{i}")),
                &claims("https://idp"),
            ),
        );
        tasks.spawn(async move { v.verify(&a_token).await });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap_err(), JwtError::UnknownKid);
    }
    assert_eq!(server.hits(), 2);
    // That refresh also brought in b.
    assert!(v.verify(&tb).await.is_ok());
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn server_down_keeps_last_good_set() {
    let a = Signer::p256();
    let server = JwksServer::start(jwks(&[a.jwk("a")])).await;
    let v = verifier(
        KeySource::JwksUrl(server.url.clone()),
        options(Duration::from_millis(100), Duration::from_millis(100)),
    );
    let ta = token(&a, Algorithm::ES256, Some("a"), &claims("https://idp"));
    assert!(v.verify(&ta).await.is_ok());

    // Errors first (bad status, then garbage), then the server disappears.
    server.set(500, "oops".into());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(v.verify(&ta).await.is_ok(), "after HTTP 500");
    server.set(200, "{\"keys\": \"nope\"}".into());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(v.verify(&ta).await.is_ok(), "after an invalid document");
    let hits = server.hits();
    assert!(hits >= 3, "background refresh kept trying ({hits})");
    server.stop();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(v.verify(&ta).await.is_ok(), "after the server stopped");
    // Unknown kid with the server gone: still an unknown kid, not an outage.
    let tx = token(&a, Algorithm::ES256, Some("x"), &claims("https://idp"));
    assert_eq!(v.verify(&tx).await.unwrap_err(), JwtError::UnknownKid);
}

#[tokio::test]
async fn background_refresh_follows_rotation() {
    let (a, b) = (Signer::p256(), Signer::p256());
    let server = JwksServer::start(jwks(&[a.jwk("a")])).await;
    let v = verifier(
        KeySource::JwksUrl(server.url.clone()),
        options(Duration::from_millis(150), HOUR),
    );
    assert!(v
        .verify(&token(
            &a,
            Algorithm::ES256,
            Some("a"),
            &claims("https://idp")
        ))
        .await
        .is_ok());
    server.set(200, jwks(&[b.jwk("b")]));
    tokio::time::sleep(Duration::from_millis(400)).await;
    // min_refresh_interval is an hour, so only the background task can have
    // fetched the new set.
    assert!(v
        .verify(&token(
            &b,
            Algorithm::ES256,
            Some("b"),
            &claims("https://idp")
        ))
        .await
        .is_ok());
    // a was removed by the rotation.
    let ta = token(&a, Algorithm::ES256, Some("a"), &claims("https://idp"));
    assert_eq!(v.verify(&ta).await.unwrap_err(), JwtError::UnknownKid);
}

#[tokio::test]
async fn unavailable_without_any_good_set() {
    let a = Signer::p256();
    let server = JwksServer::start("down".into()).await;
    server.set(503, "down".into());
    let v = verifier(KeySource::JwksUrl(server.url.clone()), options(HOUR, HOUR));
    let ta = token(&a, Algorithm::ES256, Some("a"), &claims("https://idp"));
    assert_eq!(v.verify(&ta).await.unwrap_err(), JwtError::JwksUnavailable);
    // Rate-limited: the next request fails fast without another fetch.
    let hits = server.hits();
    assert_eq!(v.verify(&ta).await.unwrap_err(), JwtError::JwksUnavailable);
    assert_eq!(server.hits(), hits);
}

#[tokio::test]
async fn first_load_times_out() {
    // Accepts connections but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let v = verifier(KeySource::JwksUrl(url), options(HOUR, HOUR));
    let ta = token(
        &Signer::p256(),
        Algorithm::ES256,
        Some("a"),
        &claims("https://idp"),
    );
    let started = Instant::now();
    assert_eq!(v.verify(&ta).await.unwrap_err(), JwtError::JwksUnavailable);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    hold.abort();
}

#[tokio::test]
async fn oversized_jwks_is_refused() {
    let a = Signer::p256();
    let server = JwksServer::start(format!(
        "{{\"keys\": [{}], \"pad\": \"{}\"}}",
        a.jwk("a"),
        "x".repeat(4096)
    ))
    .await;
    let mut opts = options(HOUR, HOUR);
    opts.max_body_bytes = 1024;
    let v = verifier(KeySource::JwksUrl(server.url.clone()), opts);
    let ta = token(&a, Algorithm::ES256, Some("a"), &claims("https://idp"));
    assert_eq!(v.verify(&ta).await.unwrap_err(), JwtError::JwksUnavailable);
}

#[tokio::test]
async fn jwks_file_source_and_rotation() {
    let (a, b) = (Signer::ed25519(), Signer::ed25519());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(&[a.jwk("a")])).unwrap();
    let v = verifier(
        KeySource::JwksFile(path.clone()),
        options(HOUR, Duration::from_millis(100)),
    );
    assert!(v
        .verify(&token(
            &a,
            Algorithm::EdDSA,
            Some("a"),
            &claims("https://idp")
        ))
        .await
        .is_ok());
    std::fs::write(&path, jwks(&[a.jwk("a"), b.jwk("b")])).unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(v
        .verify(&token(
            &b,
            Algorithm::EdDSA,
            Some("b"),
            &claims("https://idp")
        ))
        .await
        .is_ok());
    // File removed: the last good set keeps working.
    std::fs::remove_file(&path).unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let tc = token(&a, Algorithm::EdDSA, Some("c"), &claims("https://idp"));
    assert_eq!(v.verify(&tc).await.unwrap_err(), JwtError::UnknownKid);
    assert!(v
        .verify(&token(
            &b,
            Algorithm::EdDSA,
            Some("b"),
            &claims("https://idp")
        ))
        .await
        .is_ok());
}

#[tokio::test]
async fn jwks_sources_refuse_hmac_and_plain_http() {
    let cfg = IssuerConfig::new(
        "i",
        vec![Algorithm::HS256],
        KeySource::JwksUrl("https://idp.example/jwks".into()),
    );
    let err = Verifier::new(vec![cfg], VerifierOptions::default()).unwrap_err();
    assert!(
        matches!(err, ConfigError::AlgorithmKeyMismatch { .. }),
        "{err}"
    );
    let cfg = IssuerConfig::new(
        "i",
        vec![Algorithm::RS256],
        KeySource::JwksUrl("http://idp.example/jwks".into()),
    );
    let err = Verifier::new(vec![cfg], VerifierOptions::default()).unwrap_err();
    assert!(matches!(err, ConfigError::JwksUrl(_)), "{err}");
}

#[test]
fn jwks_source_needs_a_runtime() {
    let cfg = IssuerConfig::new(
        "i",
        vec![Algorithm::RS256],
        KeySource::JwksUrl("http://127.0.0.1:1/jwks".into()),
    );
    let err = Verifier::new(vec![cfg], VerifierOptions::default()).unwrap_err();
    assert_eq!(err, ConfigError::NoRuntime);
}
