//! Header handling for a correct proxy: hop-by-hop removal, the forwarding
//! headers, the client address behind trusted proxies, and request ids.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use rampart_core::IpSet;

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), including any named in
/// `Connection`. When `keep_upgrade` is set (a WebSocket handshake), the
/// `Connection: upgrade` and `Upgrade` pair survives.
pub fn remove_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none: one pass over the names instead of a
    // dozen hashed removals.
    if !h.keys().any(is_hop_by_hop) {
        return;
    }
    // Names listed in Connection are hop-by-hop too. Collect first: removing
    // while iterating the same map is not possible.
    let mut listed: Vec<HeaderName> = Vec::new();
    for v in h.get_all(header::CONNECTION) {
        if let Ok(v) = v.to_str() {
            for name in v.split(',') {
                let name = name.trim();
                if keep_upgrade && name.eq_ignore_ascii_case("upgrade") {
                    continue;
                }
                if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
                    listed.push(n);
                }
            }
        }
    }
    for n in listed {
        h.remove(n);
    }
    if !keep_upgrade {
        h.remove(header::CONNECTION);
        h.remove(header::UPGRADE);
    }
    h.remove(&KEEP_ALIVE);
    h.remove(&PROXY_CONNECTION);
    h.remove(header::PROXY_AUTHORIZATION);
    // `TE: trailers` is the one TE value HTTP/2 allows end to end, and gRPC
    // needs it; every other transfer coding is hop-by-hop.
    let wants_trailers = h
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
    h.remove(header::TE);
    if wants_trailers {
        h.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    h.remove(header::TRAILER);
    h.remove(header::TRANSFER_ENCODING);
}

/// Whether a header name is hop-by-hop by definition (RFC 9110 §7.6.1).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::UPGRADE
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::PROXY_AUTHORIZATION
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

/// The client's address: the peer, unless the peer is a trusted proxy, in
/// which case the right-most untrusted address of `X-Forwarded-For`.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &IpSet) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if trusted.is_empty() || !trusted.contains(peer_ip) {
        return peer_ip;
    }
    // Walk the chain from the nearest hop outwards; stop at the first address
    // that is not one of our proxies: that is who connected to them.
    let mut candidate = peer_ip;
    for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
        let Ok(value) = value.to_str() else {
            return candidate;
        };
        for part in value.rsplit(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    candidate = ip.to_canonical();
                    if !trusted.contains(candidate) {
                        return candidate;
                    }
                }
                Err(_) => return candidate,
            }
        }
    }
    candidate
}

/// A peer address with its text form, formatted once per connection rather
/// than once per request.
#[derive(Debug, Clone)]
pub struct PeerAddr {
    pub ip: IpAddr,
    text: String,
}

impl PeerAddr {
    pub fn new(ip: IpAddr) -> Self {
        let ip = ip.to_canonical();
        PeerAddr {
            ip,
            text: ip.to_string(),
        }
    }
}

/// Sets `X-Forwarded-For/-Proto/-Host` and `Forwarded` for the upstream.
///
/// From a trusted proxy the existing chain is extended; from anyone else
/// client-supplied forwarding headers are replaced, so they cannot be spoofed.
pub fn set_forwarding(
    h: &mut HeaderMap,
    peer: &PeerAddr,
    trusted_peer: bool,
    tls: bool,
    host: Option<&str>,
) {
    let proto = if tls { "https" } else { "http" };
    let mut xff = String::new();
    if trusted_peer {
        for v in h.get_all(&X_FORWARDED_FOR) {
            if let Ok(v) = v.to_str() {
                if !xff.is_empty() {
                    xff.push_str(", ");
                }
                xff.push_str(v);
            }
        }
    }
    if !xff.is_empty() {
        xff.push_str(", ");
    }
    xff.push_str(&peer.text);
    let mut fwd = String::new();
    if trusted_peer {
        for v in h.get_all(&FORWARDED) {
            if let Ok(v) = v.to_str() {
                fwd.push_str(v);
                fwd.push_str(", ");
            }
        }
    }
    match peer.ip {
        IpAddr::V4(_) => {
            fwd.push_str("for=");
            fwd.push_str(&peer.text);
        }
        IpAddr::V6(_) => {
            fwd.push_str("for=\"[");
            fwd.push_str(&peer.text);
            fwd.push_str("]\"");
        }
    }
    fwd.push_str(";proto=");
    fwd.push_str(proto);
    if let Some(host) = host.filter(|h| {
        h.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b';' && b != b',')
    }) {
        fwd.push_str(";host=\"");
        fwd.push_str(host);
        fwd.push('"');
    }
    insert_str(h, &X_FORWARDED_FOR, xff);
    insert_str(h, &FORWARDED, fwd);
    if !(trusted_peer && h.contains_key(&X_FORWARDED_PROTO)) {
        h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    }
    if !(trusted_peer && h.contains_key(&X_FORWARDED_HOST)) {
        match host.and_then(|v| HeaderValue::from_str(v).ok()) {
            Some(v) => {
                h.insert(X_FORWARDED_HOST.clone(), v);
            }
            None => {
                h.remove(&X_FORWARDED_HOST);
            }
        }
    }
}

fn insert_str(h: &mut HeaderMap, name: &HeaderName, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        h.insert(name.clone(), v);
    }
}

/// A request id: the client's `X-Request-Id` when it comes from a trusted
/// proxy and looks sane, otherwise a fresh random one.
pub fn request_id(headers: &HeaderMap, trusted_peer: bool) -> String {
    if trusted_peer {
        if let Some(v) = headers.get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()) {
            if (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            {
                return v.to_string();
            }
        }
    }
    new_request_id()
}

/// 128 random bits as 32 hex digits.
pub fn new_request_id() -> String {
    let mut s = String::with_capacity(32);
    let _ = write!(s, "{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    s
}

#[cfg(test)]
mod tests {
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
            Some("api.test"),
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
            Some("a"),
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
    }
}
