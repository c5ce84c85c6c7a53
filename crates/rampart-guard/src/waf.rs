//! The WAF filter: runs a ModSecurity SecLang rule set — the OWASP CRS from a
//! folder, or rampart's built-in set — over each request.
//!
//! The rule set is compiled once per distinct policy (routes with the same
//! rules, paranoia, threshold and exclusions share it). Per request, a
//! body-less request is judged at once; for one with a body the head is kept
//! and the body collected (the gateway holds it back from the upstream up to
//! `body_limit`), and the verdict comes when the body ends or the limit is
//! reached. Denials carry the matched rule ids; every request that matched a
//! rule leaves an audit record (target `rampart::waf`), with matched data from
//! sensitive fields masked.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::StatusCode;
use rampart_config::{OnBodyLimit, WafPolicy, WafRules};
use rampart_core::{
    BodyInterest, Decision, Denial, Filter, Mode, RequestCtx, RequestHead, ResponseHead, Verdict,
};
use rampart_waf::compile::Source;
use rampart_waf::{RuleSet, Transaction};

mod live;
use live::{LiveSlot, LiveTx};

/// Reason code of a WAF block.
pub const WAF_BLOCKED: &str = "waf_blocked";
/// Reason code of a body over the WAF's inspection limit (`on_body_limit = "reject"`).
pub const WAF_BODY_TOO_LARGE: &str = "waf_body_too_large";
/// Reason code of a request that matched rules but stayed under the threshold.
pub const WAF_ANOMALY: &str = "waf_anomaly";
/// Reason code of a response refused by the response phases (data leakage).
pub const WAF_RESPONSE_BLOCKED: &str = "waf_response_blocked";

/// Rule ids rampart uses for its own setup directives (outside CRS's range).
const SETUP_ID: u64 = 10_000_001;

/// The files of a CRS folder in load order: its setup file (the operator's
/// `crs-setup.conf`, else the shipped `.example`), then `rules/*.conf` by name.
pub fn crs_files(crs: &Path) -> Result<Vec<PathBuf>, String> {
    let setup = ["crs-setup.conf", "crs-setup.conf.example"]
        .iter()
        .map(|n| crs.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "{}: no crs-setup.conf or crs-setup.conf.example",
                crs.display()
            )
        })?;
    let dir = crs.join("rules");
    let mut rules: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    rules.sort();
    if rules.is_empty() {
        return Err(format!("{}: no .conf rule files", dir.display()));
    }
    let mut files = vec![setup];
    files.extend(rules);
    Ok(files)
}

/// Engine settings CRS expects from the host (ModSecurity's recommended
/// base config): engine on, bodies read, JSON and XML bodies parsed.
fn engine_setup(policy: &WafPolicy) -> String {
    let body_limit = policy.body_limit.0;
    format!(
        "SecRuleEngine On\nSecRequestBodyAccess On\nSecRequestBodyLimit {limit}\nSecRequestBodyNoFilesLimit {limit}\n\
         SecRule REQUEST_HEADERS:Content-Type \"@rx ^(?:application(?:/soap\\+|/)|text/)xml\" \
         \"id:{xml},phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML\"\n\
         SecRule REQUEST_HEADERS:Content-Type \"@rx ^application/(?:[a-z0-9.+-]+\\+)?json\" \
         \"id:{json},phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n",
        limit = body_limit.max(1),
        xml = SETUP_ID + 1,
        json = SETUP_ID + 2,
    )
}

/// Paranoia, thresholds and response inspection, set after the rule set's
/// own setup file (which may turn response bodies off) and before its rules.
fn levels(policy: &WafPolicy) -> String {
    let mut out = anomaly_levels(policy);
    if policy.inspect_response {
        out.push_str(&format!(
            "SecResponseBodyAccess On\nSecResponseBodyLimit {}\nSecResponseBodyLimitAction ProcessPartial\n\
             SecResponseBodyMimeType {}\n",
            policy.response_body_limit.0.max(1),
            policy.response_content_types.join(" "),
        ));
    }
    out
}

fn anomaly_levels(policy: &WafPolicy) -> String {
    let (p, t, o) = (
        policy.paranoia,
        policy.inbound_threshold,
        policy.outbound_threshold,
    );
    format!(
        "SecAction \"id:{id},phase:1,pass,nolog,setvar:tx.blocking_paranoia_level={p},\
         setvar:tx.detection_paranoia_level={p},setvar:tx.paranoia_level={p},\
         setvar:tx.inbound_anomaly_score_threshold={t},setvar:tx.outbound_anomaly_score_threshold={o}\"\n",
        id = SETUP_ID + 3
    )
}

