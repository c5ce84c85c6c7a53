//! Compiler: parsed directives → an immutable [`RuleSet`].
//!
//! Loading walks the directives in order, as ModSecurity does: it tracks
//! `SecDefaultAction` per phase, links `chain`ed rules, places `SecMarker`s
//! for `skipAfter`, and applies `SecRuleRemoveBy*`, `SecRuleUpdateTarget*`
//! and `SecRuleUpdateActionById` to the rules defined before them. Only then
//! are operators compiled (regexes, phrase automata, IP sets). A rule whose
//! operator cannot be compiled faithfully is left out and listed by
//! [`RuleSet::unsupported`]; the rest of the set still loads.

mod builder;
mod config;
pub(crate) mod ctl_tags;
pub(crate) mod empty;
pub mod fast;
mod lists;
mod operator;
pub mod pcre;
pub mod prefilter;
pub(crate) mod pure;
mod rule;
pub(crate) mod segments;
pub(crate) mod stretches;
mod trigrams;
mod verdicts;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use regex::bytes::Regex;

use crate::parser::{parse_file, parse_str, Location, ParseError, Phase};
use crate::transform::{ByteSet, Transformation};

pub use config::EngineConfig;
pub use operator::{parse_cidr, Arg, Cidr, Cmp, CompiledOp, Phrases};
pub use rule::{
    CompiledRule, Disruptive, Effect, RejectPlan, RejectTarget, RuleMeta, VerdictTarget,
};

/// Why a rule set did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("{location}: {message}")]
    Compile { location: Location, message: String },
}

/// A rule that was left out of the set, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    pub id: u64,
    pub location: Location,
    pub reason: String,
}

/// One step of a phase's program: a rule (index into [`RuleSet::rules`]) or
/// a marker that `skipAfter` jumps to.
#[derive(Clone, Debug)]
pub enum Entry {
    Rule(usize),
    Marker(Arc<str>),
}

/// Where the configuration text comes from.
pub enum Source<'a> {
    File(&'a Path),
    Text { text: &'a str, origin: &'a str },
}

/// Run-time compiled regexes keyed on the pattern, one map for operator
/// patterns and one for selectors; `None` remembers a pattern that cannot
/// be compiled.
type RegexCache = [HashMap<String, Option<Arc<Regex>>>; 2];

/// The compiled, immutable rule set shared by all transactions.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    phases: [Vec<Entry>; 5],
    config: EngineConfig,
    unsupported: Vec<Unsupported>,
    chains: Vec<Vec<&'static Transformation>>,
    /// Per chain: the bytes a value must hold for the chain to change it
    /// (`None`: any value may change).
    chain_triggers: Vec<Option<ByteSet>>,
    /// The same sets as 256 bits.
    chain_trigger_bits: Vec<Option<[u64; 4]>>,
    /// Per chain: the chain whose output has the same prefilter bits (see
    /// `prefilter::bits_chain`; itself when no step can be left out).
    bits_chains: Vec<u32>,
    /// Regexes built at run time (selectors such as `TX:/^x_/`, `@rx`
    /// patterns with macros), shared by all transactions.
    dynamic: Mutex<RegexCache>,
    /// Per phase, per program entry: for a rule with `skipAfter`, the index
    /// after its marker (the end of the phase when the marker is missing).
    skip_targets: [Vec<u32>; 5],
    /// The prefilter of all `@rx` links (see `compile::prefilter`).
    prefilter: Option<prefilter::Prefilter>,
    /// Per transformation chain: whether some link of it has a prefilter
    /// slot.
    filtered_chains: Vec<bool>,
    prefilter_on: bool,
    /// Per (bits chain, variable) that a prefiltered link may rule out by
    /// the union of the variable's bits (`Transaction::link_rejected`): a
    /// small dense id, so that a transaction keeps its unions in a flat
    /// table. Indexed by `chain * variable_count() + variable`; `u32::MAX`
    /// where no link needs one.
    union_ids: Vec<u32>,
    /// The union ids of the variables whose values depend on the phase
    /// (`REQUEST_BODY`, `RESPONSE_BODY`).
    phase_unions: Vec<u32>,
    /// The `VAR:/regex/` selectors of the loaded rules, compiled at load and
    /// keyed on the address of their pattern text (see
    /// [`RuleSet::selector_regex`]).
    selectors: HashMap<usize, CompiledSelector, crate::inthash::IntBuild>,
    /// Scratch of finished transactions, for new ones.
    scratch_pool: crate::eval::pool::ScratchPool,
    /// The outcome of the first run of pure rules of phase 1, computed at
    /// load (see `eval::snapshot`).
    init_run: Option<crate::eval::snapshot::InitRun>,
    /// The segments of pure rules of every phase (see
    /// `compile::segments`), and their latest outcomes.
    segments: segments::Segments,
    segment_memos: crate::eval::segments::SegmentMemos,
    /// Runs of rules the value memo may rule out together (see
    /// `compile::stretches`).
    stretches: stretches::Stretches,
    /// How many value lists the links share (see `compile::lists`).
    value_lists: u32,
    /// The bits of the tags `ctl`s name (see `compile::ctl_tags`).
    ctl_tags: ctl_tags::CtlTagBits,
    /// Per thread, what the rules found in values of earlier transactions
    /// (see `eval::memo`).
    memos: crate::eval::memo::MemoShards,
    /// Whether transactions use `memos` (see `set_value_memo`).
    memo_on: bool,
    /// Whether stretches that are not ruled out back off (see
    /// `set_stretch_backoff`).
    stretch_backoff: bool,
    /// The TX keys that have a slot in the stores of this rule set's
    /// transactions (see `eval::store`).
    key_index: std::sync::Arc<crate::eval::KeyIndex>,
    /// The key of every `TX:key` target, made at load, keyed on the
    /// address of the target's key text (see [`RuleSet::tx_key`]).
    tx_keys: HashMap<usize, (String, crate::eval::StoreKey), crate::inthash::IntBuild>,
    /// Per variable (`Variable as usize`): whether some
    /// `ctl:ruleRemoveTarget*` of the rules removes it whole (see
    /// `verdicts::ctl_removable`).
    pub(crate) ctl_removable: Box<[bool]>,
}

