//! Which heads the own server takes and which it hands to hyper; the loop
//! itself is tested end to end through the gateway (`tests/protocol.rs`).

use bytes::BytesMut;
use http::{Method, Version};

use super::head::{parse, Parsed, MAX_OWN_HEADERS};
use crate::name_memo::NameMemo;

fn parsed(raw: &str) -> (Parsed, BytesMut) {
    let mut buf = BytesMut::from(raw.as_bytes());
    let p = parse(&mut buf, 100, &mut NameMemo::default());
    (p, buf)
}

fn hands_off(raw: &str) {
    let (p, buf) = parsed(raw);
    assert!(matches!(p, Parsed::HandOff), "not handed off: {raw:?}");
    assert_eq!(&buf[..], raw.as_bytes(), "bytes kept for hyper: {raw:?}");
}

#[test]
fn a_plain_get_is_served_with_its_fields_and_the_rest_stays_buffered() {
    let raw = "GET /users/7?x=1 HTTP/1.1\r\nHost: api.test\r\nAccept: */*\r\nX-Two: a\r\nx-two: b\r\n\r\nGET /next";
    let (p, buf) = parsed(raw);
    let Parsed::Serve(r) = p else {
        panic!("not served")
    };
    assert_eq!(&buf[..], b"GET /next");
    assert!(!r.close);
    let req = &r.request;
    assert_eq!(req.method(), Method::GET);
    assert_eq!(req.uri().path(), "/users/7");
    assert_eq!(req.uri().query(), Some("x=1"));
    assert_eq!(req.version(), Version::HTTP_11);
    assert_eq!(req.headers()["host"], "api.test");
    let twos: Vec<_> = req.headers().get_all("x-two").iter().collect();
    assert_eq!(twos, ["a", "b"]);
}

#[test]
fn connection_close_is_noted() {
    let (p, _) = parsed("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n");
    let Parsed::Serve(r) = p else {
        panic!("not served")
    };
    assert!(r.close);
}

#[test]
fn an_absolute_target_and_a_zero_length_are_plain() {
    let (p, _) = parsed("DELETE http://api.test/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    let Parsed::Serve(r) = p else {
        panic!("not served")
    };
    assert_eq!(r.request.uri().host(), Some("api.test"));
    assert_eq!(r.request.method(), Method::DELETE);
}

#[test]
fn incomplete_heads_wait_for_more() {
    for raw in ["", "GET / HT", "GET / HTTP/1.1\r\nHost: a\r\n"] {
        let (p, buf) = parsed(raw);
        assert!(matches!(p, Parsed::Partial), "{raw:?}");
        assert_eq!(buf.len(), raw.len());
    }
}

#[test]
fn bodies_upgrades_and_the_unusual_go_to_hyper() {
    hands_off("POST /login HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    hands_off("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    hands_off("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n");
    hands_off("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n");
    hands_off("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    hands_off("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n");
    hands_off("POST /grpc HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n");
    hands_off("GET / HTTP/1.0\r\nHost: a\r\n\r\n");
    hands_off("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n");
    hands_off("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n");
}

#[test]
fn heads_hyper_must_refuse_go_to_hyper_untouched() {
    hands_off("GET / HTTP/1.1\r\nHo st: a\r\n\r\n");
    hands_off("GET / HTTP/1.1\r\nHost: a\u{1}b\r\n\r\n");
    hands_off("G\u{1}T / HTTP/1.1\r\nHost: a\r\n\r\n");
    // httparse takes this target, `http::Uri` does not: the bytes go back.
    hands_off("GET http:/// HTTP/1.1\r\nHost: a\r\n\r\n");
    hands_off("GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n");
}

#[test]
fn more_fields_than_the_own_limit_go_to_hyper() {
    let mut raw = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..MAX_OWN_HEADERS {
        raw.push_str(&format!("x-{i}: v\r\n"));
    }
    raw.push_str("\r\n");
    hands_off(&raw);
    // A smaller configured limit applies as well.
    let mut buf = BytesMut::from("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n".as_bytes());
    assert!(matches!(
        parse(&mut buf, 2, &mut NameMemo::default()),
        Parsed::HandOff
    ));
}

/// Seeded mini-fuzz (the `request_head` cargo-fuzz target goes further):
/// random bytes and mutated heads never panic, a handed-over or partial
/// head keeps every byte for hyper, and a served one leaves exactly what
/// followed it.
#[test]
fn random_and_mutated_heads_keep_their_bytes() {
    let seeds: [&[u8]; 3] = [
        b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nGET / HTTP/1.1\r\n",
        b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
        b"DELETE http://x/y HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    ];
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut memo = NameMemo::default();
    let mut outcomes = [0usize; 3];
    for round in 0..20_000 {
        let mut data = seeds[round % seeds.len()].to_vec();
        for _ in 0..rng.usize(0..4) {
            let at = rng.usize(0..data.len());
            match rng.u8(0..3) {
                0 => data[at] = rng.u8(..),
                1 => data.insert(at, b"\r\n: #\0\x7f\x80"[rng.usize(0..8)]),
                _ => {
                    data.remove(at);
                }
            }
        }
        if round % 7 == 0 {
            data = (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect();
        }
        let mut buf = BytesMut::from(&data[..]);
        let outcome = match parse(&mut buf, 100, &mut memo) {
            Parsed::Serve(_) => {
                assert!(data.ends_with(&buf), "{data:?}");
                0
            }
            Parsed::HandOff => 1,
            Parsed::Partial => 2,
        };
        if outcome > 0 {
            assert_eq!(&buf[..], &data[..], "{data:?}");
        }
        outcomes[outcome] += 1;
    }
    // The mutations reach all three outcomes.
    assert!(outcomes.iter().all(|n| *n > 50), "{outcomes:?}");
}
