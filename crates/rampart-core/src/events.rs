//! Security events after the fact: who else needs to know what the filters
//! decided.
//!
//! When an exchange that some filter touched is over, the gateway builds one
//! [`EventRecord`] and hands it to every [`EventSink`]: the threat tracker
//! (which turns repeated offences into bans), and the admin API's list of
//! recent events. Records carry reason codes and rule ids, never request
//! data, so they are safe to keep and show.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::ctx::{RequestCtx, SecurityEvent};

/// One exchange's security events, as kept and shown.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub request_id: String,
    pub client_ip: IpAddr,
    pub route: Option<Arc<str>>,
    pub status: u16,
    pub risk: u32,
    /// Who the client was, when an auth filter verified it.
    pub consumer: Option<Arc<str>>,
    pub events: Vec<SecurityEvent>,
}

impl EventRecord {
    pub fn from_ctx(ctx: &RequestCtx, status: u16) -> Self {
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        EventRecord {
            time_ms,
            request_id: ctx.request_id.clone(),
            client_ip: ctx.client_ip,
            route: ctx.route.clone(),
            status,
            risk: ctx.risk,
            consumer: ctx.identity.as_ref().map(|i| i.consumer_id.clone()),
            events: ctx.events.clone(),
        }
    }

    /// The enforced refusals in this record (what a threat score counts).
    pub fn enforced(&self) -> impl Iterator<Item = &SecurityEvent> {
        self.events.iter().filter(|e| e.enforced)
    }
}

/// Something that wants every security event (called on the worker thread
/// that finished the exchange: must be quick and must not block).
pub trait EventSink: Send + Sync {
    fn on_security_event(&self, record: &Arc<EventRecord>);
}