/// `@pm` links with at most this many phrases get a prefilter slot.
const MAX_PM_PHRASES: usize = 32;

/// The bytes without which the whole chain is the identity: the union of
/// its steps' triggers, when every step has one.
fn chain_trigger(chain: &[&'static Transformation]) -> Option<ByteSet> {
    chain
        .iter()
        .try_fold(ByteSet::EMPTY, |set, t| Some(set.union(t.trigger()?)))
}

/// A searcher for `literals` ignoring ASCII case, as the prefilter scan
/// compares them (`None` if it cannot be built: the link then runs its
/// operator on every intermediate value).
fn literal_check(literals: &[Vec<u8>]) -> Option<Arc<aho_corasick::AhoCorasick>> {
    aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(literals)
        .ok()
        .map(Arc::new)
}

/// The request-side variables whose values depend on the phase run
/// (`REQUEST_BODY` is visible from phase 2, `RESPONSE_BODY` from 4).
pub(crate) const PHASE_DEPENDENT: [crate::parser::Variable; 2] = [
    crate::parser::Variable::RequestBody,
    crate::parser::Variable::ResponseBody,
];

/// One more than the largest `Variable as usize` (the width of the union
/// id table).
fn variable_count() -> usize {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| {
        crate::parser::Variable::all()
            .map(|v| v as usize + 1)
            .max()
            .unwrap_or(0)
    })
}

/// A `VAR:/regex/` selector compiled at load.
#[derive(Debug)]
pub(crate) struct CompiledSelector {
    text: String,
    regex: Arc<Regex>,
    /// Literals every matching key contains one of (ignoring case), when
    /// the pattern has such literals: a key without them is not selected,
    /// and the regex need not run (`TX:/MULTIPART_HEADERS_CONTENT_TYPES_*/`
    /// is tried on every TX key of every request).
    literals: Option<Vec<Vec<u8>>>,
    /// For a pattern that is `^` and plain characters (`^header_name_`):
    /// those characters, in ASCII lower case. Such a selector picks exactly
    /// the keys that start with them, ignoring case (unless the key has a
    /// line break, after which the multi-line `^` matches too).
    prefix: Option<Vec<u8>>,
    /// The names of the rule set's key index (see `eval::store`) the
    /// regex picks, one bit per name: a walk over TX visits only those of
    /// its slots (`TX:/^header_name_920450_/` picks none of CRS's ~50 TX
    /// variables with a slot).
    slots: Vec<u64>,
}

