//! The reputation filter: banned clients, address feeds, and country/ASN
//! rules, checked first on a route.
//!
//! Bans come from the threat tracker (behaviour-based or manual, shared by a
//! fleet); feeds are the operator's lists (Spamhaus DROP, FireHOL, own
//! files), where an allow match beats every deny list and lets the client
//! skip the filters the route names; country and ASN rules need the MaxMind
//! databases. Every check is a lock-free lookup.

use std::sync::Arc;

use http::{HeaderValue, StatusCode};
use rampart_core::{Decision, Denial, Filter, Mode, RequestCtx, RequestHead, Verdict};
use rampart_reputation::{FeedSet, GeoPolicy, ListAction, ThreatTracker};

pub const IP_BANNED: &str = "ip_banned";
pub const IP_REPUTATION: &str = "ip_reputation_denied";
pub const GEO_DENIED: &str = "geo_denied";

/// Filters an allow-listed client skips on this request (set by the
/// reputation filter, read by the gateway).
#[derive(Clone, Debug)]
pub struct SkipFilters(pub Arc<[String]>);

impl SkipFilters {
    pub fn skips(ctx: &RequestCtx, filter: &str) -> bool {
        ctx.extensions
            .get::<SkipFilters>()
            .is_some_and(|s| s.0.iter().any(|f| f == filter))
    }
}

pub struct ReputationFilter {
    pub mode: Mode,
    pub tracker: Option<Arc<ThreatTracker>>,
    /// The `[reputation]` feeds, when the route applies them.
    pub feeds: Option<Arc<FeedSet>>,
    pub geo: Option<GeoPolicy>,
    pub allow_skips: Arc<[String]>,
}

impl ReputationFilter {
    fn check(&self, ctx: &mut RequestCtx) -> Decision {
        let ip = ctx.client_ip.to_canonical();
        if let Some(ban) = self.tracker.as_ref().and_then(|t| t.is_banned(ip)) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let retry = HeaderValue::from(ban.remaining_secs(now).max(1));
            return Decision::Deny(
                Denial::new(
                    StatusCode::FORBIDDEN,
                    IP_BANNED,
                    "your address is temporarily banned",
                )
                .with_header(http::header::RETRY_AFTER, retry),
            );
        }
        if let Some(m) = self.feeds.as_ref().and_then(|f| f.check(ip)) {
            match m.action {
                ListAction::Deny => {
                    return Decision::Deny(
                        Denial::new(
                            StatusCode::FORBIDDEN,
                            IP_REPUTATION,
                            "your address is on a blocklist",
                        )
                        .with_rule_ids(vec![m.list.to_string()]),
                    )
                }
                ListAction::Allow => {
                    if !self.allow_skips.is_empty() {
                        ctx.extensions.insert(SkipFilters(self.allow_skips.clone()));
                    }
                    return Decision::Continue;
                }
            }
        }
        if let Some(g) = self.geo.as_ref().and_then(|g| g.check(ip)) {
            if g.action == ListAction::Deny {
                return Decision::deny(
                    StatusCode::FORBIDDEN,
                    GEO_DENIED,
                    "requests from your network or country are not accepted here",
                );
            }
        }
        Decision::Continue
    }
}

impl Filter for ReputationFilter {
    fn name(&self) -> &'static str {
        "reputation"
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn request_headers<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        _head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        Verdict::Ready(self.check(ctx))
    }
}
