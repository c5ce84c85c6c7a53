//! Tests of the hop-by-hop, forwarding and request-id handling in
//! `headers.rs`.

use super::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

/// The forwarding step as the HTTP/2 client applies it: into the map.
fn set_forwarding(
    h: &mut HeaderMap,
    peer: &PeerAddr,
    trusted: bool,
    tls: bool,
    host: Option<&HeaderValue>,
) {
    let present = present_fields(h);
    forwarding_fields(h, present, from(peer, trusted, tls, host, None)).insert_into(h);
}

fn from<'a>(
    peer: &'a PeerAddr,
    trusted_peer: bool,
    tls: bool,
    host: Option<&'a HeaderValue>,
    request_id: Option<HeaderValue>,
) -> Forwarding<'a> {
    Forwarding {
        peer,
        trusted_peer,
        tls,
        host,
        request_id,
    }
}

fn trusted() -> IpSet {
    let nets: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    IpSet::new(&nets)
}

#[test]
fn hop_by_hop_headers_go_including_connection_listed_ones() {
    let mut h = map(&[
        ("connection", "keep-alive, x-secret-hop"),
        ("keep-alive", "timeout=5"),
        ("x-secret-hop", "1"),
        ("te", "gzip"),
        ("transfer-encoding", "chunked"),
        ("proxy-authorization", "Basic abc"),
        ("upgrade", "websocket"),
        ("x-kept", "yes"),
    ]);
    remove_hop_by_hop(&mut h, false);
    let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, ["x-kept"]);
}

#[test]
fn te_trailers_survives_for_grpc() {
    let mut h = map(&[("te", "trailers, deflate")]);
    remove_hop_by_hop(&mut h, false);
    assert_eq!(h["te"], "trailers");
}

#[test]
fn upgrade_pair_survives_for_websockets() {
    let mut h = map(&[
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("keep-alive", "1"),
    ]);
    remove_hop_by_hop(&mut h, true);
    assert_eq!(h["upgrade"], "websocket");
    assert_eq!(h["connection"], "Upgrade");
    assert!(!h.contains_key("keep-alive"));
}

#[test]
fn client_ip_trusts_only_configured_proxies() {
    let h = map(&[("x-forwarded-for", "203.0.113.9, 10.1.1.1")]);
    let from_proxy: SocketAddr = "10.0.0.2:5000".parse().unwrap();
    let from_client: SocketAddr = "198.51.100.4:5000".parse().unwrap();
    assert_eq!(
        client_ip(from_proxy, &h, &trusted()),
        "203.0.113.9".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        client_ip(from_client, &h, &trusted()),
        "198.51.100.4".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        client_ip(from_proxy, &h, &IpSet::default()),
        "10.0.0.2".parse::<IpAddr>().unwrap()
    );
    // A garbage entry stops the walk at the last good hop.
    let bad = map(&[("x-forwarded-for", "junk, 10.1.1.1")]);
    assert_eq!(
        client_ip(from_proxy, &bad, &trusted()),
        "10.1.1.1".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn forwarding_headers_replace_spoofed_values_from_untrusted_peers() {
    let mut h = map(&[
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=1.2.3.4"),
    ]);
    set_forwarding(
        &mut h,
        &PeerAddr::new("198.51.100.4".parse().unwrap()),
        false,
        false,
        Some(&HeaderValue::from_static("api.test")),
    );
    assert_eq!(h["x-forwarded-for"], "198.51.100.4");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "api.test");
    assert_eq!(
        h["forwarded"],
        "for=198.51.100.4;proto=http;host=\"api.test\""
    );
}

#[test]
fn forwarding_headers_extend_chain_from_trusted_peers() {
    let mut h = map(&[
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
    ]);
    set_forwarding(
        &mut h,
        &PeerAddr::new("10.0.0.2".parse().unwrap()),
        true,
        true,
        Some(&HeaderValue::from_static("a")),
    );
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.0.0.2");
    assert_eq!(
        h["forwarded"],
        "for=203.0.113.9, for=10.0.0.2;proto=https;host=\"a\""
    );
    let mut v6 = HeaderMap::new();
    set_forwarding(
        &mut v6,
        &PeerAddr::new("2001:db8::1".parse().unwrap()),
        false,
        true,
        None,
    );
    assert_eq!(v6["forwarded"], "for=\"[2001:db8::1]\";proto=https");
}

#[test]
fn request_ids_are_reused_only_from_trusted_peers() {
    let h = map(&[("x-request-id", "abc-123")]);
    assert_eq!(request_id(&h, true), "abc-123");
    assert_ne!(request_id(&h, false), "abc-123");
    let evil = map(&[("x-request-id", "a\"b<script>")]);
    assert_eq!(request_id(&evil, true).len(), 32);
    assert_ne!(new_request_id(), new_request_id());
    let id = new_request_id();
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
}

#[test]
fn connection_close_and_keep_alive_go_with_connection() {
    let mut h = map(&[("connection", "keep-alive"), ("x-kept", "1")]);
    remove_hop_by_hop(&mut h, false);
    let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, ["x-kept"]);
    // A field named by `Connection: close` goes too; none is made up.
    let mut h = map(&[("connection", "close, Keep-Alive"), ("close", "x")]);
    remove_hop_by_hop(&mut h, false);
    assert!(h.is_empty(), "{h:?}");
    // Invalid names in Connection are ignored, not a panic.
    let mut h = map(&[("connection", "a b, ,@@"), ("x-kept", "1")]);
    remove_hop_by_hop(&mut h, false);
    assert_eq!(h.len(), 1);
}