/// A `VAR:/regex/` selector resolved for matching keys (see
/// [`RuleSet::key_matcher`]).
pub(crate) enum KeyMatcher<'a> {
    /// Compiled at load; `shortcuts` when the prefilters are on.
    Loaded {
        sel: &'a CompiledSelector,
        shortcuts: bool,
        /// The index `sel.slots` is over.
        index: &'a Arc<crate::eval::KeyIndex>,
    },
    /// Compiled at run time (`None`: the pattern does not compile).
    Dynamic(Option<Arc<Regex>>),
}

impl KeyMatcher<'_> {
    /// Whether the selector picks `key`.
    pub(crate) fn matches(&self, key: &str) -> bool {
        match self {
            KeyMatcher::Loaded { sel, shortcuts, .. } => sel.matches(key, *shortcuts),
            KeyMatcher::Dynamic(re) => re.as_ref().is_some_and(|re| re.is_match(key.as_bytes())),
        }
    }

    /// `matches` for a key that is in ASCII lower case and holds no line
    /// break (the keys of a `Store` that has no such key).
    ///
    /// Why the plain-prefix test is exact here: the selector `^prefix`
    /// (multi-line, case-insensitive) matches a key when the key starts
    /// with `prefix` ignoring ASCII case, or when `prefix` follows a line
    /// break in it. A key without a line break leaves only the first. And
    /// since the key is its own ASCII lower case, "starts with `prefix`
    /// ignoring ASCII case" is "starts with `prefix` in lower case", which
    /// is the form `prefix` is kept in. This skips the line-break search
    /// of `matches`, which was most of the cost of
    /// `TX:/^header_name_920450_/` (tried on every TX key).
    /// The slots of `index` the selector picks, when known (a selector
    /// compiled at load, the shortcuts on, and `index` the rule set's):
    /// the others need not be tried.
    pub(crate) fn slot_mask(&self, index: &Arc<crate::eval::KeyIndex>) -> Option<&[u64]> {
        match self {
            KeyMatcher::Loaded {
                sel,
                shortcuts: true,
                index: loaded,
            } if Arc::ptr_eq(loaded, index) => Some(&sel.slots),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn matches_lower_single_line(&self, key: &str) -> bool {
        match self {
            KeyMatcher::Loaded {
                sel:
                    CompiledSelector {
                        prefix: Some(prefix),
                        ..
                    },
                shortcuts: true,
                ..
            } => key.as_bytes().starts_with(prefix),
            _ => self.matches(key),
        }
    }
}

impl CompiledSelector {
    /// Whether the selector picks `key`; with `shortcuts`, a plain prefix
    /// is compared and the literal test may rule the key out before the
    /// regex runs (both exact, see the fields).
    fn matches(&self, key: &str, shortcuts: bool) -> bool {
        let key = key.as_bytes();
        if let (Some(prefix), true) = (&self.prefix, shortcuts) {
            if memchr::memchr(b'\n', key).is_none() {
                return key.len() >= prefix.len()
                    && key[..prefix.len()].eq_ignore_ascii_case(prefix);
            }
        }
        if let (Some(literals), true) = (&self.literals, shortcuts) {
            if !contains_any(key, literals) {
                return false;
            }
        }
        self.regex.is_match(key)
    }
}

/// The plain characters after `^` when that is the whole pattern.
fn plain_prefix(pattern: &str) -> Option<Vec<u8>> {
    let rest = pattern.strip_prefix('^')?;
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    (!rest.is_empty() && rest.bytes().all(plain)).then(|| rest.to_ascii_lowercase().into_bytes())
}

/// True when one of `literals` (lower case) occurs in `key`, ignoring
/// ASCII case.
fn contains_any(key: &[u8], literals: &[Vec<u8>]) -> bool {
    literals.iter().any(|lit| contains_ignore_case(key, lit))
}

/// `lit` (lower case, not empty) in `key`, ignoring ASCII case: candidate
/// positions are found by its first byte in either case.
fn contains_ignore_case(key: &[u8], lit: &[u8]) -> bool {
    let Some((&first, rest)) = lit.split_first() else {
        return false;
    };
    if key.len() < lit.len() {
        return false;
    }
    let last_start = key.len() - lit.len();
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), &key[..=last_start])
        .any(|at| key[at + 1..at + lit.len()].eq_ignore_ascii_case(rest))
}

impl RuleSet {
    /// See the `key_index` field.
    pub(crate) fn key_index(&self) -> &std::sync::Arc<crate::eval::KeyIndex> {
        &self.key_index
    }

