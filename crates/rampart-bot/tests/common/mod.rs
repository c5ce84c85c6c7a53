//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{HeaderValue, Method, Request};
use rampart_bot::replay::MemoryReplayStore;
use rampart_bot::{ChallengeKit, Key, KeyRing};
use rampart_core::{RequestCtx, RequestHead};

pub fn kit() -> Arc<ChallengeKit> {
    let keys = Arc::new(KeyRing::new(Key::new("k1", &[42u8; 32]).unwrap()));
    let replay = Arc::new(MemoryReplayStore::new(10_000));
    Arc::new(ChallengeKit::new(keys, replay))
}

pub fn ctx(ip: &str) -> RequestCtx {
    let ip: IpAddr = ip.parse().unwrap();
    RequestCtx::new(
        "rid".into(),
        ip,
        SocketAddr::new(ip, 40000),
        Arc::from("main"),
    )
}

pub fn head(method: Method, uri: &str, headers: &[(&str, &str)]) -> RequestHead {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, HeaderValue::from_str(v).unwrap());
    }
    req.body(()).unwrap().into_parts().0
}
