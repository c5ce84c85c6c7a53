//! The gateway's event hub: recent security events for the admin API, and
//! fan-out to the sinks that act on them (the threat tracker).
//!
//! It lives as long as the gateway, across reloads; sinks are swapped in
//! when the configuration that defines them changes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rampart_core::{EventRecord, EventSink, RequestCtx};

/// How many recent events the admin API can show.
pub const RECENT_EVENTS: usize = 1000;

pub struct EventHub {
    recent: Mutex<VecDeque<Arc<EventRecord>>>,
    sinks: ArcSwap<Vec<Arc<dyn EventSink>>>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub {
            recent: Mutex::new(VecDeque::with_capacity(64)),
            sinks: ArcSwap::from_pointee(Vec::new()),
        }
    }
}

impl EventHub {
    /// Records the security events of a finished exchange.
    pub fn publish(&self, ctx: &RequestCtx, status: u16) {
        let record = Arc::new(EventRecord::from_ctx(ctx, status));
        for sink in self.sinks.load().iter() {
            sink.on_security_event(&record);
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT_EVENTS {
            recent.pop_front();
        }
        recent.push_back(record);
    }

    /// The most recent events, newest first, at most `limit`.
    pub fn recent(&self, limit: usize) -> Vec<Arc<EventRecord>> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().rev().take(limit).cloned().collect()
    }

    pub fn set_sinks(&self, sinks: Vec<Arc<dyn EventSink>>) {
        self.sinks.store(Arc::new(sinks));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize);
    impl EventSink for Count {
        fn on_security_event(&self, _: &Arc<EventRecord>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn ctx(id: &str) -> RequestCtx {
        let peer = "192.0.2.7:1000".parse().unwrap();
        RequestCtx::new(
            id.into(),
            "192.0.2.7".parse().unwrap(),
            peer,
            Arc::from("main"),
        )
    }

    #[test]
    fn keeps_the_newest_events_and_feeds_sinks() {
        let hub = EventHub::default();
        let sink = Arc::new(Count(AtomicUsize::new(0)));
        hub.set_sinks(vec![sink.clone()]);
        for i in 0..RECENT_EVENTS + 5 {
            hub.publish(&ctx(&i.to_string()), 403);
        }
        assert_eq!(sink.0.load(Ordering::SeqCst), RECENT_EVENTS + 5);
        let recent = hub.recent(3);
        assert_eq!(recent.len(), 3);
        assert_eq!(recent[0].request_id, (RECENT_EVENTS + 4).to_string());
        assert_eq!(hub.recent(usize::MAX).len(), RECENT_EVENTS);
    }
}