    /// The key made at load for the `TX:key` target whose key text is
    /// `key` (the same text, at the same address); `None` for any other
    /// text.
    pub(crate) fn tx_key(&self, key: &str) -> Option<&crate::eval::StoreKey> {
        let (text, stored) = self.tx_keys.get(&(key.as_ptr() as usize))?;
        (text == key).then_some(stored)
    }

    /// Loads `setup` (extra directives such as a `SecAction` with test
    /// settings, evaluated first) and then each file in order.
    pub fn load<P: AsRef<Path>>(paths: &[P], setup: &str) -> Result<RuleSet, LoadError> {
        let mut sources = vec![Source::Text {
            text: setup,
            origin: "<setup>",
        }];
        sources.extend(paths.iter().map(|p| Source::File(p.as_ref())));
        Self::from_sources(&sources)
    }

    /// Loads configuration text alone.
    pub fn from_text(text: &str) -> Result<RuleSet, LoadError> {
        Self::from_sources(&[Source::Text {
            text,
            origin: "<inline>",
        }])
    }

    pub fn from_sources(sources: &[Source<'_>]) -> Result<RuleSet, LoadError> {
        let mut builder = builder::Builder::default();
        for source in sources {
            let directives = match source {
                Source::File(path) => parse_file(path)?,
                Source::Text { text, origin } => parse_str(text, origin)?,
            };
            for directive in directives {
                builder.directive(directive)?;
            }
        }
        builder.finish()
    }

    /// Every loaded rule (chain heads), in load order.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// The program of one phase.
    pub fn phase(&self, phase: Phase) -> &[Entry] {
        &self.phases[phase.number() as usize - 1]
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Rules left out because their operator could not be compiled.
    pub fn unsupported(&self) -> &[Unsupported] {
        &self.unsupported
    }

    /// The transformation chain with the given key (see
    /// [`CompiledRule::chain_key`]).
    pub fn transform_chain(&self, key: u32) -> &[&'static Transformation] {
        &self.chains[key as usize]
    }

    pub(crate) fn scratch_pool(&self) -> &crate::eval::pool::ScratchPool {
        &self.scratch_pool
    }

    /// This thread's value memo, for the rules a transaction runs now
    /// (hand it back with [`give_memo`](Self::give_memo)); `None` with the
    /// shortcuts off, whose results the memo must not feed.
    pub(crate) fn take_memo(&self) -> Option<Box<crate::eval::memo::ValueMemo>> {
        (self.prefilter_on && self.memo_on).then(|| self.memos.take())
    }

    pub(crate) fn give_memo(&self, memo: Box<crate::eval::memo::ValueMemo>) {
        self.memos.give(memo);
    }

    /// How many value lists the links share (ids `0..n`, see
    /// `compile::lists`).
    pub(crate) fn value_list_count(&self) -> usize {
        self.value_lists as usize
    }

    /// A tag named by a `ctl`, for testing rules against it (see
    /// `compile::ctl_tags`).
    pub(crate) fn ctl_tag(&self, name: &str) -> ctl_tags::CtlTag {
        self.ctl_tags.tag(name)
    }

    /// The phase-1 program indices where the snapshot of the first pure
    /// run applies and where evaluation resumes after it (see
    /// `eval::snapshot`), if the set has one; for tests and diagnostics.
    pub fn init_snapshot(&self) -> Option<(usize, usize)> {
        self.init_run.as_ref().map(|run| (run.start, run.resume))
    }

    /// The segments of pure rules of every phase.
    pub(crate) fn segments(&self) -> &segments::Segments {
        &self.segments
    }

    /// Per entry of `phase`'s program, the segment of pure rules starting
    /// there (`u32::MAX`: none); empty when the phase has none or the
    /// shortcuts are off.
    pub(crate) fn segment_starts(&self, phase: Phase) -> &[u32] {
        if !self.prefilter_on {
            return &[];
        }
        self.segments.starts(phase)
    }

    /// Per entry of `phase`'s program, the stretch starting there
    /// (`u32::MAX`: none); empty when the phase has none or the shortcuts
    /// are off.
    pub(crate) fn stretch_starts(&self, phase: Phase) -> &[u32] {
        if !self.prefilter_on || !self.memo_on {
            return &[];
        }
        self.stretches.starts(phase.number() as usize - 1)
    }

    /// The stretches of every phase (see `compile::stretches`).
    pub(crate) fn stretches(&self) -> &stretches::Stretches {
        &self.stretches
    }

    pub(crate) fn segment_memos(&self) -> &crate::eval::segments::SegmentMemos {
        &self.segment_memos
    }

    /// The snapshot of phase 1's first pure run, when the shortcuts are on.
    pub(crate) fn init_run(&self) -> Option<&crate::eval::snapshot::InitRun> {
        self.init_run.as_ref().filter(|_| self.prefilter_on)
    }

    /// True when the chain with the given key leaves `value` unchanged
    /// because `value` holds none of the bytes its steps act on.
    pub fn chain_keeps(&self, key: u32, value: &[u8]) -> bool {
        self.prefilter_on
            && self
                .chain_triggers
                .get(key as usize)
                .copied()
                .flatten()
                .is_some_and(|t| !t.any_in(value))
    }

    /// True when the chain with the given key leaves unchanged every value
    /// made of the bytes in `present` (a set from `transform::presence`).
    pub fn chain_keeps_all(&self, key: u32, present: &[u64; 4]) -> bool {
        self.prefilter_on
            && self
                .chain_trigger_bits
                .get(key as usize)
                .copied()
                .flatten()
                .is_some_and(|t| t.iter().zip(present).all(|(t, p)| t & p == 0))
    }

    /// [`step_keeps`](Self::step_keeps) for a value made of the bytes in
    /// `present` (a set from `transform::presence`).
    pub fn step_keeps_all(&self, t: &Transformation, present: &[u64; 4]) -> bool {
        self.prefilter_on && t.trigger().is_some_and(|set| set.disjoint(present))
    }

    /// True when the transformation `t` leaves `value` unchanged because
    /// `value` holds none of the bytes it acts on.
    pub fn step_keeps(&self, t: &Transformation, value: &[u8]) -> bool {
        self.prefilter_on && t.trigger().is_some_and(|set| !set.any_in(value))
    }

    /// A pattern compiled on first use; `None` when it cannot be taken.
    /// `selector` patterns (`ARGS:/^id_/`) ignore case, as ModSecurity's do.
    pub(crate) fn dynamic_regex(&self, pattern: &str, selector: bool) -> Option<Arc<Regex>> {
        let mut caches = self.dynamic.lock().unwrap_or_else(|e| e.into_inner());
        let cache = &mut caches[usize::from(selector)];
        if let Some(found) = cache.get(pattern) {
            return found.clone();
        }
        // Bound the cache: macro-built patterns could otherwise grow it per request.
        if cache.len() > 4096 {
            cache.clear();
        }
        let text = if selector {
            format!("(?i){pattern}")
        } else {
            pattern.to_string()
        };
        let compiled = pcre::compile(&text).ok().map(Arc::new);
        cache.insert(pattern.to_string(), compiled.clone());
        compiled
    }

    /// Whether the `VAR:/regex/` selector `pattern` picks `key`
    /// (case-insensitive, as ModSecurity's selectors are). Selectors
    /// written in the rules were compiled at load and are found by the
    /// address of their text, without hashing or locking; any other
    /// pattern goes through the run-time cache.
    pub(crate) fn selector_matches(&self, pattern: &str, key: &str) -> bool {
        self.key_matcher(pattern).matches(key)
    }

    /// The matcher of the selector `pattern`, looked up once for all the
    /// keys of a collection (a `TX:/^header_name_/` target is tried on
    /// every TX key).
    pub(crate) fn key_matcher<'a>(&'a self, pattern: &'a str) -> KeyMatcher<'a> {
        if let Some(sel) = self.selectors.get(&(pattern.as_ptr() as usize)) {
            if sel.text == pattern {
                return KeyMatcher::Loaded {
                    sel,
                    shortcuts: self.prefilter_on,
                    index: &self.key_index,
                };
            }
        }
        KeyMatcher::Dynamic(self.dynamic_regex(pattern, true))
    }

    /// Fills `selectors` from every target, exclusion and
    /// `ctl:ruleRemoveTarget*` of the rules.
    fn compile_selectors(&mut self) {
        // `TX:key` targets: their keys are registered first, and the key
        // index frozen again, so that they have slots.
        let mut tx_keys = HashMap::default();
        for link in self.rules.iter().flat_map(|r| r.links()) {
            for t in &link.targets {
                if let (crate::parser::Variable::Tx, Some(crate::parser::Selector::Key(k))) =
                    (t.variable, &t.selector)
                {
                    if !k.is_empty() {
                        let key = crate::eval::StoreKey::new(k);
                        tx_keys.insert(k.as_ptr() as usize, (k.clone(), key));
                    }
                }
            }
        }
        self.tx_keys = tx_keys;
        self.key_index = crate::eval::KeyIndex::current();
        let mut found: Vec<&String> = Vec::new();
        fn note<'a>(found: &mut Vec<&'a String>, t: &'a crate::parser::Target) {
            if let Some(crate::parser::Selector::Regex(r)) = &t.selector {
                found.push(r);
            }
        }
        for link in self.rules.iter().flat_map(|r| r.links()) {
            for t in link.targets.iter().chain(&link.exclusions) {
                note(&mut found, t);
            }
            for action in link.effects.iter().map(|e| &e.action) {
                if let crate::parser::Action::Ctl(crate::parser::Ctl::RuleRemoveTarget {
                    targets,
                    ..
                }) = action
                {
                    for t in targets {
                        note(&mut found, t);
                    }
                }
            }
        }
        let mut selectors = HashMap::default();
        for pattern in found {
            if pattern.is_empty() {
                continue; // no unique address
            }
            if let Some(regex) = self.dynamic_regex(pattern, true) {
                let literals = prefilter::required_literals(regex.as_str());
                let slots = self.key_index.mask(|name| regex.is_match(name.as_bytes()));
                let selector = CompiledSelector {
                    text: pattern.clone(),
                    regex,
                    literals,
                    prefix: plain_prefix(pattern),
                    slots,
                };
                selectors.insert(pattern.as_ptr() as usize, selector);
            }
        }
        self.selectors = selectors;
    }

    /// Where a phase's program resumes after the `skipAfter` of the rule at
    /// `entry`: one lookup, computed at load.
    pub fn skip_after_target(&self, phase: Phase, entry: usize) -> usize {
        let n = phase.number() as usize - 1;
        self.skip_targets[n]
            .get(entry)
            .map_or(self.phases[n].len(), |t| *t as usize)
    }

    /// Turns the shortcuts on (the default) or off: the `@rx` prefilters
    /// (per value, per variable union, and per selected value of a keyed
    /// target), the literal checks of `multiMatch` links, the `@pm`
    /// shortest-phrase test and trigram filter, the literals of
    /// `VAR:/regex/` selectors, the transformation triggers that skip
    /// chains and steps, and the value lists shared by links. Results are
    /// the same either way; off exists to prove it.
    pub fn set_prefilter(&mut self, on: bool) {
        self.prefilter_on = on;
    }

    /// Turns the value memo on (the default) or off: what the rules found
    /// in short values (their bytes, prefilter bits, and which pure links
    /// found nothing in them), remembered per thread from one transaction
    /// to the next and keyed on the values' exact bytes (see
    /// `eval::memo`). It is also off while the shortcuts are. Results are
    /// the same either way; off exists to prove it.
    pub fn set_value_memo(&mut self, on: bool) {
        self.memo_on = on;
    }

    /// Turns the back-off of stretches on (the default) or off. A stretch
    /// (see `compile::stretches`) whose bits did not rule it out three
    /// times in a row is looked at again only after 1, 2, 4 … 256
    /// arrivals, since values that change on every request never get its
    /// bits. Off, every arrival looks and every quiet evaluation notes:
    /// for equivalence tests, which must see stretches ruled out as often
    /// as they can be. Results are the same either way.
    pub fn set_stretch_backoff(&mut self, on: bool) {
        self.stretch_backoff = on;
    }

    pub(crate) fn stretch_backoff(&self) -> bool {
        self.stretch_backoff
    }

    /// Whether the shortcuts (see [`set_prefilter`](Self::set_prefilter))
    /// are on.
    pub fn shortcuts_on(&self) -> bool {
        self.prefilter_on
    }

    /// The chain whose output has the same prefilter bits as the output of
    /// the chain `chain_key` (filtering on it may spare a transformation).
    pub fn bits_chain(&self, chain_key: u32) -> u32 {
        self.bits_chains
            .get(chain_key as usize)
            .copied()
            .unwrap_or(chain_key)
    }

    /// The prefilter of all links, when prefilters are on.
    pub fn active_prefilter(&self) -> Option<&prefilter::Prefilter> {
        self.prefilter.as_ref().filter(|_| self.prefilter_on)
    }

    /// Adds, for each chain, the chain of its prefilter bits (appending
    /// the shortened chains that are new), then every chain's trigger set.
    fn index_chains(&mut self) {
        let count = self.chains.len();
        for key in 0..count {
            let short = prefilter::bits_chain(&self.chains[key]);
            let found = self.chains.iter().position(|c| *c == short);
            let target = found.unwrap_or_else(|| {
                self.chains.push(short);
                self.chains.len() - 1
            });
            self.bits_chains.push(target as u32);
        }
        self.chain_triggers = self.chains.iter().map(|c| chain_trigger(c)).collect();
        self.chain_trigger_bits = self
            .chain_triggers
            .iter()
            .map(|t| t.map(|t| t.bits()))
            .collect();
    }

    /// The prefilter, when prefilters are on and some link of the
    /// transformation chain `chain_key` has a slot in it.
    pub fn chain_filter(&self, chain_key: u32) -> Option<&prefilter::Prefilter> {
        if !self.prefilter_on || !*self.filtered_chains.get(chain_key as usize)? {
            return None;
        }
        self.prefilter.as_ref()
    }

    /// True when the literal check of the `multiMatch` link `link` rules
    /// out a match on `value` (an intermediate value of its chain): the
    /// value holds none of the literals of its prefilter slot.
    pub fn literals_reject(&self, link: &CompiledRule, value: &[u8]) -> bool {
        match (&link.literal_check, self.prefilter_on) {
            (Some(check), true) => !check.is_match(value),
            _ => false,
        }
    }

    /// True when the prefilter of `link` rules out a match on `value` (the
    /// value after the link's transformations).
    pub fn prefilter_rejects(&self, link: &CompiledRule, value: &[u8]) -> bool {
        match (link.prefilter, self.chain_filter(link.chain_key)) {
            (Some(slot), Some(filter)) => !prefilter::slot_set(&filter.scan(value), slot),
            _ => false,
        }
    }

    /// Gives each `@rx` link a prefilter slot when its pattern has required
    /// literals, and each `@pm` link one with its phrases.
    fn build_prefilters(&mut self) {
        let mut builder = prefilter::FilterBuilder::default();
        for rule in &mut self.rules {
            let mut link = Some(rule);
            while let Some(l) = link {
                // `multiMatch` links test each intermediate value against
                // the same slot (see `Transaction::test_value`).
                let literals = match &l.operator {
                    CompiledOp::Rx(re) => prefilter::required_literals(re.as_str()),
                    // Exact: `@pm` matches when a phrase occurs, ignoring
                    // case. Large phrase files stay out: the full DFA
                    // grows by kilobytes per literal.
                    CompiledOp::Pm(pm) if pm.lowercase.len() <= MAX_PM_PHRASES => {
                        Some(pm.lowercase.clone())
                    }
                    _ => None,
                };
                // A single letter or digit is in nearly every value: such a
                // prefilter rules nothing out, while its literal would turn
                // most bytes of every scan into match states.
                let useless = |lits: &Vec<Vec<u8>>| {
                    lits.iter()
                        .any(|l| l.len() == 1 && l[0].is_ascii_alphanumeric())
                };
                if let Some(literals) = literals.filter(|l| !useless(l)) {
                    if l.multi_match {
                        l.literal_check = literal_check(&literals);
                    }
                    l.prefilter = Some(builder.add(l.chain_key, literals));
                }
                link = l.chain.as_deref_mut();
            }
        }
        match builder.finish(self.chains.len()) {
            Ok((filter, chains)) => {
                self.prefilter = filter;
                self.filtered_chains = chains;
            }
            Err(_) => self.prefilter_on = false,
        }
    }

    /// Gives each link that the unions of its targets' bits may rule out
    /// its [`RejectPlan`] (after `index_unions`).
    fn plan_rejections(&mut self) {
        let mut plans = Vec::new();
        for (r, rule) in self.rules.iter().enumerate() {
            for (depth, link) in rule.links().enumerate() {
                if let Some(plan) = self.reject_plan(link) {
                    plans.push((r, depth, plan));
                }
            }
        }
        for (r, depth, plan) in plans {
            let mut link = Some(&mut self.rules[r]);
            for _ in 0..depth {
                link = link.and_then(|l| l.chain.as_deref_mut());
            }
            if let Some(link) = link {
                link.reject_plan = Some(plan);
            }
        }
    }

    /// The plan of one link, when its shape allows one: a prefilter slot,
    /// neither negated nor `multiMatch`, and no target that counts (`&`)
    /// or reads a variable other than a request-side one (whose values
    /// only the setters and the body processor change) or a
    /// body-processor one (which may be empty).
    fn reject_plan(&self, link: &CompiledRule) -> Option<RejectPlan> {
        let slot = link.prefilter?;
        if link.negated || link.multi_match {
            return None;
        }
        let bits_chain = self.bits_chain(link.chain_key);
        let mut empty = Vec::new();
        let mut unions = Vec::new();
        for (index, target) in link.targets.iter().enumerate() {
            let var = target.variable;
            if target.count {
                return None;
            }
            if crate::eval::request_fixed(var) {
                unions.push(RejectTarget::Union {
                    var,
                    id: self.union_id(bits_chain, var)?,
                    keyed: matches!(target.selector, Some(crate::parser::Selector::Key(_))),
                    index: index as u32,
                });
            } else if filled_by_body_processor(var) {
                empty.push(RejectTarget::Empty(var));
            } else {
                return None;
            }
        }
        empty.extend(unions);
        Some(RejectPlan {
            slot,
            bits_chain,
            targets: empty.into_boxed_slice(),
        })
    }

    /// Shares the TX key of every `[&]TX:key "@cmp N"` plan among the plans
    /// that read it (see `fast::intern_keys`).
    fn intern_tx_keys(&mut self) {
        let mut plans = Vec::new();
        for rule in &mut self.rules {
            let mut link = Some(rule);
            while let Some(l) = link {
                if let Some(plan) = l.tx_compare.as_mut() {
                    plans.push(plan);
                }
                link = l.chain.as_deref_mut();
            }
        }
        fast::intern_keys(plans.into_iter());
    }

    /// Gives every (bits chain, target variable) of a prefiltered link a
    /// union id (see `union_ids`).
    fn index_unions(&mut self) {
        let vars = variable_count();
        let mut ids = vec![u32::MAX; self.chains.len() * vars];
        let mut next = 0;
        let mut phase_unions = Vec::new();
        for link in self.rules.iter().flat_map(|r| r.links()) {
            if link.prefilter.is_none() {
                continue;
            }
            let chain = self.bits_chain(link.chain_key) as usize;
            for target in &link.targets {
                let at = chain * vars + target.variable as usize;
                if let Some(id) = ids.get_mut(at).filter(|id| **id == u32::MAX) {
                    *id = next;
                    if PHASE_DEPENDENT.contains(&target.variable) {
                        phase_unions.push(next);
                    }
                    next += 1;
                }
            }
        }
        self.union_ids = ids;
        self.phase_unions = phase_unions;
    }

    /// The union id of the variable `var` after the bits chain `chain`
    /// (`None` when no link was given one at load).
    #[inline]
    pub(crate) fn union_id(&self, chain: u32, var: crate::parser::Variable) -> Option<u32> {
        let at = chain as usize * variable_count() + var as usize;
        self.union_ids.get(at).copied().filter(|id| *id != u32::MAX)
    }

    /// The union ids of the variables whose values depend on the phase.
    pub(crate) fn phase_unions(&self) -> &[u32] {
        &self.phase_unions
    }

    /// Fills `skip_targets` from the programs (after the rules are final).
    fn index_skip_targets(&mut self) {
        for (n, program) in self.phases.iter().enumerate() {
            let mut targets = vec![program.len() as u32; program.len()];
            // Nearest following marker of each name, scanning backwards.
            let mut next: HashMap<&str, usize> = HashMap::new();
            for (i, entry) in program.iter().enumerate().rev() {
                match entry {
                    Entry::Marker(name) => {
                        next.insert(name, i + 1);
                    }
                    Entry::Rule(r) => {
                        if let Some(marker) = &self.rules[*r].skip_after {
                            if let Some(at) = next.get(marker.as_str()) {
                                targets[i] = *at as u32;
                            }
                        }
                    }
                }
            }
            self.skip_targets[n] = targets;
        }
    }

    /// Finds a rule by id.
    pub fn rule(&self, id: u64) -> Option<&CompiledRule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

/// Variables only the request body processor fills (empty otherwise).
pub(crate) fn filled_by_body_processor(var: crate::parser::Variable) -> bool {
    use crate::parser::Variable;
    matches!(
        var,
        Variable::Xml
            | Variable::Files
            | Variable::FilesNames
            | Variable::FilesSizes
            | Variable::MultipartPartHeaders
    )
}

#[cfg(test)]
mod tests;
