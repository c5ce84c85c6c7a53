//! TLS end to end: SNI certificate choice, ALPN HTTP/2, HSTS, HTTP→HTTPS
//! redirect, mTLS, minimum version, verified upstream TLS, certificate reload.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::pki::*;
use common::*;
use http_body_util::Full;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

/// One GET over a fresh TLS connection; any failure (handshake, first read) is an error.
async fn try_get(
    addr: std::net::SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<http::Response<hyper::body::Incoming>> {
    let s = connect(addr, "a.test", cfg).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let req = req("GET", "/x")
        .header("host", "a.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    sender
        .send_request(req)
        .await
        .map_err(std::io::Error::other)
}

async fn tls_gateway(pki: &Pki, up: &Upstream, listener_extra: &str, watch: bool) -> Gw {
    let (a_cert, a_key) = pki.issue("a", &["a.test"], false);
    let (b_cert, b_key) = pki.issue("b", &["*.b.test"], false);
    Gw::start(&format!(
        r#"
[server]
workers = 2
watch = {watch}

[listeners.tls]
address = "127.0.0.1:0"
[listeners.tls.tls]
certificates = [
  {{ cert = "{ac}", key = "{ak}", server_names = ["a.test"], default = true }},
  {{ cert = "{bc}", key = "{bk}", server_names = ["*.b.test"] }},
]
{listener_extra}

[listeners.plain]
address = "127.0.0.1:0"
redirect_https_port = 8443

[upstreams.up]
servers = ["{up}"]

[[routes]]
name = "all"
upstream = "up"
hsts = {{ max_age = "1d", include_subdomains = true }}
"#,
        ac = a_cert.display(),
        ak = a_key.display(),
        bc = b_cert.display(),
        bk = b_key.display(),
        up = up.addr,
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_selects_the_certificate_and_hsts_is_sent() {
    let pki = Pki::new();
    let up = Upstream::start("up").await;
    let gw = tls_gateway(&pki, &up, "", false).await;
    let cfg = pki.client_config(&[b"http/1.1"], None);
    let a = connect(gw.addr("tls"), "a.test", cfg.clone())
        .await
        .expect("a.test verifies");
    assert_eq!(peer_cert(&a), certs(&pki.path("a.pem"))[0]);
    let b = connect(gw.addr("tls"), "api.b.test", cfg.clone())
        .await
        .expect("wildcard verifies");
    assert_eq!(peer_cert(&b), certs(&pki.path("b.pem"))[0]);
    // An unknown name gets the default certificate, which then fails verification.
    assert!(connect(gw.addr("tls"), "other.test", cfg).await.is_err());

    let got = get_over(a, "a.test", "/x").await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.headers["strict-transport-security"],
        "max-age=86400; includeSubDomains"
    );
    assert_eq!(got.json()["headers"]["x-forwarded-proto"], "https");
    // HSTS is only for TLS: the plain listener never sends it.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_negotiates_http2() {
    let pki = Pki::new();
    let up = Upstream::start("up").await;
    let gw = tls_gateway(&pki, &up, "", false).await;
    let s = connect(
        gw.addr("tls"),
        "a.test",
        pki.client_config(&[b"h2", b"http/1.1"], None),
    )
    .await
    .unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(s),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            req("GET", "https://a.test/h2")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let got = collect(resp).await;
    assert_eq!(got.status, 200);
    assert!(got.headers.contains_key("strict-transport-security"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_listener_redirects_to_https() {
    let pki = Pki::new();
    let up = Upstream::start("up").await;
    let gw = tls_gateway(&pki, &up, "", false).await;
    let r = send(
        req("GET", &gw.url("plain", "/path?q=1"))
            .header("host", "a.test")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 308);
    assert_eq!(r.headers["location"], "https://a.test:8443/path?q=1");
    assert!(r.headers.get("strict-transport-security").is_none());
    assert_eq!(up.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_requires_a_certificate_from_the_ca() {
    let pki = Pki::new();
    let up = Upstream::start("up").await;
    let ca = pki.path("ca.pem");
    let gw = tls_gateway(
        &pki,
        &up,
        &format!("client_auth = {{ ca = \"{}\" }}", ca.display()),
        false,
    )
    .await;
    let (cc, ck) = pki.issue("client", &["client-1"], true);
    let with_cert = connect(
        gw.addr("tls"),
        "a.test",
        pki.client_config(&[b"http/1.1"], Some((&cc, &ck))),
    )
    .await
    .unwrap();
    assert_eq!(get_over(with_cert, "a.test", "/x").await.status, 200);

    // Without a certificate the handshake (or the first read) fails.
    let outcome = try_get(gw.addr("tls"), pki.client_config(&[b"http/1.1"], None)).await;
    assert!(
        outcome.is_err(),
        "a client without a certificate was served"
    );
    // A certificate from another CA is refused too.
    let other = Pki::new();
    let (oc, ok) = other.issue("intruder", &["intruder"], true);
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(pki.roots())
    .with_client_auth_cert(certs(&oc), PrivateKeyDer::from_pem_file(&ok).unwrap())
    .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let outcome = try_get(gw.addr("tls"), Arc::new(cfg)).await;
    assert!(
        outcome.is_err(),
        "a certificate from a foreign CA was accepted"
    );
    assert_eq!(up.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_minimum_refuses_tls12_clients() {
    let pki = Pki::new();
    let up = Upstream::start("up").await;
    let gw = tls_gateway(&pki, &up, "min_version = \"1.3\"", false).await;
    let tls12 = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(pki.roots())
    .with_no_client_auth();
    assert!(connect(gw.addr("tls"), "a.test", Arc::new(tls12))
        .await
        .is_err());
    let ok = connect(gw.addr("tls"), "a.test", pki.client_config(&[], None))
        .await
        .unwrap();
    assert_eq!(
        ok.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_tls_is_verified_and_presents_a_client_certificate() {
    let pki = Pki::new();
    let (sc, sk) = pki.issue("upstream", &["upstream.internal"], false);
    let (cc, ck) = pki.issue("gw-client", &["gateway"], true);
    // The upstream demands a client certificate from our CA.
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(pki.roots()),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_client_cert_verifier(verifier)
    .with_single_cert(certs(&sc), PrivateKeyDer::from_pem_file(&sk).unwrap())
    .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let up = Upstream::start_tls("secure", Arc::new(server)).await;
    let route = |tls: &str| {
        format!(
            "[listeners.main]\naddress = \"127.0.0.1:0\"\n[upstreams.s]\nservers = [\"{}\"]\ntls = {{ {tls} }}\nretries = 0\n[[routes]]\nname = \"s\"\nupstream = \"s\"\n",
            up.addr
        )
    };
    let good = Gw::start(&route(&format!(
        "ca = \"{}\", server_name = \"upstream.internal\", client_cert = \"{}\", client_key = \"{}\"",
        pki.path("ca.pem").display(),
        cc.display(),
        ck.display()
    )))
    .await;
    let r = get(&good.url("main", "/x")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["server"], "secure");

    // Wrong expected name: verification fails, the client sees 502, not data.
    let wrong = Gw::start(&route(&format!(
        "ca = \"{}\", server_name = \"evil.internal\", client_cert = \"{}\", client_key = \"{}\"",
        pki.path("ca.pem").display(),
        cc.display(),
        ck.display()
    )))
    .await;
    assert_eq!(get(&wrong.url("main", "/x")).await.status, 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_when_their_files_change() {
    let pki = Pki::new();
    let up = Upstream::start("up").await;
    let gw = tls_gateway(&pki, &up, "", true).await;
    let cfg = pki.client_config(&[b"http/1.1"], None);
    let before = peer_cert(
        &connect(gw.addr("tls"), "a.test", cfg.clone())
            .await
            .unwrap(),
    );
    // Re-issue a.test in place (same paths), as a renewal would.
    tokio::time::sleep(Duration::from_millis(50)).await;
    pki.issue("a", &["a.test"], false);
    let renewed = certs(&pki.path("a.pem"))[0].clone();
    assert_ne!(before, renewed);
    let mut served = before.clone();
    for _ in 0..100 {
        served = peer_cert(
            &connect(gw.addr("tls"), "a.test", cfg.clone())
                .await
                .unwrap(),
        );
        if served == renewed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served, renewed, "the renewed certificate was never served");
}
