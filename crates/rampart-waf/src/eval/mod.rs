//! Evaluation: a [`Transaction`] runs a compiled [`RuleSet`] over one HTTP
//! exchange, phase by phase, with ModSecurity v3 semantics. It knows
//! nothing of sockets: the host feeds it the request line, headers and
//! body chunks, then the response, and asks for an [`Intervention`].
//!
//! ```
//! use rampart_waf::{RuleSet, Transaction};
//!
//! let rules = RuleSet::from_text(
//!     "SecRuleEngine On\n\
//!      SecRule ARGS:q \"@rx attack\" \"id:1,phase:1,deny,status:403,msg:'bad q'\"",
//! ).unwrap();
//! let mut tx = Transaction::new(&rules);
//! tx.set_request_line("GET", "/search?q=an+attack", "HTTP/1.1");
//! tx.process_request_headers();
//! let hit = tx.intervention().unwrap();
//! assert_eq!((hit.status, hit.rule_id), (403, 1));
//! ```

mod body;
mod cache;
mod data;
mod engine;
mod lists;
mod macros;
pub(crate) mod memo;
mod ops;
pub(crate) mod pool;
mod scalars;
pub(crate) mod segments;
mod setvar;
pub(crate) mod snapshot;
pub(crate) mod store;
mod vars;
mod within;

pub(crate) use vars::{is_collection, request_fixed};

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::compile::ctl_tags::CtlTag;
use crate::compile::{CompiledRule, RuleSet};
use crate::parser::{BodyProcessor, Collection, EngineMode, IdRange, Phase, Target};

pub use data::Coll;
use data::{Connection, Request, Response, Store};
pub(crate) use store::{KeyIndex, StoreKey};
use vars::Value;

/// What the host should do instead of forwarding the exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intervention {
    pub status: u16,
    pub rule_id: u64,
    pub msg: String,
    /// `Location` for a `redirect`.
    pub url: Option<String>,
    /// `drop`: close the connection without a response.
    pub drop: bool,
}

/// A rule whose whole chain matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedRule {
    pub id: u64,
    pub phase: Phase,
    pub msg: String,
    pub logdata: String,
    /// False for `nolog` rules: they acted but write no log line.
    pub logged: bool,
}

/// Per-transaction changes made by `ctl:` actions.
#[derive(Clone, Debug)]
struct Overrides {
    engine: EngineMode,
    request_body_access: bool,
    response_body_access: bool,
    force_body_variable: bool,
    processor: Option<BodyProcessor>,
    removed_ids: Vec<IdRange>,
    removed_tags: Vec<CtlTag>,
    /// `ruleRemoveTarget*`: (rule ids or tag, excluded targets).
    removed_targets: Vec<(TargetScope, Vec<Target>)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TargetScope {
    Ids(Vec<IdRange>),
    Tag(CtlTag),
}

/// The state of one exchange under a rule set.
pub struct Transaction<'r> {
    rules: &'r RuleSet,
    conn: Connection,
    req: Request,
    res: Response,
    tx: Store,
    collections: HashMap<Collection, Store>,
    env: Store,
    ov: Overrides,
    /// `MATCHED_VAR_NAME` and `MATCHED_VAR` (shared with `MATCHED_VARS`).
    matched_var: Option<(std::sync::Arc<str>, data::Bytes)>,
    matched_vars: Coll,
    current: Option<&'r CompiledRule>,
    matched: Vec<MatchedRule>,
    intervention: Option<Intervention>,
    /// Highest phase already run (0 = none).
    phase_done: u8,
    /// `allow`: phases up to this one are skipped.
    allowed_through: u8,
    highest_severity: u8,
    cache: cache::TransformCache,
    /// Stable scalars computed once (see `scalars::is_stable`).
    scalar_cache: RefCell<scalars::StableScalars>,
    /// Reused buffer for the values of a rule link's targets.
    values_buf: Vec<Value>,
    /// Value lists shared by links with the same targets (see `lists`).
    lists: lists::ValueLists,
    /// Reused buffer for the values of a variable (prefilter unions).
    union_buf: Vec<Value>,
    /// Reused buffer for a union of prefilter bits.
    union_words: Vec<u64>,
    /// TX values read by `[&]TX:key "@cmp N"` plans (see `tx_planned`).
    tx_memo: engine::TxMemo,
    /// Reused buffer for `setvar` keys built from macros.
    setvar_key_buf: Vec<u8>,
    /// Reused buffer for `setvar` values built from text and macros.
    setvar_value_buf: Vec<u8>,
    started: Instant,
    /// `UNIQUE_ID`, made when first read: formatting it cost every
    /// transaction ~550 instructions, and CRS never reads it.
    unique_id: std::cell::OnceCell<String>,
    /// Set while a segment of pure rules is evaluated rather than taken
    /// from its remembered outcome (see `segments`).
    in_segment: bool,
    /// Links that matched so far: a stretch evaluated while it stayed the
    /// same matched nothing (see `engine::stretches`).
    links_matched: u64,
    /// Stretches the value memo ruled out (see `engine::stretches`), for
    /// tests.
    #[cfg(test)]
    stretch_skips: u32,
    /// Links the value memo's verdicts ruled out (see
    /// `engine::verdicts`), for tests.
    #[cfg(test)]
    verdict_rejections: u32,
}

