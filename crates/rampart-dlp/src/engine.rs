//! The inspection engine: detectors + actions + JSON-path rules, applied to
//! a whole body (JSON-aware or as text). Streaming lives in [`crate::stream`].

use std::fmt;
use std::sync::Arc;

use crate::detector::{Action, DetectorId, DETECTOR_COUNT};
use crate::finding::{Finding, FindingKind, Fingerprint, Location};
use crate::json::{self, Scalar};
use crate::jsonpath::{self, JsonPath, PathError};
use crate::mask;
use crate::scanner::{KeyCheck, Match, Scanner};

/// Default PEM block limit and streaming overlap (bytes).
pub const DEFAULT_WINDOW: usize = 4096;

/// Engine settings.
#[derive(Clone)]
pub struct EngineOptions {
    /// Enabled detectors and their actions. Default: every detector with its
    /// [`DetectorId::default_action`].
    pub detectors: Vec<(DetectorId, Action)>,
    /// JSON-path rules (`$.user.ssn`, `$.items[*].card`) that force an action
    /// on the selected values whatever the detectors say. Default: none.
    pub json_rules: Vec<(String, Action)>,
    /// ASCII byte that replaces masked letters and digits. Default `*`.
    pub mask_char: u8,
    /// Checksum hook for rampart API keys; `None` accepts any well-formed
    /// `rk_(live|test)_` key. Default `None`.
    pub rampart_key_check: Option<KeyCheck>,
    /// Largest PEM block (BEGIN to END) and the streaming overlap window, in
    /// bytes. Default 4096.
    pub window: usize,
    /// Findings kept per body (the rest are counted, not recorded). Default 64.
    pub max_findings: usize,
}

impl fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineOptions")
            .field("detectors", &self.detectors)
            .field("json_rules", &self.json_rules)
            .field("mask_char", &char::from(self.mask_char))
            .field("rampart_key_check", &self.rampart_key_check.is_some())
            .field("window", &self.window)
            .field("max_findings", &self.max_findings)
            .finish()
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            detectors: DetectorId::ALL
                .iter()
                .map(|&d| (d, d.default_action()))
                .collect(),
            json_rules: Vec::new(),
            mask_char: b'*',
            rampart_key_check: None,
            window: DEFAULT_WINDOW,
            max_findings: 64,
        }
    }
}

