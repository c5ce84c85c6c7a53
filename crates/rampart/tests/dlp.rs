//! Response DLP through the gateway: values masked in flight with an exact
//! Content-Length, leaks that must not pass replaced by a 502, monitor mode
//! leaving the body alone.

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::Full;

async fn gw(up: &Upstream, dlp: &str) -> Gw {
    Gw::start(&one_route(up, "", &format!("dlp = {{ {dlp} }}"))).await
}

/// The test upstream echoes request headers in its JSON answer, so a header
/// sent here comes back in the response body.
async fn echo_with(g: &Gw, name: &str, value: &str) -> Got {
    send(
        req("GET", &g.url("main", "/echo"))
            .header(name, value)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_numbers_are_masked_in_flight_and_the_json_stays_valid() {
    let up = Upstream::start("up").await;
    let g = gw(&up, "").await;
    let r = echo_with(&g, "x-card", "4111 1111 1111 1111").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["headers"]["x-card"], "**** **** **** 1111");
    assert_eq!(
        r.headers["content-length"],
        r.body.len().to_string().as_str()
    );
    assert!(!r.text().contains("4111 1111"));
    // A number failing Luhn is left alone.
    let r = echo_with(&g, "x-card", "4111 1111 1111 1112").await;
    assert_eq!(r.json()["headers"]["x-card"], "4111 1111 1111 1112");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_trace_is_blocked_with_a_generic_502() {
    let up = Upstream::start("up").await;
    let g = gw(&up, "").await;
    let r = echo_with(
        &g,
        "x-debug",
        "Traceback (most recent call last): File \"/srv/app.py\", line 3, in handler",
    )
    .await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["reason"], "sensitive_data_blocked");
    assert!(!r.text().contains("Traceback"));
    assert!(!r.text().contains("/srv/app.py"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_configured_per_detector_and_by_json_path() {
    let up = Upstream::start("up").await;
    let g = gw(
        &up,
        r#"detectors = { email = "mask", card = "block" }, json_paths = { "$.server" = "mask" }"#,
    )
    .await;
    let r = echo_with(&g, "x-contact", "alice@example.com").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let masked = v["headers"]["x-contact"].as_str().unwrap();
    assert!(
        masked.starts_with('a') && masked.ends_with("@example.com"),
        "{masked}"
    );
    assert_ne!(masked, "alice@example.com");
    assert_eq!(v["server"], "**");
    let r = echo_with(&g, "x-card", "4111111111111111").await;
    assert_eq!(r.status, 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_mode_records_but_sends_the_body_unchanged() {
    let up = Upstream::start("up").await;
    let g = gw(&up, "mode = \"monitor\"").await;
    let r = echo_with(&g, "x-card", "4111 1111 1111 1111").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-card"], "4111 1111 1111 1111");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_detector_is_a_config_error_with_its_key() {
    let up = Upstream::start("up").await;
    let cfg = format!(
        "[listeners.main]\naddress = \"127.0.0.1:0\"\n[upstreams.up]\nservers = [\"{}\"]\n\
         [[routes]]\nname = \"api\"\nupstream = \"up\"\ndlp = {{ detectors = {{ passport = \"mask\" }} }}\n",
        up.addr
    );
    let err = Gw::try_start(&cfg).await.err().expect("refused");
    let msg = err.to_string();
    assert!(msg.contains("routes[0].dlp.detectors.passport"), "{msg}");
    assert!(msg.contains("expected one of"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_response_is_decompressed_masked_and_recompressed() {
    use std::io::Read as _;
    let up = Upstream::start("up").await;
    let g = gw(&up, "").await;
    let r = send(
        req("GET", &g.url("main", "/gzip"))
            .header("x-payload", "card 4111 1111 1111 1111")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-encoding"], "gzip");
    assert_eq!(
        r.headers["content-length"],
        r.body.len().to_string().as_str()
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut text)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["payload"], "card **** **** **** 1111");
}
