//! rampart-guard: the protections, one module each, all behind
//! [`rampart_core::Filter`]. Each module builds its filter from its config
//! section once at load; per request only the hooks run.

pub mod auth;
pub mod ip_list;
pub mod reputation;
pub mod request_limits;
pub mod spec_policy;
pub mod step_up;
pub mod waf;

use rampart_config::FilterMode;
use rampart_core::Mode;

/// Config mode → runtime mode.
pub fn mode(m: FilterMode) -> Mode {
    match m {
        FilterMode::Enforce => Mode::Enforce,
        FilterMode::Monitor => Mode::Monitor,
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use rampart_core::{RequestCtx, RequestHead};

    pub fn ctx(ip: &str) -> RequestCtx {
        let peer: SocketAddr = SocketAddr::new(ip.parse().unwrap(), 40000);
        RequestCtx::new("rid".into(), peer.ip(), peer, Arc::from("main"))
    }

    pub fn head(uri: &str, headers: &[(&str, &str)]) -> RequestHead {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    pub fn now(v: rampart_core::Verdict<'_>) -> rampart_core::Decision {
        match v {
            rampart_core::Verdict::Ready(d) => d,
            rampart_core::Verdict::Pending(_) => panic!("expected a ready verdict"),
        }
    }
}