impl<'r> Transaction<'r> {
    pub fn new(rules: &'r RuleSet) -> Self {
        let config = rules.config();
        let started = Instant::now();
        let pool::Scratch {
            cache,
            mut tx,
            matched,
            lists,
            buffers,
        } = rules.scratch_pool().take();
        tx.use_index(rules.key_index());
        Transaction {
            rules,
            conn: Connection::default(),
            req: Request::default(),
            res: Response::default(),
            tx,
            collections: HashMap::new(),
            env: Store::default(),
            ov: Overrides {
                engine: config.rule_engine,
                request_body_access: config.request_body_access,
                response_body_access: config.response_body_access,
                force_body_variable: false,
                processor: None,
                removed_ids: Vec::new(),
                removed_tags: Vec::new(),
                removed_targets: Vec::new(),
            },
            matched_var: None,
            matched_vars: Coll::default(),
            current: None,
            matched,
            intervention: None,
            phase_done: 0,
            allowed_through: 0,
            highest_severity: 255,
            cache,
            scalar_cache: RefCell::default(),
            values_buf: buffers.values_buf,
            lists,
            union_buf: buffers.union_buf,
            union_words: buffers.union_words,
            tx_memo: Default::default(),
            setvar_key_buf: buffers.setvar_key_buf,
            setvar_value_buf: buffers.setvar_value_buf,
            started,
            unique_id: std::cell::OnceCell::new(),
            in_segment: false,
            links_matched: 0,
            #[cfg(test)]
            stretch_skips: 0,
            #[cfg(test)]
            verdict_rejections: 0,
        }
    }

    pub fn set_connection(
        &mut self,
        client_ip: &str,
        client_port: u16,
        server_ip: &str,
        port: u16,
    ) {
        self.invalidate_scalars();
        self.conn = Connection {
            client_ip: Arc::from(client_ip),
            client_port,
            server_ip: Arc::from(server_ip),
            server_port: port,
        };
    }

    /// The request line; `uri` may be origin-form or absolute.
    pub fn set_request_line(&mut self, method: &str, uri: &str, protocol: &str) {
        self.invalidate_scalars();
        self.req.method = scalars::method(method);
        let raw: Arc<str> = Arc::from(uri);
        let path = strip_authority(uri);
        // Origin-form (the usual case): `REQUEST_URI` and
        // `REQUEST_URI_RAW` share one allocation.
        self.req.uri = if path.len() == uri.len() {
            raw.clone()
        } else {
            Arc::from(path)
        };
        self.req.uri_raw = raw;
        self.req.protocol = scalars::protocol(protocol);
        // A clone of the shared URI, not a copy of the query, lets the
        // arguments be parsed into `req` while it is read.
        let uri = self.req.uri.clone();
        if let Some((_, q)) = uri.split_once('?') {
            let sep = self.rules.config().argument_separator;
            body::urlencoded::parse_into(q.as_bytes(), sep, &mut self.req.args_get);
        }
    }

    pub fn add_request_header(&mut self, name: &str, value: &[u8]) {
        self.invalidate_scalars();
        if name.eq_ignore_ascii_case("cookie") {
            body::parse_cookies(value, &mut self.req.cookies);
        }
        self.req.headers.push(name, value);
    }

    /// Phase 1.
    pub fn process_request_headers(&mut self) {
        self.run_up_to(Phase::RequestHeaders);
    }

    /// Buffers request body bytes (up to the configured limit).
    pub fn append_request_body(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return; // nothing changes: keep what was computed
        }
        self.invalidate_scalars();
        let limit = self.rules.config().request_body_limit as usize;
        let room = limit.saturating_sub(self.req.body.len());
        if chunk.len() > room {
            self.req.body_truncated = true;
        }
        self.req
            .body
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    /// Runs the body processor, then phase 2.
    pub fn process_request_body(&mut self) {
        self.run_up_to(Phase::RequestHeaders);
        if self.phase_done < Phase::RequestBody.number() {
            self.parse_request_body();
        }
        self.run_up_to(Phase::RequestBody);
    }

