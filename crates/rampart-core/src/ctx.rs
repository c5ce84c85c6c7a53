//! Per-request state shared by the filters of one exchange.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::decision::{Challenge, Decision, Denial, Mode};
use crate::reason::Reason;

/// What one filter did to one request, for the security event log.
#[derive(Debug, Clone, Serialize)]
pub struct SecurityEvent {
    pub filter: &'static str,
    pub mode: &'static str,
    pub decision: &'static str,
    pub reason: Reason,
    /// Whether the decision changed the traffic (false in monitor mode).
    pub enforced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_ids: Vec<String>,
    pub risk_points: u32,
}

/// Everything the gateway and the filters know about one request.
#[derive(Debug)]
pub struct RequestCtx {
    pub request_id: String,
    /// The client's address: the peer, or the address forwarded by a trusted
    /// proxy.
    pub client_ip: IpAddr,
    pub peer: SocketAddr,
    pub listener: Arc<str>,
    pub route: Option<Arc<str>>,
    pub tls: bool,
    pub started: Instant,
    /// Accumulated risk points from all filters.
    pub risk: u32,
    pub events: Vec<SecurityEvent>,
    /// Request body bytes received so far (kept by the gateway).
    pub request_body_bytes: u64,
    /// Response body bytes sent so far (kept by the gateway).
    pub response_body_bytes: u64,
    /// Per-request state of filters that need it across hooks (a filter
    /// stores its own type; empty maps cost no allocation).
    pub extensions: http::Extensions,
    /// Whether the request has a body (set by the gateway before the filters
    /// run; body hooks are only called when it does).
    pub has_request_body: bool,
    /// Who the client is, once an authentication filter has verified it.
    pub identity: Option<crate::identity::Identity>,
    /// The connection's TLS facts (client certificate, JA4), on TLS
    /// connections.
    pub peer_tls: Option<Arc<crate::peer_tls::PeerTls>>,
}

impl RequestCtx {
    pub fn new(
        request_id: String,
        client_ip: IpAddr,
        peer: SocketAddr,
        listener: Arc<str>,
    ) -> Self {
        RequestCtx {
            request_id,
            client_ip,
            peer,
            listener,
            route: None,
            tls: false,
            started: Instant::now(),
            risk: 0,
            events: Vec::new(),
            request_body_bytes: 0,
            response_body_bytes: 0,
            extensions: http::Extensions::new(),
            has_request_body: false,
            identity: None,
            peer_tls: None,
        }
    }

    /// Whether any filter touched this request (and so a security event is due).
    pub fn touched(&self) -> bool {
        !self.events.is_empty()
    }

    /// Records a filter's decision and returns the denial to enforce, if any.
    ///
    /// This is the single place where `Mode` is honoured: in monitor mode the
    /// decision is logged as what would have happened and nothing changes.
    pub fn apply(
        &mut self,
        filter: &'static str,
        mode: Mode,
        decision: Decision,
    ) -> Option<Denial> {
        let enforced = mode == Mode::Enforce;
        let kind = decision.kind();
        let (reason, status, points, denial) = match decision {
            Decision::Continue => return None,
            Decision::Risk { points, reason } => {
                self.risk = self.risk.saturating_add(points);
                (reason, None, points, None)
            }
            Decision::Deny(d) => (d.reason, Some(d.status.as_u16()), 0, Some(d)),
            Decision::Challenge { kind, reason } => {
                let d = challenge_denial(kind, reason);
                (reason, Some(d.status.as_u16()), 0, Some(d))
            }
        };
        self.events.push(SecurityEvent {
            filter,
            mode: mode.as_str(),
            decision: kind,
            reason,
            enforced: enforced && denial.is_some(),
            status,
            rule_ids: denial
                .as_ref()
                .map(|d| d.rule_ids.clone())
                .unwrap_or_default(),
            risk_points: points,
        });
        if enforced {
            denial
        } else {
            None
        }
    }
}

/// Until the bot-defence filter renders real challenge pages, a challenge is
/// refused with 403 and a reason that says a challenge is required.
fn challenge_denial(kind: Challenge, reason: Reason) -> Denial {
    let detail = match kind {
        Challenge::ProofOfWork => "a proof-of-work challenge is required",
        Challenge::Captcha => "a CAPTCHA challenge is required",
    };
    Denial::new(http::StatusCode::FORBIDDEN, reason, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn ctx() -> RequestCtx {
        let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        RequestCtx::new("rid".into(), peer.ip(), peer, Arc::from("main"))
    }

    #[test]
    fn enforce_returns_denial_and_records_event() {
        let mut c = ctx();
        let d = c.apply(
            "f",
            Mode::Enforce,
            Decision::deny(StatusCode::FORBIDDEN, "x", "no"),
        );
        assert_eq!(d.unwrap().reason, "x");
        assert_eq!(c.events.len(), 1);
        assert!(c.events[0].enforced);
        assert_eq!(c.events[0].status, Some(403));
    }

    #[test]
    fn monitor_records_but_does_not_deny() {
        let mut c = ctx();
        let d = c.apply(
            "f",
            Mode::Monitor,
            Decision::deny(StatusCode::FORBIDDEN, "x", "no"),
        );
        assert!(d.is_none());
        assert!(c.touched());
        assert!(!c.events[0].enforced);
        assert_eq!(c.events[0].mode, "monitor");
    }

    #[test]
    fn risk_accumulates_without_denying() {
        let mut c = ctx();
        assert!(c
            .apply(
                "a",
                Mode::Enforce,
                Decision::Risk {
                    points: 5,
                    reason: "r"
                }
            )
            .is_none());
        assert!(c
            .apply(
                "b",
                Mode::Enforce,
                Decision::Risk {
                    points: 7,
                    reason: "s"
                }
            )
            .is_none());
        assert_eq!(c.risk, 12);
        assert_eq!(c.events.len(), 2);
    }

    #[test]
    fn continue_leaves_no_trace() {
        let mut c = ctx();
        assert!(c.apply("a", Mode::Enforce, Decision::Continue).is_none());
        assert!(!c.touched());
    }
}
