//! The log phase: one access-log line per request, one security event per
//! request that any filter touched, and the request metrics.
//!
//! Query strings are never logged (API keys and tokens travel there), nor are
//! header values; events carry reason codes, never request data.

use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use metrics::{Counter, Histogram};
use rampart_core::{Decision, RequestCtx};

use crate::snapshot::RouteRuntime;

/// Pre-registered metric handles for one route, so the hot path does no
/// label lookups.
pub struct RouteMetrics {
    by_class: [Counter; 6],
    duration: Histogram,
}

impl RouteMetrics {
    pub fn new(route: &str) -> Self {
        let class = |c: &'static str| metrics::counter!("rampart_requests_total", "route" => route.to_string(), "status" => c);
        RouteMetrics {
            by_class: [
                class("1xx"),
                class("2xx"),
                class("3xx"),
                class("4xx"),
                class("5xx"),
                class("other"),
            ],
            duration: metrics::histogram!("rampart_request_duration_seconds", "route" => route.to_string()),
        }
    }

    fn record(&self, status: u16, secs: f64) {
        let i = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            500..=599 => 4,
            _ => 5,
        };
        self.by_class[i].increment(1);
        self.duration.record(secs);
    }
}

/// A response-body filter stopped the response (it is cut short).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Everything known about one exchange once the response has started.
pub struct Exchange {
    pub ctx: RequestCtx,
    pub method: Method,
    /// Path only: the query string may hold secrets.
    pub path: String,
    pub status: u16,
    pub route: Option<Arc<RouteRuntime>>,
    pub metrics: Arc<RouteMetrics>,
    pub upstream: Option<(Arc<crate::upstream::Pool>, usize)>,
    pub upstream_ms: Option<f64>,
    pub access_log: bool,
    /// Request body bytes counted by a streaming body the handler no longer owns.
    pub bytes_in: Option<Arc<std::sync::atomic::AtomicU64>>,
    pub events: Arc<crate::events::EventHub>,
    /// The HTTP/1 connection's note that this exchange is open; closed when
    /// the exchange finishes, which restarts the header-read timeout.
    pub open: Option<crate::hygiene::OpenExchange>,
    /// The response's fields when they are not in its map (see
    /// `ResponseBody::take_raw_head`). Kept here rather than in the body:
    /// the exchange is boxed already, and the body moves several times.
    pub raw_head: Option<crate::upstream::fields::RawHead>,
}

impl Exchange {
    /// Runs response-body filters on one chunk; `Err` stops the response.
    pub fn on_response_chunk(&mut self, data: &mut Bytes) -> Result<(), Stopped> {
        self.ctx.response_body_bytes += data.len() as u64;
        self.response_body(data, false)
    }

    /// Counts bytes the filters already saw or the gateway made.
    pub fn count_response_bytes(&mut self, n: usize) {
        self.ctx.response_body_bytes += n as u64;
    }

    /// Tells response-body filters the body ended.
    pub fn on_response_end(&mut self) -> Result<(), Stopped> {
        self.response_body(&mut Bytes::new(), true)
    }

    fn response_body(&mut self, data: &mut Bytes, end: bool) -> Result<(), Stopped> {
        let Some(route) = &self.route else {
            return Ok(());
        };
        if !route.wants_response_body {
            return Ok(());
        }
        for f in route.filters.iter().filter(|f| f.body_interest().response) {
            let d: Decision = f.response_body(&mut self.ctx, data, end);
            if self.ctx.apply(f.name(), f.mode(), d).is_some() {
                return Err(Stopped);
            }
        }
        Ok(())
    }

    /// The exchange is over: log hooks, access log, security event, metrics.
    pub fn finish(mut self: Box<Self>, complete: bool) {
        if let Some(c) = &self.bytes_in {
            self.ctx.request_body_bytes = c.load(std::sync::atomic::Ordering::Relaxed);
        }
        let now = std::time::Instant::now();
        let secs = now
            .saturating_duration_since(self.ctx.started)
            .as_secs_f64();
        if let Some(route) = &self.route {
            for f in route.filters.iter() {
                f.log(&self.ctx);
            }
        }
        self.metrics.record(self.status, secs);
        let route = self.ctx.route.as_deref().unwrap_or("");
        if self.access_log {
            let (upstream, server) = match &self.upstream {
                Some((pool, i)) => (pool.name.as_str(), pool.servers[*i].authority.as_str()),
                None => ("", ""),
            };
            tracing::info!(
                target: "rampart::access",
                request_id = %self.ctx.request_id,
                listener = %self.ctx.listener,
                client_ip = %self.ctx.client_ip,
                method = %self.method,
                path = %self.path,
                route,
                status = self.status,
                bytes_in = self.ctx.request_body_bytes,
                bytes_out = self.ctx.response_body_bytes,
                duration_ms = secs * 1000.0,
                upstream,
                server,
                upstream_ms = self.upstream_ms.unwrap_or(0.0),
                complete,
                "request"
            );
        }
        if self.ctx.touched() {
            emit_security_event(&self.ctx, self.status);
            self.events.publish(&self.ctx, self.status);
        }
        if let Some(open) = self.open.take() {
            open.close(now);
        }
    }
}

fn emit_security_event(ctx: &RequestCtx, status: u16) {
    for e in &ctx.events {
        metrics::counter!("rampart_decisions_total",
            "filter" => e.filter, "decision" => e.decision, "reason" => e.reason, "mode" => e.mode)
        .increment(1);
    }
    let events = serde_json::to_string(&ctx.events).unwrap_or_default();
    tracing::warn!(
        target: "rampart::security",
        request_id = %ctx.request_id,
        client_ip = %ctx.client_ip,
        route = ctx.route.as_deref().unwrap_or(""),
        status,
        risk = ctx.risk,
        events = %events,
        "security event"
    );
}