/// The route's exclusions as SecLang, applied after every rule is loaded.
fn exclusions(policy: &WafPolicy) -> String {
    let mut out = String::new();
    if !policy.exclude_ids.is_empty() {
        let ids: Vec<String> = policy.exclude_ids.iter().map(u64::to_string).collect();
        out.push_str(&format!("SecRuleRemoveById {}\n", ids.join(" ")));
    }
    for tag in &policy.exclude_tags {
        out.push_str(&format!("SecRuleRemoveByTag \"{tag}\"\n"));
    }
    for t in &policy.exclude_targets {
        for id in &t.ids {
            out.push_str(&format!("SecRuleUpdateTargetById {id} \"!{}\"\n", t.target));
        }
    }
    out
}

/// Compiles the rule set a policy describes.
pub fn compile(policy: &WafPolicy) -> Result<RuleSet, String> {
    let engine = engine_setup(policy);
    let levels = levels(policy);
    let excl = exclusions(policy);
    let crs_files = match (policy.rules, &policy.crs_dir) {
        (WafRules::Crs, Some(dir)) => crs_files(dir)?,
        _ => Vec::new(),
    };
    let mut sources = vec![Source::Text {
        text: &engine,
        origin: "<rampart waf setup>",
    }];
    match policy.rules {
        WafRules::Crs => {
            let (setup, rules) = crs_files.split_first().ok_or("empty CRS folder")?;
            sources.push(Source::File(setup));
            sources.push(Source::Text {
                text: &levels,
                origin: "<rampart waf levels>",
            });
            sources.extend(rules.iter().map(|p| Source::File(p)));
        }
        WafRules::Builtin => {
            for (i, (name, text)) in rampart_waf::builtin::SOURCES.iter().enumerate() {
                sources.push(Source::Text { text, origin: name });
                if i == 0 {
                    sources.push(Source::Text {
                        text: &levels,
                        origin: "<rampart waf levels>",
                    });
                }
            }
        }
    }
    sources.extend(policy.extra_rules.iter().map(|p| Source::File(p)));
    sources.push(Source::Text {
        text: &excl,
        origin: "<rampart waf exclusions>",
    });
    let mut rules = RuleSet::from_sources(&sources).map_err(|e| e.to_string())?;
    rules.set_value_memo(policy.value_memo);
    if let Some(u) = rules.unsupported().first() {
        tracing::warn!(target: "rampart::waf", rule = u.id, reason = %u.reason, total = rules.unsupported().len(),
            "rules left out of the rule set");
    }
    Ok(rules)
}

/// A key under which equal policies share one compiled rule set.
pub fn policy_key(p: &WafPolicy) -> String {
    format!(
        "{:?}|{:?}|{:?}|{}|{}|{:?}|{:?}|{:?}|{}|{}|{}|{}|{:?}|{}",
        p.rules,
        p.crs_dir,
        p.extra_rules,
        p.paranoia,
        p.inbound_threshold,
        p.exclude_ids,
        p.exclude_tags,
        p.exclude_targets,
        p.body_limit.0,
        p.inspect_response,
        p.outbound_threshold,
        p.response_body_limit.0,
        p.response_content_types,
        p.value_memo,
    )
}

/// The request head kept while its body arrives.
#[derive(Clone)]
struct Pending {
    method: String,
    uri: String,
    version: &'static str,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// A verdict was reached; later chunks are not inspected.
    done: bool,
    /// The body went past the inspection limit (partial inspection).
    truncated: bool,
}

impl Pending {
    fn of(head: &RequestHead) -> Self {
        Pending {
            method: head.method.to_string(),
            uri: head
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string(),
            version: version_name(head.version),
            headers: head
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
            done: false,
            truncated: false,
        }
    }
}

pub struct WafFilter {
    mode: Mode,
    rules: Arc<RuleSet>,
    body_limit: u64,
    on_limit: OnBodyLimit,
    /// Response phases on: the transaction lives on to the response, which
    /// the gateway holds back up to `response_limit` bytes.
    inspect_response: bool,
    response_limit: u64,
}

impl WafFilter {
    pub fn new(policy: &WafPolicy, rules: Arc<RuleSet>) -> Self {
        WafFilter {
            mode: crate::mode(policy.mode),
            rules,
            body_limit: policy.body_limit.0,
            on_limit: policy.on_body_limit,
            inspect_response: policy.inspect_response,
            response_limit: policy.response_body_limit.0,
        }
    }

