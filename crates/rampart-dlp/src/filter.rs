//! `DlpFilter`: the response DLP as a gateway [`Filter`].
//!
//! Flow per response: `response_headers` decides whether the body is
//! inspected (status, Content-Type, Content-Encoding) and stores the
//! per-request state in `ctx.extensions`. The gateway then holds up to
//! `hold_limit` bytes and calls `response_body` once with them:
//!
//! * whole body held (`end` true): decompress (gzip/br, up to
//!   `max_decompressed`), inspect as JSON (or text), mask, recompress,
//!   replace the chunk, or deny with 502 `sensitive_data_blocked`;
//! * body larger than the hold: identity bodies go through a
//!   [`StreamScanner`] chunk by chunk (text mode, escape-aware); compressed
//!   ones pass uninspected and are counted, because they cannot be rewritten
//!   without holding them whole.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, ETAG};
use http::{HeaderValue, StatusCode};
use rampart_core::{
    BodyInterest, Decision, Denial, Filter, Mode, RequestCtx, ResponseHead, SecurityEvent,
};

use crate::compress::{self, Encoding};
use crate::detector::Action;
use crate::engine::{ConfigError, Engine, EngineOptions, Inspection};
use crate::finding::Finding;
use crate::stream::StreamScanner;

/// Name in logs, metrics and security events.
pub const FILTER_NAME: &str = "dlp";
/// Reason code of a blocked response.
pub const REASON_BLOCKED: &str = "sensitive_data_blocked";
/// Reason code of the security event for masked values.
pub const REASON_MASKED: &str = "sensitive_data_masked";
/// Reason code of the security event for logged-only findings.
pub const REASON_DETECTED: &str = "sensitive_data_detected";
/// Body of the 502 sent instead of a blocked response.
pub const BLOCKED_DETAIL: &str = "The upstream response could not be delivered.";

/// Metric names (counters).
pub mod metric {
    /// Labels `detector`, `action`.
    pub const FINDINGS: &str = "rampart_dlp_findings_total";
    /// Labels `mode` (`held` or `stream`).
    pub const INSPECTED: &str = "rampart_dlp_bodies_inspected_total";
    /// Labels `reason`: `too_large`, `decompress_error`,
    /// `unsupported_encoding`, `compressed_stream`, `recompress_error`.
    pub const SKIPPED: &str = "rampart_dlp_bodies_skipped_total";
    /// Responses replaced by a 502.
    pub const BLOCKED: &str = "rampart_dlp_blocked_total";
}

/// Filter options (the lead maps the TOML config onto these).
#[derive(Debug, Clone)]
pub struct DlpOptions {
    /// Detectors, actions, JSON-path rules, mask byte, window. See
    /// [`EngineOptions`] for each default.
    pub engine: EngineOptions,
    /// Media types to inspect: exact (`application/json`), any subtype
    /// (`text/*`) or structured suffix (`application/*+json`). Parameters
    /// (`; charset=`) are ignored. Default: `application/json`,
    /// `application/*+json`, `text/*`, `application/xml`,
    /// `application/problem+json`.
    pub content_types: Vec<String>,
    /// Inspect responses without a Content-Type. Default true.
    pub inspect_missing_content_type: bool,
    /// Response bytes held for whole-body (JSON-aware) inspection; bodies
    /// up to this size can be blocked with a clean 502. Default 1 MiB.
    pub hold_limit: u64,
    /// Largest decompressed size inspected; larger bodies pass unchanged and
    /// are counted (`reason="too_large"`). Default 8 MiB.
    pub max_decompressed: u64,
    /// `Enforce` masks and blocks; `Monitor` only records. Default Enforce.
    pub mode: Mode,
}

impl Default for DlpOptions {
    fn default() -> Self {
        DlpOptions {
            engine: EngineOptions::default(),
            content_types: [
                "application/json",
                "application/*+json",
                "text/*",
                "application/xml",
                "application/problem+json",
            ]
            .map(String::from)
            .to_vec(),
            inspect_missing_content_type: true,
            hold_limit: 1 << 20,
            max_decompressed: 8 << 20,
            mode: Mode::Enforce,
        }
    }
}

/// The response DLP filter.
#[derive(Debug)]
pub struct DlpFilter {
    engine: Arc<Engine>,
    content_types: Vec<String>,
    inspect_missing_content_type: bool,
    hold_limit: u64,
    max_decompressed: u64,
    mode: Mode,
}

/// Per-request state, kept in `ctx.extensions`.
#[derive(Clone, Debug)]
struct DlpState {
    phase: Phase,
    json: bool,
    encoding: Encoding,
    findings: Vec<Finding>,
}