#[test]
fn headers_named_in_several_connection_values_all_go() {
    let mut h = map(&[
        ("connection", "x-one"),
        ("connection", "x-two, upgrade"),
        ("x-one", "1"),
        ("x-two", "2"),
        ("upgrade", "h2c"),
        ("x-kept", "yes"),
    ]);
    remove_hop_by_hop(&mut h, false);
    let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, ["x-kept"]);
}

#[test]
fn forwarded_element_follows_host_and_scheme_changes_on_one_connection() {
    let peer = PeerAddr::new("198.51.100.4".parse().unwrap());
    let a = HeaderValue::from_static("a.test");
    let b = HeaderValue::from_static("b.test");
    let fwd = |tls, host| {
        let mut h = HeaderMap::new();
        set_forwarding(&mut h, &peer, false, tls, host);
        h["forwarded"].to_str().unwrap().to_owned()
    };
    assert_eq!(
        fwd(false, Some(&a)),
        "for=198.51.100.4;proto=http;host=\"a.test\""
    );
    assert_eq!(
        fwd(false, Some(&a)),
        "for=198.51.100.4;proto=http;host=\"a.test\""
    );
    assert_eq!(
        fwd(false, Some(&b)),
        "for=198.51.100.4;proto=http;host=\"b.test\""
    );
    assert_eq!(
        fwd(true, Some(&b)),
        "for=198.51.100.4;proto=https;host=\"b.test\""
    );
    assert_eq!(fwd(true, None), "for=198.51.100.4;proto=https");
    // A host that would break out of the quoted-string is left out.
    let evil = HeaderValue::from_static("a\";for=1.2.3.4");
    assert_eq!(fwd(false, Some(&evil)), "for=198.51.100.4;proto=http");
}

#[test]
fn forwarded_host_header_is_dropped_without_a_host() {
    let mut h = map(&[("x-forwarded-host", "spoofed")]);
    let peer = PeerAddr::new("198.51.100.4".parse().unwrap());
    set_forwarding(&mut h, &peer, false, false, None);
    assert!(!h.contains_key("x-forwarded-host"));
    assert_eq!(h["x-forwarded-for"], "198.51.100.4");
}

#[test]
fn every_hop_by_hop_and_forwarding_name_has_its_own_bit() {
    let names = [
        ("connection", hop::CONNECTION),
        ("upgrade", hop::UPGRADE),
        ("te", hop::TE),
        ("trailer", hop::TRAILER),
        ("transfer-encoding", hop::TRANSFER_ENCODING),
        ("proxy-authorization", hop::PROXY_AUTHORIZATION),
        ("keep-alive", hop::KEEP_ALIVE),
        ("proxy-connection", hop::PROXY_CONNECTION),
        ("close", hop::CLOSE_FIELD),
        ("x-forwarded-for", hop::X_FORWARDED_FOR),
        ("forwarded", hop::FORWARDED),
        ("x-forwarded-proto", hop::X_FORWARDED_PROTO),
        ("x-forwarded-host", hop::X_FORWARDED_HOST),
        ("x-request-id", hop::X_REQUEST_ID),
    ];
    let mut all = 0;
    for (name, bit) in names {
        // Standard and custom names alike, whatever case they came in.
        let parsed = HeaderName::from_bytes(name.to_uppercase().as_bytes()).unwrap();
        assert_eq!(field_bit(&parsed), bit, "{name}");
        assert_eq!(bit.count_ones(), 1);
        assert_eq!(all & bit, 0, "{name} shares a bit");
        all |= bit;
    }
    for other in [
        "host",
        "user-agent",
        "content-type",
        "x-request-ix",
        "tf",
        "closed",
    ] {
        assert_eq!(field_bit(&HeaderName::from_static(other)), 0, "{other}");
    }
}

