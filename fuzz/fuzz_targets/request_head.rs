//! Fuzzes request-head handling: the raw-byte framing scan (fed in arbitrary
//! splits), the own HTTP/1.1 server's head parser (which must keep every
//! byte for hyper when it hands a head over) and the hygiene checks on
//! whatever head httparse accepts.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rampart_gateway::hygiene::{check, FramingScan, FramingVerdicts, ProtocolLimits};

fuzz_target!(|data: &[u8]| {
    let verdicts = Arc::new(FramingVerdicts::default());
    let mut scan = FramingScan::new(verdicts.clone());
    let split = data.first().map_or(1, |b| usize::from(*b).max(1));
    for chunk in data.chunks(split) {
        scan.feed(chunk);
    }
    let framing = verdicts.next();

    let mut memo = rampart_gateway::name_memo::NameMemo::default();
    let mut buf = bytes::BytesMut::from(data);
    match rampart_gateway::h1server::head::parse(&mut buf, 100, &mut memo) {
        rampart_gateway::h1server::head::Parsed::Serve(_) => assert!(data.ends_with(&buf)),
        _ => assert_eq!(&buf[..], data),
    }

    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    if let Ok(httparse::Status::Complete(_)) = req.parse(data) {
        let Ok(uri) = req.path.unwrap_or("/").parse::<http::Uri>() else { return };
        let mut map = http::HeaderMap::new();
        for h in req.headers.iter() {
            if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(h.name.as_bytes()), http::HeaderValue::from_bytes(h.value)) {
                map.append(n, v);
            }
        }
        let limits = ProtocolLimits { max_uri: 8192, max_headers: 100, max_header_bytes: 32 * 1024 };
        let method = http::Method::from_bytes(req.method.unwrap_or("GET").as_bytes()).unwrap_or(http::Method::GET);
        let _ = check(&method, http::Version::HTTP_11, &uri, &map, framing, &limits);
    }
});