    pub fn set_response_status(&mut self, status: u16, protocol: &str) {
        self.res.status = Some(status);
        self.res.protocol = protocol.to_string();
    }

    pub fn add_response_header(&mut self, name: &str, value: &[u8]) {
        self.res.headers.push(name, value);
    }

    /// Phase 3.
    pub fn process_response_headers(&mut self) {
        self.process_request_body();
        self.run_up_to(Phase::ResponseHeaders);
    }

    /// Buffers response body bytes when the response is inspectable.
    pub fn append_response_body(&mut self, chunk: &[u8]) {
        // Only a body that grows changes what the rules see: otherwise the
        // stable scalars, the prefilter unions and the value lists are
        // kept (recomputing them would give the same values; a response
        // that is not inspected cost their rebuilding in phases 4 and 5).
        if chunk.is_empty() || !self.response_body_inspected() {
            return;
        }
        let limit = self.rules.config().response_body_limit as usize;
        let room = limit.saturating_sub(self.res.body.len());
        if room == 0 {
            return;
        }
        self.invalidate_scalars();
        self.res
            .body
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    /// Phase 4.
    pub fn process_response_body(&mut self) {
        self.process_response_headers();
        self.run_up_to(Phase::ResponseBody);
    }

    /// Phase 5 (runs every earlier phase not run yet, as a host that
    /// stopped early still logs).
    pub fn process_logging(&mut self) {
        self.run_up_to(Phase::Logging);
    }

    /// The disruptive action taken, if any (never in `DetectionOnly`).
    pub fn intervention(&self) -> Option<&Intervention> {
        self.intervention.as_ref()
    }

    /// Rules whose whole chain matched, in order.
    pub fn matched_rules(&self) -> &[MatchedRule] {
        &self.matched
    }

    /// A TX variable, e.g. `blocking_inbound_anomaly_score`.
    pub fn tx_var(&self, name: &str) -> Option<&[u8]> {
        self.tx.get(name)
    }

    /// Every TX variable, in key order (keys in lower case).
    pub fn tx_vars(&self) -> Vec<(String, Vec<u8>)> {
        let mut vars: Vec<(String, Vec<u8>)> = self
            .tx
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect();
        vars.sort_unstable();
        vars
    }

    /// Sets a TX variable before the rules run, as a host's setup would
    /// (e.g. rampart's `TX:rampart_body_truncated` for partly read bodies).
    pub fn set_tx_var(&mut self, name: &str, value: &[u8]) {
        self.invalidate_scalars();
        self.tx.set(name, value.to_vec());
    }

    /// Forgets the stable scalars after their inputs changed.
    fn invalidate_scalars(&mut self) {
        self.scalar_cache.get_mut().clear();
        self.cache.clear_unions();
        self.lists.clear();
    }

    fn response_body_inspected(&self) -> bool {
        if !self.ov.response_body_access {
            return false;
        }
        let ctype = self.res.headers.get("content-type").unwrap_or_default();
        let ctype = String::from_utf8_lossy(ctype);
        let mime = ctype
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        self.rules.config().response_mime_types.contains(&mime)
    }
}

impl Drop for Transaction<'_> {
    /// Hands the transformation cache, the TX store, the list of matched
    /// rules, the value lists and the buffers, emptied, to the next
    /// transaction.
    fn drop(&mut self) {
        let scratch = pool::Scratch {
            cache: std::mem::take(&mut self.cache),
            tx: std::mem::take(&mut self.tx),
            matched: std::mem::take(&mut self.matched),
            lists: std::mem::take(&mut self.lists),
            buffers: pool::Buffers {
                values_buf: std::mem::take(&mut self.values_buf),
                union_buf: std::mem::take(&mut self.union_buf),
                union_words: std::mem::take(&mut self.union_words),
                setvar_key_buf: std::mem::take(&mut self.setvar_key_buf),
                setvar_value_buf: std::mem::take(&mut self.setvar_value_buf),
            },
        };
        self.rules.scratch_pool().give(scratch);
    }
}

/// `http://host:port/p?q` → `/p?q`; origin-form is returned unchanged.
fn strip_authority(uri: &str) -> &str {
    let Some(scheme_end) = uri.find("://") else {
        return uri;
    };
    if !uri[..scheme_end].chars().all(|c| c.is_ascii_alphanumeric()) {
        return uri;
    }
    let rest = &uri[scheme_end + 3..];
    rest.find('/').map_or("", |i| &rest[i..])
}

/// A unique-enough id for `UNIQUE_ID` without a random source: time and a
/// process-wide counter.
pub(super) fn unique_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}{n:06x}")
}
