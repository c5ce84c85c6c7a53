//! Active health checks: each pool with a `health_check` is probed on the
//! control thread; thresholds of consecutive results flip a server's state.
//! The task holds only a weak reference, so it ends when a reload drops the pool.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use http::{Request, Uri};

use super::Pool;
use crate::body::RequestBody;

/// Starts the checker for `pool` if it has a health check configured.
pub fn spawn(pool: &Arc<Pool>) {
    let Some(hc) = pool.cfg.health_check.clone() else {
        return;
    };
    let weak: Weak<Pool> = Arc::downgrade(pool);
    tokio::spawn(async move {
        let n = weak.upgrade().map_or(0, |p| p.servers.len());
        let mut ok_streak = vec![0u32; n];
        let mut fail_streak = vec![0u32; n];
        let mut tick = tokio::time::interval(hc.interval.0);
        loop {
            tick.tick().await;
            let Some(pool) = weak.upgrade() else { return };
            for i in 0..n {
                let ok = probe(&pool, i, &hc).await;
                if ok {
                    ok_streak[i] += 1;
                    fail_streak[i] = 0;
                    if ok_streak[i] >= hc.healthy_threshold {
                        pool.set_healthy(i, true);
                    }
                } else {
                    fail_streak[i] += 1;
                    ok_streak[i] = 0;
                    if fail_streak[i] >= hc.unhealthy_threshold {
                        pool.set_healthy(i, false);
                    }
                }
            }
        }
    });
}

async fn probe(pool: &Pool, i: usize, hc: &rampart_config::HealthCheck) -> bool {
    let server = &pool.servers[i];
    let Ok(uri) = Uri::builder()
        .scheme(pool.scheme.clone())
        .authority(server.authority.clone())
        .path_and_query(hc.path.as_str())
        .build()
    else {
        return false;
    };
    let host = hc
        .host
        .clone()
        .unwrap_or_else(|| server.authority.to_string());
    let Ok(req) = Request::get(uri)
        .header(http::header::HOST, host)
        .header(http::header::USER_AGENT, "rampart-health-check")
        .body(RequestBody::full(Bytes::new()))
    else {
        return false;
    };
    match tokio::time::timeout(hc.timeout.0, pool.client().request(req)).await {
        Ok(Ok(resp)) => {
            let s = resp.status();
            s.is_success() || s.is_redirection()
        }
        _ => false,
    }
}