    /// Runs the request phases; with response inspection on, the
    /// transaction then waits in the context for the response hooks.
    fn evaluate(&self, ctx: &mut RequestCtx, p: &Pending) -> Decision {
        let mut live = LiveTx::start(self.rules.clone());
        let (decision, audited) = live.with(|tx| {
            let d = self.request_verdict(ctx, p, tx);
            (d, tx.matched_rules().len())
        });
        if self.inspect_response && !matches!(decision, Decision::Deny(_)) {
            ctx.extensions.insert(LiveSlot::new(live, audited));
        }
        decision
    }

    fn request_verdict(&self, ctx: &RequestCtx, p: &Pending, tx: &mut Transaction<'_>) -> Decision {
        let client = ip_string(ctx.client_ip);
        tx.set_connection(&client, ctx.peer.port(), "0.0.0.0", 0);
        tx.set_request_line(&p.method, &p.uri, p.version);
        for (k, v) in &p.headers {
            tx.add_request_header(k, v);
        }
        if p.truncated {
            tx.set_tx_var("rampart_body_truncated", b"1");
        }
        tx.process_request_headers();
        if !p.body.is_empty() {
            tx.append_request_body(&p.body);
        }
        tx.process_request_body();
        let blocked = tx.intervention().map(|i| i.status);
        let score = anomaly_score(tx, INBOUND_SCORES);
        let logged: Vec<_> = tx.matched_rules().iter().filter(|m| m.logged).collect();
        if !logged.is_empty() {
            audit(ctx, &logged, score, blocked.is_some(), "request");
        }
        match blocked {
            Some(status) => {
                let status = StatusCode::from_u16(status)
                    .ok()
                    .filter(|s| s.is_client_error())
                    .unwrap_or(StatusCode::FORBIDDEN);
                let ids = logged.iter().map(|m| m.id.to_string()).collect();
                Decision::Deny(
                    Denial::new(
                        status,
                        WAF_BLOCKED,
                        "the request was blocked by the web application firewall",
                    )
                    .with_rule_ids(ids),
                )
            }
            None if score > 0 => Decision::Risk {
                points: score,
                reason: WAF_ANOMALY,
            },
            None => Decision::Continue,
        }
    }
}

fn ip_string(ip: IpAddr) -> String {
    ip.to_string()
}

const INBOUND_SCORES: &[&str] = &["blocking_inbound_anomaly_score", "inbound_anomaly_score"];
const OUTBOUND_SCORES: &[&str] = &["blocking_outbound_anomaly_score", "outbound_anomaly_score"];

/// An anomaly score under CRS's or the built-in set's variable names.
fn anomaly_score(tx: &Transaction<'_>, names: &[&str]) -> u32 {
    names
        .iter()
        .filter_map(|n| tx.tx_var(n))
        .filter_map(|v| std::str::from_utf8(v).ok()?.trim().parse::<u32>().ok())
        .max()
        .unwrap_or(0)
}

/// Fields whose matched data is never logged in clear.
fn sensitive() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r"(?i)pass(word|wd)?|secret|token|api[_-]?key|auth|cookie|session|card|cvv|ssn",
        )
        .expect("static pattern")
    })
}

/// Matched data as logged: truncated, and masked for sensitive fields.
pub fn safe_logdata(logdata: &str) -> String {
    if sensitive().is_match(logdata) {
        return "[masked: matched data from a sensitive field]".into();
    }
    let mut s: String = logdata.chars().take(160).collect();
    if s.len() < logdata.len() {
        s.push('…');
    }
    s
}

fn audit(
    ctx: &RequestCtx,
    matched: &[&rampart_waf::MatchedRule],
    score: u32,
    blocked: bool,
    direction: &'static str,
) {
    let rules: Vec<_> = matched
        .iter()
        .map(|m| serde_json::json!({ "id": m.id, "msg": m.msg, "data": safe_logdata(&m.logdata) }))
        .collect();
    tracing::warn!(
        target: "rampart::waf",
        request_id = %ctx.request_id,
        client_ip = %ctx.client_ip,
        route = ctx.route.as_deref().unwrap_or(""),
        blocked,
        direction,
        anomaly_score = score,
        rules = %serde_json::Value::Array(rules),
        "waf audit"
    );
}

impl Filter for WafFilter {
    fn name(&self) -> &'static str {
        "waf"
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn body_interest(&self) -> BodyInterest {
        BodyInterest {
            request: true,
            response: self.inspect_response,
            hold_request: self.body_limit,
            hold_response: if self.inspect_response {
                self.response_limit.max(1)
            } else {
                0
            },
        }
    }