#[test]
fn only_fields_that_manage_the_connection_alone_are_consumed() {
    let class = |name: &str, value: &str| {
        response_field(
            &HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.as_bytes(),
        )
    };
    let consumed = |name: &str, value: &str| class(name, value) == ResponseField::Consumed;
    assert!(consumed("Connection", "keep-alive"));
    assert!(consumed("connection", "Keep-Alive, "));
    assert!(consumed("transfer-encoding", "chunked"));
    assert!(consumed("Keep-Alive", "timeout=5"));
    assert!(consumed("proxy-connection", "close"));
    // Naming another field (or upgrade) keeps `Connection` in the map,
    // where `remove_hop_by_hop` acts on what it names.
    assert!(!consumed("connection", "keep-alive, x-internal"));
    assert!(!consumed("connection", "upgrade"));
    assert!(!consumed("connection", "close"));
    assert_eq!(class("connection", "close"), ResponseField::Edited);
    assert_eq!(class("x-request-id", "a"), ResponseField::Edited);
    assert_eq!(class("server", "a"), ResponseField::Kept);
    for other in ["content-length", "te", "trailer", "upgrade", "x-keep-alive"] {
        assert!(!consumed(other, "keep-alive"), "{other}");
    }
}

#[test]
fn response_fields_the_proxy_changes_are_known_by_name() {
    // With a value that does not let the client consume the field.
    let edited = |name: &str| {
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        response_field(&name, b"x-other") == ResponseField::Edited
    };
    for name in [
        "Connection",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "close",
        "x-request-id",
        "Strict-Transport-Security",
    ] {
        assert!(edited(name), "{name}");
    }
    for name in [
        "server",
        "date",
        "content-length",
        "x-forwarded-for",
        "forwarded",
    ] {
        assert!(!edited(name), "{name}");
    }
}

#[test]
fn fields_the_proxy_adds_leave_the_map_so_none_goes_out_twice() {
    let mut h = map(&[
        ("host", "api.test"),
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.test"),
        ("forwarded", "for=1.2.3.4"),
        ("x-request-id", "spoofed"),
        ("x-kept", "1"),
    ]);
    let peer = PeerAddr::new("198.51.100.4".parse().unwrap());
    let host = HeaderValue::from_static("api.test");
    let id = HeaderValue::from_static("abc");
    let added = for_upstream(
        &mut h,
        false,
        from(&peer, false, false, Some(&host), Some(id)),
    );
    let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
    assert_eq!(left, ["host", "x-kept"]);
    let out: Vec<_> = added
        .iter()
        .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
        .collect();
    assert_eq!(
        out,
        [
            "x-forwarded-for: 198.51.100.4",
            "forwarded: for=198.51.100.4;proto=http;host=\"api.test\"",
            "x-forwarded-proto: http",
            "x-forwarded-host: api.test",
            "x-request-id: abc",
        ]
    );
}

#[test]
fn a_trusted_chain_named_in_connection_is_replaced_not_lost() {
    // `Connection` may name a forwarding field to strip it on the way;
    // the proxy then sets its own rather than keeping a chain that is
    // no longer there.
    let mut h = map(&[
        ("connection", "x-forwarded-proto, x-forwarded-host"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "front.test"),
        ("x-forwarded-for", "203.0.113.9"),
    ]);
    let peer = PeerAddr::new("10.0.0.2".parse().unwrap());
    let host = HeaderValue::from_static("api.test");
    let added = for_upstream(&mut h, false, from(&peer, true, false, Some(&host), None));
    assert!(h.is_empty(), "{h:?}");
    let mut out = HeaderMap::new();
    added.insert_into(&mut out);
    assert_eq!(out["x-forwarded-proto"], "http");
    assert_eq!(out["x-forwarded-host"], "api.test");
    assert_eq!(out["x-forwarded-for"], "203.0.113.9, 10.0.0.2");
    // Without `Connection`, the trusted proxy's own fields are kept.
    let mut h = map(&[("x-forwarded-proto", "https"), ("x-forwarded-host", "f")]);
    let added = for_upstream(&mut h, false, from(&peer, true, false, Some(&host), None));
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "f");
    assert_eq!(added.iter().count(), 2, "{added:?}");
}

#[test]
fn shared_values_keep_their_bytes_across_arena_chunks() {
    let ids: Vec<String> = (0..300).map(|_| new_request_id()).collect();
    let values: Vec<HeaderValue> = ids.iter().map(|id| shared_value(id).unwrap()).collect();
    for (id, v) in ids.iter().zip(&values) {
        assert_eq!(v.to_str().unwrap(), id);
        assert_eq!(v.clone(), *v);
    }
    let long = "x".repeat(ARENA_MAX_VALUE + 1);
    assert_eq!(shared_value(&long).unwrap().len(), long.len());
    assert!(shared_value("bad\nvalue").is_none());
}