#[derive(Clone, Debug)]
enum Phase {
    AwaitingBody,
    Streaming(Box<StreamScanner>),
    Done,
}

impl DlpFilter {
    pub fn new(options: DlpOptions) -> Result<DlpFilter, ConfigError> {
        Ok(DlpFilter {
            engine: Engine::new(&options.engine)?,
            content_types: options
                .content_types
                .iter()
                .map(|c| c.trim().to_ascii_lowercase())
                .collect(),
            inspect_missing_content_type: options.inspect_missing_content_type,
            hold_limit: options.hold_limit,
            max_decompressed: options.max_decompressed,
            mode: options.mode,
        })
    }

    /// The shared engine (e.g. to inspect bodies outside the filter).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Findings recorded for this request so far (no values, safe to log).
    pub fn findings(ctx: &RequestCtx) -> &[Finding] {
        ctx.extensions
            .get::<DlpState>()
            .map_or(&[], |s| &s.findings)
    }

    /// Whether the body of this response should be inspected, and as JSON.
    fn classify(&self, content_type: Option<&HeaderValue>) -> Option<bool> {
        let Some(value) = content_type else {
            return self.inspect_missing_content_type.then_some(true);
        };
        let essence = value
            .to_str()
            .ok()?
            .split(';')
            .next()?
            .trim()
            .to_ascii_lowercase();
        let (kind, sub) = essence.split_once('/')?;
        let wanted = self
            .content_types
            .iter()
            .any(|p| media_type_matches(p, kind, sub));
        wanted.then(|| sub == "json" || sub.ends_with("+json"))
    }

    fn enforce(&self) -> bool {
        self.mode == Mode::Enforce
    }

    fn inspect_held(&self, state: &mut DlpState, chunk: &mut Bytes) -> Inspection {
        let plain = match compress::decompress(state.encoding, chunk, self.max_decompressed) {
            Ok(p) => p,
            Err(e) => {
                metrics::counter!(metric::SKIPPED, "reason" => e.as_str()).increment(1);
                return Inspection::default();
            }
        };
        metrics::counter!(metric::INSPECTED, "mode" => "held").increment(1);
        let mut inspection = self.engine.inspect(&plain, state.json);
        if let (Some(masked), true) = (inspection.body.take(), self.enforce()) {
            match compress::compress(state.encoding, &masked) {
                Ok(bytes) => *chunk = Bytes::from(bytes),
                Err(_) => {
                    // Never send the unmasked body: refuse instead.
                    metrics::counter!(metric::SKIPPED, "reason" => "recompress_error").increment(1);
                    inspection.blocked = true;
                }
            }
        }
        inspection
    }

    /// Turns an inspection into metrics, a log line, a security event and
    /// the hook's decision.
    fn report(&self, ctx: &mut RequestCtx, inspection: Inspection) -> Decision {
        if inspection.findings.is_empty() && !inspection.blocked {
            return Decision::Continue;
        }
        let ids: Vec<String> = inspection
            .findings
            .iter()
            .map(|f| f.kind.id())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(String::from)
            .collect();
        for f in &inspection.findings {
            metrics::counter!(metric::FINDINGS, "detector" => f.kind.id(), "action" => f.action.as_str()).increment(1);
            tracing::info!(
                request_id = %ctx.request_id,
                detector = f.kind.id(),
                action = f.action.as_str(),
                location = %f.location,
                fingerprint = %f.fingerprint,
                "dlp finding"
            );
        }
        if inspection.dropped_findings > 0 {
            tracing::info!(request_id = %ctx.request_id, dropped = inspection.dropped_findings, "dlp findings over the per-body cap");
        }
        let max_action = inspection.max_action();
        if let Some(state) = ctx.extensions.get_mut::<DlpState>() {
            state.findings.extend(inspection.findings);
        }
        if inspection.blocked {
            metrics::counter!(metric::BLOCKED).increment(1);
            tracing::warn!(request_id = %ctx.request_id, detectors = ?ids, "dlp blocked response");
            let denial = Denial::new(StatusCode::BAD_GATEWAY, REASON_BLOCKED, BLOCKED_DETAIL)
                .with_rule_ids(ids);
            return Decision::Deny(denial);
        }
        self.record_event(ctx, max_action, ids);
        Decision::Continue
    }