    fn request_headers<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        head: &'a mut RequestHead,
    ) -> Verdict<'a> {
        let pending = Pending::of(head);
        if !ctx.has_request_body {
            return Verdict::Ready(self.evaluate(ctx, &pending));
        }
        ctx.extensions.insert(pending);
        Verdict::Ready(Decision::Continue)
    }

    fn request_body(&self, ctx: &mut RequestCtx, chunk: &Bytes, end: bool) -> Decision {
        let Some(mut p) = ctx.extensions.remove::<Pending>() else {
            return Decision::Continue;
        };
        if p.done {
            ctx.extensions.insert(p);
            return Decision::Continue;
        }
        let room = (self.body_limit as usize).saturating_sub(p.body.len());
        let over = chunk.len() > room;
        p.body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        p.truncated = over;
        let decision = match (over, self.on_limit) {
            (true, OnBodyLimit::Reject) => Decision::deny(
                StatusCode::PAYLOAD_TOO_LARGE,
                WAF_BODY_TOO_LARGE,
                format!(
                    "the request body is larger than the {} bytes the firewall inspects",
                    self.body_limit
                ),
            ),
            (true, OnBodyLimit::Partial) | (false, _) if over || end => self.evaluate(ctx, &p),
            _ => Decision::Continue,
        };
        p.done = over || end;
        ctx.extensions.insert(p);
        decision
    }
    fn response_headers(&self, ctx: &mut RequestCtx, head: &mut ResponseHead) -> Decision {
        let Some(mut slot) = ctx.extensions.remove::<LiveSlot>() else {
            return Decision::Continue;
        };
        let tx = slot.tx.clone();
        let mut live = tx.lock().unwrap_or_else(|p| p.into_inner());
        let decision = live.with(|tx| {
            tx.set_response_status(head.status.as_u16(), version_name(head.version));
            for (k, v) in &head.headers {
                tx.add_response_header(k.as_str(), v.as_bytes());
            }
            tx.process_response_headers();
            self.response_verdict(ctx, tx, &mut slot)
        });
        drop(live);
        if !matches!(decision, Decision::Deny(_)) {
            ctx.extensions.insert(slot);
        }
        decision
    }

    /// The gateway holds the response up to the inspection limit, so the
    /// first call carries everything that will be inspected: judge it then.
    fn response_body(&self, ctx: &mut RequestCtx, chunk: &mut Bytes, _end: bool) -> Decision {
        let Some(mut slot) = ctx.extensions.remove::<LiveSlot>() else {
            return Decision::Continue;
        };
        if slot.done {
            ctx.extensions.insert(slot);
            return Decision::Continue;
        }
        slot.done = true;
        let tx = slot.tx.clone();
        let mut live = tx.lock().unwrap_or_else(|p| p.into_inner());
        let decision = live.with(|tx| {
            tx.append_response_body(chunk);
            tx.process_response_body();
            self.response_verdict(ctx, tx, &mut slot)
        });
        drop(live);
        ctx.extensions.insert(slot);
        decision
    }
}

impl WafFilter {
    /// The verdict of the response phases run so far; audits the rules that
    /// matched since the last verdict.
    fn response_verdict(
        &self,
        ctx: &RequestCtx,
        tx: &Transaction<'_>,
        slot: &mut LiveSlot,
    ) -> Decision {
        let blocked = tx.intervention().map(|i| i.status);
        let score = anomaly_score(tx, OUTBOUND_SCORES);
        let new: Vec<_> = tx.matched_rules()[slot.audited..]
            .iter()
            .filter(|m| m.logged)
            .collect();
        slot.audited = tx.matched_rules().len();
        if !new.is_empty() {
            audit(ctx, &new, score, blocked.is_some(), "response");
        }
        match blocked {
            Some(status) => {
                let status = StatusCode::from_u16(status)
                    .ok()
                    .filter(|s| s.is_client_error() || s.is_server_error())
                    .unwrap_or(StatusCode::FORBIDDEN);
                let ids = new.iter().map(|m| m.id.to_string()).collect();
                Decision::Deny(
                    Denial::new(
                        status,
                        WAF_RESPONSE_BLOCKED,
                        "the response was withheld by the web application firewall",
                    )
                    .with_rule_ids(ids),
                )
            }
            None => Decision::Continue,
        }
    }
}

fn version_name(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

#[cfg(test)]
mod tests;
