//! JA4 of a real ClientHello: a rustls client connects to a TcpListener and
//! the server side fingerprints the first bytes it receives.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use rampart_bot::crypto::{hex, sha256};
use rampart_bot::ja4::{fingerprint, Ja4Error, Transport};

fn capture_client_hello() -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let name = "api.example.com".try_into().unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut sock = TcpStream::connect(addr).unwrap();
        while conn.wants_write() {
            conn.write_tls(&mut sock).unwrap();
        }
        // Keep the socket open until the server has read everything.
        std::thread::sleep(std::time::Duration::from_millis(200));
    });
    let (mut sock, _) = listener.accept().unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Peek-and-retry, as the gateway does: read until JA4 stops asking for more.
    loop {
        let n = sock.read(&mut chunk).unwrap();
        assert!(n > 0, "client closed before a full ClientHello");
        buf.extend_from_slice(&chunk[..n]);
        if fingerprint(&buf, Transport::Tcp) != Err(Ja4Error::Incomplete) {
            break;
        }
    }
    client.join().unwrap();
    buf
}

#[test]
fn rustls_client_hello_fingerprint() {
    let hello = capture_client_hello();
    let fp = fingerprint(&hello, Transport::Tcp).unwrap();
    let parts: Vec<&str> = fp.split('_').collect();
    assert_eq!(parts.len(), 3, "{fp}");
    let a = parts[0];
    assert!(a.starts_with("t13d"), "TLS 1.3, TCP, SNI present: {fp}");
    assert!(a.ends_with("h2"), "first ALPN is h2: {fp}");
    assert!(parts[1].len() == 12 && parts[2].len() == 12);

    // Cipher count and hash, computed independently from rustls's own list
    // (rustls also sends the renegotiation SCSV 0x00ff when TLS 1.2 is on).
    let provider = rustls::crypto::ring::default_provider();
    let mut ciphers: Vec<u16> = provider
        .cipher_suites
        .iter()
        .map(|s| u16::from(s.suite()))
        .collect();
    ciphers.push(0x00ff);
    ciphers.sort_unstable();
    assert_eq!(&a[4..6], format!("{:02}", ciphers.len()), "{fp}");
    let raw: Vec<String> = ciphers.iter().map(|c| format!("{c:04x}")).collect();
    let expected = hex(&sha256(raw.join(",").as_bytes()));
    assert_eq!(parts[1], &expected[..12], "{fp}");

    // Same client, same fingerprint (rustls does not randomise order, and
    // JA4 sorts anyway).
    let again = fingerprint(&capture_client_hello(), Transport::Tcp).unwrap();
    assert_eq!(fp, again);
}