    /// Adds (or extends) this filter's non-blocking security event.
    fn record_event(&self, ctx: &mut RequestCtx, action: Option<Action>, ids: Vec<String>) {
        let masked = action == Some(Action::Mask);
        let (decision, reason) = if masked {
            ("mask", REASON_MASKED)
        } else {
            ("log", REASON_DETECTED)
        };
        if let Some(ev) = ctx
            .events
            .iter_mut()
            .find(|e| e.filter == FILTER_NAME && e.decision != "deny")
        {
            for id in ids {
                if !ev.rule_ids.contains(&id) {
                    ev.rule_ids.push(id);
                }
            }
            if masked {
                ev.decision = decision;
                ev.reason = reason;
                ev.enforced = self.enforce();
            }
            return;
        }
        ctx.events.push(SecurityEvent {
            filter: FILTER_NAME,
            mode: self.mode.as_str(),
            decision,
            reason,
            enforced: masked && self.enforce(),
            status: None,
            rule_ids: ids,
            risk_points: 0,
        });
    }

    fn stream_chunk(
        &self,
        scanner: &mut StreamScanner,
        chunk: &mut Bytes,
        end: bool,
    ) -> Inspection {
        let mut out = scanner.push(chunk);
        if end {
            out.extend(scanner.finish());
        }
        if self.enforce() {
            *chunk = Bytes::from(out);
        }
        scanner.take_findings()
    }
}

/// `pattern` is `type/sub`, `type/*` or `type/*+suffix`.
fn media_type_matches(pattern: &str, kind: &str, sub: &str) -> bool {
    let Some((p_kind, p_sub)) = pattern.split_once('/') else {
        return false;
    };
    if p_kind != kind {
        return false;
    }
    match p_sub.strip_prefix('*') {
        Some("") => true,
        Some(suffix) => sub.ends_with(suffix) && sub.len() > suffix.len(),
        None => p_sub == sub,
    }
}

/// Makes a strong ETag weak (`"x"` -> `W/"x"`): the bytes may change.
fn weaken_etag(head: &mut ResponseHead) {
    let Some(value) = head.headers.get(ETAG) else {
        return;
    };
    let Ok(text) = value.to_str() else {
        head.headers.remove(ETAG);
        return;
    };
    if text.starts_with("W/") {
        return;
    }
    match HeaderValue::from_str(&format!("W/{text}")) {
        Ok(weak) => {
            head.headers.insert(ETAG, weak);
        }
        Err(_) => {
            head.headers.remove(ETAG);
        }
    }
}

impl Filter for DlpFilter {
    fn name(&self) -> &'static str {
        FILTER_NAME
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn body_interest(&self) -> BodyInterest {
        BodyInterest {
            request: false,
            response: true,
            hold_request: 0,
            hold_response: self.hold_limit,
        }
    }

    fn response_headers(&self, ctx: &mut RequestCtx, head: &mut ResponseHead) -> Decision {
        let status = head.status;
        if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Decision::Continue;
        }
        let Some(json) = self.classify(head.headers.get(CONTENT_TYPE)) else {
            return Decision::Continue;
        };
        let Some(encoding) = Encoding::from_header(head.headers.get(CONTENT_ENCODING)) else {
            metrics::counter!(metric::SKIPPED, "reason" => "unsupported_encoding").increment(1);
            return Decision::Continue;
        };
        if self.enforce() {
            // The body may be rewritten after the head is final, so drop
            // validators that promise exact bytes.
            head.headers.remove("content-md5");
            weaken_etag(head);
        }
        ctx.extensions.insert(DlpState {
            phase: Phase::AwaitingBody,
            json,
            encoding,
            findings: Vec::new(),
        });
        Decision::Continue
    }

    fn response_body(&self, ctx: &mut RequestCtx, chunk: &mut Bytes, end: bool) -> Decision {
        let Some(mut state) = ctx.extensions.remove::<DlpState>() else {
            return Decision::Continue;
        };
        let inspection = match std::mem::replace(&mut state.phase, Phase::Done) {
            Phase::AwaitingBody if end => self.inspect_held(&mut state, chunk),
            Phase::AwaitingBody if state.encoding != Encoding::Identity => {
                metrics::counter!(metric::SKIPPED, "reason" => "compressed_stream").increment(1);
                Inspection::default()
            }
            Phase::AwaitingBody => {
                metrics::counter!(metric::INSPECTED, "mode" => "stream").increment(1);
                let mut scanner = Box::new(StreamScanner::new(self.engine.clone(), state.json));
                let inspection = self.stream_chunk(&mut scanner, chunk, end);
                state.phase = Phase::Streaming(scanner);
                inspection
            }
            Phase::Streaming(mut scanner) => {
                let inspection = self.stream_chunk(&mut scanner, chunk, end);
                if !end {
                    state.phase = Phase::Streaming(scanner);
                }
                inspection
            }
            Phase::Done => Inspection::default(),
        };
        ctx.extensions.insert(state);
        self.report(ctx, inspection)
    }
}
