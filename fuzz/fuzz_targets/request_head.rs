//! Fuzzes request-head handling: the raw-byte framing scan (fed in arbitrary
//! splits) and the hygiene checks on whatever head httparse accepts.
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