/// A configuration error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Path(PathError),
    /// The mask byte must be printable ASCII, not a letter, digit, quote or
    /// backslash (it must not create matches or break JSON).
    MaskChar,
    /// The window must be between 256 bytes and 1 MiB.
    Window,
    Pattern(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Path(e) => e.fmt(f),
            ConfigError::MaskChar => f.write_str(
                "mask_char must be printable ASCII punctuation other than '\"' and '\\'",
            ),
            ConfigError::Window => f.write_str("window must be between 256 and 1048576 bytes"),
            ConfigError::Pattern(e) => write!(f, "detector pattern failed to compile: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The outcome of inspecting one body.
#[derive(Debug, Default, Clone)]
pub struct Inspection {
    /// The rewritten body, when something was masked.
    pub body: Option<Vec<u8>>,
    /// Findings (at most `max_findings`).
    pub findings: Vec<Finding>,
    /// Findings beyond `max_findings`, counted only.
    pub dropped_findings: usize,
    /// Whether a finding's action is `block`.
    pub blocked: bool,
}

impl Inspection {
    /// Highest action among the findings.
    pub fn max_action(&self) -> Option<Action> {
        self.findings.iter().map(|f| f.action).max()
    }
}

/// Compiled detectors, actions and path rules; cheap to share via `Arc`.
#[derive(Debug)]
pub struct Engine {
    scanner: Scanner,
    actions: [Option<Action>; DETECTOR_COUNT],
    rules: Vec<(JsonPath, Action)>,
    mask_char: u8,
    window: usize,
    max_findings: usize,
}

impl Engine {
    /// Validates the options and compiles the detectors.
    pub fn new(options: &EngineOptions) -> Result<Arc<Engine>, ConfigError> {
        let m = options.mask_char;
        if !m.is_ascii_graphic() || m.is_ascii_alphanumeric() || m == b'"' || m == b'\\' {
            return Err(ConfigError::MaskChar);
        }
        if !(256..=1 << 20).contains(&options.window) {
            return Err(ConfigError::Window);
        }
        let mut actions = [None; DETECTOR_COUNT];
        for &(d, a) in &options.detectors {
            actions[d.index()] = Some(a);
        }
        let enabled: Vec<DetectorId> = options.detectors.iter().map(|&(d, _)| d).collect();
        let scanner = Scanner::new(&enabled, options.rampart_key_check, options.window)
            .map_err(|e| ConfigError::Pattern(e.to_string()))?;
        let rules = options
            .json_rules
            .iter()
            .map(|(p, a)| {
                JsonPath::parse(p)
                    .map(|p| (p, *a))
                    .map_err(ConfigError::Path)
            })
            .collect::<Result<_, _>>()?;
        Ok(Arc::new(Engine {
            scanner,
            actions,
            rules,
            mask_char: m,
            window: options.window,
            max_findings: options.max_findings,
        }))
    }

    pub(crate) fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    /// The configured streaming overlap / PEM limit.
    pub fn window(&self) -> usize {
        self.window
    }

    pub(crate) fn mask_char(&self) -> u8 {
        self.mask_char
    }

    /// The action configured for a detector (`Log` if it is disabled).
    pub fn action(&self, d: DetectorId) -> Action {
        self.actions[d.index()].unwrap_or(Action::Log)
    }

    /// Inspects a whole body: as JSON when `json` is set and it parses, as
    /// text otherwise.
    pub fn inspect(&self, body: &[u8], json: bool) -> Inspection {
        if json {
            if let Some(result) = self.inspect_json(body) {
                return result;
            }
        }
        self.inspect_text(body, json)
    }

    /// Text mode: scan and mask in place. `escape_aware` keeps JSON escapes
    /// intact (for bodies that may be JSON but were not parsed).
    pub fn inspect_text(&self, body: &[u8], escape_aware: bool) -> Inspection {
        let mut out = Inspection::default();
        let matches = self.scanner.scan(body).matches;
        if matches.is_empty() {
            return out;
        }
        let mut masked: Option<Vec<u8>> = None;
        for m in &matches {
            let action = self.action(m.detector);
            self.record(
                &mut out,
                m.detector,
                action,
                Location::Offset(m.start as u64),
                &body[m.start..m.end],
            );
            if action == Action::Mask {
                let buf = masked.get_or_insert_with(|| body.to_vec());
                mask::mask_range(
                    buf,
                    m.start,
                    m.end,
                    Some(m.detector),
                    self.mask_char,
                    escape_aware,
                );
            }
        }
        out.body = masked;
        out
    }

    /// JSON mode; `None` when the body is not valid JSON (UTF-8, syntax,
    /// nesting), in which case the caller scans it as text.
    pub fn inspect_json(&self, body: &[u8]) -> Option<Inspection> {
        let src = std::str::from_utf8(body).ok()?;
        let raw = self.scanner.scan(body).matches;
        // Fast path: nothing matched in the raw text, no escape could hide a
        // match, and no path rule applies. Still confirm it is JSON.
        let no_escapes = memchr::memchr(b'\\', body).is_none();
        if raw.is_empty() && no_escapes && self.rules.is_empty() {
            return json::walk(src, |_, _| {})
                .ok()
                .map(|()| Inspection::default());
        }
        let mut job = JsonJob {
            engine: self,
            src,
            raw: &raw,
            next_raw: 0,
            edits: Vec::new(),
            out: Inspection::default(),
            failed: false,
        };
        json::walk(src, |path, scalar| job.visit(path, scalar)).ok()?;
        if job.failed {
            return None;
        }
        let JsonJob { edits, mut out, .. } = job;
        if !edits.is_empty() {
            out.body = Some(splice(body, &edits));
        }
        Some(out)
    }

    pub(crate) fn record(
        &self,
        out: &mut Inspection,
        detector: DetectorId,
        action: Action,
        location: Location,
        value: &[u8],
    ) {
        self.record_kind(
            out,
            FindingKind::Detector(detector),
            action,
            location,
            value,
        );
    }

    fn record_kind(
        &self,
        out: &mut Inspection,
        kind: FindingKind,
        action: Action,
        location: Location,
        value: &[u8],
    ) {
        out.blocked |= action == Action::Block;
        if out.findings.len() >= self.max_findings {
            out.dropped_findings += 1;
            return;
        }
        out.findings.push(Finding {
            kind,
            action,
            location,
            fingerprint: Fingerprint::of(value),
        });
    }
}

/// Replaces byte ranges (sorted, disjoint) by new bytes.
fn splice(body: &[u8], edits: &[(std::ops::Range<usize>, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut at = 0;
    for (range, text) in edits {
        out.extend_from_slice(&body[at..range.start]);
        out.extend_from_slice(text.as_bytes());
        at = range.end;
    }
    out.extend_from_slice(&body[at..]);
    out
}

/// State of one JSON inspection.
struct JsonJob<'a> {
    engine: &'a Engine,
    src: &'a str,
    /// Raw-text matches, sorted; strings overlapping one are rescanned.
    raw: &'a [Match],
    next_raw: usize,
    /// Replacements of whole tokens (strings including quotes).
    edits: Vec<(std::ops::Range<usize>, String)>,
    out: Inspection,
    failed: bool,
}

impl JsonJob<'_> {
    fn visit(&mut self, path: &json::PathStack<'_>, scalar: &Scalar) {
        let forced = self.forced_action(path);
        let overlaps = self.overlaps_raw(&scalar.raw);
        if forced.is_none() && !overlaps && !scalar.escaped {
            return;
        }
        let location = || Location::JsonPath(jsonpath::render(&path.segments()));
        if scalar.is_string {
            self.visit_string(scalar, forced, overlaps, &location);
        } else {
            self.visit_number(scalar, forced, overlaps, &location);
        }
    }

    /// Advances through the sorted raw matches; true when one overlaps.
    fn overlaps_raw(&mut self, range: &std::ops::Range<usize>) -> bool {
        while self.next_raw < self.raw.len() && self.raw[self.next_raw].end <= range.start {
            self.next_raw += 1;
        }
        self.raw
            .get(self.next_raw)
            .is_some_and(|m| m.start < range.end)
    }

    fn forced_action(&self, path: &json::PathStack<'_>) -> Option<(usize, Action)> {
        if self.engine.rules.is_empty() {
            return None;
        }
        let segments = path.segments();
        self.engine
            .rules
            .iter()
            .enumerate()
            .filter(|(_, (p, _))| p.matches(&segments))
            .map(|(i, (_, a))| (i, *a))
            .max_by_key(|&(_, a)| a)
    }

    fn visit_string(
        &mut self,
        s: &Scalar,
        forced: Option<(usize, Action)>,
        overlaps: bool,
        location: &dyn Fn() -> Location,
    ) {
        let value: std::borrow::Cow<'_, str> = if s.escaped {
            match json::decode_string(self.src, s.raw.clone()) {
                Some(v) => v.into(),
                None => {
                    self.failed = true;
                    return;
                }
            }
        } else {
            self.src[s.raw.clone()].into()
        };
        let engine = self.engine;
        let mut masked: Option<String> = None;
        if let Some((rule, action)) = forced {
            engine.record_kind(
                &mut self.out,
                FindingKind::PathRule(rule),
                action,
                location(),
                value.as_bytes(),
            );
            if action == Action::Mask {
                masked = Some(mask::mask_str(
                    &value,
                    0,
                    value.len(),
                    None,
                    engine.mask_char,
                ));
            }
        }
        if overlaps || s.escaped {
            for m in engine.scanner.scan(value.as_bytes()).matches {
                let action = engine.action(m.detector);
                engine.record(
                    &mut self.out,
                    m.detector,
                    action,
                    location(),
                    &value.as_bytes()[m.start..m.end],
                );
                if action == Action::Mask && forced.map(|f| f.1) != Some(Action::Mask) {
                    let current = masked.take().unwrap_or_else(|| value.to_string());
                    masked = Some(mask::mask_str(
                        &current,
                        m.start,
                        m.end,
                        Some(m.detector),
                        engine.mask_char,
                    ));
                }
            }
        }
        if let Some(new_value) = masked {
            let quoted = serde_json::to_string(&new_value).unwrap_or_else(|_| "\"\"".to_string());
            self.edits.push((s.raw.start - 1..s.raw.end + 1, quoted));
        }
    }

    fn visit_number(
        &mut self,
        s: &Scalar,
        forced: Option<(usize, Action)>,
        overlaps: bool,
        location: &dyn Fn() -> Location,
    ) {
        let engine = self.engine;
        let token = &self.src.as_bytes()[s.raw.clone()];
        let mut mask_whole = false;
        let mut mask_card = false;
        if let Some((rule, action)) = forced {
            engine.record_kind(
                &mut self.out,
                FindingKind::PathRule(rule),
                action,
                location(),
                token,
            );
            mask_whole = action == Action::Mask;
        }
        let card = overlaps
            && engine.scanner.is_enabled(DetectorId::Card)
            && crate::validate::card_ok(token);
        if card {
            let action = engine.action(DetectorId::Card);
            engine.record(&mut self.out, DetectorId::Card, action, location(), token);
            mask_card = action == Action::Mask;
        }
        if mask_whole || mask_card {
            // A masked number becomes a string of the same length: the value
            // can no longer be a number, and a string keeps the shape visible.
            let text = std::str::from_utf8(token).unwrap_or_default();
            let detector = if mask_whole {
                None
            } else {
                Some(DetectorId::Card)
            };
            let masked = mask::mask_str(text, 0, text.len(), detector, engine.mask_char);
            self.edits.push((s.raw.clone(), format!("\"{masked}\"")));
        }
    }
}
